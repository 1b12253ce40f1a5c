// import through the binary: idempotent, streamed, bad records reported by file and line.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import zlib from 'node:zlib';
import { generateEvents } from '../src/generate/generator.js';
import { parseIsoWithOffset, parseRfc2822 } from '../src/providers/dates.js';
import { readRecords } from '../src/stages/import/records.js';
import { openSource } from '../src/stages/import/source.js';
import { cleanJson } from '../src/text.js';
import { runCli } from './support/cli.js';
import { migratedTarget, type TestTarget } from './support/db.js';
import { USER_A } from './support/events.js';

interface ImportJson {
  runId: string;
  batchId: string;
  status: string;
  counts: { records: number; inserted: number; duplicates: number; invalid: number };
  problems: { file: string; line: number; error: string }[];
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'omni-import-'));
process.once('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
}

async function collect(file: string) {
  const out = [];
  for await (const r of readRecords((await openSource(file)).chunks)) out.push(r);
  return out;
}

describe('reading import files', () => {
  it('reads NDJSON with line numbers, skipping blank lines, reporting non-JSON lines', async () => {
    const file = write('a.ndjson', '\uFEFF{"id":"1"}\n\n{"id":"2"}\r\n{oops\n{"id":"3"}\n');
    const records = await collect(file);
    assert.deepEqual(
      records.map((r) => r.line),
      [1, 3, 4, 5],
    );
    assert.ok('error' in records[2]! && /not JSON/.test(records[2].error));
    assert.deepEqual(
      records.filter((r) => 'value' in r).map((r) => (r as { value: { id: string } }).value.id),
      ['1', '2', '3'],
    );
  });

  it('reads a JSON array element by element with the line each starts on', async () => {
    const file = write(
      'b.json',
      '[\n  {"id": "1", "text": "a, [b] {c}"},\n  {"id": "2",\n   "nested": [1, {"x": "\\"]"}]},\n  oops,\n  {"id": "3"}\n]\n',
    );
    const records = await collect(file);
    assert.deepEqual(
      records.map((r) => r.line),
      [2, 3, 5, 6],
    );
    assert.ok('error' in records[2]!);
    assert.deepEqual((records[1] as { value: unknown }).value, { id: '2', nested: [1, { x: '"]' }] });
  });

  it('says when a JSON array is truncated', async () => {
    const records = await collect(write('c.json', '[{"id": "1"}, {"id": "2"'));
    assert.equal(records.length, 2);
    assert.ok('error' in records[1]! && /not closed/.test(records[1].error));
  });

  it('reads NDJSON line by line however long its first line is: a broken line costs only itself', async () => {
    const big = JSON.stringify({ id: 'big', text: 'y'.repeat(1_200_000) });
    const file = write('bigfirst.ndjson', `${big}\n{"id": "cut", "text": "tru\n{"id":"3"}\n{"id":"4"}\n{"id":"5"}\n`);
    const records = await collect(file);
    assert.deepEqual(
      records.map((r) => [r.line, 'error' in r]),
      [
        [1, false],
        [2, true],
        [3, false],
        [4, false],
        [5, false],
      ],
    );
  });

  it('reads on after a value left open, where a new one plainly starts (pretty-printed, concatenated, an array, NDJSON cut on its first line)', async () => {
    const pretty = (id: string) => JSON.stringify({ id, fields: { a: 1 } }, null, 1);
    const ids = (records: Awaited<ReturnType<typeof collect>>) =>
      records.map((r) => ('error' in r ? `!${r.line}:${r.kind}` : (r.value as { id: string }).id));
    // The second object lacks its last brace.
    const concatenated = write('concat-broken.json', `${pretty('1')}\n${pretty('2').slice(0, -2)}\n${pretty('3')}\n${pretty('4')}\n`);
    assert.deepEqual(ids(await collect(concatenated)), ['1', '!7:unclosed', '3', '4']);
    const array = write('array-broken.json', '[\n  {"id": "1",\n   "x": [1, 2]\n  {"id": "2"},\n  {"id": "3"}\n]\n');
    assert.deepEqual(ids(await collect(array)), ['!2:unclosed', '2', '3']);
    const firstCut = write('first-cut.ndjson', '{"id": "1", "text": "cut\n{"id": "2"}\n{"id": "3"}\n');
    assert.deepEqual(ids(await collect(firstCut)), ['!1:unclosed', '2', '3']);
    // Valid JSON is never split, a { at the start of a line included.
    const valid = write('valid.json', '{"id": "1", "x":\n{"a": [\n{"b": 1},\n{"c": 2}]}}\n{"id": "2"}');
    assert.deepEqual(ids(await collect(valid)), ['1', '2']);
  });

  it('keeps the size and the SHA-256 of all the bytes of a record too large to keep whole', async () => {
    const line = Buffer.from(JSON.stringify({ id: 'huge', text: 'z'.repeat(65 * 1024 * 1024) }));
    const file = path.join(tmp, 'huge.ndjson');
    fs.writeFileSync(file, Buffer.concat([line, Buffer.from('\n{"id":"after"}\n')]));
    const records = await collect(file);
    assert.equal(records.length, 2);
    const huge = records[0]!;
    assert.ok('error' in huge && huge.kind === 'too_large');
    assert.deepEqual(
      [huge.record.bytes, huge.record.truncated, huge.record.sha256, huge.record.text.length],
      [line.length, true, createHash('sha256').update(line).digest('hex'), 64 * 1024],
    );
    assert.deepEqual((records[1] as { value: unknown }).value, { id: 'after' });
  });

  it('a gzip file cut short gives what decoded, then a problem where it stops', async () => {
    const text = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ id: `r${i}`, n: Math.sin(i) })).join('\n');
    const gz = zlib.gzipSync(Buffer.from(text));
    const file = path.join(tmp, 'cut.ndjson.gz');
    fs.writeFileSync(file, gz.subarray(0, gz.length >> 1));
    const source = await openSource(file);
    const records = [];
    for await (const r of readRecords(source.chunks, source.damage)) records.push(r);
    const last = records.at(-1)!;
    assert.ok(records.length > 100 && records.length < 3000, `${records.length} records`);
    assert.ok(records.slice(0, -1).every((r) => 'value' in r));
    assert.ok(
      'error' in last && last.kind === 'unclosed' && /cut short or damaged \(unexpected end of file\)/.test(last.error),
      JSON.stringify(last),
    );
    assert.equal(source.damage(), 'unexpected end of file');
  });

  it('an empty file has no records', async () => {
    assert.deepEqual(await collect(write('d.ndjson', '')), []);
  });
});

describe('what an import keeps of a record', () => {
  it('a key cleaned of NUL keeps U+FFFD in its place when another key has its name, whatever their order', () => {
    assert.deepEqual(cleanJson({ 'a\u0000b': 1, ab: 2 }), { 'a\ufffdb': 1, ab: 2 });
    assert.deepEqual(cleanJson({ ab: 2, 'a\u0000b': 1 }), { ab: 2, 'a\ufffdb': 1 });
    assert.deepEqual(cleanJson({ 'a\u0000b': 1, 'ab\u0000': 2, 'a\ufffdb': 3 }), { ab: 1, 'ab\ufffd': 2, 'a\ufffdb': 3 });
    assert.deepEqual(cleanJson({ 'k\u0000ey': 1 }), { key: 1 }, 'no other key of that name: the NUL is dropped');
  });

  it('reads the years 0001-0099 as written', () => {
    const iso = parseIsoWithOffset('0001-01-01T00:00:00Z');
    assert.ok(iso.ok && iso.date.toISOString() === '0001-01-01T00:00:00.000Z', JSON.stringify(iso));
    const rfc = parseRfc2822('Thu, 31 Dec 0099 23:59:59 +0000');
    assert.ok(rfc.ok && rfc.date.toISOString() === '0099-12-31T23:59:59.000Z', JSON.stringify(rfc));
    assert.equal(parseIsoWithOffset('0004-02-29T00:00:00Z').ok, true);
    assert.equal(parseIsoWithOffset('0003-02-29T00:00:00Z').ok, false);
  });
});

describe('omni-ingest import', () => {
  let target: TestTarget;
  before(async () => {
    target = await migratedTarget();
  });
  after(async () => target.drop());

  it('imports once; the same files again add nothing', async () => {
    const lines = [...generateEvents('gmail', 120, { seed: 21, userId: USER_A })].map((p) => JSON.stringify(p));
    const ndjson = write('gmail.ndjson', `${lines.slice(0, 60).join('\n')}\n`);
    const array = write(
      'gmail.json',
      JSON.stringify(
        lines.slice(60).map((l) => JSON.parse(l) as unknown),
        null,
        2,
      ),
    );
    const first = await runCli([
      ...target.args,
      'import',
      ndjson,
      array,
      '--provider',
      'gmail',
      '--user',
      USER_A,
      '--json',
      '--batch-size',
      '25',
    ]);
    assert.equal(first.code, 0, first.stderr);
    const one = first.json<ImportJson>();
    assert.deepEqual(one.counts, { records: 120, inserted: 120, updated: 0, duplicates: 0, invalid: 0, conflicts: 0, resolved: 0 });
    const second = await runCli([...target.args, 'import', ndjson, array, '--provider', 'gmail', '--user', USER_A, '--json']);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(second.json<ImportJson>().counts, {
      records: 120,
      inserted: 0,
      updated: 0,
      duplicates: 120,
      invalid: 0,
      conflicts: 0,
      resolved: 0,
    });

    const db = await target.open();
    try {
      const { rows } = await db.query<{ n: number; batches: number; users: number }>(`
SELECT count(*)::int AS n, count(DISTINCT batch_id)::int AS batches, count(DISTINCT user_id)::int AS users FROM public.raw_events WHERE provider = 'gmail'`);
      assert.deepEqual(rows[0], { n: 120, batches: 1, users: 1 });
      const { rows: t } = await db.query<{ ok: number }>(`
SELECT count(*)::int AS ok FROM public.raw_events
WHERE provider = 'gmail' AND occurred_at = to_timestamp((payload ->> 'internalDate')::bigint / 1000.0) AND source_id = payload ->> 'id'`);
      assert.equal(t[0]?.ok, 120, 'occurred_at and source_id come from the payload');
      const audit = await db.query<{ action: string; payload: { batch_id: string; counts: { inserted: number } } }>(
        `SELECT action, payload FROM public.sync_audit WHERE provider = 'gmail' ORDER BY created_at`,
      );
      assert.equal(audit.rows.length, 2);
      assert.equal(audit.rows[0]?.action, 'import');
      assert.equal(audit.rows[0]?.payload.batch_id, one.batchId);
      assert.equal(audit.rows[1]?.payload.counts.inserted, 0);
    } finally {
      await db.close();
    }
  });

  it('reports bad lines and payloads without an id by file and line, keeps them, and goes on', async () => {
    const [good1, good2] = [...generateEvents('webform', 2, { seed: 22, userId: USER_A })];
    const file = write(
      'forms.ndjson',
      [
        JSON.stringify(good1),
        'this is not json',
        JSON.stringify({ form_id: 'no-id', submitted_at: '2025-01-01T00:00:00Z', fields: {} }),
        JSON.stringify(good2),
      ].join('\n'),
    );
    const r = await runCli([...target.args, 'import', file, '--provider', 'webform', '--user', USER_A, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const body = r.json<ImportJson>();
    assert.deepEqual(body.counts, { records: 4, inserted: 2, updated: 0, duplicates: 0, invalid: 2, conflicts: 0, resolved: 0 });
    assert.deepEqual(
      body.problems.map((p) => [path.basename(p.file), p.line]),
      [
        ['forms.ndjson', 2],
        ['forms.ndjson', 3],
      ],
    );
    assert.match(body.problems[0]!.error, /not JSON/);
    assert.match(body.problems[1]!.error, /\bid\b/);
    assert.match(r.stderr, /forms\.ndjson:2: not JSON/);
    const db = await target.open();
    try {
      const { rows } = await db.query<{ stage: string; error: string; line: number }>(
        `SELECT stage, error, (context ->> 'line')::int AS line FROM public.raw_event_errors WHERE stage = 'import' ORDER BY 3`,
      );
      assert.deepEqual(
        rows.map((x) => [x.stage, x.line]),
        [
          ['import', 2],
          ['import', 3],
        ],
      );
    } finally {
      await db.close();
    }
  });

  it('refuses bad arguments with exit 2 and imports nothing', async () => {
    const file = write('ok.ndjson', `${JSON.stringify([...generateEvents('twilio', 1, { seed: 23, userId: USER_A })][0])}\n`);
    const cases: [string[], RegExp][] = [
      [[file, '--provider', 'myspace', '--user', USER_A], /myspace/],
      [[file, '--provider', 'twilio', '--user', 'bob'], /--user "bob" must be a UUID/],
      [[path.join(tmp, 'missing.ndjson'), '--provider', 'twilio', '--user', USER_A], /cannot read .*missing\.ndjson/],
      [[file, '--user', USER_A], /required option '--provider <name>'/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli([...target.args, 'import', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const db = await target.open();
    try {
      const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.raw_events WHERE provider = 'twilio'`);
      assert.equal(rows[0]?.n, 0);
    } finally {
      await db.close();
    }
  });

  it('--dry-run validates and writes nothing', async () => {
    const file = write(
      'ig.ndjson',
      [...generateEvents('instagram', 5, { seed: 24, userId: USER_A })].map((p) => JSON.stringify(p)).join('\n'),
    );
    const r = await runCli([...target.args, 'import', file, '--provider', 'instagram', '--user', USER_A, '--dry-run', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json<ImportJson>().counts.records, 5);
    const db = await target.open();
    try {
      const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.raw_events WHERE provider = 'instagram'`);
      assert.equal(rows[0]?.n, 0);
    } finally {
      await db.close();
    }
  });
});
