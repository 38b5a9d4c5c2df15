"""Owners' operations on apps, keys and rules, for code and for the command line.

    python -m sluice.admin create-app "My shop" [--keyless]
    python -m sluice.admin create-key APP_ID
    python -m sluice.admin revoke-key APP_ID KEY_PREFIX
    python -m sluice.admin put-rule APP_ID EVENT_NAME schema.json
    python -m sluice.admin require-key APP_ID on|off
    python -m sluice.admin list-apps
    python -m sluice.admin set-owner APP_ID EMAIL|ACCOUNT_ID [--transfer]

They use DATABASE_URL. Functions take a psycopg2 connection; committing is the caller's.
An operator's ordinary mistake (an unknown app, a missing or broken schema file, no or
an unreachable database) is one line on stderr and an exit code of its own (EXIT_CODES),
so scripts can tell them apart; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import orjson
import psycopg2
from psycopg2 import errors

from sluice.accounts_data import account_email, find_account
from sluice.config import command_line_database_url
from sluice.db import Connection
from sluice.errors import ConfigurationError, RequestRejected
from sluice.events_data import (
    all_apps,
    insert_api_key,
    insert_app,
    lock_app,
    lock_app_owner,
    revoke_api_key,
    set_app_owner,
    set_require_key,
)
from sluice.exact_json import check_exact
from sluice.keys import generate_api_key
from sluice.manage_data import save_rule
from sluice.validation import InvalidRule, check_rule


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


def new_app_id() -> str:
    return "app_" + secrets.token_hex(16)


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
    insert_api_key(conn, app_id, key.prefix, key.key_hash)
    return key.plaintext


def put_rule(conn: Connection, app_id: str, event_name: str, schema: dict) -> int:
    """Saves the rule and records it as the app's next version, as the management API
    does (so its history shows operators' changes too); returns the version.

    Raises sluice.validation.InvalidRule for a schema that does not compile.
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
        # Imported here: sluice.passwords is only needed for an address.
        from sluice.passwords import normalise_email

        try:
            email = normalise_email(account)
        except RequestRejected:
            raise BadArgument(
                f"{account!r} is neither an email address nor an account id"
            ) from None
        found = find_account(conn, email)
        if found is None:
            raise AccountUnknown(f"no account with the address {email!r}") from None
        return found[0]
    if account_email(conn, account_id) is None:
        raise AccountUnknown(f"no account with the id {account!r}")
    return account_id


def read_schema(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8"
        raise SchemaUnreadable(f"cannot read the schema file {str(path)!r}: {reason}") from None
    try:
        schema = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        where = (
            f" (line {exc.lineno}, column {exc.colno})"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise SchemaNotJson(f"the schema file {str(path)!r} is not JSON{where}") from None
    _check_exact(text)
    return schema


def _check_exact(text: str) -> None:
    """The management API's rule: a number the validator would not hold exactly is refused."""
    raw = text.encode("utf-8", "surrogatepass")
    try:
        check_exact(raw, orjson.loads(raw))
    except orjson.JSONDecodeError:
        pass  # NaN, a lone surrogate: the rule's own checks and PostgreSQL refuse them
    except RequestRejected as exc:
        raise RuleUnusable(f"the schema is not a usable rule: {exc.message}") from None


def _check_names(args: argparse.Namespace) -> None:
    # Imported here: sluice.manage imports this module (new_app_id).
    from sluice.manage import check_event_name, check_name

    try:
        if args.command == "create-app":
            args.name = check_name(args.name)
        if args.command == "put-rule":
            check_event_name(args.event_name)
    except RequestRejected as exc:
        raise BadArgument(exc.message) from None


def _connect() -> Connection:
    try:
        url = command_line_database_url()
    except ConfigurationError as exc:
        raise NoDatabaseUrl(str(exc)) from None
    try:
        # A bounded wait: an unreachable host otherwise hangs for the OS's TCP timeout.
        return psycopg2.connect(url, connect_timeout=10)
    except psycopg2.Error as exc:
        raise DatabaseUnreachable(f"cannot connect to DATABASE_URL: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _run(args: argparse.Namespace) -> str | None:
    """The command's output (None: nothing to print)."""
    _check_names(args)
    schema = read_schema(args.schema_file) if args.command == "put-rule" else None
    conn = _connect()
    try:
        with conn:
            if args.command == "create-app":
                return create_app(conn, args.name, require_key=not args.keyless)
            if args.command == "create-key":
                return create_api_key(conn, args.app_id)
            if args.command == "list-apps":
                return "\n".join(list_apps(conn)) or None
            if args.command == "set-owner":
                set_owner(conn, args.app_id, args.account, transfer=args.transfer)
                return None
            if args.command == "revoke-key":
                _existing(conn, args.app_id)
                if not revoke_api_key(conn, args.app_id, args.prefix):
                    raise KeyUnknown(f"app {args.app_id!r} has no live key {args.prefix!r}")
                return None
            if args.command == "put-rule":
                try:
                    assert schema is not None  # read above, for put-rule
                    version = put_rule(conn, args.app_id, args.event_name, schema)
                except InvalidRule as exc:
                    raise RuleUnusable(f"the schema is not a usable rule: {exc}") from None
                except errors.UntranslatableCharacter:
                    # Valid JSON that PostgreSQL's jsonb refuses: a \u0000 in a string.
                    raise RuleUnusable(
                        "the schema is not a usable rule: PostgreSQL cannot store \\u0000"
                    ) from None
                return f"{args.event_name}: version {version}"
            if not set_require_key(conn, args.app_id, args.setting == "on"):
                raise AppUnknown(f"no app with the id {args.app_id!r}")
            return None
    except (errors.UndefinedTable, errors.UndefinedColumn):
        raise NotMigrated(
            "the database has no Sluice tables (or old ones): run make migrate against it"
        ) from None
    except errors.InsufficientPrivilege as exc:
        raise NotPermitted(f"DATABASE_URL's user may not do this: {_first_line(exc)}") from None
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
        raise DatabaseUnreachable(f"lost the database: {_first_line(exc)}") from None
    finally:
        conn.close()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, as for every other mistake, instead of argparse's usage block.
        self.exit(BadArgument.exit_code, f"{self.prog}: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(
        prog="python -m sluice.admin",
        description="Apps, keys and rules, straight in the database named by DATABASE_URL.",
        epilog="exit codes:\n"
        + "\n".join(f"  {code:2}  {meaning}" for code, meaning in EXIT_CODES.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-app", help="a new app; prints its id")
    create.add_argument("name")
    create.add_argument("--keyless", action="store_true", help="accept events without a key")
    commands.add_parser("create-key", help="a new key; prints it, once").add_argument("app_id")
    revoke = commands.add_parser("revoke-key", help="revokes the live key with that prefix")
    revoke.add_argument("app_id")
    revoke.add_argument("prefix")
    rule = commands.add_parser("put-rule", help="saves a rule as the next version")
    rule.add_argument("app_id")
    rule.add_argument("event_name")
    rule.add_argument("schema_file", type=Path)
    require = commands.add_parser("require-key", help="whether events need a key")
    require.add_argument("app_id")
    require.add_argument("setting", choices=["on", "off"])
    commands.add_parser("list-apps", help="every app: id, created, owner's email or -, name")
    owner = commands.add_parser("set-owner", help="gives an app to an account (API sees it)")
    owner.add_argument("app_id")
    owner.add_argument("account", help="the account's email address or id")
    owner.add_argument("--transfer", action="store_true", help="move it from another owner")
    args = parser.parse_args(argv)

    try:
        output = _run(args)
    except AdminError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return exc.exit_code
    if output is not None:
        print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
