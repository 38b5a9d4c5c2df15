-- Records of the batch items ingest refused (issue 23: "an owner can see what was
-- rejected and why"). Ingest cannot write, so the records cross the events queue
-- (sluice.queued_events.RejectionsMessage) and the store inserts them; the manage
-- function lists them to the app's owner; the maintain function deletes them after
-- sluice.retention.maintain.REJECTIONS_KEPT. Never the refused item itself: where
-- (route, index, the messageId as sent) and why (Sluice's own code and message),
-- each text capped by ingest (sluice.queued_events.MAX_REJECTION_*).
CREATE TABLE rejections (
    rejection_id uuid PRIMARY KEY,  -- issued by ingest: a redelivered record lands once
    app_id text NOT NULL,
    received_at timestamptz NOT NULL,
    route text NOT NULL,
    item_index integer NOT NULL,
    message_id text,
    code text NOT NULL,
    message text NOT NULL
);
-- The owner's list: an app's records, newest first (the cursor is the last row's pair).
CREATE INDEX rejections_app_newest ON rejections (app_id, received_at DESC, rejection_id DESC);
-- The maintain function's expiry walks the oldest first.
CREATE INDEX rejections_received ON rejections (received_at);

GRANT INSERT ON rejections TO sluice_store;
GRANT SELECT ON rejections TO sluice_manage;
-- DELETE ... WHERE received_at < ...: the maintain role reads the key and the time only.
GRANT SELECT (rejection_id, received_at), DELETE ON rejections TO sluice_maintain;
