"""Shared fixtures: a real PostgreSQL (embedded, or DATABASE_URL) with a fresh database
per test, cloned from a migrated template so each test starts from the real schema."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp import web

from controller.database import create_pool, migrate
from controller.embedded import EmbeddedPostgres

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not SHARED_DATA.exists():  # a checkout elsewhere: let the environment say where
    SHARED_DATA = Path(os.environ.get("CHRONOS_SHARED_DATA", "../shared/data")).resolve()
SOAP_DATA = SHARED_DATA / "soap"

_TEMPLATE = f"chronos_template_{uuid.uuid4().hex[:8]}"
_counter = itertools.count()


def dsn_for(dsn: str, database: str) -> str:
    """The same server, another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    # Not under pytest's own temporary folders: pytest prunes old ones, which would pull
    # the data directory from under a test run going on beside this one.
    base = Path(tempfile.mkdtemp(prefix="chronos-test-pg-"))
    server = EmbeddedPostgres(base / "data", delete_on_stop=True)
    server.start()
    try:
        yield server.dsn("postgres")
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
async def template_dsn(pg_admin_dsn: str) -> AsyncIterator[str]:
    admin = await asyncpg.connect(pg_admin_dsn)
    await admin.execute(f'CREATE DATABASE "{_TEMPLATE}"')
    dsn = dsn_for(pg_admin_dsn, _TEMPLATE)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    try:
        yield dsn
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{_TEMPLATE}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def db_dsn(pg_admin_dsn: str, template_dsn: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    name = f"t_{os.getpid()}_{next(_counter)}"
    admin = await asyncpg.connect(pg_admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_TEMPLATE}" STRATEGY FILE_COPY')
        yield dsn_for(pg_admin_dsn, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(db_dsn, min_size=1, max_size=10)
    try:
        yield pool
    finally:
        await asyncio.wait_for(pool.close(), 10)


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve an aiohttp app on 127.0.0.1, a free port; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


SECRET_KEY = "kOa7wT2o6Qc2b0zQ9jJmXHnJ8YJz0lq8d8F1b6q0v3M="
