"""The controller's HTTP application on port 7557: the operator API and the agent stream,
with the fleet leader's duties when this controller holds the lock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from acs import health
from controller import (
    agents_api,
    campaigns,
    events,
    files_api,
    jobs,
    nbi,
    olts_api,
    openapi,
    provisioning_api,
    stream,
    targets,
    timeseries,
)
from controller.auth import CHECKER, TokenChecker, auth_middleware
from controller.errors import error_middleware
from controller.leader import FleetLeader
from controller.notify import TaskWaiter
from controller.series_api import add_routes as add_series_routes
from schemas.config import Config
from schemas.sealing import Sealer


async def _clients(app: web.Application) -> AsyncIterator[None]:
    """The outbound HTTP client (connection requests) and the task-outcome listener."""
    connector = aiohttp.TCPConnector(limit=200, force_close=True)
    app[nbi.HTTP] = aiohttp.ClientSession(connector=connector)
    waiter = app[nbi.WAITER]
    await waiter.start()
    yield
    await waiter.stop()
    await app[nbi.HTTP].close()


LEADER = web.AppKey("fleet_leader", FleetLeader)


async def _maintain(pool: asyncpg.Pool, config: Config) -> dict[str, Any]:
    """Time-series upkeep, run by the fleet leader (partitions, rollups, retention)."""
    report = await timeseries.maintain(pool, datetime.now(UTC), config.timeseries)
    return report.as_log()


async def _fleet(app: web.Application) -> AsyncIterator[None]:
    """The agent streams this controller holds, and its bid for fleet leadership."""
    await app[stream.HUB].start()
    app[LEADER].start()
    yield
    await app[LEADER].stop()
    await app[stream.HUB].stop()


def create_app(
    pool: asyncpg.Pool, dsn: str, config: Config, sealer: Sealer | None
) -> web.Application:
    """The API application; the caller owns the pool (`dsn` is for LISTEN)."""
    app = web.Application(
        client_max_size=config.api.max_body_bytes,
        middlewares=[error_middleware, auth_middleware],
    )
    app[health.POOL] = pool
    app[nbi.POOL] = pool
    app[nbi.CONFIG] = config
    if sealer is not None:
        app[nbi.SEALER] = sealer
    app[nbi.WAITER] = TaskWaiter(dsn)
    app[CHECKER] = TokenChecker(pool)
    app[stream.HUB] = stream.Hub(pool, dsn, config.fleet, sealer, config.timeseries)
    app[LEADER] = FleetLeader(
        pool,
        dsn,
        config.fleet,
        maintenance=partial(_maintain, pool, config),
        maintenance_interval=config.timeseries.maintenance_interval,
    )
    app.cleanup_ctx.append(_clients)
    app.cleanup_ctx.append(_fleet)
    health.add_routes(app)
    nbi.add_routes(app)
    campaigns.add_routes(app)
    files_api.add_routes(app)
    provisioning_api.add_routes(app)
    add_series_routes(app)
    targets.add_routes(app)
    stream.add_routes(app)  # before agents_api: /api/v1/agents/stream is not an agent id
    agents_api.add_routes(app)
    jobs.add_routes(app)
    olts_api.add_routes(app)
    events.add_routes(app, dsn)
    openapi.add_routes(app)
    return app
