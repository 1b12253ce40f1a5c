// A writer that stalls past its lease (a process stopped, a VM paused) while another process
// takes its batch over, writes it, verifies it and deletes its rows. When it wakes it must not
// replace a part or the manifest the other wrote with what it reads after that delete: the
// archive stays the one that was verified, and brings every event back (real server: the
// embedded database takes one process at a time).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { archiveFixture, archivedIds, heldAt, withDb } from './support/archive.js';
import { runCli } from './support/cli.js';
import { onServer } from './support/db.js';

const OLD = 100;

/** Every file under `dir` with the SHA-256 of its bytes, by path relative to it. */
function snapshot(dir: string): Map<string, string> {
  const files = (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile());
  return new Map(
    files.map((f) => [
      f,
      createHash('sha256')
        .update(fs.readFileSync(path.join(dir, f)))
        .digest('hex'),
    ]),
  );
}

describe('a writer stalled past its lease', { skip: !onServer && 'needs the real server (TEST_DATABASE_URL)', timeout: 300_000 }, () => {
  let fixture: Awaited<ReturnType<typeof archiveFixture>> | undefined;
  before(async () => {
    fixture = await archiveFixture('archive-stalled', OLD, 5);
  });
  after(async () => {
    await fixture?.done();
  });

  it('wakes after another process archived its batch: changes nothing on the target, exits non-zero', async () => {
    const { target, dir, uri, oldIds } = fixture!;
    const args = [...target.args, 'archive', '--older-than', '90', '--to', uri, '--batch-size', '100', '--part-rows', '40'];
    // A: one batch of three parts; it stops after writing the first.
    const a = await heldAt(args, 'part');
    try {
      // Stalled: no lease renewal, and by the clock its lease has run out.
      a.child.kill('SIGSTOP');
      await withDb(target, (db) => db.query(`UPDATE omni_ingest.archive_batches SET lease_until = now() - interval '1 second'`));

      // B takes the batch over and finishes it.
      const b = await runCli([...args, '--json']);
      assert.equal(b.code, 0, b.stderr);
      assert.equal(b.json<{ deleted: number }>().deleted, oldIds.length);
      const archived = snapshot(dir);

      // A wakes and goes on from where it stopped.
      a.resume();
      const code = await a.exited();

      // The target is exactly what B verified; A left nothing of its own there.
      assert.deepEqual(snapshot(dir), archived);
      const stored = await archivedIds(uri);
      assert.ok(stored.ok);
      assert.deepEqual([...stored.ids].sort(), [...oldIds].sort());
      assert.equal(code, 1, a.stderr());
      assert.match(a.stderr(), /taken over by another process/);
    } finally {
      a.child.kill('SIGKILL');
    }

    const verify = await runCli([...target.args, 'archive', 'verify']);
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    const restore = await runCli([...target.args, '--json', 'archive', 'restore', '--from', uri]);
    assert.equal(restore.code, 0, restore.stdout + restore.stderr);
    const hot = await withDb(target, async (db) => {
      const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.raw_events WHERE id = ANY($1::uuid[])`, [
        oldIds,
      ]);
      return rows[0]!.n;
    });
    assert.equal(hot, oldIds.length);
  });

  it('a rewritten batch keeps only the parts its manifest lists', async () => {
    const { dir } = fixture!;
    const parts = (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.ndjson.gz'));
    assert.equal(parts.length, 3, parts.join('\n'));
  });
});
