-- Where a duplicate's event id leads (sluice.manage, README "How each state of an id
-- is known"). A client's retry of a messageId gets a new event id from ingest, which
-- cannot know the first copy exists (it may still be in the queue); the store skips
-- it (event_dedup) and records here, in the same transaction, the row it stands for.
-- Without it the retry's id, never stored, read `queued` until its 18 days ran out.
-- One row per skipped copy: retries are rare, so the table stays small; the maintain
-- function removes a row once its id can no longer be queued and its original has
-- expired (sluice.partitions.purge_duplicates).
CREATE TABLE event_duplicates (
    event_id             uuid PRIMARY KEY,     -- the skipped copy's id, as ingest answered it
    app_id               text NOT NULL,
    original_event_id    uuid NOT NULL,        -- the row stored for its messageId
    original_received_at timestamptz NOT NULL, -- that row's partition key
    received_at          timestamptz NOT NULL  -- when ingest received the copy
);
CREATE INDEX event_duplicates_received ON event_duplicates USING brin (received_at);

-- store: adds them (ON CONFLICT DO NOTHING needs no SELECT); manage: follows them in a
-- lookup; maintain: purges them.
GRANT INSERT ON event_duplicates TO sluice_store;
GRANT SELECT ON event_duplicates TO sluice_manage;
GRANT SELECT, DELETE ON event_duplicates TO sluice_maintain;
