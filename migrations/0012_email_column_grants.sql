-- The email function's role could read every column of accounts (password hashes)
-- and of email_challenges (registrations' password hashes, secrets' hashes, tries),
-- and update every column of email_challenges. Its SQL (sluice/email_data.py) needs
-- less: an account's id and address; a challenge's id, kind, address, account, expiry
-- and use; and to set a challenge's secret hash and account. Column grants say so.
-- (Revoking a table-wide privilege also revokes column privileges: revoke, then grant.)
REVOKE SELECT ON accounts FROM sluice_email;
GRANT SELECT (account_id, email) ON accounts TO sluice_email;

REVOKE SELECT, UPDATE ON email_challenges FROM sluice_email;
-- SELECT ... FOR UPDATE (sluice/email_data.py, lock_challenge) needs UPDATE on one
-- column at least: it has two.
GRANT SELECT (challenge_id, kind, email, account_id, expires_at, used_at),
    UPDATE (secret_hash, account_id) ON email_challenges TO sluice_email;
