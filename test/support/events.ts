// Puts provider payloads straight into raw_events for tests, the way `import` would.
import { randomUUID } from 'node:crypto';
import type { Queryable } from '../../src/db/connect.js';
import { generateEvents } from '../../src/generate/generator.js';
import { getProvider } from '../../src/providers/index.js';
import { insertRawEvents, type RawEventColumns } from '../../src/stages/import/sql.js';
import { cleanJson } from '../../src/text.js';

export const USER_A = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
export const USER_B = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb';

export async function loadEvents(
  db: Queryable,
  provider: string,
  payloads: Iterable<unknown>,
  userId = USER_A,
  chunk = 2_000,
): Promise<number> {
  const p = getProvider(provider);
  const batchId = randomUUID();
  let total = 0;
  let cols: RawEventColumns = { userId: [], provider: [], sourceId: [], payload: [], occurredAt: [], sourceMeta: [], batchId: [] };
  const flush = async () => {
    total += await insertRawEvents(db, cols);
    cols = { userId: [], provider: [], sourceId: [], payload: [], occurredAt: [], sourceMeta: [], batchId: [] };
  };
  let n = 0;
  for (const raw of payloads) {
    const payload = cleanJson(raw);
    let sourceId: string;
    let occurredAt: Date | null;
    try {
      ({ sourceId, occurredAt } = p.identify(payload));
    } catch {
      // Invalid on purpose: keep it, so normalize has something to dead-letter.
      sourceId = `invalid-${n}`;
      occurredAt = null;
    }
    n++;
    cols.userId.push(userId);
    cols.provider.push(provider);
    cols.sourceId.push(sourceId);
    cols.payload.push(JSON.stringify(payload));
    cols.occurredAt.push(occurredAt ?? new Date('2025-01-01T00:00:00Z'));
    cols.sourceMeta.push('{}');
    cols.batchId.push(batchId);
    if (cols.userId.length >= chunk) await flush();
  }
  await flush();
  return total;
}

/** `n` web form submissions; those whose index `bad` accepts lose their UTC offset (normalize rejects them). */
export function* webforms(n: number, bad: (i: number) => boolean, seed = 7): Generator<unknown> {
  let i = 0;
  for (const p of generateEvents('webform', n, { seed, userId: USER_A })) {
    const payload = p as Record<string, unknown>;
    yield bad(i++) ? { ...payload, submitted_at: new Date(String(payload.submitted_at)).toISOString().slice(0, 19) } : payload;
  }
}
