// Row level security (SPEC §3.2.6) seen from real sessions: one pg.Client per role, each with a
// session-level SET ROLE and, for authenticated, the JWT claims the way Supabase sets them.
// Two users' rows are seeded as the owner in every ingestion table, with different counts per
// table and per user, so every read can be compared with what was seeded.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { Db } from '../src/db/connect.js';
import { migratedDb, onServer } from './support/db.js';

type Role = 'authenticated' | 'anon' | 'service_role';

interface TableSeed {
  table: string;
  /** Inserts $2 rows for user $1, their text keys tagged with $3; returns their ids. */
  seed: string;
}

const TABLES: TableSeed[] = [
  {
    table: 'contacts',
    seed: `
INSERT INTO contacts (user_id, display_name, primary_email, source)
SELECT $1::uuid, 'Contact ' || $3::text || g, $3::text || g || '@example.com', 'seed'
FROM generate_series(1, $2::int) g
RETURNING id`,
  },
  {
    table: 'raw_events',
    seed: `
INSERT INTO raw_events (user_id, provider, source_id, payload, occurred_at)
SELECT $1::uuid, 'gmail', $3::text || '-' || g, jsonb_build_object('n', g), now() - make_interval(hours => g)
FROM generate_series(1, $2::int) g
RETURNING id`,
  },
  {
    table: 'interactions',
    seed: `
INSERT INTO interactions (user_id, type, subject, body_text, source, source_id, occurred_at)
SELECT $1::uuid, 'email_received', 'Subject ' || $3::text || g, 'body', 'gmail', $3::text || '-' || g, now() - make_interval(hours => g)
FROM generate_series(1, $2::int) g
RETURNING id`,
  },
  {
    table: 'embeddings',
    seed: `
INSERT INTO embeddings (user_id, owner_type, owner_id, embedding, content_hash, chunk_index)
SELECT $1::uuid, 'interaction', gen_random_uuid(), '[0.1,0.2]', md5($3::text || g), 0
FROM generate_series(1, $2::int) g
RETURNING id`,
  },
  {
    table: 'ai_insights',
    seed: `
INSERT INTO ai_insights (user_id, subject_type, subject_id, kind, content, model)
SELECT $1::uuid, 'contact', gen_random_uuid(), 'summary', jsonb_build_object('title', 'Insight ' || $3::text || g, 'body', 'b'), 'heuristic'
FROM generate_series(1, $2::int) g
RETURNING id`,
  },
  {
    table: 'contact_timeline',
    seed: `
INSERT INTO contact_timeline (user_id, event_type, title, occurred_at, event_data)
SELECT $1::uuid, 'email', 'Entry ' || $3::text || g, now() - make_interval(hours => g), '{}'
FROM generate_series(1, $2::int) g
RETURNING id`,
  },
  {
    table: 'jobs',
    seed: `
INSERT INTO jobs (user_id, kind, payload)
SELECT $1::uuid, 'embed', jsonb_build_object('tag', $3::text, 'n', g)
FROM generate_series(1, $2::int) g
RETURNING id`,
  },
  {
    table: 'sync_audit',
    seed: `
INSERT INTO sync_audit (user_id, provider, action, payload)
SELECT $1::uuid, 'gmail', 'import', jsonb_build_object('tag', $3::text, 'n', g)
FROM generate_series(1, $2::int) g
RETURNING id`,
  },
  {
    table: 'contact_identities',
    seed: `
INSERT INTO contact_identities (user_id, contact_id, kind, value, provider)
SELECT $1::uuid, (SELECT c.id FROM contacts c WHERE c.user_id = $1::uuid ORDER BY c.id LIMIT 1), 'email', $3::text || g || '@example.com', 'gmail'
FROM generate_series(1, $2::int) g
RETURNING id`,
  },
  {
    table: 'raw_event_errors',
    seed: `
INSERT INTO raw_event_errors (raw_event_id, user_id, provider, stage, error, context)
SELECT gen_random_uuid(), $1::uuid, 'gmail', 'normalize', 'bad payload ' || $3::text || g, '{}'
FROM generate_series(1, $2::int) g
RETURNING id`,
  },
];

const userA: string = randomUUID();
const userB: string = randomUUID();

/** Rows seeded per table: A and B never have the same count, and counts vary by table. */
const seeded = new Map(
  TABLES.map((t, i) => [
    t.table,
    new Map([
      [userA, 3 + (i % 3)],
      [userB, 1 + (i % 2)],
    ]),
  ]),
);

function count(table: string, user: string): number {
  const n = seeded.get(table)?.get(user);
  assert.ok(n !== undefined, `nothing seeded for ${table}`);
  return n;
}

type UserCount = {
  user_id: string;
  n: number;
};

const COUNT_BY_USER = (table: string) => `
SELECT user_id::text AS user_id, count(*)::int AS n
FROM ${table}
GROUP BY user_id
ORDER BY user_id`;

function byUser(...users: string[]): (table: string) => UserCount[] {
  return (table) => [...users].sort().map((user_id) => ({ user_id, n: count(table, user_id) }));
}

async function session(url: string, role: Role, claims?: Record<string, string>): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: `rls-test-${role}` });
  await client.connect();
  await client.query(`SET ROLE ${role}`);
  if (claims) await client.query(`SELECT set_config('request.jwt.claims', $1, false)`, [JSON.stringify(claims)]);
  return client;
}

/** The statement fails with SQLSTATE 42501 (insufficient_privilege) and the given message. */
async function refused(statement: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(statement, (err: unknown) => {
    assert.ok(err instanceof pg.DatabaseError, `expected a database error, got ${String(err)}`);
    assert.equal(err.code, '42501', err.message);
    assert.match(err.message, message);
    return true;
  });
}

const RLS_VIOLATION = /^new row violates row-level security policy for table "interactions"$/;
const permissionDenied = (table: string) => new RegExp(`^permission denied for table ${table}$`);

describe('row level security, one session per role', { skip: onServer ? false : 'needs a real server with several sessions' }, () => {
  let owner: Db;
  let closeDb: () => Promise<void>;
  const sessions: pg.Client[] = [];
  let asA: pg.Client;
  let asB: pg.Client;
  let asAnon: pg.Client;
  let asService: pg.Client;
  let asNoSub: pg.Client;

  /** Every row of every table as the owner (who bypasses RLS), to prove nothing changed. */
  async function snapshot(): Promise<Record<string, unknown[]>> {
    const out: Record<string, unknown[]> = {};
    for (const { table } of TABLES) {
      const { rows } = await owner.query(`
SELECT to_jsonb(t) AS row
FROM ${table} t
ORDER BY t.id`);
      out[table] = rows;
    }
    return out;
  }

  before(async () => {
    const migrated = await migratedDb();
    owner = migrated.db;
    closeDb = migrated.close;
    const url = migrated.target.url;
    assert.ok(url);
    for (const { table, seed } of TABLES) {
      for (const [user, tag] of [
        [userA, 'a'],
        [userB, 'b'],
      ] as const) {
        const { rowCount } = await owner.query(seed, [user, count(table, user), tag]);
        assert.equal(rowCount, count(table, user), `seeding ${table}`);
      }
    }
    asA = await session(url, 'authenticated', { sub: userA, role: 'authenticated' });
    asB = await session(url, 'authenticated', { sub: userB, role: 'authenticated' });
    asNoSub = await session(url, 'authenticated', {});
    // anon carries A's claims: the role, not the token, must be what keeps it out.
    asAnon = await session(url, 'anon', { sub: userA, role: 'anon' });
    asService = await session(url, 'service_role', { role: 'service_role' });
    sessions.push(asA, asB, asNoSub, asAnon, asService);
  });

  after(async () => {
    for (const s of sessions) await s.end();
    await closeDb?.();
  });

  it('the owner sees what was seeded: both users in all ten tables', async () => {
    for (const { table } of TABLES) {
      const { rows } = await owner.query<UserCount>(COUNT_BY_USER(table));
      assert.deepEqual(rows, byUser(userA, userB)(table), table);
    }
  });

  it('each session is the role and user it claims to be', async () => {
    for (const [client, role, uid] of [
      [asA, 'authenticated', userA],
      [asB, 'authenticated', userB],
      [asNoSub, 'authenticated', null],
      [asAnon, 'anon', userA],
      [asService, 'service_role', null],
    ] as const) {
      const { rows } = await client.query<{ role: string; uid: string | null }>(
        `SELECT current_user::text AS role, auth.uid()::text AS uid`,
      );
      assert.deepEqual(rows, [{ role, uid }]);
    }
  });

  for (const [name, user] of [
    ['A', userA],
    ['B', userB],
  ] as const) {
    it(`authenticated as ${name} reads exactly ${name}'s rows in every table`, async () => {
      const client = name === 'A' ? asA : asB;
      for (const { table } of TABLES) {
        const { rows } = await client.query<UserCount>(COUNT_BY_USER(table));
        assert.deepEqual(rows, byUser(user)(table), table);
        const other = name === 'A' ? userB : userA;
        const { rows: leaked } = await client.query<{ n: number }>(
          `
SELECT count(*)::int AS n
FROM ${table}
WHERE user_id = $1`,
          [other],
        );
        assert.deepEqual(leaked, [{ n: 0 }], `${table}: rows of the other user by their id`);
      }
    });
  }

  it('authenticated A inserts its own note_added interaction, and only that', async () => {
    const insert = `
INSERT INTO interactions (user_id, type, subject, source, source_id)
VALUES ($1, $2, $3, 'app', $4)`;
    const before = await snapshot();
    try {
      const ok = await asA.query(insert, [userA, 'note_added', 'a note', 'note-1']);
      assert.equal(ok.rowCount, 1);
      const { rows } = await owner.query<{ user_id: string; type: string; subject: string }>(`
SELECT user_id::text AS user_id, type, subject
FROM interactions
WHERE source = 'app'`);
      assert.deepEqual(rows, [{ user_id: userA, type: 'note_added', subject: 'a note' }]);
      const { rows: seen } = await asA.query<UserCount>(COUNT_BY_USER('interactions'));
      assert.deepEqual(seen, [{ user_id: userA, n: count('interactions', userA) + 1 }]);
      await owner.query(`
DELETE FROM interactions
WHERE source = 'app'`);

      await refused(asA.query(insert, [userA, 'email_received', 'not a note', 'note-2']), RLS_VIOLATION);
      await refused(asA.query(insert, [userB, 'note_added', 'note for B', 'note-3']), RLS_VIOLATION);
      await refused(asB.query(insert, [userA, 'note_added', 'B writes as A', 'note-4']), RLS_VIOLATION);
      await refused(asA.query(insert, [null, 'note_added', 'no user', 'note-5']), RLS_VIOLATION);
      await refused(
        asA.query(
          `
INSERT INTO contacts (user_id, display_name, source)
VALUES ($1, $2, 'app')`,
          [userA, 'Mine'],
        ),
        permissionDenied('contacts'),
      );
      await refused(
        asA.query(
          `
INSERT INTO raw_events (user_id, provider, source_id, payload)
VALUES ($1, $2, $3, $4)`,
          [userA, 'app', 'own-1', '{}'],
        ),
        permissionDenied('raw_events'),
      );
      assert.deepEqual(await snapshot(), before);
    } finally {
      // Whatever got through (only if the policies are broken) must not spoil the later tests.
      await owner.query(`
DELETE FROM interactions
WHERE source = 'app'`);
      await owner.query(`
DELETE FROM contacts
WHERE source = 'app'`);
      await owner.query(`
DELETE FROM raw_events
WHERE provider = 'app'`);
    }
  });

  it('authenticated can neither UPDATE nor DELETE anything, its own rows included', async () => {
    const before = await snapshot();
    await refused(
      asA.query(
        `
UPDATE interactions
SET subject = $1
WHERE user_id = $2`,
        ['changed', userA],
      ),
      permissionDenied('interactions'),
    );
    await refused(
      asA.query(
        `
DELETE FROM interactions
WHERE user_id = $1`,
        [userA],
      ),
      permissionDenied('interactions'),
    );
    for (const { table } of TABLES) {
      for (const client of [asA, asB]) {
        await refused(
          client.query(
            `
UPDATE ${table}
SET user_id = $1`,
            [userA],
          ),
          permissionDenied(table),
        );
        await refused(client.query(`DELETE FROM ${table}`), permissionDenied(table));
      }
    }
    assert.deepEqual(await snapshot(), before);
  });

  it('anon reads nothing: permission denied on every table, even with a user in its claims', async () => {
    for (const { table } of TABLES) {
      await refused(asAnon.query(COUNT_BY_USER(table)), permissionDenied(table));
    }
    const before = await snapshot();
    await refused(
      asAnon.query(
        `
INSERT INTO interactions (user_id, type, source, source_id)
VALUES ($1, $2, 'app', $3)`,
        [userA, 'note_added', 'anon-1'],
      ),
      permissionDenied('interactions'),
    );
    assert.deepEqual(await snapshot(), before);
  });

  it('a JWT without sub reads nothing as authenticated and cannot insert a note', async () => {
    for (const { table } of TABLES) {
      const { rows } = await asNoSub.query<UserCount>(COUNT_BY_USER(table));
      assert.deepEqual(rows, [], table);
    }
    await refused(
      asNoSub.query(
        `
INSERT INTO interactions (user_id, type, source, source_id)
VALUES ($1, $2, 'app', $3)`,
        [userA, 'note_added', 'nosub-1'],
      ),
      RLS_VIOLATION,
    );
  });

  it('service_role reads every row of both users in every table', async () => {
    for (const { table } of TABLES) {
      const { rows } = await asService.query<UserCount>(COUNT_BY_USER(table));
      assert.deepEqual(rows, byUser(userA, userB)(table), table);
    }
  });

  it('service_role inserts, updates and deletes in every table', async () => {
    for (const { table, seed } of TABLES) {
      const inserted = await asService.query<{ id: string }>(seed, [userA, 1, 's']);
      assert.equal(inserted.rowCount, 1, table);
      const id = inserted.rows[0]?.id;
      assert.ok(id);
      const ownerView = async () =>
        (
          await owner.query<{ user_id: string }>(
            `
SELECT user_id::text AS user_id
FROM ${table}
WHERE id = $1`,
            [id],
          )
        ).rows;
      assert.deepEqual(await ownerView(), [{ user_id: userA }], `${table}: inserted`);

      const updated = await asService.query(
        `
UPDATE ${table}
SET user_id = $1
WHERE id = $2`,
        [userB, id],
      );
      assert.equal(updated.rowCount, 1, `${table}: update`);
      assert.deepEqual(await ownerView(), [{ user_id: userB }], `${table}: updated`);

      const deleted = await asService.query(
        `
DELETE FROM ${table}
WHERE id = $1`,
        [id],
      );
      assert.equal(deleted.rowCount, 1, `${table}: delete`);
      assert.deepEqual(await ownerView(), [], `${table}: deleted`);
    }
    for (const { table } of TABLES) {
      const { rows } = await owner.query<UserCount>(COUNT_BY_USER(table));
      assert.deepEqual(rows, byUser(userA, userB)(table), `${table} back to the seed`);
    }
  });
});
