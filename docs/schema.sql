-- The schema the migrations produce (npm run schema:dump). Do not edit: change a migration.

-- tables

auth.users
  id uuid not null
  email text
  created_at timestamp with time zone default now()

omni_ingest.archive_batches
  id uuid not null default gen_random_uuid()
  target text not null
  prefix text not null
  state text not null default 'planned'::text
  cutoff timestamp with time zone not null
  user_id uuid
  provider text
  lo uuid
  hi uuid
  rows bigint not null default 0
  bytes bigint not null default 0
  parts jsonb not null default '[]'::jsonb
  manifest_uri text
  deleted_rows bigint not null default 0
  kept_rows bigint not null default 0
  leased_by text
  lease_until timestamp with time zone
  run_id uuid
  error text
  planned_at timestamp with time zone not null default now()
  written_at timestamp with time zone
  verified_at timestamp with time zone
  deleted_at timestamp with time zone
  restored_at timestamp with time zone

omni_ingest.archived_events
  raw_event_id uuid not null
  batch_id uuid not null
  row_xmin xid

omni_ingest.embed_batches
  id uuid not null default gen_random_uuid()
  state text not null default 'preparing'::text
  provider text not null
  model text not null
  dimensions integer
  item_ids uuid[] not null default '{}'::uuid[]
  custom_ids text[] not null default '{}'::text[]
  tokens bigint not null default 0
  bytes bigint not null default 0
  attempts integer not null default 0
  input_file_id text
  provider_batch_id text
  provider_status text
  output_file_id text
  error_file_id text
  claimed_by text
  claimed_until timestamp with time zone
  run_id uuid
  last_run_id uuid
  error text
  created_at timestamp with time zone not null default now()
  submitted_at timestamp with time zone
  polled_at timestamp with time zone
  finished_at timestamp with time zone

omni_ingest.embedding_backfill_ranges
  pass integer not null
  seq integer not null
  lo uuid
  hi uuid
  cursor uuid
  rows_planned bigint not null default 0
  rows_examined bigint not null default 0
  planned_at timestamp with time zone not null default now()
  done_at timestamp with time zone

omni_ingest.embedding_legacy_rejects
  embedding_id uuid not null
  kind text not null
  dimensions integer
  legacy_md5 text not null
  found_at timestamp with time zone not null default now()

omni_ingest.normalize_queue
  raw_event_id uuid not null
  user_id uuid not null
  provider text
  occurred_at timestamp with time zone
  enqueued_at timestamp with time zone not null default now()

omni_ingest.pipeline_contacts
  contact_id uuid not null
  user_id uuid not null
  created_at timestamp with time zone not null default now()

omni_ingest.runs
  id uuid not null default gen_random_uuid()
  command text not null
  args jsonb not null default '{}'::jsonb
  status text not null default 'running'::text
  stop_reason text
  checkpoint jsonb
  counts jsonb not null default '{}'::jsonb
  host text
  pid integer
  started_at timestamp with time zone not null default now()
  heartbeat_at timestamp with time zone not null default now()
  finished_at timestamp with time zone
  error text
  resumed_by uuid

omni_ingest.schema_migrations
  name text not null
  checksum text not null
  applied_at timestamp with time zone not null default now()
  duration_ms integer
  applied_by text
  adopted boolean not null default false

omni_ingest.work_queue
  stage text not null
  item_id uuid not null
  user_id uuid not null
  provider text
  occurred_at timestamp with time zone
  enqueued_at timestamp with time zone not null default now()
  claimed_by text
  claimed_until timestamp with time zone
  attempts integer not null default 0

public.ai_insights (row level security)
  id uuid not null default gen_random_uuid()
  user_id uuid not null
  subject_type text
  subject_id uuid
  kind text
  content jsonb
  model text
  created_at timestamp with time zone default now()
  fingerprint text not null
  expires_at timestamp with time zone default (now() + '1 year'::interval)
  source_digest text

public.ai_insights_duplicates (row level security)
  id uuid not null
  user_id uuid not null
  subject_type text
  subject_id uuid
  kind text
  content jsonb
  model text
  created_at timestamp with time zone
  fingerprint text
  duplicate_of uuid
  moved_at timestamp with time zone default now()

public.contact_identities (row level security)
  id uuid not null default gen_random_uuid()
  user_id uuid not null
  contact_id uuid not null
  kind text not null
  value text not null
  provider text
  created_at timestamp with time zone not null default now()

public.contact_timeline (row level security)
  id uuid not null default gen_random_uuid()
  user_id uuid not null
  contact_id uuid
  event_type text
  title text
  description text
  occurred_at timestamp with time zone default now()
  event_data jsonb
  created_at timestamp with time zone default now()
  source_type text
  source_id uuid

public.contacts (row level security)
  id uuid not null default gen_random_uuid()
  user_id uuid not null
  display_name text
  primary_email text
  primary_phone text
  source text
  created_at timestamp without time zone default (now() AT TIME ZONE 'utc'::text)
  updated_at timestamp without time zone default (now() AT TIME ZONE 'utc'::text)

public.embeddings (row level security)
  id uuid not null default gen_random_uuid()
  user_id uuid not null
  owner_type text
  owner_id uuid
  embedding text
  meta jsonb
  created_at timestamp with time zone default now()
  embedding_v vector(1536)
  content_hash text
  chunk_index integer not null default 0

public.interactions (row level security)
  id uuid not null default gen_random_uuid()
  user_id uuid not null
  contact_id uuid
  type text
  subject text
  body_text text
  body_raw jsonb
  occurred_at timestamp with time zone default now()
  source text
  source_id text
  source_meta jsonb
  batch_id uuid
  created_at timestamp with time zone default now()
  raw_event_id uuid

public.jobs (row level security)
  id uuid not null default gen_random_uuid()
  user_id uuid not null
  kind text
  payload jsonb
  status text default 'queued'::text
  attempts integer default 0
  last_error text
  batch_id uuid
  created_at timestamp without time zone default (now() AT TIME ZONE 'utc'::text)
  updated_at timestamp without time zone default (now() AT TIME ZONE 'utc'::text)

public.raw_event_errors (row level security)
  id uuid not null default omni_ingest.uuid_in_time_order()
  raw_event_id uuid
  user_id uuid
  provider text
  stage text not null
  error text not null
  context jsonb not null default '{}'::jsonb
  error_at timestamp with time zone not null default now()
  status text not null default 'open'::text
  attempts integer not null default 1
  first_seen timestamp with time zone not null default now()
  last_seen timestamp with time zone not null default now()
  closed_at timestamp with time zone
  closed_by uuid
  close_reason text
  signature text default omni_ingest.error_signature(stage, provider, error)
  item_id uuid default omni_ingest.error_item_id(stage, raw_event_id, context)
  item_key text default omni_ingest.error_item_key(stage, id, raw_event_id, user_id, provider, context)
  source_id text default (context ->> 'source_id'::text)

public.raw_events (row level security)
  id uuid not null default gen_random_uuid()
  user_id uuid not null
  provider text
  source_id text
  payload jsonb
  contact_id uuid
  occurred_at timestamp with time zone default now()
  source_meta jsonb
  batch_id uuid
  created_at timestamp with time zone default now()

public.sync_audit (row level security)
  id uuid not null default gen_random_uuid()
  user_id uuid not null
  provider text
  action text
  payload jsonb
  created_at timestamp without time zone default (now() AT TIME ZONE 'utc'::text)

-- constraints

auth.users users_pkey PRIMARY KEY (id)

omni_ingest.archive_batches archive_batches_pkey PRIMARY KEY (id)

omni_ingest.archive_batches archive_batches_state_check CHECK ((state = ANY (ARRAY['planned'::text, 'written'::text, 'verified'::text, 'deleted'::text, 'restored'::text])))

omni_ingest.archived_events archived_events_pkey PRIMARY KEY (raw_event_id)

omni_ingest.embed_batches embed_batches_pkey PRIMARY KEY (id)

omni_ingest.embed_batches embed_batches_state_check CHECK ((state = ANY (ARRAY['preparing'::text, 'uploaded'::text, 'submitted'::text, 'done'::text, 'failed'::text])))

omni_ingest.embedding_backfill_ranges embedding_backfill_ranges_pkey PRIMARY KEY (pass, seq)

omni_ingest.embedding_legacy_rejects embedding_legacy_rejects_kind_check CHECK ((kind = ANY (ARRAY['wrong_dimension'::text, 'malformed'::text, 'non_finite'::text])))

omni_ingest.embedding_legacy_rejects embedding_legacy_rejects_pkey PRIMARY KEY (embedding_id)

omni_ingest.normalize_queue normalize_queue_pkey PRIMARY KEY (raw_event_id)

omni_ingest.pipeline_contacts pipeline_contacts_contact_id_fkey FOREIGN KEY (contact_id) REFERENCES contacts(id) ON DELETE CASCADE

omni_ingest.pipeline_contacts pipeline_contacts_pkey PRIMARY KEY (contact_id)

omni_ingest.runs runs_pkey PRIMARY KEY (id)

omni_ingest.runs runs_status_check CHECK ((status = ANY (ARRAY['running'::text, 'succeeded'::text, 'incomplete'::text, 'failed'::text, 'stopped'::text, 'abandoned'::text])))

omni_ingest.schema_migrations schema_migrations_pkey PRIMARY KEY (name)

omni_ingest.work_queue work_queue_pkey PRIMARY KEY (stage, item_id)

omni_ingest.work_queue work_queue_stage_check CHECK ((stage = ANY (ARRAY['resolve'::text, 'embed'::text, 'insights'::text, 'timeline'::text, 'timeline_insight'::text, 'swap_reembed'::text])))

public.ai_insights ai_insights_pkey PRIMARY KEY (id)

public.ai_insights ai_insights_user_fingerprint_key UNIQUE (user_id, fingerprint)

public.ai_insights_duplicates ai_insights_duplicates_pkey PRIMARY KEY (id)

public.contact_identities contact_identities_contact_id_fkey FOREIGN KEY (contact_id) REFERENCES contacts(id) ON DELETE CASCADE

public.contact_identities contact_identities_pkey PRIMARY KEY (id)

public.contact_identities contact_identities_user_kind_value_key UNIQUE (user_id, kind, value)

public.contact_timeline contact_timeline_pkey PRIMARY KEY (id)

public.contact_timeline contact_timeline_source_key UNIQUE (user_id, source_type, source_id)

public.contacts contacts_pkey PRIMARY KEY (id)

public.embeddings embeddings_owner_chunk_key UNIQUE (user_id, owner_type, owner_id, content_hash, chunk_index)

public.embeddings embeddings_pkey PRIMARY KEY (id)

public.interactions interactions_contact_id_fkey FOREIGN KEY (contact_id) REFERENCES contacts(id) ON DELETE SET NULL

public.interactions interactions_pkey PRIMARY KEY (id)

public.interactions interactions_user_source_source_id_key UNIQUE (user_id, source, source_id)

public.jobs jobs_pkey PRIMARY KEY (id)

public.raw_event_errors raw_event_errors_attempts_check CHECK ((attempts >= 1))

public.raw_event_errors raw_event_errors_closed_check CHECK (((status = 'open'::text) = (closed_at IS NULL)))

public.raw_event_errors raw_event_errors_pkey PRIMARY KEY (id)

public.raw_event_errors raw_event_errors_status_check CHECK ((status = ANY (ARRAY['open'::text, 'resolved'::text, 'discarded'::text])))

public.raw_events raw_events_pkey PRIMARY KEY (id)

public.raw_events raw_events_user_provider_source_key UNIQUE (user_id, provider, source_id)

public.sync_audit sync_audit_pkey PRIMARY KEY (id)

-- indexes

CREATE UNIQUE INDEX users_pkey ON auth.users USING btree (id)

CREATE INDEX archive_batches_open_idx ON omni_ingest.archive_batches USING btree (target, planned_at) WHERE (state = ANY (ARRAY['planned'::text, 'written'::text, 'verified'::text]))

CREATE UNIQUE INDEX archive_batches_pkey ON omni_ingest.archive_batches USING btree (id)

CREATE INDEX archived_events_batch_idx ON omni_ingest.archived_events USING btree (batch_id, raw_event_id)

CREATE UNIQUE INDEX archived_events_pkey ON omni_ingest.archived_events USING btree (raw_event_id)

CREATE INDEX embed_batches_open_idx ON omni_ingest.embed_batches USING btree (provider, model, created_at) WHERE (state = ANY (ARRAY['preparing'::text, 'uploaded'::text, 'submitted'::text]))

CREATE UNIQUE INDEX embed_batches_pkey ON omni_ingest.embed_batches USING btree (id)

CREATE UNIQUE INDEX embedding_backfill_ranges_pkey ON omni_ingest.embedding_backfill_ranges USING btree (pass, seq)

CREATE UNIQUE INDEX embedding_legacy_rejects_pkey ON omni_ingest.embedding_legacy_rejects USING btree (embedding_id)

CREATE INDEX normalize_queue_order_idx ON omni_ingest.normalize_queue USING btree (occurred_at, raw_event_id)

CREATE UNIQUE INDEX normalize_queue_pkey ON omni_ingest.normalize_queue USING btree (raw_event_id)

CREATE UNIQUE INDEX pipeline_contacts_pkey ON omni_ingest.pipeline_contacts USING btree (contact_id)

CREATE INDEX runs_command_started_idx ON omni_ingest.runs USING btree (command, started_at DESC)

CREATE UNIQUE INDEX runs_pkey ON omni_ingest.runs USING btree (id)

CREATE INDEX runs_running_command_idx ON omni_ingest.runs USING btree (command, host) WHERE (status = 'running'::text)

CREATE INDEX runs_running_idx ON omni_ingest.runs USING btree (heartbeat_at) WHERE (status = 'running'::text)

CREATE UNIQUE INDEX schema_migrations_pkey ON omni_ingest.schema_migrations USING btree (name)

CREATE INDEX work_queue_order_idx ON omni_ingest.work_queue USING btree (stage, occurred_at, item_id)

CREATE UNIQUE INDEX work_queue_pkey ON omni_ingest.work_queue USING btree (stage, item_id)

CREATE UNIQUE INDEX ai_insights_duplicates_pkey ON public.ai_insights_duplicates USING btree (id)

CREATE INDEX ai_insights_expires_idx ON public.ai_insights USING btree (expires_at)

CREATE UNIQUE INDEX ai_insights_pkey ON public.ai_insights USING btree (id)

CREATE INDEX ai_insights_subject_idx ON public.ai_insights USING btree (user_id, subject_type, subject_id, model)

CREATE UNIQUE INDEX ai_insights_user_fingerprint_key ON public.ai_insights USING btree (user_id, fingerprint)

CREATE INDEX contact_identities_contact_id_idx ON public.contact_identities USING btree (contact_id)

CREATE UNIQUE INDEX contact_identities_pkey ON public.contact_identities USING btree (id)

CREATE UNIQUE INDEX contact_identities_user_kind_value_key ON public.contact_identities USING btree (user_id, kind, value)

CREATE UNIQUE INDEX contact_timeline_pkey ON public.contact_timeline USING btree (id)

CREATE UNIQUE INDEX contact_timeline_source_key ON public.contact_timeline USING btree (user_id, source_type, source_id)

CREATE INDEX contact_timeline_user_contact_occurred_idx ON public.contact_timeline USING btree (user_id, contact_id, occurred_at DESC)

CREATE INDEX contact_timeline_user_occurred_idx ON public.contact_timeline USING btree (user_id, occurred_at DESC)

CREATE UNIQUE INDEX contacts_pkey ON public.contacts USING btree (id)

CREATE INDEX contacts_user_id_idx ON public.contacts USING btree (user_id)

CREATE UNIQUE INDEX embeddings_owner_chunk_key ON public.embeddings USING btree (user_id, owner_type, owner_id, content_hash, chunk_index)

CREATE INDEX embeddings_owner_idx ON public.embeddings USING btree (owner_type, owner_id)

CREATE UNIQUE INDEX embeddings_pkey ON public.embeddings USING btree (id)

CREATE INDEX interactions_body_raw_gin ON public.interactions USING gin (body_raw)

CREATE INDEX interactions_contact_id_idx ON public.interactions USING btree (contact_id)

CREATE UNIQUE INDEX interactions_pkey ON public.interactions USING btree (id)

CREATE INDEX interactions_raw_event_idx ON public.interactions USING btree (raw_event_id)

CREATE INDEX interactions_user_contact_occurred_idx ON public.interactions USING btree (user_id, contact_id, occurred_at DESC)

CREATE INDEX interactions_user_id_idx ON public.interactions USING btree (user_id)

CREATE INDEX interactions_user_occurred_idx ON public.interactions USING btree (user_id, occurred_at DESC)

CREATE UNIQUE INDEX interactions_user_source_source_id_key ON public.interactions USING btree (user_id, source, source_id)

CREATE UNIQUE INDEX jobs_pkey ON public.jobs USING btree (id)

CREATE INDEX raw_event_errors_groups_idx ON public.raw_event_errors USING btree (status, signature, user_id) INCLUDE (last_seen, first_seen)

CREATE INDEX raw_event_errors_list_idx ON public.raw_event_errors USING btree (status, last_seen DESC, id DESC)

CREATE INDEX raw_event_errors_open_item_idx ON public.raw_event_errors USING btree (stage, item_id) WHERE (status = 'open'::text)

CREATE UNIQUE INDEX raw_event_errors_open_item_key ON public.raw_event_errors USING btree (stage, item_key) WHERE (status = 'open'::text)

CREATE UNIQUE INDEX raw_event_errors_pkey ON public.raw_event_errors USING btree (id)

CREATE INDEX raw_event_errors_raw_event_id_idx ON public.raw_event_errors USING btree (raw_event_id)

CREATE INDEX raw_event_errors_source_idx ON public.raw_event_errors USING btree (provider, source_id) WHERE (source_id IS NOT NULL)

CREATE INDEX raw_event_errors_user_provider_stage_error_at_idx ON public.raw_event_errors USING btree (user_id, provider, stage, error_at DESC)

CREATE INDEX raw_events_payload_gin ON public.raw_events USING gin (payload)

CREATE UNIQUE INDEX raw_events_pkey ON public.raw_events USING btree (id)

CREATE INDEX raw_events_user_provider_created_idx ON public.raw_events USING btree (user_id, provider, created_at DESC)

CREATE INDEX raw_events_user_provider_occurred_at_idx ON public.raw_events USING btree (user_id, provider, occurred_at)

CREATE UNIQUE INDEX raw_events_user_provider_source_key ON public.raw_events USING btree (user_id, provider, source_id)

CREATE UNIQUE INDEX sync_audit_pkey ON public.sync_audit USING btree (id)

-- triggers

CREATE TRIGGER archive_batches_drop_claims AFTER DELETE ON omni_ingest.archive_batches REFERENCING OLD TABLE AS old_batches FOR EACH STATEMENT EXECUTE FUNCTION omni_ingest.archive_batches_drop_claims()

CREATE TRIGGER ai_insights_enqueue_new AFTER INSERT ON public.ai_insights REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION omni_ingest.enqueue_new_insights()

CREATE TRIGGER ai_insights_fingerprint_trg BEFORE INSERT OR UPDATE ON public.ai_insights FOR EACH ROW EXECUTE FUNCTION ai_insights_set_fingerprint()

CREATE TRIGGER interactions_enqueue_changed AFTER UPDATE ON public.interactions REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION omni_ingest.enqueue_changed_interactions()

CREATE TRIGGER interactions_enqueue_new AFTER INSERT ON public.interactions REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION omni_ingest.enqueue_new_interactions()

CREATE TRIGGER raw_events_enqueue_normalize AFTER INSERT ON public.raw_events REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION omni_ingest.enqueue_raw_events()

-- functions

CREATE OR REPLACE FUNCTION auth.uid()
 RETURNS uuid
 LANGUAGE sql
 STABLE
AS $function$
select coalesce(
nullif(current_setting('request.jwt.claim.sub', true), ''),
(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
)::uuid
$function$

CREATE OR REPLACE FUNCTION omni_ingest.archive_batches_drop_claims()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
begin
delete from omni_ingest.archived_events a
using old_batches b
where a.batch_id = b.id;
return null;
end
$function$

CREATE OR REPLACE FUNCTION omni_ingest.embeddings_sync_legacy()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
begin
if tg_op = 'INSERT' then
if new.embedding is not null and new.embedding_v is null then
new.embedding_v := omni_ingest.legacy_vector(new.embedding);
end if;
elsif new.embedding is distinct from old.embedding and new.embedding_v is not distinct from old.embedding_v then
new.embedding_v := omni_ingest.legacy_vector(new.embedding);
end if;
return new;
end
$function$

CREATE OR REPLACE FUNCTION omni_ingest.embeddings_sync_vector()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
begin
if tg_op = 'INSERT' then
if new.embedding is not null and new.embedding_legacy is null then
new.embedding_legacy := new.embedding::text;
elsif new.embedding is null and new.embedding_legacy is not null then
new.embedding := omni_ingest.legacy_vector(new.embedding_legacy);
end if;
elsif new.embedding is distinct from old.embedding and new.embedding_legacy is not distinct from old.embedding_legacy then
new.embedding_legacy := new.embedding::text;
elsif new.embedding_legacy is distinct from old.embedding_legacy and new.embedding is not distinct from old.embedding then
new.embedding := omni_ingest.legacy_vector(new.embedding_legacy);
end if;
return new;
end
$function$

CREATE OR REPLACE FUNCTION omni_ingest.enqueue_changed_interactions()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
begin
insert into omni_ingest.work_queue (stage, item_id, user_id, provider, occurred_at)
select 'embed', n.id, n.user_id, n.source, n.occurred_at
from new_rows n
join old_rows o on o.id = n.id
where (n.subject, n.body_text) is distinct from (o.subject, o.body_text)
on conflict (stage, item_id) do update
set enqueued_at = now(), claimed_by = null, claimed_until = null;

insert into omni_ingest.work_queue (stage, item_id, user_id, provider, occurred_at)
select 'timeline', n.id, n.user_id, n.source, n.occurred_at
from new_rows n
join old_rows o on o.id = n.id
join public.contacts c on c.id = n.contact_id and c.user_id = n.user_id
where (n.contact_id is distinct from o.contact_id or (n.subject, n.type, n.occurred_at) is distinct from (o.subject, o.type, o.occurred_at))
on conflict (stage, item_id) do update
set enqueued_at = now(), claimed_by = null, claimed_until = null;

insert into omni_ingest.work_queue (stage, item_id, user_id, occurred_at)
select 'insights', n.contact_id, n.user_id, max(n.occurred_at)
from new_rows n
join old_rows o on o.id = n.id
join public.contacts c on c.id = n.contact_id and c.user_id = n.user_id
where (n.contact_id is distinct from o.contact_id or (n.subject, n.body_text) is distinct from (o.subject, o.body_text))
group by n.contact_id, n.user_id
on conflict (stage, item_id) do update
set enqueued_at = now(), claimed_by = null, claimed_until = null;
return null;
end
$function$

CREATE OR REPLACE FUNCTION omni_ingest.enqueue_new_insights()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
begin
insert into omni_ingest.work_queue (stage, item_id, user_id, occurred_at)
select 'timeline_insight', n.id, n.user_id, n.created_at
from new_rows n
where n.subject_type = 'contact'
on conflict (stage, item_id) do update
set enqueued_at = now(), claimed_by = null, claimed_until = null;
return null;
end
$function$

CREATE OR REPLACE FUNCTION omni_ingest.enqueue_new_interactions()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
begin
insert into omni_ingest.work_queue (stage, item_id, user_id, provider, occurred_at)
select s.stage, n.id, n.user_id, n.source, n.occurred_at
from new_rows n
left join public.contacts c on c.id = n.contact_id and c.user_id = n.user_id
cross join lateral (
select 'embed'::text as stage
union all select 'resolve' where n.contact_id is null
union all select 'timeline' where c.id is not null
) s
on conflict (stage, item_id) do update
set enqueued_at = now(), claimed_by = null, claimed_until = null;
-- The contact of a linked interaction has something new for insights: only the user's own contact.
insert into omni_ingest.work_queue (stage, item_id, user_id, occurred_at)
select 'insights', n.contact_id, n.user_id, max(n.occurred_at)
from new_rows n
join public.contacts c on c.id = n.contact_id and c.user_id = n.user_id
group by n.contact_id, n.user_id
on conflict (stage, item_id) do update
set enqueued_at = now(), claimed_by = null, claimed_until = null;
return null;
end
$function$

CREATE OR REPLACE FUNCTION omni_ingest.enqueue_raw_events()
 RETURNS trigger
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
begin
insert into omni_ingest.normalize_queue (raw_event_id, user_id, provider, occurred_at)
select n.id, n.user_id, n.provider, n.occurred_at
from new_rows n
on conflict (raw_event_id) do nothing;
return null;
end
$function$

CREATE OR REPLACE FUNCTION omni_ingest.error_item_id(stage text, raw_event_id uuid, context jsonb)
 RETURNS uuid
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
select case stage
when 'normalize' then raw_event_id
when 'embed' then omni_ingest.uuid_or_null(context ->> 'interaction_id')
when 'insights' then omni_ingest.uuid_or_null(context ->> 'contact_id')
else raw_event_id
end
$function$

CREATE OR REPLACE FUNCTION omni_ingest.error_item_key(stage text, id uuid, raw_event_id uuid, user_id uuid, provider text, context jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
select case
when stage = 'import' then coalesce(user_id::text, '') || '/' || coalesce(provider, '') || '/' || coalesce(
  'sha256:' || (context -> 'record' ->> 'sha256'),
  'line:' || (context ->> 'file') || ':' || (context ->> 'line'),
  id::text)
when stage = 'normalize' and raw_event_id is not null then
  raw_event_id::text || coalesce('/' || (context ->> 'item'), '')
when stage = 'embed' and context ? 'interaction_id' then
  (context ->> 'interaction_id') || '/' || coalesce(context ->> 'chunk_index', '')
when stage = 'insights' and context ? 'contact_id' then context ->> 'contact_id'
else id::text
end
$function$

CREATE OR REPLACE FUNCTION omni_ingest.error_pattern(message text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
select left(btrim(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
coalesce(message, ''),
$q$"(\\.|[^"\\])*"|(?<![A-Za-z])'[^']*'|`[^`]*`$q$, '?', 'g'),
'[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}', '<email>', 'g'),
'[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}', '<uuid>', 'g'),
'\m(?=[A-Za-z_]*[0-9])[A-Za-z0-9_]{8,}\M', '<id>', 'g'),
'[0-9]+', '#', 'g'),
'\s+', ' ', 'g')), 300)
$function$

CREATE OR REPLACE FUNCTION omni_ingest.error_signature(stage text, provider text, message text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
select left(md5(coalesce(stage, '') || chr(1) || coalesce(provider, '') || chr(1) || omni_ingest.error_pattern(message)), 16)
$function$

CREATE OR REPLACE FUNCTION omni_ingest.legacy_embedding_differs(legacy text, vec vector, tolerance double precision)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'public', 'pg_temp'
AS $function$
declare
lv public.vector := omni_ingest.legacy_vector(legacy);
begin
if lv is null or vec is null then
return false;
end if;
if vector_dims(lv) <> vector_dims(vec) then
return true;
end if;
if lv = vec then
return false;
end if;
return exists (
select 1
from unnest(lv::real[], vec::real[]) as x(a, b)
where abs(a::double precision - b::double precision) > tolerance
);
end
$function$

CREATE OR REPLACE FUNCTION omni_ingest.legacy_embedding_kind(legacy text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
declare
v public.vector;
begin
if legacy is null then
return 'null';
end if;
begin
v := legacy::public.vector(1536);
return 'valid';
exception
when numeric_value_out_of_range then
return 'non_finite';
when others then
null;
end;
if legacy ~* '\m(nan|inf|infinity)\M' then
return 'non_finite';
end if;
if legacy !~ '^\s*\[\s*([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(\s*,\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)*)?\s*\]\s*$' then
return 'malformed';
end if;
return 'wrong_dimension';
end
$function$

CREATE OR REPLACE FUNCTION omni_ingest.legacy_vector(legacy text)
 RETURNS vector
 LANGUAGE plpgsql
 IMMUTABLE PARALLEL SAFE STRICT
AS $function$
begin
return legacy::public.vector(1536);
exception when others then
return null;
end
$function$

CREATE OR REPLACE FUNCTION omni_ingest.uuid_in_time_order()
 RETURNS uuid
 LANGUAGE sql
 PARALLEL SAFE
 SET search_path TO ''
AS $function$
select encode(
  set_bit(set_bit(
    overlay(uuid_send(gen_random_uuid())
      placing substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
      from 1 for 6),
  52, 1), 53, 1),
  'hex')::uuid
$function$

CREATE OR REPLACE FUNCTION omni_ingest.uuid_or_null(value text)
 RETURNS uuid
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
select case when value ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then value::uuid end
$function$

CREATE OR REPLACE FUNCTION public.ai_insight_fingerprint(kind text, subject_type text, subject_id uuid, model text, title text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
 SET search_path TO ''
AS $function$
select encode(sha256(convert_to(
coalesce(kind, '') || '|' || coalesce(subject_type, '') || '|' || coalesce(subject_id::text, '') || '|' || coalesce(model, '') || '|' || coalesce(title, ''),
'UTF8')), 'hex')
$function$

CREATE OR REPLACE FUNCTION public.ai_insights_set_fingerprint()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO ''
AS $function$
begin
new.fingerprint := public.ai_insight_fingerprint(new.kind, new.subject_type, new.subject_id, new.model, new.content ->> 'title');
return new;
end
$function$

-- policies

public.ai_insights ai_insights_select_own PERMISSIVE SELECT to authenticated using ((user_id = ( SELECT auth.uid() AS uid))) with check (-)

public.ai_insights ai_insights_service_role_all PERMISSIVE ALL to service_role using (true) with check (true)

public.ai_insights_duplicates ai_insights_duplicates_service_role_all PERMISSIVE ALL to service_role using (true) with check (true)

public.contact_identities contact_identities_select_own PERMISSIVE SELECT to authenticated using ((user_id = ( SELECT auth.uid() AS uid))) with check (-)

public.contact_identities contact_identities_service_role_all PERMISSIVE ALL to service_role using (true) with check (true)

public.contact_timeline contact_timeline_select_own PERMISSIVE SELECT to authenticated using ((user_id = ( SELECT auth.uid() AS uid))) with check (-)

public.contact_timeline contact_timeline_service_role_all PERMISSIVE ALL to service_role using (true) with check (true)

public.contacts contacts_select_own PERMISSIVE SELECT to authenticated using ((user_id = ( SELECT auth.uid() AS uid))) with check (-)

public.contacts contacts_service_role_all PERMISSIVE ALL to service_role using (true) with check (true)

public.embeddings embeddings_select_own PERMISSIVE SELECT to authenticated using ((user_id = ( SELECT auth.uid() AS uid))) with check (-)

public.embeddings embeddings_service_role_all PERMISSIVE ALL to service_role using (true) with check (true)

public.interactions interactions_insert_own_note PERMISSIVE INSERT to authenticated using (-) with check (((user_id = ( SELECT auth.uid() AS uid)) AND (type = 'note_added'::text)))

public.interactions interactions_select_own PERMISSIVE SELECT to authenticated using ((user_id = ( SELECT auth.uid() AS uid))) with check (-)

public.interactions interactions_service_role_all PERMISSIVE ALL to service_role using (true) with check (true)

public.jobs jobs_select_own PERMISSIVE SELECT to authenticated using ((user_id = ( SELECT auth.uid() AS uid))) with check (-)

public.jobs jobs_service_role_all PERMISSIVE ALL to service_role using (true) with check (true)

public.raw_event_errors raw_event_errors_select_own PERMISSIVE SELECT to authenticated using ((user_id = ( SELECT auth.uid() AS uid))) with check (-)

public.raw_event_errors raw_event_errors_service_role_all PERMISSIVE ALL to service_role using (true) with check (true)

public.raw_events raw_events_select_own PERMISSIVE SELECT to authenticated using ((user_id = ( SELECT auth.uid() AS uid))) with check (-)

public.raw_events raw_events_service_role_all PERMISSIVE ALL to service_role using (true) with check (true)

public.sync_audit sync_audit_select_own PERMISSIVE SELECT to authenticated using ((user_id = ( SELECT auth.uid() AS uid))) with check (-)

public.sync_audit sync_audit_service_role_all PERMISSIVE ALL to service_role using (true) with check (true)

-- grants

function auth.uid() to PUBLIC: EXECUTE

function auth.uid() to anon: EXECUTE

function auth.uid() to authenticated: EXECUTE

function auth.uid() to service_role: EXECUTE

function omni_ingest.archive_batches_drop_claims() to PUBLIC: EXECUTE

function omni_ingest.embeddings_sync_legacy() to PUBLIC: EXECUTE

function omni_ingest.embeddings_sync_vector() to PUBLIC: EXECUTE

function omni_ingest.enqueue_changed_interactions() to PUBLIC: EXECUTE

function omni_ingest.enqueue_new_insights() to PUBLIC: EXECUTE

function omni_ingest.enqueue_new_interactions() to PUBLIC: EXECUTE

function omni_ingest.enqueue_raw_events() to PUBLIC: EXECUTE

function omni_ingest.error_item_id(stage text, raw_event_id uuid, context jsonb) to PUBLIC: EXECUTE

function omni_ingest.error_item_key(stage text, id uuid, raw_event_id uuid, user_id uuid, provider text, context jsonb) to PUBLIC: EXECUTE

function omni_ingest.error_pattern(message text) to PUBLIC: EXECUTE

function omni_ingest.error_signature(stage text, provider text, message text) to PUBLIC: EXECUTE

function omni_ingest.legacy_embedding_differs(legacy text, vec vector, tolerance double precision) to PUBLIC: EXECUTE

function omni_ingest.legacy_embedding_kind(legacy text) to PUBLIC: EXECUTE

function omni_ingest.legacy_vector(legacy text) to PUBLIC: EXECUTE

function omni_ingest.uuid_in_time_order() to PUBLIC: EXECUTE

function omni_ingest.uuid_or_null(value text) to PUBLIC: EXECUTE

function public.ai_insight_fingerprint(kind text, subject_type text, subject_id uuid, model text, title text) to PUBLIC: EXECUTE

function public.ai_insights_set_fingerprint() to PUBLIC: EXECUTE

function public.array_to_halfvec(double precision[], integer, boolean) to PUBLIC: EXECUTE

function public.array_to_halfvec(integer[], integer, boolean) to PUBLIC: EXECUTE

function public.array_to_halfvec(numeric[], integer, boolean) to PUBLIC: EXECUTE

function public.array_to_halfvec(real[], integer, boolean) to PUBLIC: EXECUTE

function public.array_to_sparsevec(double precision[], integer, boolean) to PUBLIC: EXECUTE

function public.array_to_sparsevec(integer[], integer, boolean) to PUBLIC: EXECUTE

function public.array_to_sparsevec(numeric[], integer, boolean) to PUBLIC: EXECUTE

function public.array_to_sparsevec(real[], integer, boolean) to PUBLIC: EXECUTE

function public.array_to_vector(double precision[], integer, boolean) to PUBLIC: EXECUTE

function public.array_to_vector(integer[], integer, boolean) to PUBLIC: EXECUTE

function public.array_to_vector(numeric[], integer, boolean) to PUBLIC: EXECUTE

function public.array_to_vector(real[], integer, boolean) to PUBLIC: EXECUTE

function public.avg(halfvec) to PUBLIC: EXECUTE

function public.avg(vector) to PUBLIC: EXECUTE

function public.binary_quantize(halfvec) to PUBLIC: EXECUTE

function public.binary_quantize(vector) to PUBLIC: EXECUTE

function public.cosine_distance(halfvec, halfvec) to PUBLIC: EXECUTE

function public.cosine_distance(sparsevec, sparsevec) to PUBLIC: EXECUTE

function public.cosine_distance(vector, vector) to PUBLIC: EXECUTE

function public.halfvec(halfvec, integer, boolean) to PUBLIC: EXECUTE

function public.halfvec_accum(double precision[], halfvec) to PUBLIC: EXECUTE

function public.halfvec_add(halfvec, halfvec) to PUBLIC: EXECUTE

function public.halfvec_avg(double precision[]) to PUBLIC: EXECUTE

function public.halfvec_cmp(halfvec, halfvec) to PUBLIC: EXECUTE

function public.halfvec_combine(double precision[], double precision[]) to PUBLIC: EXECUTE

function public.halfvec_concat(halfvec, halfvec) to PUBLIC: EXECUTE

function public.halfvec_eq(halfvec, halfvec) to PUBLIC: EXECUTE

function public.halfvec_ge(halfvec, halfvec) to PUBLIC: EXECUTE

function public.halfvec_gt(halfvec, halfvec) to PUBLIC: EXECUTE

function public.halfvec_in(cstring, oid, integer) to PUBLIC: EXECUTE

function public.halfvec_l2_squared_distance(halfvec, halfvec) to PUBLIC: EXECUTE

function public.halfvec_le(halfvec, halfvec) to PUBLIC: EXECUTE

function public.halfvec_lt(halfvec, halfvec) to PUBLIC: EXECUTE

function public.halfvec_mul(halfvec, halfvec) to PUBLIC: EXECUTE

function public.halfvec_ne(halfvec, halfvec) to PUBLIC: EXECUTE

function public.halfvec_negative_inner_product(halfvec, halfvec) to PUBLIC: EXECUTE

function public.halfvec_out(halfvec) to PUBLIC: EXECUTE

function public.halfvec_recv(internal, oid, integer) to PUBLIC: EXECUTE

function public.halfvec_send(halfvec) to PUBLIC: EXECUTE

function public.halfvec_spherical_distance(halfvec, halfvec) to PUBLIC: EXECUTE

function public.halfvec_sub(halfvec, halfvec) to PUBLIC: EXECUTE

function public.halfvec_to_float4(halfvec, integer, boolean) to PUBLIC: EXECUTE

function public.halfvec_to_sparsevec(halfvec, integer, boolean) to PUBLIC: EXECUTE

function public.halfvec_to_vector(halfvec, integer, boolean) to PUBLIC: EXECUTE

function public.halfvec_typmod_in(cstring[]) to PUBLIC: EXECUTE

function public.hamming_distance(bit, bit) to PUBLIC: EXECUTE

function public.hnsw_bit_support(internal) to PUBLIC: EXECUTE

function public.hnsw_halfvec_support(internal) to PUBLIC: EXECUTE

function public.hnsw_sparsevec_support(internal) to PUBLIC: EXECUTE

function public.hnswhandler(internal) to PUBLIC: EXECUTE

function public.inner_product(halfvec, halfvec) to PUBLIC: EXECUTE

function public.inner_product(sparsevec, sparsevec) to PUBLIC: EXECUTE

function public.inner_product(vector, vector) to PUBLIC: EXECUTE

function public.ivfflat_bit_support(internal) to PUBLIC: EXECUTE

function public.ivfflat_halfvec_support(internal) to PUBLIC: EXECUTE

function public.ivfflathandler(internal) to PUBLIC: EXECUTE

function public.jaccard_distance(bit, bit) to PUBLIC: EXECUTE

function public.l1_distance(halfvec, halfvec) to PUBLIC: EXECUTE

function public.l1_distance(sparsevec, sparsevec) to PUBLIC: EXECUTE

function public.l1_distance(vector, vector) to PUBLIC: EXECUTE

function public.l2_distance(halfvec, halfvec) to PUBLIC: EXECUTE

function public.l2_distance(sparsevec, sparsevec) to PUBLIC: EXECUTE

function public.l2_distance(vector, vector) to PUBLIC: EXECUTE

function public.l2_norm(halfvec) to PUBLIC: EXECUTE

function public.l2_norm(sparsevec) to PUBLIC: EXECUTE

function public.l2_normalize(halfvec) to PUBLIC: EXECUTE

function public.l2_normalize(sparsevec) to PUBLIC: EXECUTE

function public.l2_normalize(vector) to PUBLIC: EXECUTE

function public.sparsevec(sparsevec, integer, boolean) to PUBLIC: EXECUTE

function public.sparsevec_cmp(sparsevec, sparsevec) to PUBLIC: EXECUTE

function public.sparsevec_eq(sparsevec, sparsevec) to PUBLIC: EXECUTE

function public.sparsevec_ge(sparsevec, sparsevec) to PUBLIC: EXECUTE

function public.sparsevec_gt(sparsevec, sparsevec) to PUBLIC: EXECUTE

function public.sparsevec_in(cstring, oid, integer) to PUBLIC: EXECUTE

function public.sparsevec_l2_squared_distance(sparsevec, sparsevec) to PUBLIC: EXECUTE

function public.sparsevec_le(sparsevec, sparsevec) to PUBLIC: EXECUTE

function public.sparsevec_lt(sparsevec, sparsevec) to PUBLIC: EXECUTE

function public.sparsevec_ne(sparsevec, sparsevec) to PUBLIC: EXECUTE

function public.sparsevec_negative_inner_product(sparsevec, sparsevec) to PUBLIC: EXECUTE

function public.sparsevec_out(sparsevec) to PUBLIC: EXECUTE

function public.sparsevec_recv(internal, oid, integer) to PUBLIC: EXECUTE

function public.sparsevec_send(sparsevec) to PUBLIC: EXECUTE

function public.sparsevec_to_halfvec(sparsevec, integer, boolean) to PUBLIC: EXECUTE

function public.sparsevec_to_vector(sparsevec, integer, boolean) to PUBLIC: EXECUTE

function public.sparsevec_typmod_in(cstring[]) to PUBLIC: EXECUTE

function public.subvector(halfvec, integer, integer) to PUBLIC: EXECUTE

function public.subvector(vector, integer, integer) to PUBLIC: EXECUTE

function public.sum(halfvec) to PUBLIC: EXECUTE

function public.sum(vector) to PUBLIC: EXECUTE

function public.vector(vector, integer, boolean) to PUBLIC: EXECUTE

function public.vector_accum(double precision[], vector) to PUBLIC: EXECUTE

function public.vector_add(vector, vector) to PUBLIC: EXECUTE

function public.vector_avg(double precision[]) to PUBLIC: EXECUTE

function public.vector_cmp(vector, vector) to PUBLIC: EXECUTE

function public.vector_combine(double precision[], double precision[]) to PUBLIC: EXECUTE

function public.vector_concat(vector, vector) to PUBLIC: EXECUTE

function public.vector_dims(halfvec) to PUBLIC: EXECUTE

function public.vector_dims(vector) to PUBLIC: EXECUTE

function public.vector_eq(vector, vector) to PUBLIC: EXECUTE

function public.vector_ge(vector, vector) to PUBLIC: EXECUTE

function public.vector_gt(vector, vector) to PUBLIC: EXECUTE

function public.vector_in(cstring, oid, integer) to PUBLIC: EXECUTE

function public.vector_l2_squared_distance(vector, vector) to PUBLIC: EXECUTE

function public.vector_le(vector, vector) to PUBLIC: EXECUTE

function public.vector_lt(vector, vector) to PUBLIC: EXECUTE

function public.vector_mul(vector, vector) to PUBLIC: EXECUTE

function public.vector_ne(vector, vector) to PUBLIC: EXECUTE

function public.vector_negative_inner_product(vector, vector) to PUBLIC: EXECUTE

function public.vector_norm(vector) to PUBLIC: EXECUTE

function public.vector_out(vector) to PUBLIC: EXECUTE

function public.vector_recv(internal, oid, integer) to PUBLIC: EXECUTE

function public.vector_send(vector) to PUBLIC: EXECUTE

function public.vector_spherical_distance(vector, vector) to PUBLIC: EXECUTE

function public.vector_sub(vector, vector) to PUBLIC: EXECUTE

function public.vector_to_float4(vector, integer, boolean) to PUBLIC: EXECUTE

function public.vector_to_halfvec(vector, integer, boolean) to PUBLIC: EXECUTE

function public.vector_to_sparsevec(vector, integer, boolean) to PUBLIC: EXECUTE

function public.vector_typmod_in(cstring[]) to PUBLIC: EXECUTE

schema auth to anon: USAGE

schema auth to authenticated: USAGE

schema auth to service_role: USAGE

schema omni_ingest to service_role: USAGE

schema public to PUBLIC: USAGE

schema public to authenticated: USAGE

schema public to service_role: USAGE

table omni_ingest.archive_batches to service_role: DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE

table omni_ingest.archived_events to service_role: DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE

table omni_ingest.embed_batches to service_role: DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE

table omni_ingest.embedding_backfill_ranges to service_role: DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE

table omni_ingest.embedding_legacy_rejects to service_role: DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE

table omni_ingest.normalize_queue to service_role: DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE

table omni_ingest.pipeline_contacts to service_role: DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE

table omni_ingest.runs to service_role: DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE

table omni_ingest.work_queue to service_role: DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE

table public.ai_insights to authenticated: SELECT

table public.ai_insights to service_role: DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE

table public.ai_insights_duplicates to service_role: DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE

table public.contact_identities to authenticated: SELECT

table public.contact_identities to service_role: DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE

table public.contact_timeline to authenticated: SELECT

table public.contact_timeline to service_role: DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE

table public.contacts to authenticated: SELECT

table public.contacts to service_role: DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE

table public.embeddings to authenticated: SELECT

table public.embeddings to service_role: DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE

table public.interactions to authenticated: INSERT, SELECT

table public.interactions to service_role: DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE

table public.jobs to authenticated: SELECT

table public.jobs to service_role: DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE

table public.raw_event_errors to authenticated: SELECT

table public.raw_event_errors to service_role: DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE

table public.raw_events to authenticated: SELECT

table public.raw_events to service_role: DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE

table public.sync_audit to authenticated: SELECT

table public.sync_audit to service_role: DELETE, INSERT, REFERENCES, SELECT, TRIGGER, TRUNCATE, UPDATE
