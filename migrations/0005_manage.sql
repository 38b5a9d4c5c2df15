-- The management API (functions/manage): apps owned by accounts, rule history,
-- per-app policies, and the key that lets it recognise the event ids ingest issued.
-- Runs in one transaction (sluice.migrate).

-- Null for apps made by the operator CLI or the demo setup: no account sees them
-- through the management API. Deleting an account deletes its apps.
ALTER TABLE apps ADD COLUMN owner_account_id uuid REFERENCES accounts (account_id) ON DELETE CASCADE;
-- What ingest does with an event that breaks its rule: store it as invalid (the
-- behaviour before policies existed) or refuse it with 422.
ALTER TABLE apps ADD COLUMN invalid_events text NOT NULL DEFAULT 'store'
    CHECK (invalid_events IN ('store', 'block'));
-- ...and with an event name that has no rule: accept it, or refuse it (422 unplanned_event).
ALTER TABLE apps ADD COLUMN unplanned_events text NOT NULL DEFAULT 'allow'
    CHECK (unplanned_events IN ('allow', 'block'));
CREATE INDEX apps_owner ON apps (owner_account_id, created_at) WHERE owner_account_id IS NOT NULL;

-- Every change to a rule, newest version last; a null schema records a deletion.
-- `rules` stays what ingest reads; a version is written in the same transaction.
CREATE TABLE rule_versions (
    app_id     text NOT NULL REFERENCES apps (app_id) ON DELETE CASCADE,
    event_name text NOT NULL,
    version    integer NOT NULL CHECK (version > 0),
    schema     jsonb,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, event_name, version)
);

-- The key of the MAC ingest writes into each event id's random bits (sluice.event_ids),
-- so the management API can tell an id ingest issued (queued, not stored yet) from one
-- it never did. Made here, from the server's randomness, and never leaves the database
-- but to ingest and manage. One row.
CREATE TABLE event_id_keys (
    key_id  smallint PRIMARY KEY CHECK (key_id = 1),
    secret  bytea NOT NULL CHECK (length(secret) = 32)
);
INSERT INTO event_id_keys (key_id, secret) VALUES (
    1,
    decode(
        -- two version-4 UUIDs: 64 hex digits, 244 random bits
        replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''),
        'hex'
    )
);

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sluice_manage') THEN
        CREATE ROLE sluice_manage LOGIN;
    END IF;
    GRANT USAGE ON SCHEMA public TO sluice_manage;
END
$$;

-- manage: an owner's apps, keys and rules (and their history), read through the
-- owner's session; reads events (index-backed lists, one by id) and deletes them
-- with their app. It never sees password hashes, challenges or other tables.
GRANT SELECT, INSERT, UPDATE, DELETE ON apps, rules TO sluice_manage;
GRANT SELECT, INSERT, UPDATE ON api_keys TO sluice_manage;
GRANT SELECT, INSERT ON rule_versions TO sluice_manage;
GRANT SELECT, DELETE ON events TO sluice_manage;
GRANT SELECT ON sessions, event_id_keys TO sluice_manage;

-- ingest: the apps' policies are new columns of apps (already granted); it signs event ids.
GRANT SELECT ON event_id_keys TO sluice_ingest;
