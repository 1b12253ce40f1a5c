-- 202611301000_dead_letter_lifecycle.sql
--
-- A dead letter has a life (SPEC §12): open until a later run of its stage succeeds on the same
-- item (a retry, a --reprocess, a cron run that got there first) and resolves it in the same
-- transaction as its writes, or until an operator discards it with a reason. A failure that
-- happens again updates its open row (attempts, last_seen, the latest message) instead of adding
-- one.
--
-- What identifies the failed thing (item_key), what it is about (item_id), the provider's id
-- (source_id) and the error's signature are generated columns computed by the functions below,
-- so every writer — this tool, the CRM's own code, a hand-written INSERT — gets the same keys and
-- groups, and the rows already there are keyed by the very same code.

-- An error message with what varies between occurrences taken out: quoted values, emails,
-- UUIDs, ids (words of 8 or more letters and digits holding a digit), then every run of digits.
-- "invalid webform submission: submitted_at must have an offset, got "2025-01-01T10:00""
-- becomes "invalid webform submission: submitted_at must have an offset, got ?".
create function omni_ingest.error_pattern(message text) returns text
language sql
immutable
parallel safe
as $$
select left(btrim(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
coalesce(message, ''),
$q$"(\\.|[^"\\])*"|(?<![A-Za-z])'[^']*'|`[^`]*`$q$, '?', 'g'),
'[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}', '<email>', 'g'),
'[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}', '<uuid>', 'g'),
'\m(?=[A-Za-z_]*[0-9])[A-Za-z0-9_]{8,}\M', '<id>', 'g'),
'[0-9]+', '#', 'g'),
'\s+', ' ', 'g')), 300)
$$;

-- The signature errors are grouped by: the stage, the provider and the message's pattern.
create function omni_ingest.error_signature(stage text, provider text, message text) returns text
language sql
immutable
parallel safe
as $$
select left(md5(coalesce(stage, '') || chr(1) || coalesce(provider, '') || chr(1) || omni_ingest.error_pattern(message)), 16)
$$;

-- A UUID from text written by anyone: null when it is not one (never an error in an INSERT).
create function omni_ingest.uuid_or_null(value text) returns uuid
language sql
immutable
parallel safe
as $$
select case when value ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then value::uuid end
$$;

-- The queue item a stage's error is about: the raw event (normalize), the interaction (embed),
-- the contact (insights). Import errors have none: no raw event exists.
create function omni_ingest.error_item_id(stage text, raw_event_id uuid, context jsonb) returns uuid
language sql
immutable
parallel safe
as $$
select case stage
when 'normalize' then raw_event_id
when 'embed' then omni_ingest.uuid_or_null(context ->> 'interaction_id')
when 'insights' then omni_ingest.uuid_or_null(context ->> 'contact_id')
else raw_event_id
end
$$;

-- What failed, precisely enough that its failing again is the same failure: one open error per
-- (stage, item_key). An import record is the same record when its bytes are (its SHA-256), for
-- the same user and provider; legacy import rows without their record are keyed by file and
-- line. Errors of stages this function does not know are never merged (their own id).
create function omni_ingest.error_item_key(
stage text, id uuid, raw_event_id uuid, user_id uuid, provider text, context jsonb
) returns text
language sql
immutable
parallel safe
as $$
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
$$;

alter table public.raw_event_errors
add column status text not null default 'open' check (status in ('open', 'resolved', 'discarded')),
add column attempts integer not null default 1 check (attempts >= 1),
add column first_seen timestamptz not null default now(),
add column last_seen timestamptz not null default now(),
-- When it stopped being open, the run that closed it (null: an operator's hand, or a run since
-- purged) and why ("succeeded", "re-imported", the operator's discard reason).
add column closed_at timestamptz,
add column closed_by uuid,
add column close_reason text,
add column signature text generated always as (omni_ingest.error_signature(stage, provider, error)) stored,
add column item_id uuid generated always as (omni_ingest.error_item_id(stage, raw_event_id, context)) stored,
add column item_key text generated always as (omni_ingest.error_item_key(stage, id, raw_event_id, user_id, provider, context)) stored,
add column source_id text generated always as (context ->> 'source_id') stored;

alter table public.raw_event_errors
add constraint raw_event_errors_closed_check check ((status = 'open') = (closed_at is null));

update public.raw_event_errors set first_seen = error_at, last_seen = error_at;

-- The rows already there: each set of errors about one item becomes its newest row, open, with
-- the set's count as attempts and its first and last time. The older rows are kept, discarded
-- with a reason naming the row they were merged into: nothing is dropped.
with ranked as (
select id, stage, item_key, error_at,
row_number() over w as n,
count(*) over (partition by stage, item_key) as total,
min(error_at) over (partition by stage, item_key) as first_at,
first_value(id) over w as newest
from public.raw_event_errors
window w as (partition by stage, item_key order by error_at desc, id desc)
), merged as (
update public.raw_event_errors e
set status = 'discarded', closed_at = now(), close_reason = 'merged into ' || r.newest || ' by migration 202611301000'
from ranked r
where r.id = e.id and r.n > 1
returning e.id
)
update public.raw_event_errors e
set attempts = r.total, first_seen = r.first_at
from ranked r
where r.id = e.id and r.n = 1 and r.total > 1;

create unique index raw_event_errors_open_item_key on public.raw_event_errors (stage, item_key) where status = 'open';
create index raw_event_errors_open_item_idx on public.raw_event_errors (stage, item_id) where status = 'open';
-- `errors groups`: an index-only scan in signature order, users counted as they come.
create index raw_event_errors_groups_idx on public.raw_event_errors (status, signature, user_id) include (last_seen, first_seen);
-- `errors list`: newest first, keyset paged.
create index raw_event_errors_list_idx on public.raw_event_errors (status, last_seen desc, id desc);
-- `trace provider:source_id` and import errors resolved by the record's id.
create index raw_event_errors_source_idx on public.raw_event_errors (provider, source_id) where source_id is not null;
