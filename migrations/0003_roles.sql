-- One database role per function, with only the grants it needs. The master
-- user (whose secret only the migration function reads) owns the schema and
-- runs the migrations; no function connects as it.
--
-- Roles belong to the whole server, not to one database: a role another database
-- on the same server (tests, a second stack) already made is kept. Passwords are
-- not set here: in AWS the migration function sets each from its own Secrets
-- Manager secret (sluice.roles); locally the embedded server trusts its socket.

DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['sluice_ingest', 'sluice_store', 'sluice_accounts', 'sluice_email'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) THEN
            EXECUTE format('CREATE ROLE %I LOGIN', name);
        END IF;
        EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', name);
    END LOOP;
END
$$;

-- ingest: authorises a request and reads the app's rules; it never reads events
-- and can write nothing.
GRANT SELECT ON apps, api_keys, rules TO sluice_ingest;

-- store: adds events (COPY and INSERT ... ON CONFLICT DO NOTHING need only INSERT).
GRANT INSERT ON events TO sluice_store;

-- accounts: owners, their challenges (codes and tokens are only ever hashes),
-- sessions and the per-address send limits. Nothing of apps or events.
GRANT SELECT, INSERT, UPDATE ON accounts, sessions, email_send_limits TO sluice_accounts;
GRANT SELECT, INSERT, UPDATE, DELETE ON email_challenges TO sluice_accounts;

-- email: reads the account a challenge is for, stores the challenge's secret hash,
-- and keeps the delivery records that make sending exactly-once-ish.
GRANT SELECT ON accounts TO sluice_email;
GRANT SELECT, UPDATE ON email_challenges TO sluice_email;
GRANT SELECT, INSERT, UPDATE ON email_deliveries TO sluice_email;
