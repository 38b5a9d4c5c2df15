"""`python -m tools.admin` as an operator runs it: a subprocess on the test database.

Every ordinary mistake is one line on stderr, no traceback, and an exit code of its own.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import UTC
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support import scratch_database

RULE = {"type": "object", "required": ["total"]}


def admin(*args: str, database_url: str | None, **env: str):
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if database_url is not None:
        environment["DATABASE_URL"] = database_url
    environment.update(env)
    done = subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "tools.admin", *map(str, args)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout.strip(), done.stderr.strip()


def mistake(code: int, stdout: str, stderr: str) -> tuple[int, str]:
    """The exit code and the message, once it is clear the message is one plain line."""
    assert stdout == ""
    assert "\n" not in stderr and "Traceback" not in stderr, stderr
    assert stderr.startswith("python -m tools.admin"), stderr
    return code, stderr


@pytest.fixture
def cli(database_url, db):
    def run(*args: str):
        return admin(*args, database_url=database_url)

    run.database_url = database_url
    return run


@pytest.fixture
def app_id(cli) -> str:
    code, out, err = cli("create-app", "My shop")
    assert (code, err) == (0, "")
    assert out.startswith("app_")
    return out


@pytest.fixture
def schema_file(tmp_path):
    path = tmp_path / "rule.json"
    path.write_text(json.dumps(RULE))
    return path


def test_a_rule_put_from_the_cli_is_checked_and_becomes_a_version(cli, app_id, schema_file, db):
    assert cli("put-rule", app_id, "checkout", schema_file) == (0, "checkout: version 1", "")
    schema_file.write_text("{}")
    assert cli("put-rule", app_id, "checkout", schema_file) == (0, "checkout: version 2", "")
    with db.cursor() as cur:
        cur.execute(
            "SELECT version, schema FROM rule_versions WHERE app_id = %s ORDER BY version",
            (app_id,),
        )
        assert cur.fetchall() == [(1, RULE), (2, {})]
        cur.execute("SELECT schema FROM rules WHERE app_id = %s", (app_id,))
        assert cur.fetchall() == [({},)]


def test_an_unknown_app_is_exit_1_for_every_command(cli, schema_file, db):
    unknown = "app_" + "0" * 32
    for args in (
        ("create-key", unknown),
        ("revoke-key", unknown, "sk_AbCdEfGh"),
        ("put-rule", unknown, "checkout", schema_file),
        ("require-key", unknown, "off"),
    ):
        code, message = mistake(*cli(*args))
        assert code == 1, args
        assert f"no app with the id '{unknown}'" in message
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM api_keys")
        assert cur.fetchone() == (0,)


def test_schema_files_that_cannot_be_used_each_have_their_code(cli, app_id, tmp_path, db):
    missing = tmp_path / "nowhere.json"
    code, message = mistake(*cli("put-rule", app_id, "checkout", missing))
    assert code == 3 and "No such file or directory" in message
    assert mistake(*cli("put-rule", app_id, "checkout", tmp_path))[0] == 3  # a folder
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"description": "caf\xe9"}')
    assert mistake(*cli("put-rule", app_id, "checkout", latin)) == (
        3,
        f"python -m tools.admin: cannot read the schema file '{latin}': not UTF-8",
    )
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "object",\n')
    code, message = mistake(*cli("put-rule", app_id, "checkout", broken))
    assert code == 4 and "is not JSON (line 2" in message
    unusable = tmp_path / "unusable.json"
    unusable.write_text(json.dumps({"type": "object", "properties": {"x": {"pattern": "("}}}))
    code, message = mistake(*cli("put-rule", app_id, "checkout", unusable))
    assert code == 5 and "not a usable rule" in message
    unusable.write_text(json.dumps({"type": "object", "description": "\u0000"}))
    code, message = mistake(*cli("put-rule", app_id, "checkout", unusable))
    assert code == 5 and "\\u0000" in message
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM rule_versions")
        assert cur.fetchone() == (0,)


def test_a_rule_with_a_number_it_cannot_keep_exactly_is_exit_5(cli, app_id, tmp_path, db):
    # As the management API: saved as sent and enforced, or refused with nothing saved
    for number in ("3.14159265358979323846", "18446744073709551616"):
        inexact = tmp_path / "inexact.json"
        inexact.write_text(f'{{"properties": {{"n": {{"maximum": {number}}}}}}}')
        code, message = mistake(*cli("put-rule", app_id, "checkout", inexact))
        assert code == 5 and f"The number {number} cannot be kept exactly" in message
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM rule_versions")
        assert cur.fetchone() == (0,)


def test_revoking_a_key_that_is_not_there_is_exit_6(cli, app_id):
    code, key, _ = cli("create-key", app_id)
    assert code == 0
    prefix = key.rsplit("_", 1)[0]
    assert cli("revoke-key", app_id, prefix) == (0, "", "")
    code, message = mistake(*cli("revoke-key", app_id, prefix))  # revoked already
    assert code == 6 and "no live key" in message


def test_bad_arguments_are_exit_2_on_one_line(cli, app_id, schema_file):
    assert mistake(*cli("make-app", "x"))[0] == 2
    assert mistake(*cli("create-app"))[0] == 2
    assert mistake(*cli("create-app", "   "))[0] == 2
    assert mistake(*cli("create-app", "a\x01" * 150))[0] == 2
    assert mistake(*cli("put-rule", app_id, "bad\tname", schema_file))[0] == 2
    assert mistake(*cli("require-key", app_id, "maybe"))[0] == 2


def make_account(db, email: str) -> str:
    import uuid

    account_id = str(uuid.uuid4())
    with db.cursor() as cur:
        cur.execute(
            "INSERT INTO accounts (account_id, email, password_hash, created_at,"
            " password_changed_at) VALUES (%s, %s, 'scrypt$unused', now(), now())",
            (account_id, email),
        )
    return account_id


def apps_of(db, account_id: str) -> list[str]:
    with db.cursor() as cur:
        cur.execute("SELECT app_id FROM apps WHERE owner_account_id = %s", (account_id,))
        return [row[0] for row in cur.fetchall()]


def test_list_apps_shows_each_app_with_its_owner(cli, db):
    # Given an app made by the CLI (no owner) and one owned by an account
    code, unowned, _ = cli("create-app", "Old shop")
    owner = make_account(db, "owner@sluice.test")
    code, owned, _ = cli("create-app", "New\tshop")
    with db.cursor() as cur:
        cur.execute("UPDATE apps SET owner_account_id = %s WHERE app_id = %s", (owner, owned))
        cur.execute("SELECT app_id, created_at FROM apps")
        created = {app_id: at.astimezone(UTC).isoformat() for app_id, at in cur.fetchall()}

    # When the operator lists them
    code, out, err = cli("list-apps")

    # Then each is one line, oldest first: id, created (UTC), owner (or -), name (control
    # characters escaped)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{unowned}\t{created[unowned]}\t-\tOld shop",
        f"{owned}\t{created[owned]}\towner@sluice.test\tNew\\tshop",
    ]


def test_an_empty_database_lists_nothing(cli):
    assert cli("list-apps") == (0, "", "")


def test_set_owner_gives_an_app_made_by_the_cli_to_an_account(cli, app_id, db, clock):
    # Given an app the API cannot show, since nobody owns it
    owner = make_account(db, "owner@sluice.test")
    assert apps_of(db, owner) == []

    # When the operator gives it to the account, named by its address (any case)
    assert cli("set-owner", app_id, " Owner@Sluice.TEST ") == (0, "", "")

    # Then the account owns it, and the management API lists it
    assert apps_of(db, owner) == [app_id]
    from sluice.core.config import DatabaseSettings
    from sluice.core.db import Database
    from sluice.manage.manage import Manager

    manager = Manager(Database(DatabaseSettings(url=cli.database_url)), clock)
    try:
        import uuid

        assert [a["app_id"] for a in manager.list_apps(uuid.UUID(owner))] == [app_id]
    finally:
        manager.database.close()
    # And naming the account by its id, or again, does the same
    assert cli("set-owner", app_id, owner) == (0, "", "")
    assert apps_of(db, owner) == [app_id]


def test_an_owned_app_moves_only_with_transfer(cli, app_id, db):
    first = make_account(db, "first@sluice.test")
    second = make_account(db, "second@sluice.test")
    assert cli("set-owner", app_id, first)[0] == 0

    code, message = mistake(*cli("set-owner", app_id, "second@sluice.test"))
    assert code == 12 and "--transfer" in message
    assert "first@sluice.test" not in message  # the other account is not named
    assert apps_of(db, first) == [app_id]

    assert cli("set-owner", app_id, "second@sluice.test", "--transfer") == (0, "", "")
    assert (apps_of(db, first), apps_of(db, second)) == ([], [app_id])


def test_set_owner_mistakes_have_their_codes(cli, app_id, db):
    make_account(db, "owner@sluice.test")
    unknown = "app_" + "0" * 32
    assert mistake(*cli("set-owner", unknown, "owner@sluice.test"))[0] == 1
    for account in ("nobody@sluice.test", "8c3b4a54-8c9f-4f55-9d44-3f4ad6a7e5a1"):
        code, message = mistake(*cli("set-owner", app_id, account))
        assert code == 11 and "no account" in message, account
    assert mistake(*cli("set-owner", app_id, "not an address"))[0] == 2
    assert apps_of(db, "8c3b4a54-8c9f-4f55-9d44-3f4ad6a7e5a1") == []


def test_no_database_url_is_exit_7(schema_file):
    code, message = mistake(*admin("create-app", "x", database_url=None))
    assert code == 7 and "DATABASE_URL is not set" in message


def test_an_unreachable_database_is_exit_8():
    # A port nobody listens on: bound, then closed.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://nobody@127.0.0.1:{port}/sluice"
    code, message = mistake(*admin("create-app", "x", database_url=url))
    assert code == 8 and "cannot connect" in message
    assert mistake(*admin("create-app", "x", database_url="not a url ="))[0] == 8


def test_a_database_without_migrations_is_exit_9(postgres_server_url):
    with scratch_database(postgres_server_url, "sluice_bare") as url:
        code, message = mistake(*admin("create-app", "x", database_url=url))
    assert code == 9 and "make migrate" in message


def test_a_function_role_is_exit_10(database_url, app_id):
    # The ingest function's role, which may read apps but never add keys.
    parts = urlsplit(database_url)
    url = urlunsplit(parts._replace(netloc="sluice_ingest@" + parts.netloc.rsplit("@", 1)[-1]))
    code, message = mistake(*admin("create-key", app_id, database_url=url))
    assert code == 10 and "may not" in message


def test_help_lists_every_exit_code(cli):
    from tools.admin import EXIT_CODES

    code, out, _ = cli("--help")
    assert code == 0
    for number, meaning in EXIT_CODES.items():
        assert f"{number:2}  {meaning}" in out
