"""The email function's SQL: its deliveries (challenges and accounts: accounts_data).

Its role may touch only the columns named here (migrations/0012, README "Database
roles"): accounts (account_id, email); email_challenges (read challenge_id, kind,
email, account_id, expires_at, used_at; update secret_hash, account_id);
email_deliveries (read, write). A query naming another column fails with
InsufficientPrivilege. Parameterised, no commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sluice.core.db import Connection


@dataclass(frozen=True, slots=True)
class Delivery:
    state: str
    claimed_until: datetime | None


def find_delivery(conn: Connection, challenge_id: uuid.UUID) -> Delivery | None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT state, claimed_until FROM email_deliveries WHERE challenge_id = %s",
            (challenge_id,),
        )
        row = cur.fetchone()
    return Delivery(*row) if row else None


def record_delivery(
    conn: Connection,
    challenge_id: uuid.UUID,
    *,
    state: str,
    now: datetime,
    template: str | None = None,
    claimed_until: datetime | None = None,
    attempt: bool = False,
    ses_message_id: str | None = None,
    reason: str | None = None,
) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO email_deliveries (challenge_id, state, template, claimed_until, attempts,"
            " ses_message_id, reason, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (challenge_id) DO UPDATE SET state = EXCLUDED.state,"
            " template = coalesce(EXCLUDED.template, email_deliveries.template),"
            " claimed_until = EXCLUDED.claimed_until,"
            " attempts = email_deliveries.attempts + EXCLUDED.attempts,"
            " ses_message_id = coalesce(EXCLUDED.ses_message_id, email_deliveries.ses_message_id),"
            " reason = EXCLUDED.reason, updated_at = EXCLUDED.updated_at",
            (
                challenge_id,
                state,
                template,
                claimed_until,
                1 if attempt else 0,
                ses_message_id,
                reason,
                now,
            ),
        )
