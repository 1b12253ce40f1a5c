// `verify` against every promise of SPEC §3.2: all checks pass on a freshly migrated database,
// and each breakage, made with plain SQL in a database of its own, fails exactly the check(s)
// that describe it while every other check still passes.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Db } from '../src/db/connect.js';
import type { CheckResult } from '../src/verify/checks.js';
import { runChecks } from '../src/verify/run.js';
import { runCli } from './support/cli.js';
import { migratedDb, migratedTarget } from './support/db.js';

const INGESTION_TABLES = [
  'contacts',
  'raw_events',
  'interactions',
  'embeddings',
  'ai_insights',
  'contact_timeline',
  'jobs',
  'sync_audit',
  'contact_identities',
  'raw_event_errors',
];

/** One check per promise of SPEC §3.2 (later migrations may add more checks; none may go). */
const PROMISED_CHECKS = [
  'extension vector',
  'auth.uid() and roles',
  ...['raw_events', 'interactions', 'ai_insights', 'contact_timeline', 'embeddings'].map((t) => `timestamps of ${t}`),
  'embeddings.embedding_v vector(1536)',
  'embeddings.embedding kept',
  'interactions.contact_id foreign key',
  'duplicate index dropped',
  'table contact_identities',
  'table raw_event_errors',
  'ai_insights.fingerprint',
  'embeddings.content_hash, chunk_index',
  'unique raw_events(user_id, provider, source_id)',
  'unique interactions(user_id, source, source_id)',
  'unique contact_identities(user_id, kind, value)',
  'unique ai_insights(user_id, fingerprint)',
  'unique embeddings(user_id, owner_type, owner_id, content_hash, chunk_index)',
  ...INGESTION_TABLES.map((t) => `row level security on ${t}`),
  'GIN raw_events(payload)',
  'GIN interactions(body_raw)',
  'timeline index contact_timeline(user_id, occurred_at desc)',
  'timeline index interactions(user_id, occurred_at desc)',
  'contact index interactions(user_id, contact_id, occurred_at desc)',
  'contact index contact_timeline(user_id, contact_id, occurred_at desc)',
  'provider index raw_events(user_id, provider, created_at desc)',
];

function describeFailures(checks: CheckResult[]): string {
  return checks
    .filter((c) => !c.ok)
    .map((c) => `${c.name}: ${c.detail}`)
    .join('\n');
}

/** Exactly the named checks fail, each with a matching detail; every other check passes. */
function assertOnlyFailing(checks: CheckResult[], expected: Record<string, RegExp>): void {
  const names = checks.map((c) => c.name);
  for (const name of PROMISED_CHECKS) assert.ok(names.includes(name), `check "${name}" disappeared`);
  assert.equal(new Set(names).size, names.length, `duplicate check names: ${names.join(', ')}`);
  const failing = checks.filter((c) => !c.ok).map((c) => c.name);
  assert.deepEqual([...failing].sort(), Object.keys(expected).sort(), `failing checks:\n${describeFailures(checks)}`);
  for (const [name, detail] of Object.entries(expected)) {
    const check = checks.find((c) => c.name === name);
    assert.ok(check);
    assert.match(check.detail, detail, `detail of "${name}"`);
  }
}

interface Breakage {
  title: string;
  sql: string[];
  failing: Record<string, RegExp>;
}

const BREAKAGES: Breakage[] = [
  {
    title: 'the authenticated SELECT policy of raw_events dropped',
    sql: [`DROP POLICY raw_events_select_own ON raw_events`],
    failing: { 'row level security on raw_events': /^no SELECT policy for authenticated with user_id = auth\.uid\(\)$/ },
  },
  {
    title: 'the duplicate index re-created',
    sql: [`CREATE INDEX raw_events_user_provider_occurred_idx ON raw_events (user_id, provider, occurred_at)`],
    failing: { 'duplicate index dropped': /raw_events_user_provider_occurred_idx still exists/ },
  },
  {
    title: 'an identical twin of an index created under another name',
    sql: [`CREATE INDEX raw_events_provider_twin ON raw_events (user_id, provider, created_at DESC)`],
    failing: {
      'duplicate index dropped':
        /raw_events_provider_twin duplicates raw_events_user_provider_created_idx on raw_events\(user_id, provider, created_at DESC\)/,
    },
  },
  {
    title: 'interactions.occurred_at reverted to timestamp without time zone',
    sql: [`ALTER TABLE interactions ALTER COLUMN occurred_at TYPE timestamp`],
    failing: { 'timestamps of interactions': /^not timestamptz: occurred_at \(timestamp without time zone\)$/ },
  },
  {
    title: 'the vector dimension changed to 768',
    sql: [`ALTER TABLE embeddings ALTER COLUMN embedding_v TYPE vector(768)`],
    failing: { 'embeddings.embedding_v vector(1536)': /embedding_v is vector\(768\), expected vector\(1536\)/ },
  },
  {
    title: 'the unique key of interactions dropped',
    sql: [`ALTER TABLE interactions DROP CONSTRAINT interactions_user_source_source_id_key`],
    failing: { 'unique interactions(user_id, source, source_id)': /no unique constraint on these columns/ },
  },
  {
    title: 'row level security disabled on jobs',
    sql: [`ALTER TABLE jobs DISABLE ROW LEVEL SECURITY`],
    failing: { 'row level security on jobs': /^RLS is not enabled$/ },
  },
  {
    title: 'a second foreign key added on interactions.contact_id',
    sql: [
      `ALTER TABLE interactions
ADD CONSTRAINT interactions_contact_id_again_fkey FOREIGN KEY (contact_id) REFERENCES contacts (id) ON DELETE SET NULL`,
    ],
    failing: {
      'interactions.contact_id foreign key':
        /^2 foreign keys on contact_id \((?=.*interactions_contact_id_fkey\b)(?=.*interactions_contact_id_again_fkey).*\), expected exactly one$/,
    },
  },
  {
    title: 'the foreign key changed to ON DELETE CASCADE',
    sql: [
      `ALTER TABLE interactions DROP CONSTRAINT interactions_contact_id_fkey`,
      `ALTER TABLE interactions
ADD CONSTRAINT interactions_contact_id_fkey FOREIGN KEY (contact_id) REFERENCES contacts (id) ON DELETE CASCADE`,
    ],
    failing: { 'interactions.contact_id foreign key': /interactions_contact_id_fkey is ON DELETE CASCADE, expected SET NULL/ },
  },
  {
    title: 'the GIN index on interactions.body_raw dropped',
    sql: [`DROP INDEX interactions_body_raw_gin`],
    failing: { 'GIN interactions(body_raw)': /^missing$/ },
  },
  {
    title: 'the GIN index on raw_events.payload left INVALID (as a failed concurrent build leaves it)',
    sql: [
      `UPDATE pg_index
SET indisvalid = false
WHERE indexrelid = 'public.raw_events_payload_gin'::regclass`,
    ],
    failing: { 'GIN raw_events(payload)': /raw_events_payload_gin is INVALID/ },
  },
  {
    title: 'a permissive policy granting anon SELECT added',
    sql: [`CREATE POLICY sync_audit_anon_read ON sync_audit FOR SELECT TO anon USING (true)`],
    failing: { 'row level security on sync_audit': /^policy sync_audit_anon_read grants anon$/ },
  },
  {
    title: 'a policy for PUBLIC (every role) added',
    sql: [`CREATE POLICY contacts_everyone ON contacts FOR SELECT USING (user_id = auth.uid())`],
    failing: { 'row level security on contacts': /^policy contacts_everyone grants public$/ },
  },
  {
    title: 'an authenticated UPDATE policy added',
    sql: [`CREATE POLICY interactions_update_own ON interactions FOR UPDATE TO authenticated USING (user_id = auth.uid())`],
    failing: {
      'row level security on interactions': /^policy interactions_update_own lets authenticated UPDATE beyond its own rows\/notes$/,
    },
  },
  {
    title: 'the interactions INSERT policy no longer restricted to note_added',
    sql: [
      `DROP POLICY interactions_insert_own_note ON interactions`,
      `CREATE POLICY interactions_insert_own ON interactions FOR INSERT TO authenticated WITH CHECK (user_id = auth.uid())`,
    ],
    failing: {
      'row level security on interactions': /^policy interactions_insert_own lets authenticated INSERT beyond its own rows\/notes$/,
    },
  },
  {
    title: 'the authenticated SELECT policy of contacts widened to every row',
    sql: [
      `DROP POLICY contacts_select_own ON contacts`,
      `CREATE POLICY contacts_select_all ON contacts FOR SELECT TO authenticated USING (true)`,
    ],
    failing: {
      'row level security on contacts':
        /^no SELECT policy for authenticated with user_id = auth\.uid\(\); policy contacts_select_all lets authenticated SELECT beyond/,
    },
  },
  {
    title: 'the service_role policy of embeddings dropped',
    sql: [`DROP POLICY embeddings_service_role_all ON embeddings`],
    failing: { 'row level security on embeddings': /^no ALL policy for service_role$/ },
  },
  {
    // Supabase's service_role is BYPASSRLS: full access without policies of its own. Roles are
    // cluster-wide, and this runs in the rolled-back transaction, so no other test sees it.
    title: 'service_role BYPASSRLS as on Supabase, without its policy: still passes',
    sql: [`ALTER ROLE service_role BYPASSRLS`, `DROP POLICY embeddings_service_role_all ON embeddings`],
    failing: {},
  },
  {
    title: 'raw_event_errors dropped',
    sql: [`DROP TABLE raw_event_errors`],
    failing: {
      'table raw_event_errors': /^table is missing$/,
      'row level security on raw_event_errors': /^table is missing$/,
    },
  },
  {
    title: 'contact_identities.contact_id no longer ON DELETE CASCADE',
    sql: [
      `ALTER TABLE contact_identities DROP CONSTRAINT contact_identities_contact_id_fkey`,
      `ALTER TABLE contact_identities
ADD CONSTRAINT contact_identities_contact_id_fkey FOREIGN KEY (contact_id) REFERENCES contacts (id)`,
    ],
    failing: { 'table contact_identities': /contact_id foreign key is ON DELETE NO ACTION, expected CASCADE/ },
  },
  {
    title: 'an insight stored without a fingerprint',
    sql: [
      `ALTER TABLE ai_insights ALTER COLUMN fingerprint DROP NOT NULL`,
      `ALTER TABLE ai_insights DISABLE TRIGGER ai_insights_fingerprint_trg`,
      `INSERT INTO ai_insights (user_id, subject_type, kind, content)
VALUES (gen_random_uuid(), 'contact', 'summary', '{"title": "t", "body": "b"}')`,
    ],
    failing: {
      'ai_insights.fingerprint': /^1 rows have no fingerprint$/,
      // The deeper checks see the same breakage from two more sides.
      'ai_insights fingerprint trigger': /ai_insights_fingerprint_trg is disabled/,
      'ai_insights fingerprint values': /recomputed all 1 rows: 1 do not match/,
    },
  },
  {
    title: 'the timeline index on contact_timeline dropped',
    sql: [`DROP INDEX contact_timeline_user_occurred_idx`],
    failing: { 'timeline index contact_timeline(user_id, occurred_at desc)': /^missing$/ },
  },
  {
    title: 'the provider debugging index dropped',
    sql: [`DROP INDEX raw_events_user_provider_created_idx`],
    failing: { 'provider index raw_events(user_id, provider, created_at desc)': /^missing$/ },
  },
  {
    title: 'the vector extension dropped (with the column that needs it)',
    sql: [`DROP EXTENSION vector CASCADE`],
    failing: {
      'extension vector': /pgvector is not installed/,
      'embeddings.embedding_v vector(1536)': /column embedding_v is missing/,
    },
  },
];

describe('verify on a freshly migrated database', () => {
  it('passes every check, one per promise of SPEC §3.2', async () => {
    const { db, close } = await migratedDb();
    try {
      const checks = await runChecks(db);
      assert.deepEqual(describeFailures(checks), '');
      const names = checks.map((c) => c.name);
      for (const name of PROMISED_CHECKS) assert.ok(names.includes(name), `no check named "${name}" in:\n${names.join('\n')}`);
      assert.equal(new Set(names).size, names.length, 'check names are unique');
      for (const c of checks) assert.ok(c.detail.length > 0, `check "${c.name}" has an empty detail`);
      const byName = new Map(checks.map((c) => [c.name, c.detail]));
      assert.match(byName.get('interactions.contact_id foreign key') ?? '', /ON DELETE SET NULL/);
      assert.match(byName.get('unique raw_events(user_id, provider, source_id)') ?? '', /raw_events_user_provider_source_key/);
      assert.match(byName.get('GIN interactions(body_raw)') ?? '', /^interactions_body_raw_gin$/);
    } finally {
      await close();
    }
  });

  it('judges definitions, not names: equivalent objects under other names still pass', async () => {
    const { db, close } = await migratedDb();
    try {
      await db.query(`ALTER TABLE raw_events DROP CONSTRAINT raw_events_user_provider_source_key`);
      await db.query(`CREATE UNIQUE INDEX raw_events_source_uq ON raw_events (user_id, provider, source_id)`);
      await db.query(`DROP POLICY contacts_select_own ON contacts`);
      await db.query(`CREATE POLICY "Users read their own contacts" ON contacts FOR SELECT TO authenticated USING (auth.uid() = user_id)`);
      await db.query(`ALTER INDEX contact_timeline_user_occurred_idx RENAME TO timeline_by_user`);
      await db.query(`ALTER TABLE interactions RENAME CONSTRAINT interactions_contact_id_fkey TO interactions_contact_fk`);
      const checks = await runChecks(db);
      assertOnlyFailing(checks, {});
      const byName = new Map(checks.map((c) => [c.name, c.detail]));
      assert.equal(byName.get('unique raw_events(user_id, provider, source_id)'), 'unique index raw_events_source_uq');
      assert.equal(byName.get('timeline index contact_timeline(user_id, occurred_at desc)'), 'timeline_by_user');
      assert.match(byName.get('interactions.contact_id foreign key') ?? '', /\(interactions_contact_fk\)/);
    } finally {
      await close();
    }
  });
});

/**
 * Runs the breakage and the checks in one transaction that is then rolled back: DDL is
 * transactional, so each breakage sees the migrated schema untouched by the others, as in a
 * database of its own, without copying one per breakage.
 */
async function checksAfter(db: Db, sql: string[]): Promise<CheckResult[]> {
  let checks: CheckResult[] = [];
  const rollback = new Error('rollback');
  await db
    .transaction(async (tx) => {
      for (const statement of sql) await tx.query(statement);
      checks = await runChecks(tx);
      throw rollback;
    })
    .catch((err: unknown) => {
      if (err !== rollback && !(err instanceof Error && err.cause === rollback)) throw err;
    });
  return checks;
}

describe('verify finds each breakage, and only it', () => {
  let db: Db;
  let close: () => Promise<void>;
  before(async () => {
    ({ db, close } = await migratedDb());
  });
  after(async () => close());
  for (const breakage of BREAKAGES) {
    it(breakage.title, async () => {
      assertOnlyFailing(await checksAfter(db, breakage.sql), breakage.failing);
    });
  }
  it('left the database as migrated', async () => {
    assertOnlyFailing(await runChecks(db), {});
  });
});

// Weaker policies that merely look like "own notes" must be refused too.
describe('verify on INSERT policies that only look like "own notes"', () => {
  const loopholes: Breakage[] = [
    {
      title: 'an INSERT policy allowing every type except note_added',
      sql: [
        `DROP POLICY interactions_insert_own_note ON interactions`,
        `CREATE POLICY interactions_insert_not_note ON interactions FOR INSERT TO authenticated
WITH CHECK (user_id = auth.uid() AND NOT (type = 'note_added'))`,
      ],
      failing: { 'row level security on interactions': /policy interactions_insert_not_note lets authenticated INSERT/ },
    },
    {
      title: 'an INSERT policy comparing another column with auth.uid()',
      sql: [
        `ALTER TABLE interactions ADD COLUMN other_user_id uuid`,
        `DROP POLICY interactions_insert_own_note ON interactions`,
        `CREATE POLICY interactions_insert_other ON interactions FOR INSERT TO authenticated
WITH CHECK (other_user_id = auth.uid() AND type = 'note_added')`,
      ],
      failing: { 'row level security on interactions': /policy interactions_insert_other lets authenticated INSERT/ },
    },
  ];
  let db: Db;
  let close: () => Promise<void>;
  before(async () => {
    ({ db, close } = await migratedDb());
  });
  after(async () => close());
  for (const loophole of loopholes) {
    it(loophole.title, async () => {
      assertOnlyFailing(await checksAfter(db, loophole.sql), loophole.failing);
    });
  }
});

interface VerifyJson {
  ok: boolean;
  passed: number;
  failed: number;
  checks: CheckResult[];
}

describe('the verify command on a broken database', { concurrency: 2 }, () => {
  const cases: { title: string; sql: string[]; check: string; line: RegExp }[] = [
    {
      title: 'a dropped SELECT policy',
      sql: [`DROP POLICY raw_events_select_own ON raw_events`],
      check: 'row level security on raw_events',
      line: /^✗ row level security on raw_events: no SELECT policy for authenticated with user_id = auth\.uid\(\)$/m,
    },
    {
      title: 'the duplicate index re-created',
      sql: [`CREATE INDEX raw_events_user_provider_occurred_idx ON raw_events (user_id, provider, occurred_at)`],
      check: 'duplicate index dropped',
      line: /^✗ duplicate index dropped: raw_events_user_provider_occurred_idx still exists$/m,
    },
  ];
  for (const c of cases) {
    it(`${c.title}: exit 3, a ✗ line, and --json {ok:false, failed:1}`, async () => {
      const target = await migratedTarget();
      try {
        const db = await target.open();
        try {
          for (const statement of c.sql) await db.query(statement);
        } finally {
          await db.close(); // PGlite: one process per folder
        }

        const text = await runCli([...target.args, 'verify']);
        assert.equal(text.code, 3, text.stdout + text.stderr);
        assert.match(text.stdout, c.line);
        assert.equal(text.stdout.match(/^✗ /gm)?.length, 1, text.stdout);
        assert.match(text.stdout, /^✓ extension vector: /m);
        assert.match(text.stdout, /^1 of \d+ checks failed$/m);

        const json = await runCli([...target.args, 'verify', '--json']);
        assert.equal(json.code, 3, json.stderr);
        const body = json.json<VerifyJson>();
        assert.equal(body.ok, false);
        assert.equal(body.failed, 1);
        assert.equal(body.passed, body.checks.length - 1);
        assert.deepEqual(
          body.checks.filter((k) => !k.ok).map((k) => k.name),
          [c.check],
        );
        for (const name of PROMISED_CHECKS)
          assert.ok(
            body.checks.some((k) => k.name === name),
            `no "${name}" in --json`,
          );
      } finally {
        await target.drop();
      }
    });
  }
});
