-- 202611301100_embedding_swap.sql
--
-- What the embedding column swap (SPEC §10, `omni-ingest embeddings …`) needs in the database:
--
-- - omni_ingest.legacy_vector(text): a legacy text value as vector(1536), or null when it is not
--   one (malformed, another dimension, NaN/Infinity, out of float4 range). pgvector's own input
--   function is the judge, so what the backfill copies is exactly what `::vector(1536)` accepts.
-- - omni_ingest.legacy_embedding_kind(text): why a legacy value is not valid (for reports).
-- - omni_ingest.legacy_embedding_differs(text, vector, tolerance): does a vector differ from its
--   valid legacy value by more than the tolerance in any component (`embeddings verify`).
-- - Two sync trigger functions, one per direction. `embeddings backfill` installs the first on
--   public.embeddings, `embeddings swap` replaces it by the second (and `swap --rollback` back):
--   before the swap, a legacy text written by an application that only knows `embedding` fills
--   `embedding_v`; after it, a vector written to `embedding` is mirrored into `embedding_legacy`,
--   so a rollback finds every value written meanwhile in the text column too.
-- - The backfill's keyset ranges (claimed with FOR UPDATE SKIP LOCKED by parallel processes,
--   each with its cursor) and the legacy values it found invalid (so each is reported once).
-- - A work-queue stage for `--reembed`, leased like embed's.
--
-- pgvector lives in `extensions` on Supabase and in `public` elsewhere: the functions name its
-- schema explicitly (found here), never relying on the caller's search_path.

create table omni_ingest.embedding_backfill_ranges (
pass integer not null,
seq integer not null,
-- Keyset bounds over public.embeddings.id: lo exclusive (null: from the first id), hi inclusive
-- (null: to the last). Together a pass's ranges cover every possible id.
lo uuid,
hi uuid,
-- The last id examined in this range, moved in the same transaction as the batch's writes.
cursor uuid,
rows_planned bigint not null default 0,
rows_examined bigint not null default 0,
planned_at timestamptz not null default now(),
done_at timestamptz,
primary key (pass, seq)
);

create table omni_ingest.embedding_legacy_rejects (
embedding_id uuid primary key,
kind text not null check (kind in ('wrong_dimension', 'malformed', 'non_finite')),
dimensions integer,
-- The value it was judged on: a legacy value rewritten since is judged (and reported) again.
legacy_md5 text not null,
found_at timestamptz not null default now()
);

alter table omni_ingest.work_queue drop constraint work_queue_stage_check;
alter table omni_ingest.work_queue add constraint work_queue_stage_check
check (stage in ('resolve', 'embed', 'insights', 'timeline', 'timeline_insight', 'swap_reembed'));

do $migration$
declare
vs text := (
select quote_ident(n.nspname)
from pg_extension e
join pg_namespace n on n.oid = e.extnamespace
where e.extname = 'vector'
);
begin
if vs is null then
raise exception 'pgvector is not installed: the hardening migration creates it';
end if;

-- No SET search_path: a cast to a schema-qualified type needs none, and the backfill calls
-- this once per row (a SET clause would cost a GUC save and restore on each call).
execute format($f$
create function omni_ingest.legacy_vector(legacy text) returns %1$s.vector
language plpgsql immutable strict parallel safe
as $body$
begin
return legacy::%1$s.vector(1536);
exception when others then
return null;
end
$body$
$f$, vs);

execute format($f$
create function omni_ingest.legacy_embedding_kind(legacy text) returns text
language plpgsql immutable parallel safe
set search_path = pg_catalog, pg_temp
as $body$
declare
v %1$s.vector;
begin
if legacy is null then
return 'null';
end if;
begin
v := legacy::%1$s.vector(1536);
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
$body$
$f$, vs);

execute format($f$
create function omni_ingest.legacy_embedding_differs(legacy text, vec %1$s.vector, tolerance double precision) returns boolean
language plpgsql immutable parallel safe
set search_path = pg_catalog, %1$s, pg_temp
as $body$
declare
lv %1$s.vector := omni_ingest.legacy_vector(legacy);
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
$body$
$f$, vs);

-- Before the swap: `embedding` is the legacy text, `embedding_v` the vector. A legacy value
-- written without a vector (an older application) fills the vector, or leaves it null when it
-- is not a valid 1536-d vector (reported by `embeddings status` and the next backfill).
execute format($f$
create function omni_ingest.embeddings_sync_legacy() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, %1$s, pg_temp
as $body$
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
$body$
$f$, vs);

-- After the swap: `embedding` is the vector, `embedding_legacy` the text. A vector written is
-- mirrored as text (pgvector's output round-trips exactly), so `swap --rollback` loses nothing;
-- a text written alone still fills the vector.
execute format($f$
create function omni_ingest.embeddings_sync_vector() returns trigger
language plpgsql
security definer
set search_path = pg_catalog, %1$s, pg_temp
as $body$
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
$body$
$f$, vs);
end
$migration$;

grant all on omni_ingest.embedding_backfill_ranges, omni_ingest.embedding_legacy_rejects to service_role;
