// Property-based tests (fast-check): arbitrary payloads around each provider's schema and
// arbitrary import files — extreme and malformed times, huge and odd ids, deep nesting, NUL,
// invalid UTF-8, big numbers, `__proto__` keys, concatenated and truncated JSON — never crash
// anything, every record ends as exactly one of interaction / skip / dead letter (import: new /
// duplicate / dead letter), and the good records beside the bad ones are always stored.
// CI runs a fixed seed and a bounded count; `FC_RUNS=5000 FC_SEED=… npm test` runs longer.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { systemClock } from '../src/clock.js';
import type { Db } from '../src/db/connect.js';
import { generateEvents } from '../src/generate/generator.js';
import { createMemoryLogger } from '../src/logger.js';
import { getProvider, providerNames } from '../src/providers/index.js';
import { PayloadError } from '../src/providers/types.js';
import { makeRange } from '../src/stages/engine/range.js';
import { runStage } from '../src/stages/engine/runner.js';
import { importFiles } from '../src/stages/import/import.js';
import { normalizeStage } from '../src/stages/normalize.js';
import { migratedDb } from './support/db.js';
import { loadEvents } from './support/events.js';

const SEED = Number(process.env.FC_SEED ?? 20261130);
const RUNS = Number(process.env.FC_RUNS ?? 150);
const DB_RUNS = Math.max(5, Math.round(RUNS / 10));
const settings = (numRuns: number) => ({ seed: SEED, numRuns, endOnFailure: true });

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The paths to the values of a JSON document, down to a depth (an earlier edit may have nested it deeply). */
function paths(value: unknown, at: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [at];
  if (at.length >= 12) return out;
  if (Array.isArray(value)) for (const [i, v] of value.entries()) out.push(...paths(v, [...at, i]));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...at, k]));
  return out;
}

function setAt(doc: unknown, at: (string | number)[], value: unknown): unknown {
  if (at.length === 0) return value;
  const copy = (Array.isArray(doc) ? [...doc] : { ...(doc as object) }) as Record<string | number, unknown>;
  const [head, ...rest] = at;
  copy[head!] = setAt((doc as Record<string | number, unknown>)[head!], rest, value);
  return copy;
}

const nested = (depth: number): Json => {
  let v: Json = 'bottom';
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { d: v };
  return v;
};

/** Values that break parsers: odd strings, extreme numbers and times, deep nesting, prototype keys. */
const hostile: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', '\u0000', 'a\u0000b', '\ud800', '\udc00x', '\ufffd', 'x'.repeat(3000), '١٢٣', '0x10', '1e400', '-0'),
  fc.constantFrom(0, -1, 1e21, -1e21, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, 253402300800000, 1724490001, 2 ** 53),
  fc.constantFrom(
    '9999-12-31T23:30:00-05:00',
    '0000-01-01T00:00:00Z',
    '+010000-01-01T00:00:00Z',
    'Thu, 99 Nop 2023',
    '2025-13-45T25:61:61Z',
    'now',
  ),
  fc.integer({ min: 100, max: 3000 }).map(nested),
  fc.constant(JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {}}}')),
);

/** A valid payload of the provider with up to four values replaced by hostile ones. */
const mutated = (provider: string): fc.Arbitrary<{ payload: unknown; touched: boolean }> =>
  fc
    .record({ seed: fc.integer({ min: 1, max: 1_000_000 }), edits: fc.array(fc.tuple(fc.nat(), hostile), { maxLength: 4 }) })
    .map(({ seed, edits }) => {
      let payload: unknown = [...generateEvents(provider, 1, { seed, userId: 'dddddddd-dddd-4ddd-8ddd-dddddddddddd' })][0];
      for (const [pick, value] of edits) {
        const all = paths(payload);
        payload = setAt(payload, all[pick % all.length]!, value);
      }
      return { payload, touched: edits.length > 0 };
    });

describe('providers on arbitrary payloads around their schemas', () => {
  for (const name of providerNames) {
    it(`${name}: identify and normalize return or throw a PayloadError, never anything else; what they return is storable`, () => {
      const provider = getProvider(name);
      fc.assert(
        fc.property(mutated(name), ({ payload }) => {
          try {
            const id = provider.identify(payload);
            assert.equal(typeof id.sourceId, 'string');
            assert.ok(id.sourceId.length > 0);
          } catch (err) {
            if (!(err instanceof PayloadError)) throw err;
          }
          let result: ReturnType<typeof provider.normalize>;
          try {
            result = provider.normalize({
              id: 'r',
              userId: 'u',
              provider: name,
              sourceId: 'x',
              occurredAt: new Date('2025-01-01T00:00:00Z'),
              payload,
            });
          } catch (err) {
            if (err instanceof PayloadError) return;
            throw err;
          }
          if (result.kind === 'skip') return;
          for (const r of result.rejected ?? []) assert.ok(r.error instanceof PayloadError);
          for (const i of result.interactions) {
            assert.ok(Number.isFinite(i.occurredAt.getTime()), 'a real time');
            assert.ok(i.sourceId.length > 0);
            for (const text of [i.subject, i.bodyText]) {
              if (text === null) continue;
              assert.ok(!text.includes('\u0000'), 'no NUL in text');
              assert.ok((text as unknown as { isWellFormed(): boolean }).isWellFormed(), 'well-formed text');
            }
            assert.doesNotThrow(() => JSON.stringify(i.bodyRaw));
          }
        }),
        settings(RUNS),
      );
    });
  }
});

describe('normalize accounts for every event, and stores the good ones beside the bad', () => {
  let db: Db;
  let close: () => Promise<void>;
  before(async () => {
    ({ db, close } = await migratedDb());
  });
  after(async () => close());

  for (const name of providerNames) {
    it(`${name}: each raw event ends as interactions, a skip or dead letters; untouched events are always stored`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(mutated(name), { minLength: 1, maxLength: 12 }), async (events) => {
          const user = randomUUID();
          await db.query('DELETE FROM omni_ingest.normalize_queue');
          await loadEvents(
            db,
            name,
            events.map((e) => e.payload),
            user,
          );
          const s = await runStage(normalizeStage, {
            db,
            clock: systemClock,
            logger: createMemoryLogger(),
            range: makeRange({ userId: user }),
          });
          const { rows } = await db.query<{ events: number; covered: number; untouched_lost: number }>(
            `
SELECT (SELECT count(*) FROM public.raw_events WHERE user_id = $1)::int AS events,
       (SELECT count(*) FROM public.raw_events r WHERE r.user_id = $1 AND (
          EXISTS (SELECT 1 FROM public.interactions i WHERE i.raw_event_id = r.id)
          OR EXISTS (SELECT 1 FROM public.raw_event_errors e WHERE e.raw_event_id = r.id)))::int AS covered,
       0 AS untouched_lost`,
            [user],
          );
          const r = rows[0]!;
          assert.equal(s.counts.events, r.events, 'every stored event was taken');
          // Exactly one of: interactions and/or dead letters for its items, or a counted skip.
          assert.equal(r.covered + (s.counts.skipped ?? 0), r.events, `${JSON.stringify(r)} ${JSON.stringify(s.counts)}`);
          // The untouched events among them: none dead-lettered.
          const good = events.filter((e) => !e.touched).map((e) => JSON.stringify(e.payload));
          if (good.length > 0) {
            const bad = await db.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM public.raw_event_errors e JOIN public.raw_events r ON r.id = e.raw_event_id WHERE r.user_id = $1 AND r.payload::text = ANY(SELECT x::jsonb::text FROM unnest($2::text[]) AS x)`,
              [user, good],
            );
            assert.equal(bad.rows[0]!.n, 0, 'an untouched payload was dead-lettered');
          }
        }),
        settings(DB_RUNS),
      );
    });
  }
});

/** One import file: good records, hostile records and raw garbage, in one of the layouts import reads. */
const importFile = fc
  .record({
    seed: fc.integer({ min: 1, max: 1_000_000 }),
    records: fc.array(
      fc.oneof(
        { weight: 3, arbitrary: fc.constant({ kind: 'good' as const }) },
        { weight: 2, arbitrary: mutated('webform').map((m) => ({ kind: 'hostile' as const, payload: m.payload })) },
        {
          weight: 1,
          arbitrary: fc
            .oneof(
              fc.constantFrom(
                '{"id": "cut',
                'not json at all',
                '{"id": "x", "a": [1, 2,, 3]}',
                `{"id":"deep","x":${'['.repeat(5000)}${']'.repeat(5000)}}`,
              ),
              fc.uint8Array({ minLength: 1, maxLength: 30 }).map((b) => Buffer.from(b).toString('latin1')),
            )
            .map((text) => ({ kind: 'garbage' as const, text })),
        },
      ),
      { minLength: 1, maxLength: 15 },
    ),
    layout: fc.constantFrom('ndjson', 'array', 'concatenated'),
  })
  .map(({ seed, records, layout }) => {
    const good = [...generateEvents('webform', records.length, { seed, userId: 'eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee' })];
    const texts = records.map((r, i) =>
      r.kind === 'good'
        ? JSON.stringify(good[i])
        : r.kind === 'hostile'
          ? (JSON.stringify(r.payload) ?? 'null')
          : r.text.replace(/\n/g, ' '),
    );
    const goodCount = records.filter((r) => r.kind === 'good').length;
    // Garbage breaks array and concatenated layouts past recovery: there, good records are only promised in NDJSON.
    const text = layout === 'ndjson' ? texts.join('\n') : layout === 'array' ? `[${texts.join(',\n')}]` : texts.join('\n\n');
    return { text, layout, goodCount, hasGarbage: records.some((r) => r.kind === 'garbage') };
  });

describe('import accounts for every record of arbitrary files', () => {
  let db: Db;
  let close: () => Promise<void>;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'omni-properties-'));
  before(async () => {
    ({ db, close } = await migratedDb());
  });
  after(async () => {
    await close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('never crashes; records = new + duplicates + dead letters; good NDJSON records beside bad ones are stored', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(importFile, async (f) => {
        const file = path.join(tmp, `f${n++}.data`);
        fs.writeFileSync(file, f.text);
        const user = randomUUID();
        let summary: Awaited<ReturnType<typeof importFiles>>;
        try {
          summary = await importFiles({
            db,
            clock: systemClock,
            logger: createMemoryLogger(),
            files: [file],
            provider: getProvider('webform'),
            userId: user,
            batchSize: 4,
            dryRun: false,
          });
        } catch (err) {
          assert.fail(`a file is refused as its outcome, never by a throw: ${String(err)}`);
        }
        if (summary.refused.length > 0) {
          // Refused whole (not JSON, or no valid record at all): its outcome, and nothing of it written.
          const { rows } = await db.query<{ n: number }>(
            `SELECT (SELECT count(*) FROM public.raw_events WHERE user_id = $1) + (SELECT count(*) FROM public.raw_event_errors WHERE user_id = $1) AS n`,
            [user],
          );
          assert.equal(Number(rows[0]!.n), 0, 'a refused file writes nothing');
          assert.deepEqual(summary.counts.records, 0);
          return;
        }
        const c = summary.counts;
        assert.equal(c.records, c.inserted + c.updated + c.duplicates + c.invalid, JSON.stringify(c));
        const { rows } = await db.query<{ raw: number; letters: number }>(
          // Identical bad records are one open error with their attempts counted.
          `SELECT (SELECT count(*) FROM public.raw_events WHERE user_id = $1)::int AS raw, (SELECT coalesce(sum(attempts), 0) FROM public.raw_event_errors WHERE user_id = $1)::int AS letters`,
          [user],
        );
        assert.equal(rows[0]!.raw, c.inserted);
        assert.equal(rows[0]!.letters, c.invalid);
        if (f.layout === 'ndjson' || !f.hasGarbage)
          assert.ok(c.inserted >= f.goodCount, `good records lost: ${JSON.stringify(c)} of ${f.goodCount}`);
      }),
      settings(DB_RUNS * 2),
    );
  });
});
