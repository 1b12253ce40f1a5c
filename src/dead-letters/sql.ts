// The one writer of public.raw_event_errors: every stage's dead letters, one set-based statement.
import type { Queryable } from '../db/connect.js';
import { cleanJson, cleanText } from '../text.js';
import { deadLetterSchema, type DeadLetter } from './letters.js';

/** Messages are kept whole up to this many characters (a stack of zod issues fits). */
const ERROR_MAX_CHARS = 2000;

/**
 * Stores dead letters in the caller's transaction, so they commit (or roll back) with the batch
 * whose failures they are. Each letter is checked against its stage's shape first: a writer that
 * drifts from the schema fails its tests, not an operator's `errors show`.
 */
export async function writeDeadLetters(tx: Queryable, letters: DeadLetter[]): Promise<number> {
  if (letters.length === 0) return 0;
  const rows = letters.map((l) => {
    const letter = deadLetterSchema.parse(l);
    return {
      raw_event_id: letter.rawEventId,
      user_id: letter.userId,
      provider: letter.provider,
      stage: letter.stage,
      error: cleanText(letter.error).slice(0, ERROR_MAX_CHARS),
      context: cleanJson(letter.context),
    };
  });
  const { rowCount } = await tx.query(
    `
INSERT INTO public.raw_event_errors (raw_event_id, user_id, provider, stage, error, context)
SELECT x.raw_event_id, x.user_id, x.provider, x.stage, x.error, x.context
FROM json_to_recordset($1::json) AS x(raw_event_id uuid, user_id uuid, provider text, stage text, error text, context jsonb)`,
    [JSON.stringify(rows)],
  );
  return rowCount ?? 0;
}
