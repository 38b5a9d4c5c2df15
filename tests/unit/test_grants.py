"""Each function's database role holds exactly the grants this file declares.

The declaration is what the functions' SQL uses (the data modules named below), and
docs/design.md's "Database roles" table states it; the tests read the grants back from the
database, so a migration that grants more, or less, fails here.
"""

from __future__ import annotations

import re

import psycopg2
import pytest

from tests.conftest import REPO_ROOT

ROLES = (
    "sluice_ingest",
    "sluice_store",
    "sluice_accounts",
    "sluice_email",
    "sluice_aggregate",
    "sluice_manage",
    "sluice_maintain",
)

# A day's partition of events (events_pYYYYMMDD) gets its grants when it is detached
# (sluice_detach_event_partition): which exist depends on the day, not on a migration.
_PARTITION = r"^events_p[0-9]{8}$"


def granted(conn, role: str) -> dict[str, dict[str, tuple[str, ...] | None]]:
    """{object: {privilege: None for all of it, or the columns}} the role was granted."""
    grants: dict[str, dict[str, tuple[str, ...] | None]] = {}
    with conn.cursor() as cur:
        cur.execute(
            "SELECT table_name, privilege_type FROM information_schema.table_privileges"
            " WHERE grantee = %s AND table_schema = 'public' AND table_name !~ %s",
            (role, _PARTITION),
        )
        for table, privilege in cur.fetchall():
            grants.setdefault(table, {})[privilege] = None
        cur.execute(
            "SELECT table_name, privilege_type, array_agg(column_name::text ORDER BY column_name)"
            " FROM information_schema.column_privileges"
            " WHERE grantee = %s AND table_schema = 'public' AND table_name !~ %s"
            " GROUP BY 1, 2",
            (role, _PARTITION),
        )
        for table, privilege, columns in cur.fetchall():
            if privilege not in grants.get(table, {}):
                grants.setdefault(table, {})[privilege] = tuple(columns)
        cur.execute(
            "SELECT routine_name, privilege_type FROM information_schema.routine_privileges"
            " WHERE grantee = %s AND routine_schema = 'public'",
            (role,),
        )
        for routine, privilege in cur.fetchall():
            grants.setdefault(routine + "()", {})[privilege] = None
    return grants


ALL = None  # every column
# role -> object -> privilege -> ALL or the columns. Functions are "name()".
GRANTS: dict[str, dict[str, dict[str, tuple[str, ...] | None]]] = {
    # sluice/intake/catalog_data.py (fetch_app, fetch_key_owner), sluice/intake/event_ids.py
    "sluice_ingest": {
        "apps": {"SELECT": ALL},
        "api_keys": {"SELECT": ALL},
        "rules": {"SELECT": ALL},
        "event_id_keys": {"SELECT": ALL},
    },
    # sluice/store/events_data.py (COPY and INSERT of events and their dedup claims),
    # sluice/store/rejections_data.py
    "sluice_store": {
        "events": {"INSERT": ALL},
        "event_dedup": {"SELECT": ALL, "INSERT": ALL},
        "event_duplicates": {"INSERT": ALL},
        "rejections": {"INSERT": ALL},
    },
    # sluice/accounts/accounts_data.py, sluice/accounts/sessions.py
    "sluice_accounts": {
        "accounts": {"SELECT": ALL, "INSERT": ALL, "UPDATE": ALL},
        "email_challenges": {"SELECT": ALL, "INSERT": ALL, "UPDATE": ALL, "DELETE": ALL},
        "email_send_limits": {"SELECT": ALL, "INSERT": ALL, "UPDATE": ALL},
        "sessions": {"SELECT": ALL, "INSERT": ALL, "UPDATE": ALL},
    },
    # sluice/email/email_data.py: never a password hash, a secret's hash, nor the tries.
    "sluice_email": {
        "accounts": {"SELECT": ("account_id", "email")},
        "email_challenges": {
            "SELECT": ("account_id", "challenge_id", "email", "expires_at", "kind", "used_at"),
            "UPDATE": ("account_id", "secret_hash"),
        },
        "email_deliveries": {"SELECT": ALL, "INSERT": ALL, "UPDATE": ALL},
    },
    # sluice/rollups/aggregate.py
    "sluice_aggregate": {
        "events": {"SELECT": ALL},
        "event_archives": {"SELECT": ALL},
        "event_counts_hourly": {"SELECT": ALL, "INSERT": ALL, "UPDATE": ALL, "DELETE": ALL},
        "event_counts_daily": {"SELECT": ALL, "INSERT": ALL, "UPDATE": ALL, "DELETE": ALL},
        "daily_users": {"SELECT": ALL, "INSERT": ALL, "UPDATE": ALL, "DELETE": ALL},
        "aggregate_position": {"SELECT": ALL, "UPDATE": ALL},
    },
    # sluice/manage/manage_data.py, sluice/rollups/stats.py,
    # sluice/accounts/sessions.py (authenticate), sluice/intake/event_ids.py
    "sluice_manage": {
        "apps": {"SELECT": ALL, "INSERT": ALL, "UPDATE": ALL, "DELETE": ALL},
        "api_keys": {"SELECT": ALL, "INSERT": ALL, "UPDATE": ALL},
        "rules": {"SELECT": ALL, "INSERT": ALL, "UPDATE": ALL, "DELETE": ALL},
        "rule_versions": {"SELECT": ALL, "INSERT": ALL},
        "events": {"SELECT": ALL},
        "event_duplicates": {"SELECT": ALL},
        "deleted_apps": {"INSERT": ALL},
        "sessions": {"SELECT": ALL},
        "event_id_keys": {"SELECT": ALL},
        "event_counts_hourly": {"SELECT": ALL},
        "event_counts_daily": {"SELECT": ALL},
        "aggregate_position": {"SELECT": ALL},
        "rejections": {"SELECT": ALL},
    },
    # sluice/retention/partitions.py, sluice/retention/account_purge.py,
    # sluice/retention/rejections.py: keys and times of account records and rejections only.
    "sluice_maintain": {
        "apps": {"SELECT": ALL},
        "aggregate_position": {"SELECT": ALL},
        "events": {"SELECT": ALL, "DELETE": ALL},
        "events_default": {"SELECT": ALL},
        "event_partitions": {"SELECT": ALL},
        "event_dedup": {"SELECT": ALL, "DELETE": ALL},
        "event_duplicates": {"SELECT": ALL, "DELETE": ALL},
        "deleted_apps": {"SELECT": ALL, "DELETE": ALL},
        "event_archives": {"SELECT": ALL, "INSERT": ALL, "UPDATE": ALL, "DELETE": ALL},
        "email_challenges": {"SELECT": ("challenge_id", "expires_at"), "DELETE": ALL},
        "email_deliveries": {"SELECT": ("challenge_id", "claimed_until", "state")},
        "sessions": {"SELECT": ("ended_at", "expires_at", "session_id"), "DELETE": ALL},
        "email_send_limits": {"SELECT": ("limit_key", "sent_at"), "DELETE": ALL},
        "rejections": {"SELECT": ("received_at", "rejection_id"), "DELETE": ALL},
        "sluice_make_event_partitions()": {"EXECUTE": ALL},
        "sluice_detach_event_partition()": {"EXECUTE": ALL},
        "sluice_drop_detached_event_partition()": {"EXECUTE": ALL},
    },
}


@pytest.mark.parametrize("role", ROLES)
def test_the_role_holds_exactly_the_declared_grants(database_url, role):
    conn = psycopg2.connect(database_url)
    try:
        assert granted(conn, role) == GRANTS[role]
    finally:
        conn.close()


def test_every_role_granted_anything_here_is_declared(database_url):
    conn = psycopg2.connect(database_url)
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT grantee FROM information_schema.table_privileges"
            " WHERE table_schema = 'public' AND grantee <> current_user AND grantee <> 'PUBLIC'"
        )
        grantees = {name for (name,) in cur.fetchall()}
    conn.close()
    assert grantees == set(ROLES) == set(GRANTS)


_ORDER = ("SELECT", "INSERT", "UPDATE", "DELETE", "EXECUTE")
_ROW = re.compile(r"^\| `(sluice_[a-z]+)` \| `([a-z_]+(?:\(\))?)` \| (.+) \|$")


def grant_text(privileges: dict[str, tuple[str, ...] | None]) -> str:
    """`SELECT, UPDATE (secret_hash)`: how docs/design.md writes one object's grants."""
    return ", ".join(
        privilege if privileges[privilege] is ALL else f"{privilege} ({', '.join(columns)})"
        for privilege in _ORDER
        if privilege in privileges
        for columns in [privileges[privilege] or ()]
    )


def test_the_design_docs_table_states_the_declared_grants():
    design = (REPO_ROOT / "docs" / "design.md").read_text()
    stated: dict[str, dict[str, str]] = {}
    for line in design.splitlines():
        row = _ROW.match(line)
        if row:
            role, name, grants = row.groups()
            stated.setdefault(role, {})[name] = grants
    declared = {
        role: {name: grant_text(privileges) for name, privileges in objects.items()}
        for role, objects in GRANTS.items()
    }
    assert stated == declared
