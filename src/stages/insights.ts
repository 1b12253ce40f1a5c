// insights: AI insights per contact with new interactions (SPEC §8). A provider call can take
// seconds, so a batch never holds a transaction across it:
//   1. lease the next queued contacts (one short statement; a crash lets the lease expire);
//   2. read their context in one statement; a contact whose interactions are exactly those of
//      its current insights (same source digest, same model) is not sent again;
//   3. call the provider for the others, a bounded number at a time, no transaction open;
//   4. one short transaction: insert the insights (an existing fingerprint is skipped), the dead
//      letters, complete the queue rows and move the ledger.
// A contact that changed while the model was answering keeps its queue row (the lease is given
// back), so the newer interactions get their own insights.
import type { Queryable } from '../db/connect.js';
import { retryOnClash } from '../db/retry.js';
import type { DeadLetterOf } from '../dead-letters/letters.js';
import { resolveDeadLetters, writeDeadLetters } from '../dead-letters/sql.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { InsightContactError, type ContactContext, type GenerateResult, type InsightProvider } from '../insights/provider.js';
import { cleanJson } from '../text.js';
import { leaseOwner, reclaimDeadLeases, withLease, type Lease } from './engine/lease.js';
import { countQueued, peekCursor, peekQueued } from './engine/queue.js';
import type { BatchInput, BatchOutput, DryBatchInput, DryBatchOutput, Stage } from './engine/runner.js';
import { lockContacts } from './contact-locks.js';
import * as sql from './insights-sql.js';

type InsightsCount =
  | 'generated'
  | 'inserted'
  | 'duplicates'
  | 'unchanged'
  | 'skipped'
  | 'dead_lettered'
  | 'recurring'
  | 'resolved'
  | 'requeued'
  | 'tokens'
  | 'requests'
  | 'would_send';

export interface InsightsStageOptions {
  provider: InsightProvider;
  /** Provider calls in flight at once. */
  concurrency: number;
  logger: Logger;
  /** How long a lease lasts without renewal (default 120 s); it is renewed while the batch runs. */
  leaseSeconds?: number;
  /** At most this many contacts per batch whatever --batch-size says (default 100), so a batch fits its lease. */
  maxBatch?: number;
  /** Interactions per contact shown to the provider, newest first (default 50). */
  recentInteractions?: number;
  /** Characters of each body shown to the provider (default 500). */
  bodyChars?: number;
  /** --dry-run: told which contacts would be sent. */
  onWouldSend?: (contacts: { contactId: string; userId: string; displayName: string | null; interactions: number }[]) => void;
}

type Outcome = { ok: true; result: GenerateResult } | { ok: false; error: unknown };

/** Runs `fn` over `items`, at most `limit` at once, keeping the order of the results. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane));
  return out;
}

function toContext(row: sql.ContactContextRow): ContactContext {
  return {
    contactId: row.contact_id,
    userId: row.user_id,
    displayName: row.display_name,
    identities: row.identities,
    interactions: row.interactions.map((i) => ({
      id: i.id,
      type: i.type ?? 'unknown',
      occurredAt: i.occurred_at === null ? null : new Date(i.occurred_at),
      subject: i.subject,
      body: i.body,
    })),
    totals: { interactions: row.total, byType: row.by_type ?? {}, firstAt: row.first_at, lastAt: row.last_at },
  };
}

function deadLetter(ctx: ContactContext, provider: InsightProvider, err: unknown): DeadLetterOf<'insights'> {
  const e = err instanceof InsightContactError ? err : undefined;
  return {
    stage: 'insights',
    rawEventId: null,
    userId: ctx.userId,
    // A contact spans data sources: it has none of its own.
    provider: null,
    error: errorMessage(err),
    context: {
      contact_id: ctx.contactId,
      reason: e?.reason ?? 'error',
      issues: e?.issues ?? [],
      raw_response_excerpt: e?.rawExcerpt ?? null,
      insights_provider: provider.name,
      model: provider.model,
    },
  };
}

export function createInsightsStage(options: InsightsStageOptions): Stage<InsightsCount, string | undefined> {
  const { provider, logger } = options;
  const leaseSeconds = options.leaseSeconds ?? 120;
  const maxBatch = options.maxBatch ?? 100;
  const recent = options.recentInteractions ?? 50;
  const bodyChars = options.bodyChars ?? 500;
  const load = (db: BatchInput['db'], items: { item_id: string; user_id: string }[]) =>
    sql.loadContactContexts(db, items, provider.model, recent, bodyChars);

  async function leased(input: BatchInput, lease: Lease): Promise<BatchOutput<InsightsCount>> {
    const ids = lease.ids;
    const rows = await load(input.db, lease.items);
    const counts: Record<Exclude<InsightsCount, 'would_send' | 'recurring' | 'resolved'> | 'events', number> &
      Partial<Record<'recurring' | 'resolved', number>> = {
      events: ids.length,
      generated: 0,
      inserted: 0,
      duplicates: 0,
      unchanged: 0,
      skipped: 0,
      dead_lettered: 0,
      requeued: 0,
      tokens: 0,
      requests: 0,
    };
    const toSend: { ctx: ContactContext; digest: string }[] = [];
    for (const row of rows) {
      if (row.total === 0)
        counts.skipped++; // no linked interactions left (unlinked since): nothing to say
      else if (row.unchanged) counts.unchanged++;
      else toSend.push({ ctx: toContext(row), digest: row.digest });
    }
    counts.skipped += ids.length - rows.length; // the contact was deleted

    // The provider's calls. An error that is not about one contact (quota, key, an outage that
    // outlasted the retries) would hit the others too: it cancels the calls in flight and those
    // not yet started, and fails the run once what succeeded is written.
    const abort = new AbortController();
    let failure: unknown;
    // A stop (signal, time budget) cancels them too; what was answered is still written and the
    // contacts not answered go back to the queue with the lease.
    const onStop = () => abort.abort(input.signal.reason);
    input.signal.addEventListener('abort', onStop, { once: true });
    const outcomes = await mapLimit(toSend, options.concurrency, async ({ ctx }): Promise<Outcome> => {
      if (abort.signal.aborted) return { ok: false, error: abort.signal.reason };
      counts.requests++;
      try {
        return { ok: true, result: await provider.generate(ctx, abort.signal) };
      } catch (error) {
        if (!(error instanceof InsightContactError) && failure === undefined && !input.signal.aborted) {
          failure = error;
          abort.abort(error);
        }
        return { ok: false, error };
      }
    }).finally(() => input.signal.removeEventListener('abort', onStop));

    const insights: sql.InsightRow[] = [];
    const dead: DeadLetterOf<'insights'>[] = [];
    const sending = new Set(toSend.map((s) => s.ctx.contactId));
    const done = new Set(ids.filter((id) => !sending.has(id)));
    toSend.forEach(({ ctx, digest }, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) {
        counts.tokens += outcome.result.tokens;
        for (const insight of outcome.result.insights) {
          const content = cleanJson({
            title: insight.title,
            body: insight.body,
            ...(insight.score === null || insight.score === undefined ? {} : { score: insight.score }),
          });
          insights.push({
            user_id: ctx.userId,
            subject_id: ctx.contactId,
            kind: insight.kind,
            content,
            model: provider.model,
            source_digest: digest,
          });
        }
        done.add(ctx.contactId);
      } else if (outcome.error instanceof InsightContactError) {
        counts.tokens += outcome.error.tokens;
        dead.push(deadLetter(ctx, provider, outcome.error));
        done.add(ctx.contactId);
        logger.warn(`insights: contact ${ctx.contactId} dead-lettered: ${outcome.error.message}`);
      }
    });
    counts.generated = insights.length;
    counts.dead_lettered = dead.length;

    const sent = toSend.map((s) => s.ctx.contactId).filter((id) => done.has(id));
    // One transaction, run again whole if it meets a merge in a deadlock: it works on copies.
    const write = async (tx: Queryable) => {
      const c = { ...counts };
      const finished = new Set(done);
      // Locked against a merge, as the merge locks them; one merged away while the model answered
      // gets nothing written: its insights and letters were about half a person who is gone.
      const live = await lockContacts(tx, sent);
      // New interactions committed while the model answered: keep those contacts queued.
      const now = await sql.currentDigests(tx, sent);
      for (const { ctx, digest } of toSend) {
        if (finished.has(ctx.contactId) && now.has(ctx.contactId) && now.get(ctx.contactId) !== digest) {
          finished.delete(ctx.contactId);
          c.requeued++;
        }
      }
      const kept = insights.filter((i) => live.has(i.subject_id));
      const keptDead = dead.filter((d) => live.has(d.context.contact_id));
      c.generated = kept.length;
      c.dead_lettered = keptDead.length;
      c.skipped += sent.filter((id) => !live.has(id)).length;
      c.inserted = kept.length === 0 ? 0 : await sql.insertInsights(tx, JSON.stringify(kept));
      c.duplicates = kept.length - c.inserted;
      const letters = await writeDeadLetters(tx, keptDead);
      if (letters.recurring) c.recurring = letters.recurring;
      const resolved = await resolveDeadLetters(tx, {
        stage: 'insights',
        itemIds: [...finished],
        stillFailing: letters.keys,
        runId: input.runId,
        reason: 'insights succeeded',
      });
      if (resolved) c.resolved = resolved;
      await lease.complete(tx, [...finished]);
      // Stopped: the contacts never answered are not taken (they go back to the queue).
      if (input.signal.aborted) c.events = finished.size + c.requeued;
      await input.record(tx, c);
      return c;
    };
    Object.assign(counts, await retryOnClash(() => input.db.transaction(write)));
    // Contacts not completed go back when the lease ends: changed ones for the next batch, failed ones for the next run.
    if (failure !== undefined) throw failure;
    // Stopped: only what was answered (or needed no answer) counts as taken.
    return { taken: counts.events, counts };
  }

  async function realBatch(input: BatchInput): Promise<BatchOutput<InsightsCount>> {
    // One lease owner per batch: parallel workers of one process must not complete each other's rows.
    const lease = {
      stage: 'insights' as const,
      range: input.range,
      size: Math.min(input.size, maxBatch),
      owner: leaseOwner('insights'),
      seconds: leaseSeconds,
      logger,
    };
    return (await withLease(input.db, lease, (l) => leased(input, l))) ?? { taken: 0, counts: {} };
  }

  async function dryBatch(input: DryBatchInput<string | undefined>): Promise<DryBatchOutput<InsightsCount, string | undefined>> {
    const items = await peekQueued(input.db, ['insights'], input.range, Math.min(input.size, maxBatch), input.cursor);
    if (items.length === 0) return { taken: 0, counts: {}, cursor: input.cursor };
    const rows = await load(input.db, items);
    const wouldSend = rows.filter((r) => r.total > 0 && !r.unchanged);
    options.onWouldSend?.(
      wouldSend.map((r) => ({ contactId: r.contact_id, userId: r.user_id, displayName: r.display_name, interactions: r.total })),
    );
    const unchanged = rows.filter((r) => r.total > 0 && r.unchanged).length;
    return {
      taken: items.length,
      counts: { events: items.length, would_send: wouldSend.length, unchanged, skipped: items.length - wouldSend.length - unchanged },
      cursor: peekCursor(items),
    };
  }

  return {
    name: 'insights',
    countPending: (db, range, before) => countQueued(db, ['insights'], range, before),
    prepare: async (db, logger) => {
      await reclaimDeadLeases(db, 'insights', logger);
    },
    batch: realBatch,
    dryBatch,
  };
}
