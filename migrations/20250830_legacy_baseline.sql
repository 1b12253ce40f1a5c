-- 20250830_legacy_baseline.sql
--
-- The schema as it was before 2025-08-31 (SPEC §3.1), defects included, so that
-- 20250831_ingest_hardening.sql can be tested on realistic legacy data.
-- Production databases already hold this schema: they are adopted, never migrated with this file.
--
-- Runs inside one transaction, on Supabase, plain PostgreSQL 15+ and PGlite.
-- No `create extension vector` here: the legacy schema stored embeddings as text.

-- On a hardened database the `if not exists` below would quietly bring back a defect
-- (the duplicate index): refuse instead.
do $$
begin
if to_regclass('public.contact_identities') is not null or to_regclass('public.raw_event_errors') is not null then
raise exception '20250830_legacy_baseline must not run on a database that already has 20250831_ingest_hardening'
using hint = 'record both as applied with `omni-ingest migrate --adopt`';
end if;
end
$$;


-- ---------------------------------------------------------------------------
-- Supabase compatibility.
-- Supabase already has the auth schema, auth.users, auth.uid() and the three roles;
-- each piece is created only if absent, so nothing of Supabase's is replaced or altered.
-- Checks go through the catalogs because `create ... if not exists` still demands
-- CREATE privileges that the postgres user may lack on Supabase's auth schema.
-- ---------------------------------------------------------------------------

do $$
begin
if not exists (select 1 from pg_namespace where nspname = 'auth') then
create schema auth;
end if;

if to_regclass('auth.users') is null then
create table auth.users (
id uuid primary key,
email text,
created_at timestamptz default now()
);
end if;

-- Same body as Supabase's: the older per-claim setting first, then the JSON claims.
if not exists (
select 1
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
where n.nspname = 'auth' and p.proname = 'uid'
) then
execute $fn$
create function auth.uid() returns uuid
language sql stable
as $body$
select coalesce(
nullif(current_setting('request.jwt.claim.sub', true), ''),
(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
)::uuid
$body$
$fn$;
end if;
end
$$;

-- Roles are cluster-wide: a migration running at the same moment in another database of the
-- same cluster may create the same role between our check and our CREATE ROLE. The loser gets
-- duplicate_object, or unique_violation on pg_authid's name index; either way the role exists.
do $$
declare
r text;
begin
foreach r in array array['anon', 'authenticated', 'service_role'] loop
if not exists (select 1 from pg_roles where rolname = r) then
begin
execute format('create role %I nologin', r);
exception when duplicate_object or unique_violation then
raise notice 'role % was created concurrently by another session; using it', r;
end;
end if;
end loop;
end
$$;

-- Granted only where we hold the grant option (always on plain PostgreSQL and PGlite);
-- on Supabase these grants exist already and re-granting would only warn.
do $$
begin
if has_schema_privilege('auth', 'USAGE WITH GRANT OPTION') then
grant usage on schema auth to anon, authenticated, service_role;
end if;
if has_function_privilege('auth.uid()', 'EXECUTE WITH GRANT OPTION') then
grant execute on function auth.uid() to anon, authenticated, service_role;
end if;
end
$$;


-- ---------------------------------------------------------------------------
-- The legacy tables.
-- Every timestamp is `timestamp without time zone` holding a UTC wall-clock time
-- (the defect the hardening fixes). No unique constraints besides primary keys, no RLS.
-- ---------------------------------------------------------------------------

create table if not exists public.contacts (
id uuid primary key default gen_random_uuid(),
user_id uuid not null,
display_name text,
primary_email text,
primary_phone text,
source text,
created_at timestamp default (now() at time zone 'utc'),
updated_at timestamp default (now() at time zone 'utc')
);

create table if not exists public.raw_events (
id uuid primary key default gen_random_uuid(),
user_id uuid not null,
provider text,
source_id text,
payload jsonb,
contact_id uuid,
occurred_at timestamp default (now() at time zone 'utc'),
source_meta jsonb,
batch_id uuid,
created_at timestamp default (now() at time zone 'utc')
);

-- Defect: contact_id carries the same foreign key twice (default ON DELETE NO ACTION).
create table if not exists public.interactions (
id uuid primary key default gen_random_uuid(),
user_id uuid not null,
contact_id uuid,
type text,
subject text,
body_text text,
body_raw jsonb,
occurred_at timestamp default (now() at time zone 'utc'),
source text,
source_id text,
source_meta jsonb,
batch_id uuid,
created_at timestamp default (now() at time zone 'utc'),
constraint interactions_contact_id_fkey foreign key (contact_id) references public.contacts (id),
constraint interactions_contact_id_fkey1 foreign key (contact_id) references public.contacts (id)
);

-- Defect: the vector is text holding a JSON-style array, of whatever dimension the model gave.
create table if not exists public.embeddings (
id uuid primary key default gen_random_uuid(),
user_id uuid not null,
owner_type text,
owner_id uuid,
embedding text,
meta jsonb,
created_at timestamp default (now() at time zone 'utc')
);

create table if not exists public.ai_insights (
id uuid primary key default gen_random_uuid(),
user_id uuid not null,
subject_type text,
subject_id uuid,
kind text,
content jsonb,
model text,
created_at timestamp default (now() at time zone 'utc')
);

create table if not exists public.contact_timeline (
id uuid primary key default gen_random_uuid(),
user_id uuid not null,
contact_id uuid,
event_type text,
title text,
description text,
occurred_at timestamp default (now() at time zone 'utc'),
event_data jsonb,
created_at timestamp default (now() at time zone 'utc')
);

create table if not exists public.jobs (
id uuid primary key default gen_random_uuid(),
user_id uuid not null,
kind text,
payload jsonb,
status text default 'queued',
attempts int default 0,
last_error text,
batch_id uuid,
created_at timestamp default (now() at time zone 'utc'),
updated_at timestamp default (now() at time zone 'utc')
);

create table if not exists public.sync_audit (
id uuid primary key default gen_random_uuid(),
user_id uuid not null,
provider text,
action text,
payload jsonb,
created_at timestamp default (now() at time zone 'utc')
);


-- ---------------------------------------------------------------------------
-- Legacy indexes.
-- ---------------------------------------------------------------------------

create index if not exists contacts_user_id_idx on public.contacts (user_id);
create index if not exists interactions_user_id_idx on public.interactions (user_id);

-- Defect: two identical indexes; the hardening drops the first one.
create index if not exists raw_events_user_provider_occurred_idx on public.raw_events (user_id, provider, occurred_at);
create index if not exists raw_events_user_provider_occurred_at_idx on public.raw_events (user_id, provider, occurred_at);
