// A database built the way Supabase builds a project, on the test server: its roles (anon,
// authenticated and service_role NOLOGIN, a non-superuser BYPASSRLS owner like Supabase's
// `postgres`), the auth schema owned by another role with GoTrue's users table and auth.uid()
// reading request.jwt.claim.sub then request.jwt.claims, pgvector installed `with schema
// extensions`, public's default privileges granting the API roles everything, and the owner's
// search_path `"$user", public, extensions`. Server only: roles are cluster-wide. So is
// service_role's BYPASSRLS, which Supabase sets: giving it here would change what every other
// test running on the cluster sees, so verify's acceptance of it is tested inside a transaction
// that is rolled back (test/verify.test.ts).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { serverUrl } from './db.js';

/** The login role the tool connects as: Supabase's `postgres`, which is not a superuser. */
export const OWNER = 'omni_sb_owner';

async function asSuperuser<T>(database: string | undefined, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const u = new URL(serverUrl!);
  if (database) u.pathname = `/${database}`;
  const client = new pg.Client({ connectionString: u.toString() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates each role once per cluster; a test process racing another may lose the CREATE. */
const ROLES = `
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT * FROM (VALUES
    ('anon', 'NOLOGIN'),
    ('authenticated', 'NOLOGIN'),
    ('service_role', 'NOLOGIN'),
    ('supabase_auth_admin', 'NOLOGIN NOINHERIT CREATEROLE'),
    ('${OWNER}', 'LOGIN NOSUPERUSER CREATEROLE CREATEDB BYPASSRLS')) AS v(name, attrs)
  LOOP
    BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.name) THEN
        EXECUTE format('CREATE ROLE %I %s', r.name, r.attrs);
      END IF;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END LOOP;
  -- As on Supabase: the owner may act as the API roles.
  GRANT anon, authenticated, service_role TO ${OWNER};
END $$`;

/** What a new Supabase project holds before any application schema, run as the superuser. */
const PROJECT = `
CREATE SCHEMA extensions;
GRANT USAGE ON SCHEMA extensions TO anon, authenticated, service_role;

CREATE SCHEMA auth AUTHORIZATION supabase_auth_admin;
CREATE TABLE auth.users (
  instance_id uuid, id uuid PRIMARY KEY, aud varchar(255), role varchar(255), email varchar(255),
  encrypted_password varchar(255), email_confirmed_at timestamptz, raw_app_meta_data jsonb,
  raw_user_meta_data jsonb, is_super_admin boolean, created_at timestamptz, updated_at timestamptz,
  phone text, is_anonymous boolean NOT NULL DEFAULT false
);
ALTER TABLE auth.users OWNER TO supabase_auth_admin;
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;
CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $$
  SELECT coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;
ALTER FUNCTION auth.uid() OWNER TO supabase_auth_admin;
ALTER FUNCTION auth.role() OWNER TO supabase_auth_admin;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;

GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE ${OWNER} IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE ${OWNER} IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE ${OWNER} IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
`;

export interface SupabaseDatabase {
  /** The owner's URL, with `options=-c search_path=…` when a search_path was asked for. */
  url: string;
  name: string;
  drop(): Promise<void>;
}

/**
 * A new Supabase-like database. `searchPath` undefined: the owner's own setting (Supabase's);
 * otherwise the connection string sets it, as a pooler string or a role without the setting would.
 * `vector: false`: pgvector not enabled yet; `superuser`: connect as the server's superuser.
 */
export async function supabaseDatabase(searchPath?: string, o: { vector?: boolean; superuser?: boolean } = {}): Promise<SupabaseDatabase> {
  const name = `omni_sb_${process.pid}_${randomBytes(4).toString('hex')}`;
  await asSuperuser(undefined, async (c) => {
    await c.query(ROLES);
    await c.query(`CREATE DATABASE ${name} OWNER ${OWNER}`);
    await c.query(`ALTER ROLE ${OWNER} IN DATABASE ${name} SET search_path = "$user", public, extensions`);
  });
  await asSuperuser(name, async (c) => {
    await c.query(PROJECT);
    // A project with pgvector enabled in the dashboard; without it, migrate must create it.
    if (o.vector !== false) await c.query(`CREATE EXTENSION vector WITH SCHEMA extensions`);
  });
  const u = new URL(serverUrl!);
  // Supabase's own superuser (supabase_admin) where asked; else the owner, as users connect.
  if (!o.superuser) {
    u.username = OWNER;
    u.password = '';
  }
  u.pathname = `/${name}`;
  if (searchPath !== undefined) u.searchParams.set('options', `-c search_path=${searchPath}`);
  return {
    url: u.toString(),
    name,
    drop: () => asSuperuser(undefined, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}
