-- 202612061500_archive_claims_without_fk.sql
--
-- An archive batch claims its events (omni_ingest.archived_events) thousands at a time in one
-- statement, and the foreign key from each claim to its batch checked and share-locked the batch
-- row once per claim: about a quarter of the time planning a batch took. What the key promised
-- holds without it: claims are inserted only in the transaction that inserts their batch, with
-- that batch's id (src/archive/run.ts, plan), and a batch is deleted only when it claimed nothing.
-- The cascade it gave (deleting a batch by hand takes its claims with it) is kept by a statement
-- trigger, which costs the claims' inserts nothing.

alter table omni_ingest.archived_events drop constraint archived_events_batch_id_fkey;

create function omni_ingest.archive_batches_drop_claims() returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
delete from omni_ingest.archived_events a
using old_batches b
where a.batch_id = b.id;
return null;
end
$$;

create trigger archive_batches_drop_claims
after delete on omni_ingest.archive_batches
referencing old table as old_batches
for each statement
execute function omni_ingest.archive_batches_drop_claims();
