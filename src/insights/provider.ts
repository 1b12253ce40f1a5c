// What an insight provider gets (one contact and its recent interactions) and gives back, and the
// errors that tell the stage what to do with a contact whose insights could not be made:
// - InsightContactError: this contact's answer is unusable (invalid structured output, a refusal,
//   an input the API rejects). The contact is dead-lettered; the batch goes on.
// - InsightProviderError: the provider cannot serve anyone (no quota, bad key, still failing after
//   the retries). The run stops with exit 1; the contacts stay queued for the next run.
import { OmniError } from '../errors.js';
import type { Insight, InsightIssue } from './schema.js';

export type { Insight } from './schema.js';

export interface ContactInteraction {
  id: string;
  type: string;
  occurredAt: Date | null;
  subject: string | null;
  /** The first characters of the body (a model needs the gist, not the whole thread). */
  body: string | null;
}

export interface ContactContext {
  contactId: string;
  userId: string;
  displayName: string | null;
  /** Canonical identities (kind email/phone/instagram_id…), the contact's primary ones included. */
  identities: { kind: string; value: string }[];
  /** The most recent interactions, newest first. */
  interactions: ContactInteraction[];
  /** Over all the contact's interactions, not only the recent ones. */
  totals: { interactions: number; byType: Record<string, number>; firstAt: Date | null; lastAt: Date | null };
}

export interface GenerateResult {
  insights: Insight[];
  tokens: number;
}

export interface InsightProvider {
  /** Names the provider in dead letters and the ledger (`openai`, `heuristic`). */
  readonly name: string;
  /** Stored in ai_insights.model; part of the fingerprint and of the "unchanged" test. */
  readonly model: string;
  generate(input: ContactContext, signal?: AbortSignal): Promise<GenerateResult>;
}

export class InsightContactError extends Error {
  constructor(
    message: string,
    readonly reason: 'invalid_output' | 'refused' | 'rejected',
    readonly issues: InsightIssue[] = [],
    /** The start of what the provider answered, for `errors show`. */
    readonly rawExcerpt: string | null = null,
    /** Tokens the failed answer still cost. */
    readonly tokens = 0,
  ) {
    super(message);
    this.name = 'InsightContactError';
  }
}

export class InsightProviderError extends OmniError {
  override readonly code = 'provider';

  constructor(
    message: string,
    /** True when it may work later (rate limits, outages); false when someone must act (quota, key). */
    readonly transient: boolean,
    options: { cause?: unknown; hint?: string } = {},
  ) {
    super(message, options);
  }
}

/** email_received → email, dm_sent → instagram, form_submitted → webform, … */
export function channelOf(type: string): string {
  const prefix = type.replace(/_(sent|received|submitted|added)$/, '');
  return ({ dm: 'instagram', form: 'webform' } as Record<string, string>)[prefix] ?? prefix;
}

/** From the user's side: what the contact sent is inbound, what the user sent is outbound. */
export function directionOf(type: string): 'inbound' | 'outbound' | 'internal' {
  if (/_(received|submitted)$/.test(type)) return 'inbound';
  if (/_sent$/.test(type)) return 'outbound';
  return 'internal';
}
