"""A controller on 127.0.0.1 with fast fleet timings, tokens, and an agent that speaks
frames by hand (to test the controller's side of the stream frame by frame)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from agents.agent import Agent, AgentSettings
from agents.process import build, run_until
from controller import app as api_app
from controller.auth import create_token
from schemas import frames as f
from schemas.config import Config, FleetConfig
from schemas.sealing import Sealer
from tests.conftest import SECRET_KEY, serving
from tests.test_nbi import Api

# Fast enough for tests, with the same ratios as the defaults (heartbeat : lease = 1 : 6).
FAST_FLEET = FleetConfig(heartbeat_ms=200, lease_ms=1200, pass_interval=0.2, resync_interval=5)


@dataclass
class Fleet:
    api: Api
    url: str
    pool: asyncpg.Pool
    dsn: str
    admin_token: str
    agent_token: str
    config: Config


def fleet_config() -> Config:
    return Config(fleet=FAST_FLEET)


@contextlib.asynccontextmanager
async def controller(pool: asyncpg.Pool, dsn: str, config: Config) -> AsyncIterator[str]:
    """One controller process's API app (stream, leader bid) on a free port."""
    async with serving(api_app.create_app(pool, dsn, config, Sealer(SECRET_KEY))) as url:
        yield url


@pytest.fixture
async def fleet(pool: asyncpg.Pool, db_dsn: str) -> AsyncIterator[Fleet]:
    config = fleet_config()
    admin = await create_token(pool, "test admin", "admin")
    agent = await create_token(pool, "test agents", "agent")
    async with controller(pool, db_dsn, config) as url:
        api = Api(url, admin)
        try:
            yield Fleet(api, url, pool, db_dsn, admin, agent, config)
        finally:
            await api.close()


async def eventually(check: Callable[[], object], within: float = 10.0) -> None:
    """Wait until `check()` (sync or async) is true, at most `within` seconds."""
    async with asyncio.timeout(within):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.05)


async def job_when(
    fleet: Fleet, job: int, states: tuple[str, ...] = ("succeeded", "failed"), within: float = 15
) -> dict:
    """The job's document once its state is one of `states`."""
    shown: dict = {}

    async def reached() -> bool:
        nonlocal shown
        shown = (await fleet.api("GET", f"/api/v1/jobs/{job}")).body
        return shown["state"] in states

    await eventually(reached, within)
    return shown


@pytest.fixture
async def events(fleet: Fleet) -> AsyncIterator[list[dict]]:
    """Every live event, as an operator's WebSocket receives them."""
    seen: list[dict] = []
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(
            fleet.url + "/api/v1/events", headers={"Authorization": f"Bearer {fleet.admin_token}"}
        )

        async def read() -> None:
            async for msg in ws:
                seen.append(json.loads(msg.data))

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.3)  # the controller's LISTEN is up before events flow
        try:
            yield seen
        finally:
            reader.cancel()
            await ws.close()


class RawAgent:
    """An agent connection driven frame by frame."""

    def __init__(self, url: str, token: str, agent: str = "raw-1", **hello: object) -> None:
        self.url = url + "/api/v1/agents/stream"
        self.token = token
        self.hello = f.Hello(
            agent=agent,
            boot=str(hello.get("boot", uuid.uuid4().hex)),
            version=int(hello.get("version", f.VERSION)),  # type: ignore[arg-type]
            labels=dict(hello.get("labels", {"zone": "pop1"})),  # type: ignore[arg-type]
            capacity=int(hello.get("capacity", 10)),  # type: ignore[arg-type]
            kinds=tuple(hello.get("kinds", ("snmp",))),  # type: ignore[arg-type]
            software="raw-test",
        )
        self.http = aiohttp.ClientSession()
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def connect(self, *, say_hello: bool = True) -> f.Frame | None:
        self.ws = await self.http.ws_connect(
            self.url, headers={"Authorization": f"Bearer {self.token}"}
        )
        if say_hello:
            await self.send(self.hello)
            return await self.receive()
        return None

    async def send(self, frame: f.Frame | bytes) -> None:
        assert self.ws is not None
        await self.ws.send_bytes(frame if isinstance(frame, bytes) else f.encode(frame))

    async def receive(self, within: float = 10.0) -> f.Frame | None:
        """The next frame, or None when the controller closed the stream."""
        assert self.ws is not None
        msg = await self.ws.receive(timeout=within)
        if msg.type != aiohttp.WSMsgType.BINARY:
            return None
        return f.decode(msg.data)

    async def expect(self, kind: type[f.Frame], within: float = 10.0) -> f.Frame:
        """Skip heartbeats and other frames until one of `kind` arrives."""
        async with asyncio.timeout(within):
            while True:
                frame = await self.receive(within)
                if frame is None:
                    raise AssertionError(f"stream closed while waiting for {kind.TYPE}")
                if isinstance(frame, kind):
                    return frame

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        await self.http.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def controller_on(
    pool: asyncpg.Pool, dsn: str, config: Config, port: int
) -> AsyncIterator[web.Application]:
    """A controller on a fixed port (so it can be stopped and started again there)."""
    app = api_app.create_app(pool, dsn, config, Sealer(SECRET_KEY))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
    try:
        yield app
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def agent_running(
    url: str, token: str, agent_id: str, zone: str = "pop1", **settings: object
) -> AsyncIterator[Agent]:
    """An agent with the real drivers, in this process."""
    agent = build(
        AgentSettings(
            controller=url,
            token=token,
            agent_id=agent_id,
            labels={"zone": zone},
            backoff_min=0.1,
            backoff_max=1.0,
            flush_interval=0.2,
            **settings,  # type: ignore[arg-type]
        )
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_until(agent, stop, drain=2.0))
    try:
        yield agent
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


class AgentProcess:
    """`chronos agent` as a child process: killed, stopped and continued like a pod."""

    def __init__(self, url: str, token: str, agent_id: str, zone: str = "pop1") -> None:
        self.args = [
            sys.executable,
            "-m",
            "controller.cli",
            "agent",
            "--controller",
            url,
            "--id",
            agent_id,
            "--labels",
            f"zone={zone}",
            "--http",
            f"127.0.0.1:{free_port()}",
        ]
        self.env = {**os.environ, "CHRONOS_AGENT_TOKEN": token, "CHRONOS_LOG__LEVEL": "WARNING"}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, env=self.env, stderr=subprocess.DEVNULL)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 that can be cut: a network partition on demand."""

    def __init__(self, port: int) -> None:
        self.target_port = port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))

    async def cut(self) -> None:
        """Refuse new connections and drop the open ones, both ways."""
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
