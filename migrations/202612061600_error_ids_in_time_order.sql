-- 202612061600_error_ids_in_time_order.sql
--
-- A dead letter's id is a UUID in the layout of RFC 9562's version 7: its first 48 bits are the
-- time of its insert in milliseconds, the rest random as before. Errors written together then
-- sit together in the primary key, and `errors retry`, which walks errors by (last_seen, id)
-- (a batch's letters share last_seen), meets them in the order they were written, and the new
-- row versions of a batch it resolves go to a few neighbouring pages of the key instead of one
-- page per error. Ids stay unique and hard to guess (74 random bits); they tell when the error
-- was first written, which first_seen already says. Existing rows keep theirs.

create function omni_ingest.uuid_in_time_order() returns uuid
language sql
volatile
parallel safe
set search_path = ''
as $$
select encode(
  set_bit(set_bit(
    overlay(uuid_send(gen_random_uuid())
      placing substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
      from 1 for 6),
  52, 1), 53, 1),
  'hex')::uuid
$$;

alter table public.raw_event_errors alter column id set default omni_ingest.uuid_in_time_order();
