-- 20250831_ingest_hardening.sql
--
-- Keeps the promises of SPEC §3.2 on a database full of legacy data (the schema of
-- 20250830_legacy_baseline.sql), losing nothing. Runs inside one transaction, once.
-- Section numbers below are those of SPEC §3.2.

create extension if not exists vector;


-- ---------------------------------------------------------------------------
-- Preflight. Checked first, before any table is rewritten, so a refusal is quick.
-- ---------------------------------------------------------------------------

-- Converting the timestamps twice would shift them by the session's UTC offset: refuse a re-run.
do $$
begin
if exists (
select 1
from information_schema.columns
where table_schema = 'public'
and table_name in ('raw_events', 'interactions', 'ai_insights', 'contact_timeline', 'embeddings')
and column_name in ('occurred_at', 'created_at')
and data_type = 'timestamp with time zone'
) then
raise exception '20250831_ingest_hardening has already been applied to this database (ingestion timestamps are timestamptz)'
using hint = 'record it as applied with `omni-ingest migrate --adopt` instead of running it again';
end if;
end
$$;

-- §7: the unique keys on raw_events and interactions must not meet duplicates. They are business
-- data: we refuse and say where they are rather than delete anything. Rows with a null key column
-- are left out, as a unique constraint never compares them. Both tables are checked before
-- refusing, so one run reports everything there is to clean up.
do $$
declare
raw_groups bigint;
interaction_groups bigint;
problems text[] := '{}';
queries text[] := '{}';
begin
select count(*) into raw_groups
from (
select 1
from public.raw_events
where user_id is not null and provider is not null and source_id is not null
group by user_id, provider, source_id
having count(*) > 1
) d;

select count(*) into interaction_groups
from (
select 1
from public.interactions
where user_id is not null and source is not null and source_id is not null
group by user_id, source, source_id
having count(*) > 1
) d;

if raw_groups > 0 then
problems := problems || format('raw_events has %s duplicate key group(s) (rows sharing user_id, provider, source_id)', raw_groups);
queries := queries || 'select user_id, provider, source_id, count(*), array_agg(id order by created_at, id) as ids from public.raw_events where provider is not null and source_id is not null group by 1, 2, 3 having count(*) > 1 order by 4 desc;'::text;
end if;
if interaction_groups > 0 then
problems := problems || format('interactions has %s duplicate key group(s) (rows sharing user_id, source, source_id)', interaction_groups);
queries := queries || 'select user_id, source, source_id, count(*), array_agg(id order by created_at, id) as ids from public.interactions where source is not null and source_id is not null group by 1, 2, 3 having count(*) > 1 order by 4 desc;'::text;
end if;

if cardinality(problems) > 0 then
raise exception 'refusing to add the unique keys raw_events_user_provider_source_key and interactions_user_source_source_id_key: %', array_to_string(problems, '; ')
using errcode = 'unique_violation',
hint = 'nothing was changed; resolve the duplicates, then run the migration again. List them with: ' || array_to_string(queries, ' ');
end if;
end
$$;


-- ---------------------------------------------------------------------------
-- §3. One foreign key on interactions.contact_id; the duplicate index gone.
-- Done before the table rewrites of §1 so the dropped index is not rebuilt for nothing.
-- ---------------------------------------------------------------------------

-- The legacy names are not guaranteed, so every foreign key involving the column goes.
do $$
declare
c record;
begin
for c in
select con.conname
from pg_constraint con
join pg_attribute a on a.attrelid = con.conrelid and a.attnum = any (con.conkey)
where con.conrelid = 'public.interactions'::regclass
and con.contype = 'f'
and a.attname = 'contact_id'
loop
execute format('alter table public.interactions drop constraint %I', c.conname);
end loop;
end
$$;

-- Deleting a contact unlinks its interactions instead of failing (interactions are permanent).
alter table public.interactions
add constraint interactions_contact_id_fkey
foreign key (contact_id) references public.contacts (id) on delete set null;

-- Its twin raw_events_user_provider_occurred_at_idx stays.
drop index if exists public.raw_events_user_provider_occurred_idx;


-- ---------------------------------------------------------------------------
-- §1. Ingestion timestamps become timestamptz.
-- The stored values are UTC wall-clock times: `AT TIME ZONE 'UTC'` reads them as such whatever
-- the session's or the server's TimeZone (a plain cast would use the session's, and would even
-- move times that fall in a DST gap there). The old default, (now() at time zone 'utc'), is a
-- timestamp: it is dropped before the type change so it is never cast, then replaced by now().
-- One ALTER TABLE per table, so each table is rewritten once.
-- ---------------------------------------------------------------------------

alter table public.raw_events
alter column occurred_at drop default,
alter column occurred_at type timestamptz using occurred_at at time zone 'UTC',
alter column occurred_at set default now(),
alter column created_at drop default,
alter column created_at type timestamptz using created_at at time zone 'UTC',
alter column created_at set default now();

alter table public.interactions
alter column occurred_at drop default,
alter column occurred_at type timestamptz using occurred_at at time zone 'UTC',
alter column occurred_at set default now(),
alter column created_at drop default,
alter column created_at type timestamptz using created_at at time zone 'UTC',
alter column created_at set default now();

alter table public.ai_insights
alter column created_at drop default,
alter column created_at type timestamptz using created_at at time zone 'UTC',
alter column created_at set default now();

alter table public.contact_timeline
alter column occurred_at drop default,
alter column occurred_at type timestamptz using occurred_at at time zone 'UTC',
alter column occurred_at set default now(),
alter column created_at drop default,
alter column created_at type timestamptz using created_at at time zone 'UTC',
alter column created_at set default now();

alter table public.embeddings
alter column created_at drop default,
alter column created_at type timestamptz using created_at at time zone 'UTC',
alter column created_at set default now();


-- ---------------------------------------------------------------------------
-- §2. The pgvector column, next to the legacy text one (kept for the backfill, SPEC §10).
-- ---------------------------------------------------------------------------

alter table public.embeddings add column if not exists embedding_v vector(1536);


-- ---------------------------------------------------------------------------
-- §4. Helper tables.
-- ---------------------------------------------------------------------------

-- Canonical identities (email, phone, instagram_id, …) resolving to one contact per user.
create table if not exists public.contact_identities (
id uuid primary key default gen_random_uuid(),
user_id uuid not null,
contact_id uuid not null references public.contacts (id) on delete cascade,
kind text not null,
value text not null,
provider text,
created_at timestamptz not null default now(),
constraint contact_identities_user_kind_value_key unique (user_id, kind, value)
);

-- Foreign keys are not indexed automatically; the cascade from contacts needs this one.
create index if not exists contact_identities_contact_id_idx on public.contact_identities (contact_id);

-- The dead-letter queue. Deliberately no foreign key to raw_events: errors of archived events
-- keep their row and context (SPEC §11).
create table if not exists public.raw_event_errors (
id uuid primary key default gen_random_uuid(),
raw_event_id uuid,
user_id uuid,
provider text,
stage text not null,
error text not null,
context jsonb not null default '{}',
error_at timestamptz not null default now()
);

create index if not exists raw_event_errors_user_provider_stage_error_at_idx on public.raw_event_errors (user_id, provider, stage, error_at desc);
create index if not exists raw_event_errors_raw_event_id_idx on public.raw_event_errors (raw_event_id);


-- ---------------------------------------------------------------------------
-- §5. Idempotency keys: insight fingerprints, embedding chunk keys.
-- ---------------------------------------------------------------------------

-- SHA-256 (hex) of kind|subject_type|subject_id|model|title, nulls as empty strings, UTF-8.
-- The pipeline computes the same string client-side; subject_id renders as uuid::text does.
create or replace function public.ai_insight_fingerprint(kind text, subject_type text, subject_id uuid, model text, title text)
returns text
language sql
immutable
parallel safe
as $$
select encode(sha256(convert_to(
coalesce(kind, '') || '|' || coalesce(subject_type, '') || '|' || coalesce(subject_id::text, '') || '|' || coalesce(model, '') || '|' || coalesce(title, ''),
'UTF8')), 'hex')
$$;

-- The fingerprint is always derived, never trusted from the writer.
create or replace function public.ai_insights_set_fingerprint()
returns trigger
language plpgsql
as $$
begin
new.fingerprint := public.ai_insight_fingerprint(new.kind, new.subject_type, new.subject_id, new.model, new.content ->> 'title');
return new;
end
$$;

alter table public.ai_insights add column if not exists fingerprint text;

update public.ai_insights
set fingerprint = public.ai_insight_fingerprint(kind, subject_type, subject_id, model, content ->> 'title');

create trigger ai_insights_fingerprint_trg
before insert or update on public.ai_insights
for each row execute function public.ai_insights_set_fingerprint();

-- Duplicates among existing insights are resolved keeping the oldest; the others are moved
-- here, with the id of the row they duplicate, rather than lost.
create table if not exists public.ai_insights_duplicates (
id uuid primary key,
user_id uuid not null,
subject_type text,
subject_id uuid,
kind text,
content jsonb,
model text,
created_at timestamptz,
fingerprint text,
duplicate_of uuid,
moved_at timestamptz default now()
);

-- Oldest first by created_at (a null created_at counts as newest), then id to break ties.
with ranked as (
select
i.*,
first_value(i.id) over w as keep_id,
row_number() over w as rank_in_group
from public.ai_insights i
window w as (partition by i.user_id, i.fingerprint order by i.created_at, i.id)
),
moved as (
insert into public.ai_insights_duplicates (id, user_id, subject_type, subject_id, kind, content, model, created_at, fingerprint, duplicate_of)
select id, user_id, subject_type, subject_id, kind, content, model, created_at, fingerprint, keep_id
from ranked
where rank_in_group > 1
returning id
)
delete from public.ai_insights
where id in (select id from moved);

alter table public.ai_insights
alter column fingerprint set not null,
add constraint ai_insights_user_fingerprint_key unique (user_id, fingerprint);

-- Legacy embeddings have no chunk text to hash: their content_hash stays null (nulls never
-- collide in a unique constraint), and each is chunk 0.
alter table public.embeddings
add column if not exists content_hash text,
add column if not exists chunk_index integer not null default 0;

alter table public.embeddings
add constraint embeddings_owner_chunk_key unique (user_id, owner_type, owner_id, content_hash, chunk_index);


-- ---------------------------------------------------------------------------
-- §7. JSONB GIN indexes and the idempotency keys of events and interactions
-- (duplicates were ruled out by the preflight above).
-- ---------------------------------------------------------------------------

create index if not exists raw_events_payload_gin on public.raw_events using gin (payload);
create index if not exists interactions_body_raw_gin on public.interactions using gin (body_raw);

alter table public.raw_events
add constraint raw_events_user_provider_source_key unique (user_id, provider, source_id);

alter table public.interactions
add constraint interactions_user_source_source_id_key unique (user_id, source, source_id);


-- ---------------------------------------------------------------------------
-- §8. Indexes for the timeline, contact lookups and provider debugging.
-- ---------------------------------------------------------------------------

create index if not exists contact_timeline_user_occurred_idx on public.contact_timeline (user_id, occurred_at desc);
create index if not exists interactions_user_occurred_idx on public.interactions (user_id, occurred_at desc);
create index if not exists interactions_user_contact_occurred_idx on public.interactions (user_id, contact_id, occurred_at desc);
create index if not exists contact_timeline_user_contact_occurred_idx on public.contact_timeline (user_id, contact_id, occurred_at desc);
create index if not exists raw_events_user_provider_created_idx on public.raw_events (user_id, provider, created_at desc);


-- ---------------------------------------------------------------------------
-- §6. Row level security.
-- authenticated: read own rows; insert own 'note_added' interactions; nothing else.
-- service_role: everything (on Supabase it also bypasses RLS; on plain PostgreSQL the policy does it).
-- anon and PUBLIC: no policy, no privilege.
-- `(select auth.uid())` is auth.uid() evaluated once per statement instead of once per row.
-- ---------------------------------------------------------------------------

do $$
declare
t text;
begin
foreach t in array array[
'contacts', 'raw_events', 'interactions', 'embeddings', 'ai_insights',
'contact_timeline', 'jobs', 'sync_audit', 'contact_identities', 'raw_event_errors'
] loop
execute format('alter table public.%I enable row level security', t);
execute format('create policy %I on public.%I for select to authenticated using (user_id = (select auth.uid()))', t || '_select_own', t);
execute format('create policy %I on public.%I for all to service_role using (true) with check (true)', t || '_service_role_all', t);
end loop;
end
$$;

create policy interactions_insert_own_note on public.interactions
for insert to authenticated
with check (user_id = (select auth.uid()) and type = 'note_added');

alter table public.ai_insights_duplicates enable row level security;
create policy ai_insights_duplicates_service_role_all on public.ai_insights_duplicates
for all to service_role using (true) with check (true);

-- Privileges. Plain PostgreSQL grants nothing by default; Supabase grants everything on public
-- tables to anon and authenticated, so those are revoked first and only what the policies
-- need is given back.
grant usage on schema public to authenticated, service_role;

revoke all on
public.contacts, public.raw_events, public.interactions, public.embeddings, public.ai_insights,
public.contact_timeline, public.jobs, public.sync_audit, public.contact_identities, public.raw_event_errors,
public.ai_insights_duplicates
from public, anon, authenticated;

grant select on
public.contacts, public.raw_events, public.interactions, public.embeddings, public.ai_insights,
public.contact_timeline, public.jobs, public.sync_audit, public.contact_identities, public.raw_event_errors
to authenticated;

grant insert on public.interactions to authenticated;

grant all on
public.contacts, public.raw_events, public.interactions, public.embeddings, public.ai_insights,
public.contact_timeline, public.jobs, public.sync_audit, public.contact_identities, public.raw_event_errors,
public.ai_insights_duplicates
to service_role;
