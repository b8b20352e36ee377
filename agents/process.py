"""An agent as a process: drivers, the agent, its /health, /ready and /metrics server.

`chronos agent` runs this alone; `chronos up` runs it beside the other roles. /ready
answers 200 while the stream to a controller is up (a pod that cannot reach any
controller is taken out of rotation, and alerting sees it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agents.agent import Agent, AgentSettings
from agents.driver import load_drivers

log = logging.getLogger("chronos.agent")

AGENT = web.AppKey("agent", Agent)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _ready(request: web.Request) -> web.Response:
    agent = request.app[AGENT]
    if agent.connected.is_set():
        return web.json_response({"status": "ready", "targets": len(agent.scheduler.targets)})
    return web.json_response(
        {"status": "unavailable", "reason": "no controller stream"}, status=503
    )


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def status_app(agent: Agent) -> web.Application:
    app = web.Application()
    app[AGENT] = agent
    app.router.add_get("/health", _health)
    app.router.add_get("/ready", _ready)
    app.router.add_get("/metrics", _metrics)
    return app


def build(settings: AgentSettings) -> Agent:
    """An agent with every driver this installation has."""
    drivers = {kind: factory() for kind, factory in load_drivers().items()}
    return Agent(settings, drivers)


async def run_until(agent: Agent, stop: asyncio.Event, *, drain: float = 5.0) -> None:
    """Run `agent` until `stop` is set; then stop polling, deliver, say goodbye."""
    task = asyncio.create_task(agent.run(), name="agent")
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # an agent that ended by itself failed: say why
        await agent.shutdown(drain)
    finally:
        for t in (task, stopper):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for driver in agent.drivers.values():
            with contextlib.suppress(Exception):
                await driver.close()
