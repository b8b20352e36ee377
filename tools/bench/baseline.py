"""The baseline server for `tools.bench.cwmp`: bare aiohttp answering every POST with a
fixed InformResponse-sized body. `python -m tools.bench.baseline PORT`."""

from __future__ import annotations

import asyncio
import sys

import uvloop
from aiohttp import web

from acs import messages as m
from acs import soap

BODY = soap.encode(m.InformResponse(1), id="baseline")


async def answer(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=BODY, content_type="text/xml")


async def serve(port: int) -> None:
    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
