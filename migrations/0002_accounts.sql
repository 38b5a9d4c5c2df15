-- Accounts of app owners, the challenges mailed to them, their sessions, and the
-- email path's own records. Runs in one transaction (sluice.migrate).
--
-- Who touches what (for per-function database roles):
--   accounts           accounts function: read, write;   email function: read
--   email_challenges   accounts function: read, write;   email function: read, update
--   sessions           accounts function: read, write    (later routes: read through sluice.sessions)
--   email_send_limits  accounts function: read, write
--   email_deliveries   email function: read, write

CREATE TABLE accounts (
    account_id    uuid PRIMARY KEY,
    -- Lower-cased and trimmed (sluice.passwords.normalise_email): one account per address.
    email         text NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) <= 254),
    -- "scrypt$<n>$<r>$<p>$<salt>$<hash>": the parameters travel with the hash, so they
    -- can be raised later and old hashes still checked (then re-hashed at sign-in).
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL,
    password_changed_at timestamptz NOT NULL
);

-- One row per thing mailed: a registration, a sign-in's password step, a reset request.
-- The accounts function writes the row and queues {kind, challenge_id}; the email function
-- decides what it becomes, makes the secret (a 6-digit code or a reset token), stores its
-- hash here, and mails the plaintext, which is kept nowhere.
CREATE TABLE email_challenges (
    challenge_id  uuid PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('register', 'sign_in', 'password_reset')),
    -- The address the request named (a registration has no account yet to hold it).
    email         text NOT NULL,
    -- sign_in: the account, only when the password was right; null otherwise, and then no
    -- code is ever sent. register / password_reset: null (the email function looks it up).
    account_id    uuid REFERENCES accounts (account_id) ON DELETE CASCADE,
    -- register: the hash of the password chosen, set on the account when the code is verified.
    password_hash text,
    -- SHA-256 of (challenge_id, secret); null until the email function made a secret.
    secret_hash   bytea,
    created_at    timestamptz NOT NULL,
    -- 10 minutes (codes) or 30 (reset tokens) from the request, whether or not a secret
    -- is ever made, so a challenge behind which nothing was sent ages like any other.
    expires_at    timestamptz NOT NULL,
    failed_tries  integer NOT NULL DEFAULT 0,
    used_at       timestamptz
);
CREATE INDEX email_challenges_created ON email_challenges (created_at);

CREATE TABLE sessions (
    session_id  uuid PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (account_id) ON DELETE CASCADE,
    -- SHA-256 of the bearer token; the token itself is never stored.
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    ended_at    timestamptz
);
CREATE INDEX sessions_account ON sessions (account_id) WHERE ended_at IS NULL;

-- The last sends per rate-limit key (SHA-256 of the address), newest last: enough to
-- answer "one a minute, five an hour". The row is locked while a request decides.
CREATE TABLE email_send_limits (
    limit_key bytea PRIMARY KEY,
    sent_at   timestamptz[] NOT NULL
);

-- The email function's deduplication record, keyed by the business key (the challenge),
-- not by the SQS message: a redelivery or a second message for the same challenge finds it.
CREATE TABLE email_deliveries (
    challenge_id  uuid PRIMARY KEY REFERENCES email_challenges (challenge_id) ON DELETE CASCADE,
    -- sending: claimed until claimed_until (a crash lets the next delivery take over);
    -- sent, skipped (nothing to mail), rejected (SES refused it for good): final.
    state         text NOT NULL CHECK (state IN ('sending', 'sent', 'skipped', 'rejected')),
    template      text,
    claimed_until timestamptz,
    attempts      integer NOT NULL DEFAULT 0,
    ses_message_id text,
    -- SES's error code for a rejection (MessageRejected, BadRequestException), never the address.
    reason        text,
    updated_at    timestamptz NOT NULL
);
