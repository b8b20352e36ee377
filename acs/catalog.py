"""Presets, provisions, virtual parameters and device classes, as this process knows them.

Loaded from PostgreSQL at start and again whenever any process changes them: the API
sends `pg_notify('chronos_catalog', ...)` in the transaction that changes them, and every
ACS process listens. Sessions take the catalog of the moment they start and keep it, so
a change applies from the next session on without disturbing sessions in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from acs.provisioning import Catalog
from acs.provisions import (
    ProvisionError,
    VirtualParameter,
    parse_preset,
    parse_provision,
    parse_virtual_parameter,
)

log = logging.getLogger("chronos.catalog")

CHANNEL = "chronos_catalog"
PRESETS = "SELECT name, document FROM presets ORDER BY name"
PROVISIONS = "SELECT name, document FROM provisions ORDER BY name"
VIRTUAL = "SELECT name, document FROM virtual_parameters ORDER BY name"
CLASSES = "SELECT oui, product_class, options FROM device_classes"


async def load(conn: asyncpg.Connection | asyncpg.Pool) -> Catalog:
    """The catalog as stored; an entry that no longer parses is skipped and logged."""
    presets = []
    for row in await conn.fetch(PRESETS):
        try:
            presets.append(parse_preset(row["name"], row["document"]))
        except ProvisionError as exc:
            log.error("stored preset unusable", extra={"preset": row["name"], "error": str(exc)})
    provisions = {}
    for row in await conn.fetch(PROVISIONS):
        try:
            provisions[row["name"]] = parse_provision(row["document"])
        except ProvisionError as exc:
            log.error(
                "stored provision unusable", extra={"provision": row["name"], "error": str(exc)}
            )
    virtual: list[VirtualParameter] = []
    for row in await conn.fetch(VIRTUAL):
        try:
            virtual.append(parse_virtual_parameter(row["name"], row["document"]))
        except ProvisionError as exc:
            log.error(
                "stored virtual parameter unusable", extra={"name": row["name"], "error": str(exc)}
            )
    classes: dict[tuple[str, str], dict[str, Any]] = {
        (r["oui"], r["product_class"]): r["options"] for r in await conn.fetch(CLASSES)
    }
    return Catalog(tuple(presets), provisions, tuple(virtual), classes)


class CatalogCache:
    """The current catalog, kept fresh by LISTEN on its own connection."""

    def __init__(self, pool: asyncpg.Pool, dsn: str | None) -> None:
        self.pool = pool
        self.dsn = dsn
        self.catalog = Catalog()
        self._task: asyncio.Task[None] | None = None
        self._stale = asyncio.Event()

    def current(self) -> Catalog:
        return self.catalog

    async def refresh(self) -> None:
        self.catalog = await load(self.pool)

    async def start(self) -> None:
        await self.refresh()
        if self.dsn is not None:
            self._task = asyncio.create_task(self._listen(), name="catalog-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        assert self.dsn is not None
        while True:
            try:
                conn = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("catalog listener cannot connect", extra={"error": type(exc).__name__})
                await asyncio.sleep(2)
                continue
            lost = False

            def on_lost(_conn: object) -> None:
                nonlocal lost
                lost = True
                self._stale.set()

            conn.add_termination_listener(on_lost)
            try:
                await conn.add_listener(CHANNEL, lambda *_: self._stale.set())
                await self.refresh()  # whatever changed while we were not listening
                while True:
                    await self._stale.wait()
                    self._stale.clear()
                    if lost:
                        break
                    await self.refresh()
                    log.info("catalog reloaded", extra={"presets": len(self.catalog.presets)})
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("catalog listener failed", extra={"error": type(exc).__name__})
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 2)
