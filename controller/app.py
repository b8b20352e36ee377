"""The controller's HTTP application: the operator API on port 7557."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import asyncpg
from aiohttp import web

from acs import health
from controller import campaigns, files_api, nbi, openapi, provisioning_api
from controller.auth import CHECKER, TokenChecker, auth_middleware
from controller.errors import error_middleware
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
    app.cleanup_ctx.append(_clients)
    health.add_routes(app)
    nbi.add_routes(app)
    campaigns.add_routes(app)
    files_api.add_routes(app)
    provisioning_api.add_routes(app)
    add_series_routes(app)
    openapi.add_routes(app)
    return app
