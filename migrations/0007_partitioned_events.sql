-- Events partitioned by day, deduplication that survives it, per-app retention, the
-- archive's records, and the maintain function's role (README, "Keeping events").
-- Runs in one transaction (sluice.migrate): an existing events table is copied into
-- the partitioned one, and a failure leaves the old table as it was.
--
-- The partition key is received_at, not occurred_at nor stored_at:
--  * received_at is the ingest server's clock, set once and carried in the queued
--    message, so a redelivered event (SQS, a DLQ redrive days later) has the same value
--    and lands in the same partition, where the primary key (event_id, received_at)
--    turns the second copy away. stored_at changes on every delivery: a redelivery
--    after midnight would be a second row in the next day's partition.
--  * occurred_at is the client's clock: a late event (an app offline for a month, a
--    device a year off) would land in a partition long dropped or far in the future,
--    and a day's partition would never be "finished" for the archive. received_at is
--    always near now, so partitions fill one after another, and retention drops whole
--    days in the order they were received.
-- Days, not hours or months: retention is counted in days, so a partition is the unit
-- that expires whole; a day of 100 events/s is ~8.6 M rows (~4.6 GB), which the
-- planner and autovacuum handle well, and 400 days of history are 400 partitions,
-- where hourly ones would be ~10,000 (planning time grows with the count).

ALTER TABLE events RENAME TO events_unpartitioned;
ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_pkey TO events_unpartitioned_pkey;
ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_app_message_id TO events_unpartitioned_app_message_id;
ALTER INDEX events_app_newest RENAME TO events_unpartitioned_app_newest;
ALTER INDEX events_app_name_newest RENAME TO events_unpartitioned_app_name_newest;
ALTER INDEX events_store_xid RENAME TO events_unpartitioned_store_xid;

-- The same columns in the same order (sluice.storage names them in COPY and INSERT).
CREATE TABLE events (
    event_id          uuid NOT NULL,             -- UUIDv7, made at ingest: time-ordered
    app_id            text NOT NULL,
    event_name        text NOT NULL,
    payload           jsonb NOT NULL,            -- the event exactly as the client sent it
    status            text NOT NULL CHECK (status IN ('valid', 'invalid')),
    validation_errors jsonb,                     -- [{path, message, keyword}] when invalid
    message_id        text,                      -- the client's messageId (see event_dedup)
    client_timestamp  timestamptz,
    sent_at           timestamptz,
    occurred_at       timestamptz NOT NULL,      -- client time corrected for its clock skew
    received_at       timestamptz NOT NULL,      -- ingest's clock: the partition key
    stored_at         timestamptz NOT NULL DEFAULT now(),
    store_xid         xid8 NOT NULL DEFAULT pg_current_xact_id(),  -- see 0004
    -- A unique key of a partitioned table must hold the partition key. A redelivered
    -- event keeps its received_at, so this still refuses its second copy.
    PRIMARY KEY (event_id, received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX events_app_newest ON events (app_id, occurred_at DESC);
CREATE INDEX events_app_name_newest ON events (app_id, event_name, occurred_at DESC);
CREATE INDEX events_store_xid ON events (store_xid, event_id);
-- Whatever no day's partition takes (an ingest clock far off, a day the maintain
-- function has not made yet): no event is ever refused at a boundary. Making that
-- day's partition later moves its rows out of here (sluice_make_event_partitions).
CREATE TABLE events_default PARTITION OF events DEFAULT;

-- Exactly-once for a client's retries: one row per (app, messageId) stored in the last
-- DEDUP window (README; purged by the maintain function), written in the same
-- transaction as the event. The primary key of events cannot do this any more: it
-- must include received_at, and a retry is a new request with a new received_at.
CREATE TABLE event_dedup (
    app_id      text NOT NULL,
    message_id  text NOT NULL,
    event_id    uuid NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, message_id)
);
-- BRIN: rows arrive in received_at order, so a block range index finds the purge's old
-- rows for a few pages of index, and costs the store almost nothing to keep (a btree
-- here took a quarter of the claim's time).
CREATE INDEX event_dedup_received ON event_dedup USING brin (received_at);

-- Retention of raw events, in days, per app (the rollups are kept). Archived to S3
-- before they go.
ALTER TABLE apps ADD COLUMN retention_days integer NOT NULL DEFAULT 30
    CHECK (retention_days BETWEEN 1 AND 3650);

-- Apps deleted whose events (and archive) the maintain function still has to remove,
-- in bounded chunks rather than in the request that deleted the app.
CREATE TABLE deleted_apps (
    app_id     text PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);

-- Every object written to the archive: one per app, day (of received_at) and run.
CREATE TABLE event_archives (
    app_id      text NOT NULL,
    day         date NOT NULL,
    object_key  text NOT NULL PRIMARY KEY,
    events      bigint NOT NULL,
    -- true: the app's rows of a whole detached day (that day is not read again for it);
    -- false: the rows one app's shorter retention expired, deleted after the upload.
    whole_day   boolean NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_archives_app_day ON event_archives (app_id, day);

-- Partitions are made and dropped by these functions, which run as their owner (the
-- migrating user, who owns events): the maintain function's role gets EXECUTE on
-- them, not ownership of the table, so it can do these steps and no other DDL.
--
-- Makes the day partitions of [first_day, last_day] that do not exist yet (a name
-- kept by a detached partition still being archived counts as existing). Rows the
-- default partition already took for such a day are moved into it first, so the
-- attach never fails on them.
-- Attaching locks the default partition exclusively (it must be checked for the new
-- day's rows), so the same lock timeout as the detach below applies.
CREATE FUNCTION sluice_make_event_partitions(first_day date, last_day date) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '500ms' AS $$
DECLARE
    day date;
    part text;
    low timestamptz;
    high timestamptz;
    made integer := 0;
BEGIN
    FOR day IN SELECT d::date FROM generate_series(first_day, last_day, interval '1 day') AS d LOOP
        part := 'events_p' || to_char(day, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(part) IS NOT NULL;
        low := day::timestamp AT TIME ZONE 'UTC';
        high := (day + 1)::timestamp AT TIME ZONE 'UTC';
        EXECUTE format('CREATE TABLE %I (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
        EXECUTE format(
            'WITH moved AS (DELETE FROM events_default WHERE received_at >= %L AND received_at < %L'
            ' RETURNING *) INSERT INTO %I SELECT * FROM moved', low, high, part);
        EXECUTE format('ALTER TABLE events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       part, low, high);
        made := made + 1;
    END LOOP;
    RETURN made;
END
$$;

-- Detaches one day's partition, if attached, for the archive and the drop. A plain
-- DETACH: CONCURRENTLY cannot run in a transaction block nor beside a default
-- partition. It is a catalog change, done in milliseconds, but it needs an exclusive
-- lock on events; lock_timeout bounds how long it may wait (and so how long a store
-- queued behind it can wait): it gives up instead, and the next run tries again.
-- The maintain role may then read the detached table to archive it.
CREATE FUNCTION sluice_detach_event_partition(day date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '500ms' AS $$
DECLARE
    part text := 'events_p' || to_char(day, 'YYYYMMDD');
BEGIN
    IF NOT EXISTS (SELECT FROM pg_inherits WHERE inhrelid = to_regclass(part)
                   AND inhparent = 'events'::regclass) THEN
        RETURN false;
    END IF;
    EXECUTE format('ALTER TABLE events DETACH PARTITION %I', part);
    EXECUTE format('GRANT SELECT ON %I TO sluice_maintain', part);
    RETURN true;
END
$$;

-- Drops a day's partition that was detached (never one still attached).
CREATE FUNCTION sluice_drop_detached_event_partition(day date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    part text := 'events_p' || to_char(day, 'YYYYMMDD');
BEGIN
    IF to_regclass(part) IS NULL
       OR EXISTS (SELECT FROM pg_inherits WHERE inhrelid = to_regclass(part)) THEN
        RETURN false;
    END IF;
    EXECUTE format('DROP TABLE %I', part);
    RETURN true;
END
$$;

-- The days of the partitions, attached or detached (awaiting their archive).
CREATE VIEW event_partitions AS
SELECT to_date(substr(c.relname, 9), 'YYYYMMDD') AS day,
       EXISTS (SELECT FROM pg_inherits i WHERE i.inhrelid = c.oid) AS attached
FROM pg_class c
WHERE c.relkind = 'r' AND c.relname ~ '^events_p[0-9]{8}$'
  AND c.relnamespace = 'public'::regnamespace;

-- The existing rows: a partition for each day they were received on (and a week
-- ahead), then copied over with their store_xid, so the aggregator counts none twice.
SELECT sluice_make_event_partitions(
    LEAST((SELECT min(received_at AT TIME ZONE 'UTC')::date FROM events_unpartitioned),
          (now() AT TIME ZONE 'UTC')::date),
    (now() AT TIME ZONE 'UTC')::date + 7);
INSERT INTO events (event_id, app_id, event_name, payload, status, validation_errors, message_id,
                    client_timestamp, sent_at, occurred_at, received_at, stored_at, store_xid)
SELECT event_id, app_id, event_name, payload, status, validation_errors, message_id,
       client_timestamp, sent_at, occurred_at, received_at, stored_at, store_xid
FROM events_unpartitioned;
INSERT INTO event_dedup (app_id, message_id, event_id, received_at)
SELECT app_id, message_id, event_id, received_at
FROM events_unpartitioned WHERE message_id IS NOT NULL;
DROP TABLE events_unpartitioned;

-- Grants on the new table (they do not follow a rename's replacement).
GRANT INSERT ON events TO sluice_store;
GRANT SELECT, INSERT ON event_dedup TO sluice_store;
GRANT SELECT ON events TO sluice_aggregate;
-- manage reads events and no longer deletes them: deleting an app records it here and
-- the maintain function removes the events in chunks.
GRANT SELECT ON events TO sluice_manage;
GRANT INSERT ON deleted_apps TO sluice_manage;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sluice_maintain') THEN
        CREATE ROLE sluice_maintain LOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO sluice_maintain;
-- maintain: makes and drops partitions through the functions above only; archives
-- and deletes expired events in chunks; purges the dedup window; removes deleted
-- apps' events. It reads apps for their retention and the aggregator's position (it
-- never drops what the rollups have not counted).
GRANT EXECUTE ON FUNCTION sluice_make_event_partitions(date, date),
    sluice_detach_event_partition(date), sluice_drop_detached_event_partition(date)
    TO sluice_maintain;
REVOKE EXECUTE ON FUNCTION sluice_make_event_partitions(date, date),
    sluice_detach_event_partition(date), sluice_drop_detached_event_partition(date)
    FROM PUBLIC;
GRANT SELECT, DELETE ON events TO sluice_maintain;
GRANT SELECT ON events_default TO sluice_maintain;
GRANT SELECT, DELETE ON event_dedup, deleted_apps TO sluice_maintain;
GRANT SELECT, INSERT, UPDATE, DELETE ON event_archives TO sluice_maintain;
GRANT SELECT ON apps, aggregate_position, event_partitions TO sluice_maintain;
