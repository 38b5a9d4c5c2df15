-- The maintain function purges the account tables' records nothing uses any more
-- (sluice.account_purge; README, "Keeping events"): challenges (and their deliveries)
-- and sessions a week after they ended, rate-limit rows with no send in the last hour.
-- Without it they grew forever, and kept the address of everyone who ever asked for
-- a code, registered or not.

-- The purge finds old rows through these, not by reading the whole table each hour:
-- the tables hold a week of rows (an abusive burst of registrations can make that
-- millions), and a chunk's last pick would otherwise scan all of them. Both tables
-- are written at the accounts routes' rate (rate-limited per address), so the
-- index's upkeep is small.
CREATE INDEX email_challenges_expires ON email_challenges (expires_at);
-- A session is over at its expiry or when it was ended, whichever came first
-- (least() skips a null ended_at); the purge's WHERE is this very expression.
CREATE INDEX sessions_over ON sessions ((least(expires_at, ended_at)));
-- email_send_limits gets no index: after a purge it holds only the addresses mailed
-- in the last hour, so reading it whole is reading little.

-- Only the columns the purge's WHERE clauses and keys name: the maintain role can
-- delete these rows but never read an address, a password hash or a token hash.
-- email_deliveries: read to spare a challenge whose delivery holds a live claim; its
-- rows go by ON DELETE CASCADE, which runs as the table's owner, so no DELETE on it.
GRANT SELECT (challenge_id, expires_at), DELETE ON email_challenges TO sluice_maintain;
GRANT SELECT (challenge_id, state, claimed_until) ON email_deliveries TO sluice_maintain;
GRANT SELECT (session_id, expires_at, ended_at), DELETE ON sessions TO sluice_maintain;
GRANT SELECT (limit_key, sent_at), DELETE ON email_send_limits TO sluice_maintain;
