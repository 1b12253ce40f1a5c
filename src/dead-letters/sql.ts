// The one writer of public.raw_event_errors: every stage's dead letters, and their resolution
// when the stage later succeeds on the same item. Both run in the stage's own transaction, so a
// dead letter commits (or rolls back) with the batch whose failure it is, and a resolution with
// the writes that made the error obsolete: a crash leaves every error open or resolved with its
// output, never resolved without it.
import type { Queryable } from '../db/connect.js';
import { scrub, scrubValue } from '../secrets.js';
import { cleanJson, cleanText } from '../text.js';
import { deadLetterSchema, type DeadLetter } from './letters.js';

/** Messages are kept whole up to this many characters (a stack of zod issues fits). */
const ERROR_MAX_CHARS = 2000;

export interface Written {
  /** Rows written: new errors plus recurrences of open ones. */
  rows: number;
  /** Of those, recurrences (an open error about the same item failed again: attempts + 1). */
  recurring: number;
  /** The item keys now open, which a resolution in the same batch must leave open. */
  keys: string[];
}

/**
 * Context fields that hold the item's own data, kept as they came: the record an import kept (it
 * is exported, shown and retried: a short password such as `postgres` that occurs in a
 * customer's mail would otherwise be stored masked, and imported masked after a fix) and the
 * ids and keys the letter is found and resolved by. Messages (issues, a provider's error, its
 * response) are scrubbed: they are where a key echoed back would be.
 */
const DATA_KEYS = new Set([
  'record',
  'source_id',
  'raw_event_id',
  'interaction_id',
  'contact_id',
  'embedding_id',
  'owner_id',
  'content_hash',
  'item',
]);

function scrubContext<T extends Record<string, unknown>>(context: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(context)) out[k] = DATA_KEYS.has(k) ? v : scrubValue(v);
  return out as T;
}

/**
 * Stores dead letters in the caller's transaction. A letter about an item that already has an
 * open error of its stage (same item_key, computed by the database) updates that row: one more
 * attempt, last_seen now, the latest message and context. Letters about one item within the
 * call collapse into one row, their number added to attempts; letters that name no item (a
 * stage the key function does not know) are never merged. Each letter is checked against its
 * stage's shape first: a writer that drifts from the schema fails its tests, not `errors show`.
 */
export async function writeDeadLetters(tx: Queryable, letters: DeadLetter[]): Promise<Written> {
  if (letters.length === 0) return { rows: 0, recurring: 0, keys: [] };
  const rows = letters.map((l, ord) => {
    const letter = deadLetterSchema.parse(l);
    return {
      ord,
      raw_event_id: letter.rawEventId,
      user_id: letter.userId,
      provider: letter.provider,
      stage: letter.stage,
      // A provider's error may quote the key it was sent; the table outlives the run.
      error: scrub(cleanText(letter.error)).slice(0, ERROR_MAX_CHARS),
      context: scrubContext(cleanJson(letter.context)),
    };
  });
  const { rows: out } = await tx.query<{ item_key: string; recurring: boolean }>(
    `
WITH x AS (
  -- Without an id the key of a letter that names no item is null: such letters are each their
  -- own error (their row's key will be its id), never collapsed with one another.
  SELECT x.*, coalesce(omni_ingest.error_item_key(x.stage, NULL, x.raw_event_id, x.user_id, x.provider, x.context), 'letter:' || x.ord) AS key
  FROM json_to_recordset($1::json)
    AS x(ord int, raw_event_id uuid, user_id uuid, provider text, stage text, error text, context jsonb)
), latest AS (
  SELECT DISTINCT ON (x.stage, x.key) x.*, count(*) OVER (PARTITION BY x.stage, x.key) AS times
  FROM x
  ORDER BY x.stage, x.key, x.ord DESC
)
INSERT INTO public.raw_event_errors AS e (raw_event_id, user_id, provider, stage, error, context, attempts)
SELECT l.raw_event_id, l.user_id, l.provider, l.stage, l.error, l.context, l.times
FROM latest l
ORDER BY l.stage, l.key
ON CONFLICT (stage, item_key) WHERE status = 'open' DO UPDATE
SET error = excluded.error,
    context = excluded.context,
    raw_event_id = excluded.raw_event_id,
    attempts = e.attempts + excluded.attempts,
    last_seen = now()
RETURNING e.item_key, e.xmax <> 0 AS recurring`,
    [JSON.stringify(rows)],
  );
  return { rows: out.length, recurring: out.filter((r) => r.recurring).length, keys: out.map((r) => r.item_key) };
}

/**
 * Closes the open swap letters whose embeddings row now has a vector (its legacy value was fixed
 * and copied, or --reembed gave it one) or no longer exists: nothing is left to do about them.
 * `vector` is the vector column's name as the catalog gives it (embedding_v, or embedding once
 * swapped). Few rows: one statement after a backfill run, not per batch.
 */
export async function resolveSwapLetters(db: Queryable, vector: 'embedding' | 'embedding_v', runId: string | null): Promise<number> {
  const { rowCount } = await db.query(
    `
UPDATE public.raw_event_errors e
SET status = 'resolved', closed_at = now(), closed_by = $1,
    close_reason = CASE
      WHEN EXISTS (SELECT 1 FROM public.embeddings x WHERE x.id = omni_ingest.uuid_or_null(e.context ->> 'embedding_id'))
      THEN 'its embeddings row has a vector'
      ELSE 'its embeddings row is gone'
    END
WHERE e.stage = 'swap'
  AND e.status = 'open'
  AND NOT EXISTS (
    SELECT 1 FROM public.embeddings x
    WHERE x.id = omni_ingest.uuid_or_null(e.context ->> 'embedding_id') AND x.${vector} IS NULL
  )`,
    [runId],
  );
  return rowCount ?? 0;
}

/**
 * Locks (FOR UPDATE) the open errors of these items of a stage, in the caller's transaction, and
 * returns where they are (ctid, which stays put while the lock is held). A batch takes them
 * before its writes, so every writer of an item's errors locks them in the same order — errors
 * first, then the item's output — and a batch colliding with `errors retry` on the same item
 * waits for it, then finds the error resolved, instead of deadlocking with it. Costs one probe
 * of the open-errors index per batch.
 */
export async function lockOpenErrors(tx: Queryable, stage: 'normalize', itemIds: string[]): Promise<string[]> {
  if (itemIds.length === 0) return [];
  const { rows } = await tx.query<{ at: string }>(
    `
SELECT e.ctid::text AS at
FROM public.raw_event_errors e
WHERE e.stage = $1
  AND e.status = 'open'
  AND e.item_id = ANY($2::uuid[])
FOR UPDATE`,
    [stage, itemIds],
  );
  return rows.map((r) => r.at);
}

/**
 * Resolves the open errors at these places (ctid), which the caller's transaction has locked
 * (lockOpenErrors, or the claim of `errors retry`), except those still failing: one heap visit
 * each, no index search. Returns how many.
 */
export async function resolveHeldErrors(
  tx: Queryable,
  r: { at: string[]; stillFailing: string[]; runId: string | null; reason: string },
): Promise<number> {
  if (r.at.length === 0) return 0;
  const { rowCount } = await tx.query(
    `
UPDATE public.raw_event_errors e
SET status = 'resolved', closed_at = now(), closed_by = $3, close_reason = $4
WHERE e.ctid = ANY($1::tid[])
  AND e.status = 'open'
  AND NOT (e.item_key = ANY($2::text[]))`,
    [r.at, r.stillFailing, r.runId, r.reason],
  );
  return rowCount ?? 0;
}

export interface Resolution {
  stage: 'normalize' | 'embed' | 'insights';
  /** The items the stage has just completed (raw events, interactions, contacts). */
  itemIds: string[];
  /** Item keys still failing (from writeDeadLetters in the same transaction): left open. */
  stillFailing?: string[] | undefined;
  /** The run doing it; null for a dry run or a hand. */
  runId: string | null;
  reason: string;
}

/**
 * Resolves the open errors of items a stage has just completed, in its transaction: a retry, a
 * --reprocess or an ordinary run that got there first all close the error the same way. Returns
 * how many were resolved. Costs one probe of a partial index (open errors only) per batch.
 */
export async function resolveDeadLetters(tx: Queryable, r: Resolution): Promise<number> {
  if (r.itemIds.length === 0) return 0;
  const { rowCount } = await tx.query(
    `
UPDATE public.raw_event_errors e
SET status = 'resolved', closed_at = now(), closed_by = $4, close_reason = $5
WHERE e.stage = $1
  AND e.status = 'open'
  AND e.item_id = ANY($2::uuid[])
  AND NOT (e.item_key = ANY($3::text[]))`,
    [r.stage, r.itemIds, r.stillFailing ?? [], r.runId, r.reason],
  );
  return rowCount ?? 0;
}

/**
 * Resolves open import errors whose record is now in raw_events: by the provider's id of the
 * record (the error knew it), or by its place in a file `errors export` wrote (the record was
 * fixed by hand there). Returns how many.
 */
export async function resolveImportErrors(
  tx: Queryable,
  r: {
    userId: string;
    provider: string;
    sourceIds: string[];
    /** Lines (1-based) of `exportFile` that are now imported. */
    exportFile?: string | undefined;
    exportLines?: number[] | undefined;
    runId: string | null;
  },
): Promise<number> {
  if (r.sourceIds.length === 0 && !r.exportLines?.length) return 0;
  const { rowCount } = await tx.query(
    `
UPDATE public.raw_event_errors e
SET status = 'resolved', closed_at = now(), closed_by = $6, close_reason = 're-imported'
WHERE e.stage = 'import'
  AND e.status = 'open'
  AND e.user_id = $1
  AND e.provider = $2
  AND (e.source_id = ANY($3::text[])
       OR (e.context -> 'exported' ->> 'file' = $4 AND (e.context -> 'exported' ->> 'line')::int = ANY($5::int[])))`,
    [r.userId, r.provider, r.sourceIds, r.exportFile ?? null, r.exportLines ?? [], r.runId],
  );
  return rowCount ?? 0;
}
