"""Owners' operations on apps, keys and rules, for code and for the command line.

    python -m sluice.admin create-app "My shop" [--keyless]
    python -m sluice.admin create-key APP_ID
    python -m sluice.admin revoke-key APP_ID KEY_PREFIX
    python -m sluice.admin put-rule APP_ID EVENT_NAME schema.json
    python -m sluice.admin require-key APP_ID on|off

They use DATABASE_URL. Functions take a psycopg2 connection; committing is the caller's.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path

from sluice.db import Connection, connect_from_env
from sluice.keys import generate_api_key
from sluice.storage import insert_api_key, insert_app, revoke_api_key, set_require_key, upsert_rule
from sluice.validation import check_rule


def new_app_id() -> str:
    return "app_" + secrets.token_hex(16)


def create_app(conn: Connection, name: str, *, require_key: bool = True) -> str:
    app_id = new_app_id()
    insert_app(conn, app_id, name, require_key)
    return app_id


def create_api_key(conn: Connection, app_id: str) -> str:
    """Returns the new key in plain text: the only time anyone sees it."""
    key = generate_api_key()
    insert_api_key(conn, app_id, key.prefix, key.key_hash)
    return key.plaintext


def put_rule(conn: Connection, app_id: str, event_name: str, schema: dict) -> None:
    """Raises sluice.validation.InvalidRule for a schema that does not compile."""
    check_rule(schema)
    upsert_rule(conn, app_id, event_name, schema)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sluice.admin")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-app")
    create.add_argument("name")
    create.add_argument("--keyless", action="store_true", help="accept events without a key")
    commands.add_parser("create-key").add_argument("app_id")
    revoke = commands.add_parser("revoke-key")
    revoke.add_argument("app_id")
    revoke.add_argument("prefix")
    rule = commands.add_parser("put-rule")
    rule.add_argument("app_id")
    rule.add_argument("event_name")
    rule.add_argument("schema_file", type=Path)
    require = commands.add_parser("require-key")
    require.add_argument("app_id")
    require.add_argument("setting", choices=["on", "off"])
    args = parser.parse_args(argv)

    conn = connect_from_env()
    try:
        with conn:
            if args.command == "create-app":
                print(create_app(conn, args.name, require_key=not args.keyless))
            elif args.command == "create-key":
                print(create_api_key(conn, args.app_id))
            elif args.command == "revoke-key":
                if not revoke_api_key(conn, args.app_id, args.prefix):
                    print("no live key with that prefix", file=sys.stderr)
                    return 1
            elif args.command == "put-rule":
                put_rule(
                    conn, args.app_id, args.event_name, json.loads(args.schema_file.read_text())
                )
            elif args.command == "require-key":
                if not set_require_key(conn, args.app_id, args.setting == "on"):
                    print("no such app", file=sys.stderr)
                    return 1
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
