// The offline insight provider (SPEC §8), the default when no API key is set: deterministic
// rules over the contact's history, no network, no cost. Titles carry the facts they rest on
// (counts, dates, the score), so the same history gives the same fingerprints (nothing new is
// stored) and a changed history gives new ones.
import { systemClock, type Clock } from '../clock.js';
import {
  channelOf,
  directionOf,
  type ContactContext,
  type ContactInteraction,
  type GenerateResult,
  type Insight,
  type InsightProvider,
} from './provider.js';
import { TITLE_MAX } from './schema.js';

export const HEURISTIC_MODEL = 'heuristic-v1';

const DAY_MS = 86_400_000;
/** Recency halves every this many days. */
const RECENCY_HALF_LIFE_DAYS = 30;
/** Interactions in the last 90 days that count as full frequency. */
const FREQUENCY_FULL_AT = 10;

const CHANNEL_LABEL: Record<string, string> = {
  email: 'email',
  sms: 'SMS',
  whatsapp: 'WhatsApp',
  instagram: 'Instagram',
  webform: 'web form',
  note: 'note',
};
const label = (channel: string) => CHANNEL_LABEL[channel] ?? channel;
const day = (d: Date | null) => (d ? d.toISOString().slice(0, 10) : 'an unknown date');
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const clip = (s: string, max: number) => (s.length <= max ? s : `${s.slice(0, max - 1).trimEnd()}…`);

/** A subject as a topic: without reply/forward prefixes and extra spaces. */
function topicOf(subject: string | null): string | null {
  if (!subject) return null;
  const t = subject
    .replace(/^\s*((re|fwd?|aw|tr|sv)\s*:\s*)+/i, '')
    .replace(/\s+/g, ' ')
    .trim();
  return t === '' ? null : t;
}

function nameOf(c: ContactContext): string {
  return c.displayName?.trim() || c.identities[0]?.value || 'This contact';
}

function summary(c: ContactContext): Insight {
  const byChannel = new Map<string, number>();
  for (const [type, n] of Object.entries(c.totals.byType)) byChannel.set(channelOf(type), (byChannel.get(channelOf(type)) ?? 0) + n);
  const channels = [...byChannel].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([ch, n]) => `${n} ${label(ch)}`);
  const last = c.interactions[0];
  const topics: string[] = [];
  const seen = new Set<string>();
  for (const i of c.interactions) {
    const t = topicOf(i.subject);
    if (t && !seen.has(t.toLowerCase()) && topics.length < 5) {
      seen.add(t.toLowerCase());
      topics.push(t);
    }
  }
  const lastText = last
    ? `; the last was ${directionOf(last.type) === 'internal' ? 'a' : `an ${directionOf(last.type)}`} ${label(channelOf(last.type))} on ${day(last.occurredAt)}`
    : '';
  return {
    kind: 'summary',
    title: clip(`${plural(c.totals.interactions, 'interaction')} (${channels.join(', ')}), last ${day(c.totals.lastAt)}`, TITLE_MAX),
    body: `${nameOf(c)}: ${plural(c.totals.interactions, 'interaction')} from ${day(c.totals.firstAt)} to ${day(c.totals.lastAt)}${lastText}.${topics.length ? ` Topics: ${topics.join('; ')}.` : ''}`,
  };
}

function nextStep(c: ContactContext, last: ContactInteraction): Insight {
  const channel = label(channelOf(last.type));
  const topic = topicOf(last.subject);
  const when = day(last.occurredAt);
  const direction = directionOf(last.type);
  if (direction === 'inbound') {
    const excerpt = last.body ? clip(last.body.replace(/\s+/g, ' ').trim(), 160) : '';
    return {
      kind: 'next_step',
      title: clip(topic ? `Reply to "${topic}"` : `Reply to the ${channel} message of ${when}`, TITLE_MAX),
      body: `${nameOf(c)} wrote by ${channel} on ${when} and has had no reply since.${excerpt ? ` They wrote: "${excerpt}"` : ''}`,
    };
  }
  if (direction === 'outbound') {
    const by = day(last.occurredAt ? new Date(last.occurredAt.getTime() + 7 * DAY_MS) : null);
    return {
      kind: 'next_step',
      title: clip(
        topic ? `Follow up on "${topic}" if no reply by ${by}` : `Follow up on the ${channel} of ${when} if no reply by ${by}`,
        TITLE_MAX,
      ),
      body: `The last message went out by ${channel} on ${when} and nothing has come back since. Follow up on ${by} if it stays unanswered.`,
    };
  }
  return {
    kind: 'next_step',
    title: clip(topic ? `Act on the note "${topic}"` : `Act on the note of ${when}`, TITLE_MAX),
    body: `The latest entry is an internal note of ${when}; check whether it asks for an action.`,
  };
}

/** recency × frequency, 0-100: recency halves every 30 days, frequency is full at 10 interactions in 90 days. */
function score(c: ContactContext, now: Date): Insight {
  const lastAt = c.totals.lastAt;
  const days = lastAt ? Math.max(0, Math.floor((now.getTime() - lastAt.getTime()) / DAY_MS)) : Number.POSITIVE_INFINITY;
  const recency = Number.isFinite(days) ? 0.5 ** (days / RECENCY_HALF_LIFE_DAYS) : 0;
  const since = now.getTime() - 90 * DAY_MS;
  const recent = c.interactions.filter(
    (i) => i.occurredAt && i.occurredAt.getTime() >= since && i.occurredAt.getTime() <= now.getTime(),
  ).length;
  const frequency = Math.min(1, recent / FREQUENCY_FULL_AT);
  const value = Math.round(100 * recency * frequency);
  return {
    kind: 'score',
    title: `Engagement ${value}/100`,
    body: `Last interaction ${Number.isFinite(days) ? `${plural(days, 'day')} ago` : 'unknown'} (recency ${recency.toFixed(2)}, halving every ${RECENCY_HALF_LIFE_DAYS} days) and ${plural(recent, 'interaction')} in the last 90 days (frequency ${frequency.toFixed(2)}, full at ${FREQUENCY_FULL_AT}).`,
    score: value,
  };
}

export function createHeuristicInsightProvider(options: { clock?: Clock } = {}): InsightProvider {
  const clock = options.clock ?? systemClock;
  return {
    name: 'heuristic',
    model: HEURISTIC_MODEL,
    async generate(c: ContactContext): Promise<GenerateResult> {
      const last = c.interactions[0];
      if (!last) return { insights: [], tokens: 0 };
      return { insights: [summary(c), nextStep(c, last), score(c, clock.now())], tokens: 0 };
    },
  };
}
