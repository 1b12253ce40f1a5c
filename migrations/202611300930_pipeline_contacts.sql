-- 202611300930_pipeline_contacts.sql
--
-- Which contacts the pipeline created (`resolve --create-contacts`), as opposed to the people the
-- CRM's users entered themselves. When two processes each created a contact for one person whose
-- email and phone arrived in different batches, and a later interaction shows they are one
-- person, resolve merges the two — but only contacts it created: merging people a user entered is
-- for that user to decide.

create table omni_ingest.pipeline_contacts (
contact_id uuid primary key references public.contacts (id) on delete cascade,
user_id uuid not null,
created_at timestamptz not null default now()
);

-- Contacts earlier versions of resolve created carry a provider as their source.
insert into omni_ingest.pipeline_contacts (contact_id, user_id, created_at)
select c.id, c.user_id, coalesce(c.created_at at time zone 'UTC', now())
from public.contacts c
where c.source in ('gmail', 'twilio', 'instagram', 'webform') and c.user_id is not null
on conflict (contact_id) do nothing;

grant all on omni_ingest.pipeline_contacts to service_role;
