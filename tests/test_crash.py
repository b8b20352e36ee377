"""Fault injection: `chronos acs` is killed with SIGKILL in the middle of a session. Tasks
are in PostgreSQL before anything is sent, so none is lost; CWMP's ParameterKey and
CommandKey tell the restarted ACS what the CPE already applied, so none runs twice."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from acs import messages as m
from tests.conftest import SECRET_KEY
from tools.sim import session as sim_session
from tools.sim.cpe import SimulatedCpe

IGD = "InternetGatewayDevice"
SESSION_TIMEOUT = 1  # seconds; the lease outlives a dead session by timeout + 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AcsProcess:
    """`chronos acs` in a child process, on a fixed port across restarts."""

    def __init__(self, dsn: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "CHRONOS_SECRET_KEY": SECRET_KEY,
            "CHRONOS_CONFIG": os.devnull,
            "CHRONOS_ACS__HOST": "127.0.0.1",
            "CHRONOS_ACS__PORT": str(self.port),
            "CHRONOS_ACS__SESSION_TIMEOUT": str(SESSION_TIMEOUT),
            "CHRONOS_FILES__HOST": "127.0.0.1",
            "CHRONOS_FILES__PORT": str(free_port()),
            "CHRONOS_LOG__LEVEL": "WARNING",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "acs"], env=self.env, stderr=subprocess.PIPE
        )
        async with asyncio.timeout(30):
            while True:
                assert self.proc.poll() is None, self.proc.stderr.read().decode()  # type: ignore[union-attr]
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                return

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
async def acs(db_dsn: str) -> AsyncIterator[AcsProcess]:
    process = AcsProcess(db_dsn)
    await process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
async def cpe(acs: AcsProcess) -> AsyncIterator[SimulatedCpe]:
    device = SimulatedCpe(acs.url, model="tr098", seed=3, periodic=False, reboot_delay=0.05)
    async with device:
        async with asyncio.timeout(10):
            await device.wait_for_session(lambda r: r.ok)
        yield device


def kill_when(monkeypatch: pytest.MonkeyPatch, acs: AcsProcess, rpc: type) -> list[Any]:
    """Make the CPE kill the ACS right after it has handled its first `rpc` (applied it,
    answer ready); returns the RPCs of that type the CPE handled."""
    calls: list[Any] = []
    original = sim_session._HANDLERS[rpc]

    def handler(session: Any, request: Any) -> Any:
        answer = original(session, request)
        calls.append(request)
        if len(calls) == 1:
            acs.kill()  # the CPE applied it; its answer will find nobody
        return answer

    monkeypatch.setitem(sim_session._HANDLERS, rpc, handler)
    return calls


async def wait_for_lease_expiry(pool: asyncpg.Pool, device_id: str) -> None:
    async with asyncio.timeout(30):
        while await pool.fetchval(
            "SELECT session_expires > now() FROM devices WHERE id = $1", device_id
        ):
            await asyncio.sleep(0.1)


async def crash_and_recover(
    acs: AcsProcess, cpe: SimulatedCpe, pool: asyncpg.Pool, recovered: Callable[[Any], bool]
) -> Any:
    """Wake the CPE into a session the ACS dies in; restart the ACS; wake it again and
    return the first later session that satisfies `recovered`."""
    n = cpe.session_count
    cpe.connection_request()
    async with asyncio.timeout(10):
        assert not (await cpe.wait_for_session(after=n)).ok
    await acs.start()
    await wait_for_lease_expiry(pool, cpe.device_id)
    cpe.connection_request()
    async with asyncio.timeout(20):
        return await cpe.wait_for_session(recovered, after=n + 1)


async def add_task(pool: asyncpg.Pool, device_id: str, name: str, args: dict[str, Any]) -> int:
    return await pool.fetchval(
        "INSERT INTO tasks (device_id, name, body, args) VALUES ($1, $2, $3, $4) RETURNING id",
        device_id,
        name,
        {"name": name},
        args,
    )


async def test_spv_applied_before_a_kill_is_completed_without_being_sent_again(
    acs: AcsProcess, cpe: SimulatedCpe, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    ssid = f"{IGD}.LANDevice.1.WLANConfiguration.1.SSID"
    task = await add_task(
        pool, cpe.device_id, "setParameterValues", {"values": [[ssid, "after-crash", "xsd:string"]]}
    )
    calls = kill_when(monkeypatch, acs, m.SetParameterValues)
    n = cpe.session_count
    cpe.connection_request()
    async with asyncio.timeout(10):
        failed = await cpe.wait_for_session(after=n)
    assert not failed.ok and len(calls) == 1 and cpe.datamodel[ssid] == "after-crash"
    assert await pool.fetchval("SELECT status FROM tasks WHERE id = $1", task) == "pending"

    await acs.start()
    await wait_for_lease_expiry(pool, cpe.device_id)
    cpe.connection_request()
    async with asyncio.timeout(15):
        await cpe.wait_for_session(lambda r: r.ok, after=n + 1)
    row = await pool.fetchrow("SELECT status, result FROM tasks WHERE id = $1", task)
    assert row["status"] == "done" and row["result"] == {"reconciled": "ParameterKey"}
    assert len(calls) == 1  # never sent twice
    stored = await pool.fetchval(
        "SELECT value FROM device_params WHERE device_id = $1 AND path = $2", cpe.device_id, ssid
    )
    assert stored == "after-crash"


async def test_rpc_lost_with_the_acs_is_sent_again_and_done_once(
    acs: AcsProcess, cpe: SimulatedCpe, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CPE got GetParameterValues and answered into a dead ACS: nothing was stored, so
    the task runs at the next session, exactly once to completion."""
    path = f"{IGD}.DeviceInfo.UpTime"
    task = await add_task(pool, cpe.device_id, "getParameterValues", {"names": [path]})
    calls = kill_when(monkeypatch, acs, m.GetParameterValues)
    await crash_and_recover(acs, cpe, pool, lambda r: r.ok)
    assert await pool.fetchval("SELECT status FROM tasks WHERE id = $1", task) == "done"
    assert len(calls) == 2
    assert (
        await pool.fetchval(
            "SELECT value_num FROM device_params WHERE device_id = $1 AND path = $2",
            cpe.device_id,
            path,
        )
        is not None
    )


async def test_reboot_interrupted_by_a_kill_happens_once(
    acs: AcsProcess, cpe: SimulatedCpe, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CPE reboots only after a session that ended well (TR-069 3.7.1.4), so a Reboot
    whose session died is sent again; the device reboots exactly once."""
    task = await add_task(pool, cpe.device_id, "reboot", {})
    kill_when(monkeypatch, acs, m.Reboot)
    record = await crash_and_recover(acs, cpe, pool, lambda r: "M Reboot" in r.events)
    assert record.ok
    assert await pool.fetchval("SELECT status FROM tasks WHERE id = $1", task) == "done"
    reboot_events = [r for r in cpe.sessions if "M Reboot" in r.events]
    assert len(reboot_events) == 1
