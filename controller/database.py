"""PostgreSQL access shared by every role: the pool and the migrations.

Migrations are the plain SQL files in `schemas/migrations`, applied in name order inside
one transaction that holds an advisory lock, so several processes starting at once apply
each exactly once. A file that changed after it was applied is refused, not re-run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from importlib import resources

import asyncpg

log = logging.getLogger("chronos.database")

# Any fixed 64-bit number unique to this purpose.
_MIGRATION_LOCK = 0x63687260_6D696772

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""
_APPLIED = "SELECT name, checksum FROM schema_migrations"
_RECORD = "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)"


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(Exception):
    """The database holds a migration history this code cannot continue."""


def bundled_migrations() -> list[Migration]:
    """The migrations shipped in `schemas/migrations`, in order."""
    folder = resources.files("schemas") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Migration(f.name, f.read_text("utf-8")) for f in files]


async def migrate(conn: asyncpg.Connection, migrations: list[Migration] | None = None) -> list[str]:
    """Apply what is missing; returns the names applied. Safe from many processes."""
    migrations = bundled_migrations() if migrations is None else migrations
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(_CREATE_LEDGER)
        applied = {r["name"]: r["checksum"] for r in await conn.fetch(_APPLIED)}
        known = {m.name for m in migrations}
        unknown = sorted(set(applied) - known)
        if unknown:
            raise MigrationError(
                f"database has migrations this version does not know: {', '.join(unknown)}"
            )
        done = []
        for migration in migrations:
            if migration.name in applied:
                if applied[migration.name] != migration.checksum:
                    raise MigrationError(f"migration {migration.name} changed after it was applied")
                continue
            await conn.execute(migration.sql)
            await conn.execute(_RECORD, migration.name, migration.checksum)
            done.append(migration.name)
    for name in done:
        log.info("migration applied", extra={"migration": name})
    return done


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool connections are returned as they are, saving a reset query per use.

    Safe because nothing here leaves session state on a pooled connection: settings are
    transaction-local (`set_config(..., true)`), locks are transaction locks, and LISTEN
    runs on a connection of its own. asyncpg still rolls back an open transaction.
    """


async def create_pool(
    dsn: str, *, min_size: int = 2, max_size: int = 20, command_timeout: float = 30.0
) -> asyncpg.Pool:
    """A pool whose connections speak JSON for json/jsonb columns."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        init=_init_connection,
        reset=_keep_session,
    )
    assert pool is not None
    return pool
