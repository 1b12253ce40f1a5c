-- 202611301400_supabase_advisor.sql
--
-- What Supabase's database advisor flags in the schema, fixed (SPEC §3):
-- - the two fingerprint functions in `public` ran with the caller's search_path (a role could
--   put its own `sha256` or `coalesce` ahead of pg_catalog's): both get an empty one, every
--   name they use being pg_catalog's or schema-qualified;
-- - interactions.contact_id, a foreign key (ON DELETE SET NULL), had no index leading with it:
--   deleting a contact read the whole table to unlink its interactions.
-- Nothing of Supabase's own (auth, extensions) is touched.

alter function public.ai_insight_fingerprint(text, text, uuid, text, text) set search_path = '';
alter function public.ai_insights_set_fingerprint() set search_path = '';

create index if not exists interactions_contact_id_idx on public.interactions (contact_id);
