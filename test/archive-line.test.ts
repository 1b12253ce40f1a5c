// An archived row's line is put together column by column (src/archive/page-sql.ts, rowLines): it
// must be byte for byte PostgreSQL's to_jsonb(row)::text, which restore, verify and the MD5 of
// claims without a row version all read. Awkward values in every column, with the session's own
// TimeZone and DateStyle set to something else than the page's transaction uses.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Db } from '../src/db/connect.js';
import { knownShape, readPage } from '../src/archive/page.js';
import { rawEventColumns, rowLines } from '../src/archive/page-sql.js';
import { utcSession } from '../src/archive/rows-sql.js';
import { migratedDb } from './support/db.js';
import { USER_A } from './support/events.js';

const AWKWARD = [
  'plain',
  'quote " backslash \\ slash /',
  'controls \u0001\u0008\t\n\f\r\u001f and DEL \u007f',
  'non-ASCII é 中文 \u2028 \u2029 emoji 😀',
  '',
];

const TIMESTAMPS = [
  '2025-01-01 00:00:00+00',
  '2025-06-01 12:00:00.5+05:30',
  '2025-01-01 00:00:00.000001+00',
  '2025-02-03 04:05:06.123456-08',
  'infinity',
  '-infinity',
  '0044-03-15 12:00:00 BC',
  '12345-01-01 00:00:00+00',
  '1999-12-31 23:59:59.99+00',
];

describe('archive lines put together column by column', { timeout: 60_000 }, () => {
  let db: Db;
  let fixture: Awaited<ReturnType<typeof migratedDb>>;
  let ids: string[];

  before(async () => {
    fixture = await migratedDb();
    db = fixture.db;
    const { rows } = await db.query<{ id: string }>(
      `
INSERT INTO public.raw_events (user_id, provider, source_id, payload, contact_id, occurred_at, source_meta, batch_id, created_at)
SELECT $1, p.t, 'src-' || p.n || '-' || t.n || ' ' || p.t,
       jsonb_build_object('text', p.t, 'n', t.n, 'list', jsonb_build_array(1.50, 1e20, null, true, p.t), 'nested', jsonb_build_object('k', p.t)),
       CASE WHEN t.n % 2 = 0 THEN gen_random_uuid() END,
       CASE WHEN t.n % 3 = 0 THEN NULL ELSE t.ts::timestamptz END,
       CASE WHEN t.n % 4 = 0 THEN NULL WHEN t.n % 4 = 1 THEN '"a string"'::jsonb ELSE jsonb_build_object(p.t, p.t) END,
       CASE WHEN t.n % 5 = 0 THEN NULL ELSE gen_random_uuid() END,
       t.ts::timestamptz
FROM unnest($2::text[]) WITH ORDINALITY AS p(t, n), unnest($3::text[]) WITH ORDINALITY AS t(ts, n)
RETURNING id::text AS id`,
      [USER_A, AWKWARD, TIMESTAMPS],
    );
    ids = rows.map((r) => r.id).sort();
    await db.query(`INSERT INTO public.raw_events (user_id, provider, source_id) VALUES ($1, NULL, NULL)`, [USER_A]);
    const { rows: bare } = await db.query<{ id: string }>(`SELECT id::text AS id FROM public.raw_events WHERE source_id IS NULL`);
    ids.push(bare[0]!.id);
    ids.sort();
    // What a server or a role may have configured: the page's transaction must not depend on it.
    await db.query(`ALTER DATABASE ${await currentDatabase(db)} SET DateStyle = 'SQL, DMY'`);
    await db.query(`ALTER DATABASE ${await currentDatabase(db)} SET TimeZone = 'Asia/Kolkata'`);
    await db.close();
    db = await fixture.target.open();
    // The embedded database's one session does not take database settings: set them on it.
    if (db.maxConnections === 1) await db.query(`SET DateStyle = 'SQL, DMY'; SET TimeZone = 'Asia/Kolkata'`);
    const { rows: style } = await db.query<{ style: string }>(`SELECT current_setting('DateStyle') AS style`);
    assert.equal(style[0]!.style, 'SQL, DMY');
  });
  after(async () => {
    await db.close();
    await fixture.target.drop();
  });

  async function currentDatabase(q: Db): Promise<string> {
    const { rows } = await q.query<{ name: string }>(`SELECT quote_ident(current_database()) AS name`);
    return rows[0]!.name;
  }

  async function jsonbLines(): Promise<Map<string, string>> {
    return db.transaction(async (tx) => {
      await tx.query(`SET LOCAL TimeZone = 'UTC'`);
      const { rows } = await tx.query<{ id: string; line: string }>(
        `SELECT id::text AS id, to_jsonb(r)::text AS line FROM public.raw_events r`,
      );
      return new Map(rows.map((r) => [r.id, r.line]));
    });
  }

  it('knows the columns of raw_events as the migrations make them (a new column must be taught to rowLines)', async () => {
    assert.equal(knownShape(await rawEventColumns(db)), true);
    assert.equal(knownShape([...(await rawEventColumns(db)), { name: 'extra', type: 'text' }]), false);
  });

  it('gives every row the bytes of to_jsonb(row)::text', async () => {
    const expected = await jsonbLines();
    assert.equal(expected.size, AWKWARD.length * TIMESTAMPS.length + 1);
    const rows = await db.transaction(async (tx) => {
      await utcSession(tx);
      return rowLines(tx, ids);
    });
    assert.equal(rows.length, ids.length);
    for (const r of rows) assert.equal(r.line, expected.get(r.id), `row ${r.id}`);
  });

  /** Every page of the batch, `limit` claims at a time, as the lines each page gives. */
  async function readBatch(batchId: string, limit: number): Promise<{ pages: number; lines: { id: string; line: string }[] }> {
    const lines: { id: string; line: string }[] = [];
    let pages = 0;
    for (let page = await readPage(db, batchId, null, limit); page.claims > 0; ) {
      pages++;
      const text = page.data.toString('utf8');
      assert.equal(text.length === 0 || text.endsWith('\n'), true, 'each line ends with a newline');
      const got = text.length === 0 ? [] : text.slice(0, -1).split('\n');
      assert.equal(got.length, page.rows);
      for (const line of got) lines.push({ id: (JSON.parse(line) as { id: string }).id, line });
      assert.equal(page.first, lines.at(-got.length)?.id ?? null);
      assert.equal(page.last, got.length > 0 ? lines.at(-1)!.id : null);
      if (!page.full) break;
      page = await readPage(db, batchId, page.next, limit);
    }
    return { pages, lines };
  }

  async function newBatch(batchIds: string[]): Promise<string> {
    const batchId = randomUUID();
    // A row is claimed by one batch at a time: the earlier tests' claims go.
    await db.query(`DELETE FROM omni_ingest.archived_events`);
    await db.query(`INSERT INTO omni_ingest.archive_batches (id, target, prefix, cutoff) VALUES ($1, 'file:///x', 'p', now())`, [batchId]);
    await db.query(`INSERT INTO omni_ingest.archived_events (raw_event_id, batch_id) SELECT unnest($2::uuid[]), $1`, [batchId, batchIds]);
    return batchId;
  }

  it('reads a batch page by page in key order, each line that of to_jsonb', async () => {
    const expected = await jsonbLines();
    const got = await readBatch(await newBatch(ids), 7);
    assert.equal(got.pages, Math.ceil(ids.length / 7));
    assert.deepEqual(
      got.lines.map((r) => r.id),
      ids,
    );
    for (const r of got.lines) assert.equal(r.line, expected.get(r.id), `row ${r.id}`);
  });

  it('goes on past a page whose rows are all gone (claims of rows deleted since)', async () => {
    // Seven claims of rows that are not there, then the real ones: the first page is empty, not the end.
    const gone = Array.from({ length: 7 }, (_, i) => `00000000-0000-4000-8000-00000000000${i}`);
    const got = await readBatch(await newBatch([...gone, ...ids]), 7);
    assert.deepEqual(
      got.lines.map((r) => r.id),
      ids,
    );
  });

  it('reads a table with a column it does not know as to_jsonb(row), every column', async () => {
    await db.query(`ALTER TABLE public.raw_events ADD COLUMN archive_test_extra text DEFAULT 'x\ny'`);
    try {
      const expected = await jsonbLines();
      const got = await readBatch(await newBatch(ids), 10);
      assert.equal(got.lines.length, ids.length);
      for (const r of got.lines) {
        assert.equal(r.line, expected.get(r.id), `row ${r.id}`);
        assert.equal((JSON.parse(r.line) as Record<string, unknown>).archive_test_extra, 'x\ny');
      }
    } finally {
      await db.query(`ALTER TABLE public.raw_events DROP COLUMN archive_test_extra`);
    }
  });
});
