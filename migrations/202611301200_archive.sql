-- 202611301200_archive.sql
--
-- What retention (SPEC §11, `omni-ingest archive …`) needs in the database:
--
-- - omni_ingest.archive_batches: one row per archive batch, a durable state machine
--   planned → written → verified → deleted (→ restored). Each step is committed before the next
--   starts, so a process killed at any instant leaves a batch whose state says exactly what is
--   safe: rows are deleted only from a batch whose parts were read back and checked. A batch is
--   worked on by the process holding its lease (leased_by / lease_until, renewed while it works);
--   a lease of a dead process is taken over, so several machines coordinate through this table
--   and never through session advisory locks (which break behind PgBouncer).
-- - omni_ingest.archived_events: which batch each raw event belongs to. Its primary key is what
--   makes two processes unable to archive one row twice, and it stays after the rows are deleted,
--   so `trace` can say where an archived event went.
--
-- raw_events keeps no foreign key to either: interactions and dead letters keep their
-- raw_event_id whether the event is hot or archived.

create table omni_ingest.archive_batches (
id uuid primary key default gen_random_uuid(),
-- The target's base URI as given (file:///dir, s3://bucket/prefix), never with credentials.
target text not null,
-- Where this batch's objects live, under the target: <prefix>/manifest.json, <prefix>/part-NNNNN.ndjson.gz.
prefix text not null,
state text not null default 'planned'
check (state in ('planned', 'written', 'verified', 'deleted', 'restored')),
-- What was asked for: events older than the cutoff, of this user / provider (null: any).
cutoff timestamptz not null,
user_id uuid,
provider text,
-- The smallest and largest raw event id in the batch (ids are claimed in key order).
lo uuid,
hi uuid,
rows bigint not null default 0,
-- Compressed bytes of all parts, and the parts themselves (name, rows, bytes, sha256) as the
-- manifest lists them: verify compares the target's manifest with this copy.
bytes bigint not null default 0,
parts jsonb not null default '[]',
manifest_uri text,
-- Rows deleted so far, and rows left hot because they changed after they were written.
deleted_rows bigint not null default 0,
kept_rows bigint not null default 0,
-- host:pid:token of the process working on it, until when.
leased_by text,
lease_until timestamptz,
run_id uuid,
error text,
planned_at timestamptz not null default now(),
written_at timestamptz,
verified_at timestamptz,
deleted_at timestamptz,
restored_at timestamptz
);

create index archive_batches_open_idx on omni_ingest.archive_batches (target, planned_at)
where state in ('planned', 'written', 'verified');

create table omni_ingest.archived_events (
raw_event_id uuid primary key,
batch_id uuid not null references omni_ingest.archive_batches (id) on delete cascade
);

create index archived_events_batch_idx on omni_ingest.archived_events (batch_id, raw_event_id);

grant all on omni_ingest.archive_batches, omni_ingest.archived_events to service_role;
