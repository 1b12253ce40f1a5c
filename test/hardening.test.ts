// The hardening migration on a baseline database full of legacy data, with the database's
// TimeZone set to America/New_York: every row and value kept, timestamps the same instants.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Db, Queryable } from '../src/db/connect.js';
import { MigrationError } from '../src/errors.js';
import { loadMigrationFiles } from '../src/migrate/files.js';
import { migrate } from '../src/migrate/migrator.js';
import { migrationsDir, packageRoot } from '../src/paths.js';
import { runChecks } from '../src/verify/run.js';
import { freshTarget, type TestTarget } from './support/db.js';

const BASELINE = '20250830_legacy_baseline';
const LEGACY_TABLES = ['contacts', 'raw_events', 'interactions', 'embeddings', 'ai_insights', 'contact_timeline', 'jobs', 'sync_audit'];
const seedSql = fs.readFileSync(path.join(packageRoot, 'test', 'fixtures', 'legacy-seed.sql'), 'utf8');
const files = loadMigrationFiles(migrationsDir);

type Snapshot = Map<string, Record<string, string | null>>;

/**
 * Every row of a table as text, keyed by id. Timestamps become UTC wall-clock text: a
 * `timestamp` column is already UTC wall-clock; a `timestamptz` is rendered AT TIME ZONE 'UTC'.
 * Identifiers come from the catalog, never from input.
 */
async function snapshot(db: Queryable, table: string, columns?: string[]): Promise<Snapshot> {
  const { rows: cols } = await db.query<{ name: string; type: string }>(
    `
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
FROM pg_attribute a
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`,
    [`public.${table}`],
  );
  const wanted = cols.filter((c) => !columns || columns.includes(c.name));
  const select = wanted
    .map((c) => {
      const id = `"${c.name}"`;
      if (c.type === 'timestamp with time zone') return `to_char(${id} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS ${id}`;
      if (c.type === 'timestamp without time zone') return `to_char(${id}, 'YYYY-MM-DD"T"HH24:MI:SS.US') AS ${id}`;
      return `${id}::text AS ${id}`;
    })
    .join(', ');
  const { rows } = await db.query<Record<string, string | null>>(`SELECT ${select} FROM public.${table}`);
  return new Map(rows.map((r) => [String(r.id), r]));
}

async function setDatabaseTimeZone(db: Db, tz: string): Promise<void> {
  await db.query(`
DO $$
BEGIN
  EXECUTE format('ALTER DATABASE %I SET timezone = %L', current_database(), '${tz}');
END $$`);
}

describe('the hardening migration on legacy data (TimeZone America/New_York)', () => {
  let target: TestTarget;
  let db: Db;
  const before_: Record<string, Snapshot> = {};
  const counts: Record<string, number> = {};

  before(async () => {
    target = await freshTarget();
    let setup = await target.open();
    await migrate(setup, { files, to: BASELINE });
    await setup.query(seedSql);
    await setDatabaseTimeZone(setup, 'America/New_York');
    await setup.close();
    // Reconnect so the sessions start with the database's new default TimeZone.
    setup = await target.open();
    for (const table of LEGACY_TABLES) {
      before_[table] = await snapshot(setup, table);
      counts[table] = before_[table]!.size;
    }
    db = setup;
    // PGlite's single session starts in UTC whatever the database default says; set it too.
    await db.query(`SET TimeZone = 'America/New_York'`);
    const { rows } = await db.query<{ tz: string }>(`SELECT current_setting('TimeZone') AS tz`);
    assert.equal(rows[0]?.tz, 'America/New_York', 'the migrating session must run in New York time');
    await migrate(db, { files });
  });

  after(async () => {
    await db?.close();
    await target?.drop();
  });

  it('the seed is legacy data worth the name', () => {
    for (const table of LEGACY_TABLES) assert.ok(counts[table]! >= 50, `${table} has only ${counts[table]} rows`);
    assert.ok(counts.raw_events! >= 300);
  });

  for (const table of LEGACY_TABLES.filter((t) => t !== 'ai_insights')) {
    it(`keeps every row and every value of ${table}`, async () => {
      const was = before_[table]!;
      const now = await snapshot(db, table, Object.keys(was.values().next().value ?? {}));
      assert.equal(now.size, was.size);
      for (const [id, row] of was) assert.deepEqual(now.get(id), row, `${table} ${id} changed`);
    });
  }

  it('reads the legacy timestamps as UTC, including wall-clock times New York skips or repeats', async () => {
    const { rows } = await db.query<{ n: number }>(`
SELECT count(*)::int AS n FROM public.raw_events
WHERE to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') IN ('2025-03-09 02:30', '2024-03-10 02:30', '2024-11-03 01:30', '2025-11-02 01:30')`);
    assert.ok(rows[0]!.n > 0, 'the seed has no DST-edge timestamps in raw_events');
    const types = await db.query<{ type: string }>(`
SELECT DISTINCT format_type(a.atttypid, a.atttypmod) AS type
FROM pg_attribute a
WHERE a.attrelid = ANY (ARRAY['public.raw_events', 'public.interactions', 'public.ai_insights', 'public.contact_timeline', 'public.embeddings']::regclass[])
  AND a.attnum > 0 AND NOT a.attisdropped AND format_type(a.atttypid, a.atttypmod) LIKE 'timestamp%'`);
    assert.deepEqual(
      types.rows.map((r) => r.type),
      ['timestamp with time zone'],
    );
  });

  it('resolves duplicate insight fingerprints keeping the oldest, and moves the others aside', async () => {
    const was = before_.ai_insights!;
    const kept = await snapshot(db, 'ai_insights', Object.keys(was.values().next().value ?? {}));
    const moved = await snapshot(db, 'ai_insights_duplicates', [...Object.keys(was.values().next().value ?? {})]);
    assert.ok(moved.size > 0, 'the seed must contain duplicate insights');
    assert.equal(kept.size + moved.size, was.size, 'an insight was lost');
    for (const [id, row] of was) assert.deepEqual(kept.get(id) ?? moved.get(id), row, `insight ${id} changed`);

    const key = (r: Record<string, string | null>) =>
      [r.user_id, r.kind, r.subject_type, r.subject_id, r.model, JSON.parse(r.content ?? '{}').title].join('|');
    for (const [id, dup] of moved) {
      const survivor = [...kept.values()].find((k) => key(k) === key(dup));
      assert.ok(survivor, `duplicate ${id} has no kept original`);
      assert.ok(
        survivor.created_at! < dup.created_at! || (survivor.created_at === dup.created_at && survivor.id! < dup.id!),
        `kept ${survivor.id} (${survivor.created_at}) is not older than ${id} (${dup.created_at})`,
      );
    }
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM public.ai_insights_duplicates d LEFT JOIN public.ai_insights i ON i.id = d.duplicate_of WHERE i.id IS NULL`,
    );
    assert.equal(rows[0]!.n, 0, 'duplicate_of must point at the kept insight');
  });

  it('fingerprints are SHA-256 of kind|subject_type|subject_id|model|title', async () => {
    const { rows } = await db.query<{
      kind: string;
      subject_type: string;
      subject_id: string;
      model: string | null;
      title: string | null;
      fingerprint: string;
    }>(`
SELECT kind, subject_type, subject_id::text, model, content->>'title' AS title, fingerprint
FROM public.ai_insights`);
    assert.ok(rows.length > 0);
    for (const r of rows) {
      const text = [r.kind, r.subject_type, r.subject_id, r.model ?? '', r.title ?? ''].join('|');
      assert.equal(r.fingerprint, createHash('sha256').update(text, 'utf8').digest('hex'));
    }
  });

  it('keeps the legacy embeddings as text and leaves embedding_v to the backfill', async () => {
    const { rows } = await db.query<{ with_text: number; with_vector: number }>(`
SELECT count(embedding)::int AS with_text, count(embedding_v)::int AS with_vector FROM public.embeddings`);
    assert.ok(rows[0]!.with_text > 0);
    assert.equal(rows[0]!.with_vector, 0);
  });

  it('leaves a database that verify passes', async () => {
    const failed = (await runChecks(db)).filter((c) => !c.ok);
    assert.deepEqual(failed, []);
  });
});

describe('the hardening migration refuses legacy duplicates of a new unique key', () => {
  it('rolls back, says which table, and keeps the baseline', async () => {
    const target = await freshTarget();
    const db = await target.open();
    try {
      await migrate(db, { files, to: BASELINE });
      await db.query(`
INSERT INTO public.raw_events (user_id, provider, source_id, payload, occurred_at)
SELECT '00000000-0000-0000-0000-000000000001'::uuid, 'gmail', 'msg-1', '{}'::jsonb, timestamp '2025-01-01 00:00:00'
FROM generate_series(1, 2)`);
      await assert.rejects(
        migrate(db, { files }),
        (err: unknown) =>
          err instanceof MigrationError &&
          /20250831_ingest_hardening/.test(err.message) &&
          /raw_events/.test(err.message) &&
          /duplicate/i.test(err.message),
      );
      const { rows } = await db.query<{ name: string }>('SELECT name FROM omni_ingest.schema_migrations');
      assert.deepEqual(
        rows.map((r) => r.name),
        [BASELINE],
      );
      const type = await db.query<{ t: string }>(
        `SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'public.raw_events'::regclass AND attname = 'occurred_at'`,
      );
      assert.equal(type.rows[0]?.t, 'timestamp without time zone', 'the failed hardening must roll back entirely');
      const n = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM public.raw_events');
      assert.equal(n.rows[0]?.n, 2, 'no row may be deleted');
    } finally {
      await db.close();
      await target.drop();
    }
  });
});
