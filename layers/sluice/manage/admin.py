"""Operators' operations on apps, keys and rules, for code and for tools.admin's commands.

Functions take a psycopg2 connection; committing is the caller's.
An operator's ordinary mistake (an unknown app, a missing or broken schema file, no or
an unreachable database) is one line on stderr and an exit code of its own (EXIT_CODES),
so scripts can tell them apart; a traceback means a bug.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from sluice.accounts.accounts_data import account_email, find_account
from sluice.core.db import Connection
from sluice.core.errors import RequestRejected
from sluice.intake.keys import generate_api_key
from sluice.intake.validation import check_rule
from sluice.manage.manage import new_app_id
from sluice.manage.manage_data import (
    all_apps,
    insert_app,
    insert_key,
    lock_app,
    lock_app_owner,
    revoke_key_by_prefix,
    save_rule,
    set_app_owner,
    set_require_key,
)


class AdminError(Exception):
    """An operator's mistake: its message is the one line printed, exit_code the exit code."""

    exit_code = 1


class AppUnknown(AdminError):
    exit_code = 1


class BadArgument(AdminError):
    exit_code = 2  # argparse's own code for a usage error


class SchemaUnreadable(AdminError):
    exit_code = 3


class SchemaNotJson(AdminError):
    exit_code = 4


class RuleUnusable(AdminError):
    exit_code = 5


class KeyUnknown(AdminError):
    exit_code = 6


class NoDatabaseUrl(AdminError):
    exit_code = 7


class DatabaseUnreachable(AdminError):
    exit_code = 8


class NotMigrated(AdminError):
    exit_code = 9


class NotPermitted(AdminError):
    exit_code = 10


class AccountUnknown(AdminError):
    exit_code = 11


class OwnedElsewhere(AdminError):
    exit_code = 12


EXIT_CODES = {
    0: "done",
    AppUnknown.exit_code: "no app with that id",
    BadArgument.exit_code: "bad arguments (an unknown command, an empty name, a bad event name)",
    SchemaUnreadable.exit_code: "the schema file cannot be read (missing, a folder, not UTF-8)",
    SchemaNotJson.exit_code: "the schema file is not JSON",
    RuleUnusable.exit_code: "the schema is not a usable rule",
    KeyUnknown.exit_code: "the app has no live key with that prefix",
    NoDatabaseUrl.exit_code: "DATABASE_URL is not set",
    DatabaseUnreachable.exit_code: "the database cannot be reached or refused the sign-in",
    NotMigrated.exit_code: "the database has no Sluice tables (run make migrate)",
    NotPermitted.exit_code: "DATABASE_URL's user may not do this (a function's role?)",
    AccountUnknown.exit_code: "no account with that email address or id",
    OwnedElsewhere.exit_code: "the app belongs to another account (--transfer moves it)",
}


def _existing(conn: Connection, app_id: str) -> None:
    """Locks the app's row (rule versions are numbered under it); AppUnknown if none."""
    if not lock_app(conn, app_id):
        raise AppUnknown(f"no app with the id {app_id!r}")


def create_app(conn: Connection, name: str, *, require_key: bool = True) -> str:
    app_id = new_app_id()
    insert_app(conn, app_id, name, require_key)
    return app_id


def create_api_key(conn: Connection, app_id: str) -> str:
    """Returns the new key in plain text: the only time anyone sees it."""
    _existing(conn, app_id)
    key = generate_api_key()
    insert_key(conn, app_id, key.prefix, key.key_hash, datetime.now(UTC))
    return key.plaintext


def put_rule(conn: Connection, app_id: str, event_name: str, schema: dict) -> int:
    """Saves the rule and records it as the app's next version, as the management API
    does (so its history shows operators' changes too); returns the version.

    Raises sluice.intake.validation.InvalidRule for a schema that does not compile.
    """
    check_rule(schema)
    _existing(conn, app_id)
    return save_rule(conn, app_id, event_name, schema, datetime.now(UTC)).version


def list_apps(conn: Connection) -> list[str]:
    """One line per app, oldest first: id, created (UTC), owner's email or "-", name.

    Tab-separated, the name last with its control characters and backslashes escaped,
    so a line is always one app and `cut -f` reads it.
    """
    return [
        "\t".join((app_id, created_at.astimezone(UTC).isoformat(), owner or "-", _escaped(name)))
        for app_id, created_at, owner, name in all_apps(conn)
    ]


def _escaped(text: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f\\]", lambda m: m.group().encode("unicode_escape").decode(), text)


def set_owner(conn: Connection, app_id: str, account: str, *, transfer: bool = False) -> None:
    """Gives the app to the account (an email address or an account id), so the
    management API shows it; an app another account owns moves only with `transfer`.

    Apps made here (create_app) belong to nobody until then.
    """
    account_id = _account_id(conn, account)
    exists, owner = lock_app_owner(conn, app_id)
    if not exists:
        raise AppUnknown(f"no app with the id {app_id!r}")
    if owner not in (None, account_id) and not transfer:
        # The other account is not named: its address is not this command's to show.
        raise OwnedElsewhere(
            f"app {app_id!r} belongs to another account; add --transfer to move it"
        )
    set_app_owner(conn, app_id, account_id)


def _account_id(conn: Connection, account: str) -> uuid.UUID:
    try:
        account_id = uuid.UUID(account)
    except ValueError:
        # Imported here: sluice.accounts.passwords is only needed for an address.
        from sluice.accounts.passwords import normalise_email

        try:
            email = normalise_email(account)
        except RequestRejected:
            raise BadArgument(
                f"{account!r} is neither an email address nor an account id"
            ) from None
        found = find_account(conn, email)
        if found is None:
            raise AccountUnknown(f"no account with the address {email!r}") from None
        return found
    if account_email(conn, account_id) is None:
        raise AccountUnknown(f"no account with the id {account!r}")
    return account_id


def revoke_api_key(conn: Connection, app_id: str, prefix: str) -> None:
    _existing(conn, app_id)
    if not revoke_key_by_prefix(conn, app_id, prefix, datetime.now(UTC)):
        raise KeyUnknown(f"app {app_id!r} has no live key {prefix!r}")


def require_key(conn: Connection, app_id: str, required: bool) -> None:
    if not set_require_key(conn, app_id, required):
        raise AppUnknown(f"no app with the id {app_id!r}")
