"""The functions' database roles: their passwords, set from their Secrets Manager secrets.

Migrations create the roles and grant them what each function needs; the password
of each lives only in its own secret, which the deploy-time migration function
reads and hands to PostgreSQL already hashed (a SCRAM verifier made by libpq), so
no statement, log line or audit record ever holds a role's password in clear.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import cast

import psycopg2.extensions
from psycopg2 import sql

from sluice.core.config import AwsSettings
from sluice.core.db import Connection

# Only roles the migrations made: a secret naming anything else (the master user,
# a typo) is refused rather than given a new password.
ROLE_NAME = re.compile(r"^sluice_[a-z]+$")


class UnknownRole(ValueError):
    pass


def set_role_passwords(conn: Connection, credentials: Iterable[tuple[str, str]]) -> list[str]:
    """Sets each (role, password); all in one transaction. Returns the roles set."""
    names = []
    with conn, conn.cursor() as cur:
        for role, password in credentials:
            if not ROLE_NAME.match(role):
                raise UnknownRole(f"{role!r} is not one of Sluice's function roles")
            verifier = psycopg2.extensions.encrypt_password(password, role, conn, "scram-sha-256")
            cur.execute(
                sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD %s").format(sql.Identifier(role)),
                (verifier,),
            )
            names.append(role)
    return names


def role_credentials(
    secret_arns: Iterable[str], aws: AwsSettings | None = None
) -> list[tuple[str, str]]:
    """(username, password) from each secret (JSON with both, as RDS's own secrets have)."""
    from sluice.core import aws_clients

    secrets = aws_clients.secrets_provider(aws or AwsSettings())
    credentials = []
    for arn in secret_arns:
        secret = cast("dict[str, str]", secrets.get(arn, transform="json", force_fetch=True))
        credentials.append((secret["username"], secret["password"]))
    return credentials
