-- Queue work only within one user's data. An authenticated user may insert a `note_added`
-- interaction (row level security allows it) whose contact_id names another user's contact:
-- the queue triggers then gave that contact insights work under the inserting user, and the
-- timeline work for it. A contact of another user is now simply not queued; the stages also match
-- user_id in every write they make by id, so a reference across users is ignored either way.
create or replace function omni_ingest.enqueue_new_interactions() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
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
$$;

create or replace function omni_ingest.enqueue_changed_interactions() returns trigger
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
$$;
