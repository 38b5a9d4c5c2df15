-- Rollups of stored events (sluice.aggregate) and the aggregate function's role.
-- How the aggregator finds new rows exactly is explained in layers/sluice/aggregate.py.

-- The transaction that stored each row, as a 64-bit id (xid8: no epoch, no wraparound).
-- The aggregator compares it with pg_current_snapshot() to take exactly the rows
-- committed since its last run, including those of transactions that were still open
-- then. The row's own xmin holds the same fact, but it is 32 bits wide and a system
-- column, which no index can cover; this column can be indexed.
--
-- pg_current_xact_id() is STABLE, so adding the column is instant: rows already stored
-- get this migration's transaction id as their value, without a table rewrite, and are
-- counted by the first run. Every later row gets its own storing transaction's id; the
-- store function names its columns in COPY and INSERT, so it fills this one by default
-- and needs no change.
ALTER TABLE events ADD COLUMN store_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
-- Rows of one transaction arrive together, with ids that grow: inserts land at the
-- index's right edge. event_id breaks ties, so the aggregator pages through a
-- transaction's rows in bounded chunks.
CREATE INDEX events_store_xid ON events (store_xid, event_id);

-- Counts per app x event name x status x hour and x day, by occurred_at in UTC (the
-- client's time corrected for its clock, so a late event counts in its own hour).
CREATE TABLE event_counts_hourly (
    app_id     text NOT NULL,
    hour       timestamptz NOT NULL,
    event_name text NOT NULL,
    status     text NOT NULL,
    events     bigint NOT NULL CHECK (events > 0),
    PRIMARY KEY (app_id, hour, event_name, status)
);
-- A stats query for one event name reads only its rows.
CREATE INDEX event_counts_hourly_name ON event_counts_hourly (app_id, event_name, hour);

CREATE TABLE event_counts_daily (
    app_id     text NOT NULL,
    day        timestamptz NOT NULL,
    event_name text NOT NULL,
    status     text NOT NULL,
    events     bigint NOT NULL CHECK (events > 0),
    PRIMARY KEY (app_id, day, event_name, status)
);
CREATE INDEX event_counts_daily_name ON event_counts_daily (app_id, event_name, day);

-- Distinct users, exactly: one row per app x day x userId seen that day (about 60 bytes
-- with its index entry, so a million daily users cost ~60 MB a day; a retention job
-- can drop old days without touching the counts).
CREATE TABLE daily_users (
    app_id  text NOT NULL,
    day     timestamptz NOT NULL,
    user_id text NOT NULL,
    PRIMARY KEY (app_id, day, user_id)
);

-- How far the aggregator has got; one row. Everything committed in `counted` has been
-- counted; while a window is open, so have the rows of `target` not in `counted` up
-- to (after_xid, after_event_id) in index order.
CREATE TABLE aggregate_position (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    -- Nothing is visible in 1:1: (xids start at 3), so the first run counts every row.
    counted         pg_snapshot NOT NULL DEFAULT '1:1:',
    -- Everything stored before this moment is counted (null: nothing yet).
    complete_through timestamptz,
    target          pg_snapshot,
    target_taken_at timestamptz,
    after_xid       xid8,
    after_event_id  uuid,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO aggregate_position DEFAULT VALUES;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sluice_aggregate') THEN
        CREATE ROLE sluice_aggregate LOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO sluice_aggregate;
-- aggregate: reads events, never writes them; owns the rollups (a rebuild deletes and
-- recounts a range) and its position.
GRANT SELECT ON events TO sluice_aggregate;
GRANT SELECT, INSERT, UPDATE, DELETE ON event_counts_hourly, event_counts_daily, daily_users
    TO sluice_aggregate;
GRANT SELECT, UPDATE ON aggregate_position TO sluice_aggregate;
