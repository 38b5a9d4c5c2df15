"""The maintain function's SQL for the account tables: records nothing uses any more go.

Each function deletes at most `limit` rows, in the caller's transaction, and returns
how many: the keys of a chunk are picked first, then deleted through the primary key,
as partitions.purge_dedup does with ctids. Keys, not ctids: the maintain role may
read only the columns named here (migrations/0009), never an address or a hash, and
ctid is not one of them. The condition is repeated on the DELETE itself, so a row
changed after the pick (a send counted under its lock) is judged again as it now is,
and kept.
"""

from __future__ import annotations

from datetime import datetime

from sluice.core.db import Connection


def purge_challenges(
    conn: Connection, *, expired_before: datetime, now: datetime, limit: int
) -> int:
    """Challenges that expired before `expired_before`; their deliveries go by cascade.

    Never one whose delivery still holds a live claim: a claim is made only before the
    challenge expires and lasts a minute (sluice.email.mailer.LEASE), so none should be left
    a week later, but a delivery mid-send must find its challenge whatever the clocks say.
    """
    with conn.cursor() as cur:
        cur.execute(
            "DELETE FROM email_challenges AS c WHERE c.challenge_id = ANY(ARRAY("
            "  SELECT challenge_id FROM email_challenges AS p"
            "  WHERE p.expires_at < %(before)s AND NOT EXISTS ("
            "   SELECT FROM email_deliveries AS d WHERE d.challenge_id = p.challenge_id"
            "   AND d.state = 'sending' AND d.claimed_until > %(now)s)"
            "  LIMIT %(limit)s))"
            " AND c.expires_at < %(before)s AND NOT EXISTS ("
            "  SELECT FROM email_deliveries AS d WHERE d.challenge_id = c.challenge_id"
            "  AND d.state = 'sending' AND d.claimed_until > %(now)s)",
            {"before": expired_before, "now": now, "limit": limit},
        )
        return cur.rowcount


def purge_sessions(conn: Connection, *, over_before: datetime, limit: int) -> int:
    """Sessions that expired or were ended before `over_before` (a live one never is)."""
    with conn.cursor() as cur:
        cur.execute(
            "DELETE FROM sessions WHERE session_id = ANY(ARRAY("
            "  SELECT session_id FROM sessions"
            "  WHERE least(expires_at, ended_at) < %(before)s LIMIT %(limit)s))"
            " AND least(expires_at, ended_at) < %(before)s",
            {"before": over_before, "limit": limit},
        )
        return cur.rowcount


def purge_send_limits(conn: Connection, *, last_sent_before: datetime, limit: int) -> int:
    """Rate-limit rows whose every send (none, after a take-back) is before `last_sent_before`.

    With `last_sent_before` at least the longest window a send counts in, such a row
    limits nothing: the accounts function answers the same with it or without it.
    """
    with conn.cursor() as cur:
        cur.execute(
            "DELETE FROM email_send_limits WHERE limit_key = ANY(ARRAY("
            "  SELECT limit_key FROM email_send_limits"
            "  WHERE %(before)s > ALL (sent_at) LIMIT %(limit)s))"
            " AND %(before)s > ALL (sent_at)",
            {"before": last_sent_before, "limit": limit},
        )
        return cur.rowcount
