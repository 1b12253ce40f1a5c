-- 20261128_run_ledger_and_queue.sql
--
-- The batch engine's own tables (SPEC §13): the run ledger, and the queue that makes `normalize`
-- exactly-once, resumable and incremental.

-- One row per batch command run. Counts and checkpoint are written in the same transaction as
-- each batch's data, so after a crash the ledger never claims work that was rolled back.
create table omni_ingest.runs (
id uuid primary key default gen_random_uuid(),
command text not null,
args jsonb not null default '{}',
status text not null default 'running'
check (status in ('running', 'succeeded', 'failed', 'stopped', 'abandoned')),
stop_reason text,
checkpoint jsonb,
counts jsonb not null default '{}',
host text,
pid integer,
started_at timestamptz not null default now(),
heartbeat_at timestamptz not null default now(),
finished_at timestamptz,
error text
);

create index runs_command_started_idx on omni_ingest.runs (command, started_at desc);
create index runs_running_idx on omni_ingest.runs (heartbeat_at) where status = 'running';

-- The normalize queue: one row per raw event not yet normalized. A batch deletes its rows in the
-- same transaction that writes the interactions and dead letters, so a crash puts them back and
-- parallel workers skip each other's claims (FOR UPDATE SKIP LOCKED). Deleting a narrow queue row
-- costs a fraction of updating a marker on raw_events, whose update would rewrite the payload and
-- every index on it (the GIN index included). Only pending rows live here, so an incremental run
-- costs what the new work costs, however large raw_events grows.
create table omni_ingest.normalize_queue (
raw_event_id uuid primary key,
user_id uuid not null,
provider text,
occurred_at timestamptz,
enqueued_at timestamptz not null default now()
);

create index normalize_queue_order_idx on omni_ingest.normalize_queue (occurred_at, raw_event_id);

-- Every raw event is queued in the transaction that inserts it, whoever inserts it (import,
-- webhook handlers, other tools): a late-committing insert is a queue row the next run sees.
-- SECURITY DEFINER so writers of raw_events need no rights on omni_ingest.
create function omni_ingest.enqueue_raw_events() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
insert into omni_ingest.normalize_queue (raw_event_id, user_id, provider, occurred_at)
select n.id, n.user_id, n.provider, n.occurred_at
from new_rows n
on conflict (raw_event_id) do nothing;
return null;
end
$$;

create trigger raw_events_enqueue_normalize
after insert on public.raw_events
referencing new table as new_rows
for each statement
execute function omni_ingest.enqueue_raw_events();

-- What is already there is normalized once (re-normalizing is idempotent).
insert into omni_ingest.normalize_queue (raw_event_id, user_id, provider, occurred_at)
select id, user_id, provider, occurred_at
from public.raw_events;

-- The raw event an interaction came from (an Instagram webhook body yields several). No foreign
-- key: archived raw events leave their interactions, and `trace` still names the source.
alter table public.interactions add column raw_event_id uuid;
create index interactions_raw_event_idx on public.interactions (raw_event_id);

grant usage on schema omni_ingest to service_role;
grant all on omni_ingest.runs, omni_ingest.normalize_queue to service_role;
