"""Migrations: applied once, recorded, safe to run concurrently, refuse edited history."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from controller.database import Migration, MigrationError, bundled_migrations, migrate


async def test_template_has_every_bundled_migration(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        names = [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")]
        assert names == [m.name for m in bundled_migrations()]
        assert await migrate(conn) == []  # re-running on every start changes nothing
    finally:
        await conn.close()


async def test_concurrent_migrations_apply_each_file_once(db_dsn: str) -> None:
    extra = [*bundled_migrations(), Migration("9999_probe.sql", "CREATE TABLE probe (x int);")]
    conns = [await asyncpg.connect(db_dsn) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c, extra) for c in conns))
        assert sorted(results, key=len) == [[], [], [], ["9999_probe.sql"]]
        count = await conns[0].fetchval(
            "SELECT count(*) FROM schema_migrations WHERE name = '9999_probe.sql'"
        )
        assert count == 1
    finally:
        for c in conns:
            await c.close()


async def test_a_changed_migration_is_refused(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        edited = [Migration(m.name, m.sql + "\n-- edited") for m in bundled_migrations()]
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(conn, edited)
        with pytest.raises(MigrationError, match="does not know"):
            await migrate(conn, [])
    finally:
        await conn.close()
