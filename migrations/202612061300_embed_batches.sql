-- 202612061300_embed_batches.sql
--
-- What `embed --via batch` (the provider's Batch API, half price, 24 h window) needs: one row per
-- submitted batch, a durable state machine
--   preparing → uploaded → submitted → done   (or failed after its attempts)
-- Each step is committed before the next starts, so a process killed at any instant leaves a
-- row whose state says what is known: `preparing` has no file yet, `uploaded` has a file and
-- maybe a provider batch not yet recorded (found again by its metadata, never created twice),
-- `submitted` is polled. The interactions it covers stay in the work queue, leased to
-- `batch:<id>` for as long as the batch is out, so no other run sends them too; the vectors are
-- written in the same transaction as `done`. Rows are worked on by the process holding their
-- claim (claimed_by / claimed_until), so several machines coordinate through this table and never
-- through advisory locks.

create table omni_ingest.embed_batches (
id uuid primary key default gen_random_uuid(),
state text not null default 'preparing'
check (state in ('preparing', 'uploaded', 'submitted', 'done', 'failed')),
-- The embedder that submitted it: only a run of the same provider and model collects it.
provider text not null,
model text not null,
dimensions integer,
-- The interactions it covers, and one custom_id per request line (`chunk-<sha256 of its text>`):
-- deterministic, so a re-submission or a second download matches the same chunks.
item_ids uuid[] not null default '{}',
custom_ids text[] not null default '{}',
tokens bigint not null default 0,
bytes bigint not null default 0,
-- Submissions so far (an expired or failed batch is submitted again with what is still missing).
attempts integer not null default 0,
input_file_id text,
provider_batch_id text,
provider_status text,
output_file_id text,
error_file_id text,
claimed_by text,
claimed_until timestamptz,
-- The run that created it and the last run that worked on it.
run_id uuid,
last_run_id uuid,
error text,
created_at timestamptz not null default now(),
submitted_at timestamptz,
polled_at timestamptz,
finished_at timestamptz
);

create index embed_batches_open_idx on omni_ingest.embed_batches (provider, model, created_at)
where state in ('preparing', 'uploaded', 'submitted');

grant all on omni_ingest.embed_batches to service_role;
