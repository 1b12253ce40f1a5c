// A damaged archive is never trusted: a part with one byte flipped, or cut short, on the target
// between write and verify fails the verify — exit 3, with a message naming the part and what
// differs, nothing deleted — and the next run writes the batch again from the rows still hot.
// After the delete, `archive verify` finds a part damaged since (exit 3).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { damage, killAt, rawEventsChecksum, seedEvents, withDb } from './support/archive.js';
import { runCli } from './support/cli.js';
import { migratedTarget, type TestTarget } from './support/db.js';

/** The parts the newest manifest under `dir` lists (a folder may also hold an earlier attempt's). */
function listedParts(dir: string): string[] {
  const manifests = (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => f.endsWith('manifest.json'))
    .map((f) => path.join(dir, f))
    .sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  if (manifests.length === 0) return [];
  const manifest = JSON.parse(fs.readFileSync(manifests[0]!, 'utf8')) as { parts: { name: string }[] };
  return manifest.parts.map((p) => path.join(path.dirname(manifests[0]!), p.name));
}

describe('a damaged archive', { timeout: 300_000 }, () => {
  let target: TestTarget;
  let dir: string;
  let seeded: { old: number; pending: number };

  before(async () => {
    target = await migratedTarget();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omni-ingest-archive-damage-'));
    seeded = await withDb(target, (db) => seedEvents(db, 150, 10));
  });
  after(async () => {
    await target?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const args = () => [...target.args, 'archive', '--older-than', '90', '--to', `file://${dir}`, '--batch-size', '100'];
  const hotRows = () => withDb(target, async (db) => (await rawEventsChecksum(db)).rows);

  for (const how of ['flip', 'truncate'] as const) {
    it(`a part ${how === 'flip' ? 'with one byte flipped' : 'cut short'} fails verification: exit 3, nothing deleted`, async () => {
      const before_ = await hotRows();
      const killed = await killAt(args(), 'written');
      assert.ok(killed.paused, killed.stderr);
      const parts = listedParts(dir);
      assert.ok(parts.length > 0);
      damage(parts.at(-1)!, how);
      const r = await runCli([...args(), '--json']);
      assert.equal(r.code, 3, r.stdout + r.stderr);
      const error = r.json<{ error: { code: string; message: string; hint: string } }>().error;
      assert.equal(error.code, 'archive_mismatch');
      assert.match(
        error.message,
        how === 'flip' ? /SHA-256 [0-9a-f]{64}, the manifest says/ : /bytes, the manifest says \d+ \(truncated\?\)/,
      );
      assert.match(error.hint, /nothing was deleted/);
      assert.equal(await hotRows(), before_);
    });
  }

  it('the next run writes the batch again and archives everything', async () => {
    const r = await runCli([...args(), '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json<{ deleted: number }>().deleted, seeded.old);
    const verify = await runCli([...target.args, 'archive', 'verify']);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  });

  it('archive verify finds a part damaged after the delete: exit 3', async () => {
    damage(listedParts(dir)[0]!, 'flip');
    const r = await runCli([...target.args, '--json', 'archive', 'verify']);
    assert.equal(r.code, 3, r.stdout + r.stderr);
    const report = r.json<{ ok: boolean; failed: number; manifests: { problems: string[] }[] }>();
    assert.equal(report.failed, 1);
    assert.match(report.manifests.flatMap((m) => m.problems).join('\n'), /SHA-256/);
  });
});
