"""Versioned SQL migrations: every `NNNN_name.sql` in the folder, in order, each once.

`python -m tools.migrate` applies them to DATABASE_URL (that is `make migrate`);
the deploy-time migration function calls apply_migrations the same way.
"""

from __future__ import annotations

from pathlib import Path

from sluice.core.config import migrations_directory
from sluice.core.db import Connection

# Any constant will do; it only has to be the same for every migrator.
_MIGRATION_LOCK_ID = 0x51_1C_E0


def default_directory() -> Path:
    """migrations/ at the repository root, or MIGRATIONS_DIR where it was packaged elsewhere."""
    return migrations_directory() or Path(__file__).resolve().parents[3] / "migrations"


def pending(directory: Path, applied: set[str]) -> list[Path]:
    files = sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    return [path for path in files if path.name not in applied]


def apply_migrations(conn: Connection, directory: Path) -> list[str]:
    """Applies what is missing, all in one transaction, and returns the names applied.

    A transaction-scoped advisory lock lets two deploys (or two local starts) race safely.
    """
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_ID,))
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur.execute("SELECT name FROM schema_migrations")
        applied = {name for (name,) in cur.fetchall()}
        names = []
        for path in pending(directory, applied):
            cur.execute(path.read_text())
            cur.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (path.name,))
            names.append(path.name)
    return names
