import json

import pytest
from sluice.config import DatabaseSettings
from sluice.db import Database, _connect_kwargs
from sluice.errors import DatabaseUnavailable


def test_in_aws_credentials_come_from_the_rds_managed_secret(aws):
    import boto3

    arn = boto3.client("secretsmanager").create_secret(
        Name="rds!cluster-sluice",
        SecretString=json.dumps({"username": "sluice_admin", "password": "s3cret-from-rds"}),
    )["ARN"]
    settings = DatabaseSettings(secret_arn=arn, host="proxy.example.internal", name="sluice")
    kwargs = _connect_kwargs(settings)
    assert kwargs["user"] == "sluice_admin"
    assert kwargs["password"] == "s3cret-from-rds"  # noqa: S105
    assert kwargs["host"] == "proxy.example.internal"
    assert kwargs["sslmode"] == "require"


def test_locally_the_url_is_used_as_is():
    kwargs = _connect_kwargs(DatabaseSettings(url="postgresql://u@h/db", connect_timeout=2))
    assert kwargs == {"dsn": "postgresql://u@h/db", "connect_timeout": 2}


def test_unreachable_database_is_reported_as_unavailable():
    database = Database(
        DatabaseSettings(url="postgresql://nobody@127.0.0.1:1/none", connect_timeout=1)
    )
    with pytest.raises(DatabaseUnavailable):
        database.run(lambda conn: None)


def test_connection_is_reused_and_reopened_after_it_breaks(database_url):
    database = Database(DatabaseSettings(url=database_url))
    first = database.connection()
    assert database.connection() is first
    first.close()
    assert database.run(lambda conn: conn.cursor().execute("SELECT 1") or "ok") == "ok"
    assert database.connection() is not first
    database.close()
