-- 202611300900_run_liveness.sql
--
-- The run ledger tells the truth about runs that died and runs that left work behind (SPEC §13):
-- - `incomplete`: the run ended its range with work still pending that was there when it
--   started (leased by another process, blocked): it did not succeed, it is not failed either;
-- - `resumed_by`: the run that found this one dead (its process gone or its heartbeat stale) and
--   marked it abandoned; the work it had not committed was pending again for that run.

alter table omni_ingest.runs drop constraint runs_status_check;
alter table omni_ingest.runs add constraint runs_status_check
check (status in ('running', 'succeeded', 'incomplete', 'failed', 'stopped', 'abandoned'));

alter table omni_ingest.runs add column resumed_by uuid;

-- Dead runs are looked up per command and host at the start of every run.
create index runs_running_command_idx on omni_ingest.runs (command, host) where status = 'running';
