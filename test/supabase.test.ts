// The tool on a database built the way Supabase builds a project (test/support/supabase.ts),
// through the real binary, with three search_paths: Supabase's own, `public` only (a pooler
// string, a role without Supabase's setting) and `public, auth, extensions` (as supabase_admin
// has it). Plus what the advisor checks, on every backend.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { runCli } from './support/cli.js';
import { migratedDb, onServer } from './support/db.js';
import { USER_A, USER_B } from './support/events.js';
import { type SupabaseDatabase, supabaseDatabase } from './support/supabase.js';

const NO_KEY = { OPENAI_API_KEY: undefined, OPENAI_BASE_URL: undefined };
const SEARCH_PATHS: [string, string | undefined][] = [
  ['Supabase’s ("$user", public, extensions)', undefined],
  ['public only', 'public'],
  ['public, auth, extensions', 'public,auth,extensions'],
];

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const vectorSchema = (url: string) =>
  withClient(url, async (c) => {
    const { rows } = await c.query<{ schema: string }>(
      `SELECT n.nspname AS schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'`,
    );
    return rows[0]?.schema;
  });

for (const [label, searchPath] of SEARCH_PATHS) {
  describe(`on a Supabase-like database, search_path ${label}`, { skip: !onServer && 'needs the server', timeout: 300_000 }, () => {
    let sb: SupabaseDatabase;
    let args: string[];
    before(async () => {
      sb = await supabaseDatabase(searchPath);
      args = ['--database-url', sb.url];
    });
    after(async () => {
      await sb?.drop();
    });

    it('migrate, verify and doctor pass; pgvector stays in extensions', async () => {
      const migrate = await runCli([...args, 'migrate'], { env: NO_KEY });
      assert.equal(migrate.code, 0, migrate.stderr);
      assert.equal(await vectorSchema(sb.url), 'extensions');
      const verify = await runCli([...args, '--json', 'verify'], { env: NO_KEY });
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      const doctor = await runCli([...args, 'doctor'], { env: NO_KEY });
      assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
      assert.match(doctor.stdout, /role: omni_sb_owner \(not a superuser, BYPASSRLS\): migrate yes, stages yes/);
      assert.match(doctor.stdout, /embeddings\.embedding_v is vector\(1536\)/);
    });

    it('the pipeline runs: import, backfill with embeddings, search', async () => {
      const imported = await runCli([...args, 'import', 'fixtures/demo/webform.ndjson', '--provider', 'webform', '--user', USER_A], {
        env: NO_KEY,
      });
      assert.equal(imported.code, 0, imported.stderr);
      const backfill = await runCli([...args, '--json', 'backfill'], { env: NO_KEY });
      assert.equal(backfill.code, 0, backfill.stderr);
      const n = await withClient(
        sb.url,
        async (c) =>
          (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.embeddings WHERE embedding_v IS NOT NULL`)).rows[0]?.n,
      );
      assert.ok((n ?? 0) >= 14, `${n} embeddings`);
      const search = await runCli([...args, '--json', 'search', 'pricing for the Pro plan', '--user', USER_A], { env: NO_KEY });
      assert.equal(search.code, 0, search.stderr);
    });

    it('row level security holds with both claim settings PostgREST uses', async () => {
      const seen = await withClient(sb.url, async (c) => {
        const count = async () => (await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM public.raw_events`)).rows[0]?.n;
        await c.query(`SET ROLE authenticated`);
        await c.query(`SELECT set_config('request.jwt.claims', $1, false)`, [JSON.stringify({ sub: USER_A, role: 'authenticated' })]);
        const own = await count();
        await c.query(`SELECT set_config('request.jwt.claims', $1, false)`, [JSON.stringify({ sub: USER_B, role: 'authenticated' })]);
        const other = await count();
        await c.query(`SELECT set_config('request.jwt.claims', '', false)`);
        await c.query(`SELECT set_config('request.jwt.claim.sub', $1, false)`, [USER_A]);
        const legacy = await count();
        await c.query(`RESET ROLE`);
        await c.query(`SET ROLE anon`);
        const anon = await count().catch(() => 0);
        return { own, other, legacy, anon };
      });
      assert.deepEqual(seen, { own: 14, other: 0, legacy: 14, anon: 0 });
    });
  });
}

describe('Supabase: a project without pgvector yet, migrated as the superuser', {
  skip: !onServer && 'needs the server',
  timeout: 300_000,
}, () => {
  it('creates pgvector in extensions, never in public; --adopt takes such a schema', async () => {
    const sb = await supabaseDatabase(undefined, { vector: false, superuser: true });
    try {
      const migrate = await runCli(['--database-url', sb.url, 'migrate', '--to', '20250831_ingest_hardening'], { env: NO_KEY });
      assert.equal(migrate.code, 0, migrate.stderr);
      assert.equal(await vectorSchema(sb.url), 'extensions');
      // The schema applied by other means: the ledger gone, adoption verifies and records it.
      await withClient(sb.url, (c) => c.query(`DROP SCHEMA omni_ingest CASCADE`));
      const adopt = await runCli(['--database-url', sb.url, 'migrate', '--adopt'], { env: NO_KEY });
      assert.equal(adopt.code, 0, adopt.stdout + adopt.stderr);
      const verify = await runCli(['--database-url', sb.url, 'verify'], { env: NO_KEY });
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    } finally {
      await sb.drop();
    }
  });
});

describe('what Supabase’s advisor checks', { timeout: 120_000 }, () => {
  it('every function the migrations create in public has a fixed search_path', async () => {
    const { db, close } = await migratedDb();
    try {
      const { rows } = await db.query<{ fn: string }>(`
SELECT p.oid::regprocedure::text AS fn
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'public'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
  AND NOT coalesce(p.proconfig, '{}') && ARRAY(SELECT c FROM unnest(coalesce(p.proconfig, '{}')) c WHERE c LIKE 'search_path=%')`);
      assert.deepEqual(rows, []);
      const fk = await db.query<{ n: number }>(`
SELECT count(*)::int AS n FROM pg_index x
WHERE x.indrelid = 'public.interactions'::regclass
  AND x.indkey[0] = (SELECT attnum FROM pg_attribute WHERE attrelid = 'public.interactions'::regclass AND attname = 'contact_id')`);
      assert.ok((fk.rows[0]?.n ?? 0) >= 1, 'an index leads with interactions.contact_id');
    } finally {
      await close();
    }
  });
});
