-- 20261129_stage_queues.sql
--
-- Work queues for the stages after normalize (SPEC §6-§9, §13), insight expiry, and the
-- timeline's idempotency key.
--
-- One queue table for every stage: a row says "this item needs this stage". Triggers on the
-- tables the stages read put work in the queue in the writing transaction, so a late commit is
-- pending work, a crash loses nothing, and an incremental run costs what the new work costs.
-- A trigger that queues an item already queued clears its lease: the item changed while a
-- worker had it, so that worker's completion (which deletes only rows still leased to it)
-- leaves it queued, and it is done again with the new data.
-- Stages that call a provider (embed, insights) take rows with a lease (claimed_by,
-- claimed_until) in one short transaction, call the provider outside any transaction, and
-- delete the rows with their results in a second one; an expired lease makes rows claimable.

create table omni_ingest.work_queue (
stage text not null check (stage in ('resolve', 'embed', 'insights', 'timeline', 'timeline_insight')),
-- An interaction (resolve, embed, timeline), a contact (insights) or an insight (timeline_insight).
item_id uuid not null,
user_id uuid not null,
-- The interaction's source, for --provider; null for contacts and insights.
provider text,
occurred_at timestamptz,
enqueued_at timestamptz not null default now(),
claimed_by text,
claimed_until timestamptz,
attempts integer not null default 0,
primary key (stage, item_id)
);

create index work_queue_order_idx on omni_ingest.work_queue (stage, occurred_at, item_id);

-- New interactions: resolve the unlinked ones, embed all, put linked ones on the timeline.
create function omni_ingest.enqueue_new_interactions() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
insert into omni_ingest.work_queue (stage, item_id, user_id, provider, occurred_at)
select s.stage, n.id, n.user_id, n.source, n.occurred_at
from new_rows n
cross join lateral (
select 'embed'::text as stage
union all select 'resolve' where n.contact_id is null
union all select 'timeline' where n.contact_id is not null
) s
on conflict (stage, item_id) do update
set enqueued_at = now(), claimed_by = null, claimed_until = null;
-- The contact of a linked interaction has something new for insights.
insert into omni_ingest.work_queue (stage, item_id, user_id, occurred_at)
select 'insights', n.contact_id, n.user_id, max(n.occurred_at)
from new_rows n
where n.contact_id is not null
group by n.contact_id, n.user_id
on conflict (stage, item_id) do update
set enqueued_at = now(), claimed_by = null, claimed_until = null;
return null;
end
$$;

create trigger interactions_enqueue_new
after insert on public.interactions
referencing new table as new_rows
for each statement
execute function omni_ingest.enqueue_new_interactions();

-- Changed interactions: new text is embedded again; a new contact link goes on the timeline
-- and gives that contact new insights work.
create function omni_ingest.enqueue_changed_interactions() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
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
where n.contact_id is not null
and (n.contact_id is distinct from o.contact_id or (n.subject, n.type, n.occurred_at) is distinct from (o.subject, o.type, o.occurred_at))
on conflict (stage, item_id) do update
set enqueued_at = now(), claimed_by = null, claimed_until = null;

insert into omni_ingest.work_queue (stage, item_id, user_id, occurred_at)
select 'insights', n.contact_id, n.user_id, max(n.occurred_at)
from new_rows n
join old_rows o on o.id = n.id
where n.contact_id is not null
and (n.contact_id is distinct from o.contact_id or (n.subject, n.body_text) is distinct from (o.subject, o.body_text))
group by n.contact_id, n.user_id
on conflict (stage, item_id) do update
set enqueued_at = now(), claimed_by = null, claimed_until = null;
return null;
end
$$;

create trigger interactions_enqueue_changed
after update on public.interactions
referencing old table as old_rows new table as new_rows
for each statement
execute function omni_ingest.enqueue_changed_interactions();

-- New insights go on their contact's timeline.
create function omni_ingest.enqueue_new_insights() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
insert into omni_ingest.work_queue (stage, item_id, user_id, occurred_at)
select 'timeline_insight', n.id, n.user_id, n.created_at
from new_rows n
where n.subject_type = 'contact'
on conflict (stage, item_id) do update
set enqueued_at = now(), claimed_by = null, claimed_until = null;
return null;
end
$$;

create trigger ai_insights_enqueue_new
after insert on public.ai_insights
referencing new table as new_rows
for each statement
execute function omni_ingest.enqueue_new_insights();

-- Interactions already there: queued once (every stage is idempotent).
insert into omni_ingest.work_queue (stage, item_id, user_id, provider, occurred_at)
select s.stage, i.id, i.user_id, i.source, i.occurred_at
from public.interactions i
cross join lateral (
select 'embed'::text as stage
union all select 'resolve' where i.contact_id is null
union all select 'timeline' where i.contact_id is not null
) s
on conflict (stage, item_id) do nothing;

insert into omni_ingest.work_queue (stage, item_id, user_id, occurred_at)
select 'insights', i.contact_id, i.user_id, max(i.occurred_at)
from public.interactions i
where i.contact_id is not null
group by i.contact_id, i.user_id
on conflict (stage, item_id) do nothing;

-- Insights expire a year after creation (SPEC §8); `purge insights` deletes expired ones.
alter table public.ai_insights add column expires_at timestamptz;
update public.ai_insights set expires_at = created_at + interval '1 year' where expires_at is null;
alter table public.ai_insights alter column expires_at set default now() + interval '1 year';
create index ai_insights_expires_idx on public.ai_insights (expires_at);
-- The insights stage looks up a contact's latest insights (is its history unchanged?).
create index ai_insights_subject_idx on public.ai_insights (user_id, subject_type, subject_id, model);

-- What the insights were computed from, so an unchanged contact is not sent to the model again.
alter table public.ai_insights add column source_digest text;

-- One timeline entry per source row (SPEC §9): re-running creates no duplicates.
alter table public.contact_timeline add column source_type text;
alter table public.contact_timeline add column source_id uuid;
alter table public.contact_timeline
add constraint contact_timeline_source_key unique (user_id, source_type, source_id);

-- Embeddings are looked up by owner (replacing the chunks of an interaction whose text changed).
create index embeddings_owner_idx on public.embeddings (owner_type, owner_id);

grant all on omni_ingest.work_queue to service_role;
