"""Apps, keys and rules, straight in the database named by DATABASE_URL.

    python -m tools.admin create-app "My shop" [--keyless]
    python -m tools.admin create-key APP_ID
    python -m tools.admin revoke-key APP_ID KEY_PREFIX
    python -m tools.admin put-rule APP_ID EVENT_NAME schema.json
    python -m tools.admin require-key APP_ID on|off
    python -m tools.admin list-apps
    python -m tools.admin set-owner APP_ID EMAIL|ACCOUNT_ID [--transfer]

The operations are sluice.manage.admin's. An operator's ordinary mistake (an unknown
app, a missing or broken schema file, no or an unreachable database) is one line on
stderr and an exit code of its own (EXIT_CODES), so scripts can tell them apart; a
traceback means a bug.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NoReturn

import orjson
import psycopg2
from psycopg2 import errors
from sluice.core.config import command_line_database_url
from sluice.core.db import Connection
from sluice.core.errors import ConfigurationError, RequestRejected
from sluice.core.exact_json import check_exact
from sluice.intake.validation import InvalidRule
from sluice.manage.admin import (
    EXIT_CODES,
    AdminError,
    BadArgument,
    DatabaseUnreachable,
    NoDatabaseUrl,
    NotMigrated,
    NotPermitted,
    RuleUnusable,
    SchemaNotJson,
    SchemaUnreadable,
    create_api_key,
    create_app,
    list_apps,
    put_rule,
    require_key,
    revoke_api_key,
    set_owner,
)
from sluice.manage.manage import check_event_name, check_name


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
                revoke_api_key(conn, args.app_id, args.prefix)
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
            require_key(conn, args.app_id, args.setting == "on")
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
        prog="python -m tools.admin",
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
