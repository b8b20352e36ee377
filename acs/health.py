"""GET /health, /ready and /metrics for every HTTP role.

/health says the process serves; /ready says it can do its work (the database answers);
/metrics is the Prometheus text exposition of this process's registry.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger("chronos.health")

POOL = web.AppKey("pool", asyncpg.Pool)
READY_TIMEOUT = 2.0


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await pool.fetchval("SELECT 1")
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("not ready", extra={"error": type(exc).__name__})
        return web.json_response(
            {"status": "unavailable", "database": type(exc).__name__}, status=503
        )
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_routes(app: web.Application) -> None:
    """Mount the three endpoints; the app must hold the pool under POOL."""
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
