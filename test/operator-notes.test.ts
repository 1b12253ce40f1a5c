// Small things an operator trips on (issue 12, items 7 and 8): the runs list's header and count
// order, stats naming every stage, the note when --workers cannot apply (and only then), the
// import's problems printed once with the right arithmetic and dry-run wording, and the
// local-embedder notice only where embed runs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateEvents } from '../src/generate/generator.js';
import { STAGE_ORDER } from '../src/stages/names.js';
import { runCli } from './support/cli.js';
import { migratedTarget, onServer, type TestTarget } from './support/db.js';
import { USER_A } from './support/events.js';

describe('what the operator reads', () => {
  let target: TestTarget;
  let dir: string;
  before(async () => {
    target = await migratedTarget();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omni-ingest-notes-'));
  });
  after(async () => {
    await target.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('an import with 12 bad records prints 10, then "2 more", and a dry run says it keeps none', async () => {
    const file = path.join(dir, 'bad.ndjson');
    fs.writeFileSync(
      file,
      `${Array.from({ length: 12 }, (_, i) => `{"n": ${i}}`).join('\n')}\n{"id":"f-1","form_id":"contact","submitted_at":"2025-09-01T10:00:00Z","fields":{"email":"a@b.example"}}\n`,
    );
    const dry = await runCli([...target.args, 'import', file, '--provider', 'webform', '--user', USER_A, '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    const shown = dry.stderr.split('\n').filter((l) => l.startsWith(`warning: ${file}:`));
    assert.equal(shown.length, 10, dry.stderr);
    assert.match(dry.stderr, /… and 2 more problems \(a dry run keeps none\)/);
    assert.doesNotMatch(dry.stdout + dry.stderr, /kept in raw_event_errors/);

    const real = await runCli([...target.args, 'import', file, '--provider', 'webform', '--user', USER_A]);
    assert.equal(real.code, 0, real.stderr);
    assert.equal(real.stderr.split('\n').filter((l) => l.startsWith(`warning: ${file}:`)).length, 10, real.stderr);
    assert.match(real.stderr, /… and 2 more problems, all kept in raw_event_errors/);
    // Once: the summary on stdout counts them and names none.
    assert.equal(real.stdout.trim().split('\n').length, 1, real.stdout);
    assert.match(real.stdout, /13 records, 1 new, 0 already there, 12 not imported, kept in raw_event_errors/);
    assert.doesNotMatch(real.stdout, /payload\.id is missing/);
  });

  it('stats lists every stage in pipeline order, with nothing pending too', async () => {
    const r = await runCli([...target.args, 'stats']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const from = lines.indexOf('pending work by stage:');
    assert.ok(from >= 0, r.stdout);
    const rows = lines.slice(from + 1, from + 1 + STAGE_ORDER.length).map((l) => l.trim().split(/\s+/));
    assert.deepEqual(
      rows.map((r) => r[0]),
      [...STAGE_ORDER],
      r.stdout,
    );
    assert.ok(
      rows.every((r) => /^\d+$/.test(r[1] ?? '')),
      r.stdout,
    );
  });

  it('runs list has a header, and events first in the counts', async () => {
    const n = await runCli([...target.args, 'normalize']);
    assert.equal(n.code, 0, n.stderr);
    const r = await runCli([...target.args, 'runs', 'list']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^id\s+started\s+command\s+status\s+counts$/);
    for (const line of lines.slice(1).filter((l) => / events=/.test(l)))
      assert.match(line, /\s(succeeded|stopped|incomplete|failed)\s+events=/);
    // An import's "events" are its records: first too, the rest by name.
    const imports = lines.filter((l) => /\simport\s/.test(l));
    assert.ok(imports.length > 0, r.stdout);
    for (const line of imports) assert.match(line, /\ssucceeded\s+records=\d+ duplicates=\d+ inserted=\d+ invalid=\d+/);
  });

  it('--workers on the embedded database is noted once; the local-embedder notice only where embed runs; the backfill table hides no count', async () => {
    const r = await runCli([...target.args, 'backfill', '--since', '3650d', '--stages', 'normalize,resolve', '--workers', '2'], {
      env: { OPENAI_API_KEY: undefined },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /using the local embedder/);
    const notes = r.stderr.split('\n').filter((l) => /--workers 2 ignored/.test(l));
    assert.equal(notes.length, onServer ? 0 : 1, r.stderr);
    // No contact matches the web form's person: resolve's outcome is "unresolved", and the table
    // shows it, as every count the stage recorded that is not zero.
    const resolveRow = r.stdout.split('\n').find((l) => l.startsWith('resolve '));
    assert.match(resolveRow ?? '', /\b1 unresolved\b/, r.stdout);
    const runs = (await runCli([...target.args, '--json', 'runs', 'list', '--command', 'resolve', '--limit', '1'])).json<{
      runs: { counts: Record<string, number> }[];
    }>().runs;
    for (const [k, v] of Object.entries(runs[0]?.counts ?? {}))
      if (k !== 'events' && v !== 0) assert.ok(resolveRow?.includes(`${v} ${k.replace(/_/g, ' ')}`), `${k}=${v} is not in "${resolveRow}"`);

    // embed's own default (2 workers on a server) is no reason for a note; the notice comes with the stage.
    const e = await runCli([...target.args, 'embed'], { env: { OPENAI_API_KEY: undefined } });
    assert.equal(e.code, 0, e.stderr);
    assert.doesNotMatch(e.stderr, /ignored/);
    assert.equal(e.stderr.split('\n').filter((l) => /no OPENAI_API_KEY: using the local embedder/.test(l)).length, 1, e.stderr);
  });

  it('import without a terminal prints timestamped progress lines by bytes read', async () => {
    const file = path.join(dir, 'gmail.ndjson');
    const lines = Array.from(generateEvents('gmail', 700, { seed: 5, userId: USER_A }), (e) => JSON.stringify(e));
    // Past the reader's 1 MB chunk, so the bytes read advance during the import, not only at its end.
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    const size = fs.statSync(file).size;
    assert.ok(size > 1_100_000, `${size} bytes`);
    const r = await runCli([
      ...target.args,
      '--progress-interval',
      '1ms',
      'import',
      file,
      '--provider',
      'gmail',
      '--user',
      USER_A,
      '--batch-size',
      '50',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ import ([\d.]+) (B|kB|MB)\/([\d.]+) MB (\d+)% [\d.]+ (B|kB|MB)\/s ETA \S+$/;
    const shown = r.stderr.split('\n').filter((l) => LINE.test(l));
    assert.ok(shown.length > 0, r.stderr);
    const parsed = shown.map((l) => l.match(LINE)!);
    assert.ok(
      parsed.every((m) => m[3] === (size / 1e6).toFixed(1)),
      shown.join('\n'),
    );
    assert.ok(
      parsed.some((m) => Number(m[4]) > 0 && Number(m[4]) < 100),
      shown.join('\n'),
    );
  });
});
