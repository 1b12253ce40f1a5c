// The one interface every provider module implements (SPEC §5). Adding a provider means a
// module that exports a Provider and one line in ./index.ts; nothing else changes.

import type { Identity } from '../identity.js';

export type { Identity } from '../identity.js';

/** A raw event as the normalize stage hands it to a provider. */
export interface RawEventInput {
  id: string;
  userId: string;
  provider: string;
  sourceId: string | null;
  /** The raw event's own occurred_at (the fallback for payloads that carry no time). */
  occurredAt: Date | null;
  payload: unknown;
}

export interface NormalizedInteraction {
  /** e.g. email_received, sms_sent, whatsapp_received, dm_sent, form_submitted. */
  type: string;
  /** The interaction's idempotency key within (user_id, source). */
  sourceId: string;
  occurredAt: Date;
  subject: string | null;
  /** Valid UTF-8 without NUL characters. */
  bodyText: string | null;
  /** The parts of the payload worth keeping losslessly (headers, ids). */
  bodyRaw: Record<string, unknown>;
  /**
   * Where bodyRaw is in the payload, when it is one of its objects: normalize then lets the
   * database copy it from the stored payload rather than send it back. A promise: bodyRaw must
   * be exactly what this describes.
   */
  bodyRawAt?: BodyRawAt;
  /** Participants as canonical identities, thread id, labels, attachments, direction. */
  sourceMeta: SourceMeta;
}

/** The payload's object at `path` (keys, and indexes of arrays), with the keys of `set` put over it. */
export interface BodyRawAt {
  path: (string | number)[];
  set?: Record<string, unknown>;
}

export interface SourceMeta {
  direction: 'inbound' | 'outbound';
  from: Identity[];
  to: Identity[];
  cc?: Identity[];
  threadId?: string;
  labels?: string[];
  /**
   * `id`: the provider's handle for fetching the content (Gmail `attachmentId`); `kind`: the
   * provider's own category when there is no MIME type (Instagram `image`, `story_mention`).
   */
  attachments?: { name?: string; mimeType?: string; url?: string; size?: number; id?: string; kind?: string }[];
  [key: string]: unknown;
}

/** One item of a payload holding several (a whole webhook body) that could not be normalized. */
export interface RejectedItem {
  /** Which item: its id when it has one, else its path in the payload. */
  item: string;
  error: PayloadError;
}

export type NormalizeResult =
  | {
      kind: 'interactions';
      interactions: NormalizedInteraction[];
      /** Items that failed on their own: each is a dead letter, the others are stored (SPEC §5). */
      rejected?: RejectedItem[];
      /** Source ids of messages their sender withdrew: their text is removed wherever it is stored. */
      retracted?: string[];
      /** Items of the payload that are valid but not interactions (a read receipt in a webhook body): counted. */
      skipped?: number;
    }
  /** Valid but not an interaction (a read receipt, a reaction): counted, not dead-lettered. */
  | { kind: 'skip'; reason: string };

export interface PayloadIssue {
  /** Where in the payload, e.g. `payload.messages[0].internalDate`. */
  path: string;
  message: string;
}

/** The payload is invalid or cannot be normalized: the event is dead-lettered with these issues. */
export class PayloadError extends Error {
  readonly issues: PayloadIssue[];

  constructor(message: string, issues: PayloadIssue[] = [], options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PayloadError';
    this.issues = issues;
  }
}

export interface Provider {
  readonly name: string;
  /**
   * At import time: the payload's id (raw_events.source_id) and its time (raw_events.occurred_at,
   * null when the payload has none, e.g. a Twilio webhook). Throws PayloadError when there is no id.
   */
  identify(payload: unknown): { sourceId: string; occurredAt: Date | null };
  /** Raw event → interactions, or a skip. Throws PayloadError for invalid payloads. Pure: no I/O. */
  normalize(event: RawEventInput): NormalizeResult;
  /**
   * For providers whose messages can be withdrawn: the raw event source_id under which the
   * withdrawal of message `sourceId` is imported. A message normalized after its withdrawal
   * arrived is stored withdrawn.
   */
  retractionKey?(sourceId: string): string;
}
