-- Sluice's first schema. Runs in one transaction (sluice.migrate).
-- Targets PostgreSQL 16+ (AWS runs 16 or 17; the embedded test server is 18):
-- nothing newer than 16 is used.

CREATE TABLE apps (
    -- Random and unguessable ("app_" + 128 random bits): an id in a URL grants nothing,
    -- but nobody can enumerate apps either.
    app_id      text PRIMARY KEY CHECK (app_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name        text NOT NULL,
    -- Keys are the default; false lets pre-Sluice clients, which sent none, keep working.
    require_key boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    key_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    app_id     text NOT NULL REFERENCES apps (app_id) ON DELETE CASCADE,
    -- The first characters of the key, shown to owners so they can tell keys apart.
    prefix     text NOT NULL,
    -- SHA-256 of the whole key; the key itself is never stored.
    key_hash   bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX api_keys_app ON api_keys (app_id);

CREATE TABLE rules (
    app_id      text NOT NULL REFERENCES apps (app_id) ON DELETE CASCADE,
    event_name  text NOT NULL,
    -- A JSON Schema (draft 2020-12 unless it names another in $schema).
    schema      jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, event_name)
);

-- No foreign key to apps: every insert would pay for the lookup, and events
-- only ever arrive for apps that ingest has just found.
CREATE TABLE events (
    event_id          uuid PRIMARY KEY,          -- UUIDv7, made at ingest: time-ordered
    app_id            text NOT NULL,
    event_name        text NOT NULL,
    payload           jsonb NOT NULL,            -- the event exactly as the client sent it
    status            text NOT NULL CHECK (status IN ('valid', 'invalid')),
    validation_errors jsonb,                     -- [{path, message, keyword}] when invalid
    message_id        text,                      -- the client's messageId, for deduplication
    client_timestamp  timestamptz,               -- the client's timestamp, as sent
    sent_at           timestamptz,               -- the client's sentAt, as sent
    occurred_at       timestamptz NOT NULL,      -- client time corrected for its clock skew
    received_at       timestamptz NOT NULL,
    stored_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_app_message_id UNIQUE (app_id, message_id)
);
CREATE INDEX events_app_newest ON events (app_id, occurred_at DESC);
CREATE INDEX events_app_name_newest ON events (app_id, event_name, occurred_at DESC);
