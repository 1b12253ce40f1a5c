-- 202612061100_archive_row_version.sql
--
-- An archive claim remembers the version of the row it claimed (the row's xmin when the batch was
-- planned). The delete after verify removes a row only while that version is still the row's
-- (any UPDATE since gives the row another xmin), so a row changed after it was written to a part
-- stays hot, checked by comparing two numbers instead of serialising and hashing the row again.
-- Claims made before this column existed have none: their rows are still compared by the MD5 of
-- their archived line.

alter table omni_ingest.archived_events add column row_xmin xid;
