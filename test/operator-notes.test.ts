// Small things an operator trips on (issue 12, items 7 and 8): the runs list's header and count
// order, the note when --workers cannot apply, the import's problem arithmetic and its dry-run
// wording, and the local-embedder notice only where embed runs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
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
  });

  it('--workers on the embedded database is noted once; the local-embedder notice only where embed runs', async () => {
    const r = await runCli([...target.args, 'backfill', '--since', '30d', '--stages', 'normalize,resolve', '--workers', '2'], {
      env: { OPENAI_API_KEY: undefined },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /using the local embedder/);
    const notes = r.stderr.split('\n').filter((l) => /--workers 2 ignored/.test(l));
    assert.equal(notes.length, onServer ? 0 : 1, r.stderr);
  });
});
