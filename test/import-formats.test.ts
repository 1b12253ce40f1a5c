// Every record of an import file ends somewhere and says where (SPEC §5): the format is detected,
// not guessed line by line; binary and wrong-provider files are refused whole; ids are never
// rewritten; a changed re-delivery is kept, not dropped; deep or huge records cost only themselves.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import zlib from 'node:zlib';
import { generateEvents } from '../src/generate/generator.js';
import { packageRoot } from '../src/paths.js';
import { runCli } from './support/cli.js';
import { migratedTarget, type TestTarget } from './support/db.js';

const USER = 'cccccccc-cccc-4ccc-8ccc-cccccccccccc';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'omni-import-formats-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function file(content: string | Buffer, ext = 'json'): string {
  const f = path.join(tmp, `f${n++}.${ext}`);
  fs.writeFileSync(f, content);
  return f;
}

interface ImportJson {
  counts: { records: number; inserted: number; updated: number; duplicates: number; invalid: number; conflicts: number; resolved: number };
  problems: { file: string; line: number; error: string }[];
  refused: { file: string; records: number; error: string }[];
}

const forms = (count: number, seed: number) => [...generateEvents('webform', count, { seed, userId: USER })] as Record<string, unknown>[];

describe('import detects the format of each file', () => {
  let target: TestTarget;
  const run = (f: string, ...extra: string[]) =>
    runCli([...target.args, 'import', f, '--provider', 'webform', '--user', USER, '--json', ...extra]);
  before(async () => {
    target = await migratedTarget();
  });
  after(async () => target.drop());

  it('reads data after a first array: [a] then [b, c] on the next line, and an array followed by NDJSON lines', async () => {
    const [a, b, c, d, e] = forms(5, 1);
    const twoArrays = await run(file(`${JSON.stringify([a])}\n${JSON.stringify([b, c])}\n`));
    assert.equal(twoArrays.code, 0, twoArrays.stderr);
    assert.equal(twoArrays.json<ImportJson>().counts.inserted, 3);
    const arrayThenLines = await run(file(`[\n  ${JSON.stringify(d)}\n]\n${JSON.stringify(e)}\n`));
    assert.equal(arrayThenLines.code, 0, arrayThenLines.stderr);
    assert.deepEqual(arrayThenLines.json<ImportJson>().counts, {
      records: 2,
      inserted: 2,
      updated: 0,
      duplicates: 0,
      invalid: 0,
      conflicts: 0,
      resolved: 0,
    });
  });

  it('reads each pretty-printed fixture as one record, concatenated values, and gzip', async () => {
    for (const provider of ['gmail', 'twilio', 'instagram', 'webform']) {
      const dir = path.join(packageRoot, 'fixtures', provider);
      const fixtures = fs
        .readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .map((f) => path.join(dir, f));
      const r = await runCli([...target.args, 'import', ...fixtures, '--provider', provider, '--user', USER, '--json']);
      assert.equal(r.code, 0, r.stderr);
      const c = r.json<ImportJson>().counts;
      assert.equal(c.records, fixtures.length, `${provider}: one record per fixture file`);
      assert.equal(c.invalid, 0, `${provider}: ${r.stderr}`);
    }
    const [a, b, c] = forms(3, 2);
    const concatenated = await run(file(`${JSON.stringify(a, null, 2)}${JSON.stringify(b)}  ${JSON.stringify(c)}`));
    assert.equal(concatenated.json<ImportJson>().counts.inserted, 3);
    const zipped = forms(50, 3)
      .map((x) => JSON.stringify(x))
      .join('\n');
    const gz = await run(file(zlib.gzipSync(Buffer.from(zipped)), 'data'));
    assert.equal(gz.code, 0, gz.stderr);
    assert.equal(gz.json<ImportJson>().counts.inserted, 50);
  });

  it('refuses a binary file and a non-JSON text file whole, with one message, writing nothing', async () => {
    const before = await countRaw(target);
    const binary = await run(file(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13])));
    assert.equal(binary.code, 2);
    assert.match(binary.stderr, /binary data/);
    const csv = await run(file('id,name\n1,alice\n', 'csv'));
    assert.equal(csv.code, 2);
    assert.match(csv.stderr, /is not JSON: it starts with "i"/);
    assert.equal(await countRaw(target), before);
  });

  it('refuses a file none of whose records fits --provider (exit 2), writing none of it, its dead letters included', async () => {
    const before = await countRaw(target);
    const errors = await countErrors(target);
    const gmail = [...generateEvents('gmail', 5, { seed: 4, userId: USER })].map((x) => JSON.stringify(x)).join('\n');
    const r = await runCli([...target.args, 'import', file(gmail), '--provider', 'twilio', '--user', USER]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /none of its 5 record\(s\) is a valid twilio payload/);
    assert.equal(await countRaw(target), before);
    assert.equal(await countErrors(target), errors);
  });

  it("a refused file is that file's outcome: the files after it are imported, counted and audited, and the command exits 2", async () => {
    const invalid = path.join(packageRoot, 'fixtures', 'twilio', 'invalid');
    const fixtures = fs
      .readdirSync(invalid)
      .sort()
      .map((f) => path.join(invalid, f));
    const gmail = file([...generateEvents('gmail', 3, { seed: 11, userId: USER })].map((x) => JSON.stringify(x)).join('\n'), 'ndjson');
    const binary = file(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 13]), 'png');
    const good = file([...generateEvents('twilio', 4, { seed: 12, userId: USER })].map((x) => JSON.stringify(x)).join('\n'), 'ndjson');
    // A user of its own: the fixtures share ids with those another test imports.
    const user = 'dddddddd-dddd-4ddd-8ddd-dddddddddddd';
    const r = await runCli([...target.args, 'import', ...fixtures, gmail, binary, good, '--provider', 'twilio', '--user', user, '--json']);
    assert.equal(r.code, 2, r.stderr);
    const body = r.json<ImportJson & { status: string }>();
    assert.equal(body.status, 'incomplete');
    // missing-sid.json, one record without an id, is a dead letter like any invalid record.
    assert.deepEqual(body.counts, {
      records: fixtures.length + 4,
      inserted: fixtures.length - 1 + 4,
      updated: 0,
      duplicates: 0,
      invalid: 1,
      conflicts: 0,
      resolved: 0,
    });
    assert.deepEqual(
      body.problems.map((p) => path.basename(p.file)),
      ['missing-sid.json'],
    );
    assert.deepEqual(
      body.refused.map((x) => [x.file, x.records]),
      [
        [gmail, 3],
        [binary, 0],
      ],
    );
    assert.match(body.refused[0]!.error, /none of its 3 record\(s\) is a valid twilio payload \(the first is a valid gmail payload/);
    assert.match(body.refused[1]!.error, /binary data/);
    assert.match(r.stderr, /none of its 3 record\(s\) is a valid twilio payload/);
    const db = await target.open();
    try {
      const audit = await db.query<{ payload: { counts: { inserted: number }; refused: { file: string }[] } }>(
        `SELECT payload FROM public.sync_audit WHERE user_id = '${user}' ORDER BY created_at DESC LIMIT 1`,
      );
      assert.equal(audit.rows[0]?.payload.counts.inserted, fixtures.length - 1 + 4);
      assert.deepEqual(
        audit.rows[0]?.payload.refused.map((x) => x.file),
        [gmail, binary],
      );
      const run = await db.query<{ status: string; counts: Record<string, number> }>(
        `SELECT status, counts FROM omni_ingest.runs WHERE command = 'import' ORDER BY started_at DESC LIMIT 1`,
      );
      // Not "succeeded": a cron dashboard must see that a file was left out.
      assert.equal(run.rows[0]?.status, 'incomplete');
      assert.equal(run.rows[0]?.counts.refused_files, 2);
    } finally {
      await db.close();
    }
    const text = await runCli([...target.args, 'import', gmail, good, '--provider', 'twilio', '--user', user]);
    assert.equal(text.code, 2, text.stderr);
    assert.match(text.stdout, /4 records, 0 new, 4 already there, 1 file refused whole, nothing of it imported: .*\.ndjson/);
  });

  it("refuses a file with no valid record only when it is many records or another provider's, however many invalid ones come first", async () => {
    let seq = 0;
    const empty = (count: number) => Array.from({ length: count }, () => JSON.stringify({ n: seq++ }));
    const errors = await countErrors(target, 'validation');
    const [a, b] = forms(2, 13).map((x) => JSON.stringify(x));
    // 1,001 invalid records, then valid ones: not the wrong provider's file.
    const late = await run(file([...empty(1001), a, b].join('\n'), 'ndjson'));
    assert.equal(late.code, 0, late.stderr);
    assert.deepEqual(late.json<ImportJson>().refused, []);
    assert.deepEqual(
      [late.json<ImportJson>().counts.records, late.json<ImportJson>().counts.inserted, late.json<ImportJson>().counts.invalid],
      [1003, 2, 1001],
    );
    assert.equal(await countErrors(target, 'validation'), errors + 1001);
    // A few invalid records and nothing else: dead letters, like any invalid record.
    const few = await run(file(empty(3).join('\n'), 'ndjson'));
    assert.equal(few.code, 0, few.stderr);
    assert.deepEqual([few.json<ImportJson>().counts.invalid, few.json<ImportJson>().refused.length], [3, 0]);
    // Many, none valid: refused, the message counting all of them.
    for (const count of [12, 1005]) {
      const many = await run(file(empty(count).join('\n'), 'ndjson'));
      assert.equal(many.code, 2, many.stderr);
      const body = many.json<ImportJson>();
      assert.equal(body.counts.records, 0);
      assert.equal(body.refused[0]?.records, count);
      assert.match(body.refused[0]!.error, new RegExp(`none of its ${count} record\\(s\\) is a valid webform payload`));
    }
    assert.equal(await countErrors(target, 'validation'), errors + 1004);
    // Many records --provider identifies, each refused for its id: dead letters, not a refused file.
    const longIds = forms(12, 42).map((x) => JSON.stringify({ ...x, id: `${'x'.repeat(2100)}-${seq++}` }));
    const ids = await run(file(longIds.join('\n'), 'ndjson'));
    assert.equal(ids.code, 0, ids.stderr);
    assert.deepEqual([ids.json<ImportJson>().counts.invalid, ids.json<ImportJson>().refused.length], [12, 0]);
  });

  it('never rewrites an id: ids that differ only in invalid UTF-8 bytes, or hold NUL, are dead letters, not collisions', async () => {
    const [a, b, c] = forms(3, 5);
    const rec = (x: Record<string, unknown>, id: Buffer) =>
      Buffer.concat([
        Buffer.from(`{"id":"`),
        id,
        Buffer.from(
          `",${JSON.stringify(x)
            .slice(1)
            .replace(/^"id":"[^"]*",?/, '')}\n`,
        ),
      ]);
    const content = Buffer.concat([
      rec(a!, Buffer.from([0x61, 0xff])), // "a" + an invalid byte
      rec(b!, Buffer.from([0x61, 0xfe])), // "a" + another invalid byte: the same id once decoded
      Buffer.from(`${JSON.stringify({ ...c, id: 'nul\u0000id' })}\n`),
      Buffer.from(`${JSON.stringify(forms(1, 6)[0])}\n`),
    ]);
    const r = await run(file(content, 'ndjson'));
    assert.equal(r.code, 0, r.stderr);
    const body = r.json<ImportJson>();
    assert.deepEqual([body.counts.inserted, body.counts.invalid, body.counts.duplicates], [1, 3, 0]);
    assert.equal(body.problems.filter((p) => /not UTF-8/.test(p.error)).length, 2);
    assert.ok(body.problems.some((p) => /NUL/.test(p.error)));
  });

  it('a record nested 5,000 levels deep (or far deeper) costs only itself', async () => {
    const [good1, good2] = forms(2, 7);
    const deep = (levels: number) => `{"id":"deep","x":${'['.repeat(levels)}${']'.repeat(levels)}}`;
    const deepFile = file([JSON.stringify(good1), deep(5000), deep(200_000), JSON.stringify(good2)].join('\n'), 'ndjson');
    const r = await run(deepFile);
    assert.equal(r.code, 0, r.stderr);
    const body = r.json<ImportJson>();
    assert.deepEqual([body.counts.inserted, body.counts.invalid], [2, 2]);
    assert.ok(body.problems.every((p) => /nested \d+ levels deep/.test(p.error)));
    // The dead letter keeps the start of a record too large to keep whole, with its real size and
    // the hash of all its bytes; export leaves it out rather than write its start as the record.
    const db = await target.open();
    let kept: { line: number; record: { bytes: number; sha256: string; truncated: boolean; text: string } }[];
    try {
      kept = (
        await db.query<(typeof kept)[number]>(
          `SELECT (context ->> 'line')::int AS line, context -> 'record' AS record FROM public.raw_event_errors WHERE context ->> 'file' = $1 ORDER BY 1`,
          [deepFile],
        )
      ).rows;
    } finally {
      await db.close();
    }
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    assert.deepEqual(
      kept.map((k) => [k.line, k.record.bytes, k.record.truncated, k.record.sha256, k.record.text.length]),
      [
        [2, deep(5000).length, false, sha(deep(5000)), deep(5000).length],
        [3, deep(200_000).length, true, sha(deep(200_000)), 64 * 1024],
      ],
    );
    const out = path.join(tmp, 'deep-export.ndjson');
    const exported = await runCli([
      ...target.args,
      'errors',
      'export',
      '--stage',
      'import',
      '--provider',
      'webform',
      '--out',
      out,
      '--json',
    ]);
    assert.equal(exported.code, 0, exported.stderr);
    assert.ok(exported.json<{ skipped: { truncated: number } }>().skipped.truncated >= 1);
    assert.ok(
      fs
        .readFileSync(out, 'utf8')
        .split('\n')
        .every((line) => line.length < 64 * 1024),
      'the excerpt is not exported as the record',
    );
  });

  it('an NDJSON file whose first line is over 1 MiB is read line by line; a value left open costs itself, not the values after it', async () => {
    const [big, b, c, d, e, f, g] = forms(7, 14);
    const bigLine = JSON.stringify({ ...big, fields: { message: 'y'.repeat(1_200_000) } });
    const ndjson = await run(
      file(`${bigLine}\n${JSON.stringify(b).slice(0, 60)}\n${[c, d, e].map((x) => JSON.stringify(x)).join('\n')}\n`, 'ndjson'),
    );
    assert.equal(ndjson.code, 0, ndjson.stderr);
    assert.deepEqual(
      [ndjson.json<ImportJson>().counts.records, ndjson.json<ImportJson>().counts.inserted, ndjson.json<ImportJson>().counts.invalid],
      [5, 4, 1],
    );
    assert.deepEqual(
      ndjson.json<ImportJson>().problems.map((p) => p.line),
      [2],
    );
    // Pretty-printed values one after another, the first missing its last brace.
    const pretty = await run(file(`${JSON.stringify(f, null, 2).slice(0, -2)}\n${JSON.stringify(g, null, 2)}\n`));
    assert.equal(pretty.code, 0, pretty.stderr);
    assert.deepEqual([pretty.json<ImportJson>().counts.inserted, pretty.json<ImportJson>().counts.invalid], [1, 1]);
    assert.match(pretty.json<ImportJson>().problems[0]!.error, /not closed where a new one starts/);
    // A value left open, then a top-level array: the array is opened into its records as any is.
    const [h, i] = forms(2, 41);
    const arrayAfter = await run(file(`${JSON.stringify(f, null, 2).slice(0, -2)}\n${JSON.stringify([h, i], null, 2)}\n`));
    assert.equal(arrayAfter.code, 0, arrayAfter.stderr);
    assert.deepEqual(
      [
        arrayAfter.json<ImportJson>().counts.records,
        arrayAfter.json<ImportJson>().counts.inserted,
        arrayAfter.json<ImportJson>().counts.invalid,
      ],
      [3, 2, 1],
    );
  });

  it('a gzip file cut short: what decoded is imported, the cut is a dead letter naming the file, the run is audited', async () => {
    const records = forms(3000, 15).map((x) => JSON.stringify(x));
    const gz = zlib.gzipSync(Buffer.from(records.join('\n')));
    const cut = file(gz.subarray(0, gz.length >> 1), 'ndjson.gz');
    const r = await run(cut);
    assert.equal(r.code, 0, r.stderr);
    const body = r.json<ImportJson>();
    assert.ok(body.counts.inserted > 1000 && body.counts.inserted < 3000, JSON.stringify(body.counts));
    assert.equal(body.counts.invalid, 1);
    assert.equal(body.counts.records, body.counts.inserted + 1);
    assert.deepEqual(
      body.problems.map((p) => [p.file, p.line]),
      [[cut, body.counts.records]],
    );
    assert.match(body.problems[0]!.error, /cut short or damaged \(unexpected end of file\)/);
    assert.match(r.stderr, new RegExp(`${path.basename(cut)}: its gzip data stops before the end of the file`));
    const db = await target.open();
    try {
      const letter = await db.query<{ kind: string; truncated: boolean }>(
        `SELECT context ->> 'kind' AS kind, (context -> 'record' ->> 'truncated')::boolean AS truncated FROM public.raw_event_errors WHERE context ->> 'file' = $1`,
        [cut],
      );
      assert.deepEqual(letter.rows, [{ kind: 'unclosed', truncated: false }]);
      const stored = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM public.raw_events WHERE source_meta ->> 'imported_from' = $1`,
        [path.basename(cut)],
      );
      assert.equal(stored.rows[0]?.n, body.counts.inserted);
      const audit = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.sync_audit WHERE payload -> 'files' ? $1`, [cut]);
      assert.equal(audit.rows[0]?.n, 1);
    } finally {
      await db.close();
    }
  });

  it('a re-delivery of a known id with a different payload is reported and kept; --update replaces it and normalizes it again', async () => {
    const [x, y] = forms(2, 8);
    assert.equal((await run(file(JSON.stringify(x)))).json<ImportJson>().counts.inserted, 1);
    const changed = { ...x, fields: { ...(x!.fields as object), message: 'a corrected message' } };
    const sameFile = await run(file(`${JSON.stringify(y)}\n${JSON.stringify({ ...y, form_name: 'renamed' })}\n`, 'ndjson'));
    assert.deepEqual([sameFile.json<ImportJson>().counts.inserted, sameFile.json<ImportJson>().counts.conflicts], [1, 1]);
    assert.match(sameFile.json<ImportJson>().problems[0]!.error, /appears earlier in this import with a different payload \(line 1\)/);
    const again = await run(file(JSON.stringify(changed)));
    assert.deepEqual(again.json<ImportJson>().counts, {
      records: 1,
      inserted: 0,
      updated: 0,
      duplicates: 0,
      invalid: 1,
      conflicts: 1,
      resolved: 0,
    });
    const normalize = await runCli([...target.args, 'normalize', '--json']);
    assert.equal(normalize.code, 0, normalize.stderr);
    const update = await run(file(JSON.stringify(changed)), '--update');
    assert.deepEqual(update.json<ImportJson>().counts, {
      records: 1,
      inserted: 0,
      updated: 1,
      duplicates: 0,
      invalid: 0,
      conflicts: 0,
      resolved: 1,
    });
    const renormalized = await runCli([...target.args, 'normalize', '--json']);
    assert.equal(renormalized.json<{ counts: { updated?: number } }>().counts.updated, 1, 'the replaced payload is normalized again');
    const db = await target.open();
    try {
      const { rows } = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM public.interactions WHERE body_text LIKE '%a corrected message%'`,
      );
      assert.equal(rows[0]?.n, 1);
      const kept = await db.query<{ record: { sha256: string; text: string } }>(
        `SELECT context -> 'record' AS record FROM public.raw_event_errors WHERE stage = 'import' AND context ->> 'kind' = 'conflict' ORDER BY error_at LIMIT 1`,
      );
      assert.match(kept.rows[0]!.record.sha256, /^[0-9a-f]{64}$/);
      assert.match(kept.rows[0]!.record.text, /renamed/);
    } finally {
      await db.close();
    }
  });

  it('the same object with its keys in another order is a duplicate within a file as across imports (jsonb equality)', async () => {
    const [x] = forms(1, 16);
    const text = JSON.stringify(x);
    const reordered = `{ ${Object.entries(x!)
      .reverse()
      .map(([k, v]) => `${JSON.stringify(k)} : ${JSON.stringify(v)}`)
      .join(' ,  ')} }`;
    const twice = `{"id": "another", ${text.slice(1)}`; // a key given twice: the last wins, as in jsonb
    const within = await run(file(`${text}\n${reordered}\n${twice}\n`, 'ndjson'));
    assert.equal(within.code, 0, within.stderr);
    assert.deepEqual(within.json<ImportJson>().counts, {
      records: 3,
      inserted: 1,
      updated: 0,
      duplicates: 2,
      invalid: 0,
      conflicts: 0,
      resolved: 0,
    });
    const across = await run(file(`${reordered}\n`, 'ndjson'));
    assert.deepEqual([across.json<ImportJson>().counts.duplicates, across.json<ImportJson>().counts.conflicts], [1, 0]);
  });

  it('a key cleaned of its NUL never overwrites another key; a date in the years 0001-0099 is read as written', async () => {
    const nulKey =
      '{"id":"nulkey-1","form_id":"c","submitted_at":"2025-06-02T01:19:00Z","fields":{"a\\u0000b":"first","ab":"second","message":"m"}}';
    const early = JSON.stringify({ id: 'year-50', form_id: 'c', submitted_at: '0050-06-02T01:19:00+02:00', fields: { message: 'm' } });
    const r = await run(file(`${nulKey}\n${early}\n`, 'ndjson'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json<ImportJson>().counts.inserted, 2);
    const db = await target.open();
    try {
      const { rows } = await db.query<{ source_id: string; fields: Record<string, string>; at: string }>(
        `SELECT source_id, payload -> 'fields' AS fields, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') AS at
         FROM public.raw_events WHERE source_id IN ('nulkey-1', 'year-50') ORDER BY source_id`,
      );
      assert.deepEqual(rows[0]?.fields, { ab: 'second', 'a\ufffdb': 'first', message: 'm' });
      assert.deepEqual([rows[1]?.source_id, rows[1]?.at], ['year-50', '0050-06-01T23:19:00']);
    } finally {
      await db.close();
    }
  });

  it('escapes terminal control characters from input in every message', async () => {
    const [x] = forms(1, 9);
    const r = await run(file(`${JSON.stringify(x)}\n{"id": "\u001b[31mred\u001b[0m", broken\n`, 'ndjson'));
    assert.equal(r.code, 0, r.stderr);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the escape character must not come through
    assert.doesNotMatch(r.stderr + r.stdout, /\u001b/);
    assert.match(r.stderr, /\\x1b|\\u001b/);
  });
});

async function countRaw(target: TestTarget): Promise<number> {
  const db = await target.open();
  try {
    return (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM public.raw_events')).rows[0]!.n;
  } finally {
    await db.close();
  }
}

async function countErrors(target: TestTarget, kind?: string): Promise<number> {
  const db = await target.open();
  try {
    const where = kind === undefined ? '' : ` WHERE context ->> 'kind' = '${kind}'`;
    return (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.raw_event_errors${where}`)).rows[0]!.n;
  } finally {
    await db.close();
  }
}
