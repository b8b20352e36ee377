"""CWMP benchmark: periodic-Inform sessions per second against a bare-aiohttp baseline.

    python -m tools.bench.cwmp [--seconds 10] [--connections 64] [--devices-per-connection 20]

1. A bare aiohttp POST endpoint (tools.bench.baseline) in its own process: requests/s
   with the same load generator.
2. `chronos acs` in its own process against PostgreSQL (embedded, or DATABASE_URL): each
   simulated CPE runs an Inform -> InformResponse -> empty POST -> 204 session with no
   pending task, the steady state of a real network. Devices are registered first, so
   the measured sessions are periodic ones.

A session is two HTTP exchanges, so 0.5 is the ceiling of the ratio. The last line is
`RESULT sessions_per_s=... baseline_req_per_s=... ratio=... p99_ms=...`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import uvloop

from acs import messages as m
from acs import soap
from controller.database import migrate
from controller.embedded import EmbeddedPostgres
from schemas.sealing import generate_key
from tools.bench import loadgen

IGD = "InternetGatewayDevice"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def inform_body(index: int) -> bytes:
    """A periodic Inform as a TR-098 gateway sends one (its forced parameters)."""
    serial = f"BENCH{index:07d}"
    params = (
        m.ParameterValue(f"{IGD}.DeviceSummary", "InternetGatewayDevice:1.4[](Baseline:2)"),
        m.ParameterValue(f"{IGD}.DeviceInfo.SpecVersion", "1.0"),
        m.ParameterValue(f"{IGD}.DeviceInfo.HardwareVersion", "HW-1.2"),
        m.ParameterValue(f"{IGD}.DeviceInfo.SoftwareVersion", "V3.1.4"),
        m.ParameterValue(f"{IGD}.DeviceInfo.ProvisioningCode", "RES.GOLD"),
        m.ParameterValue(f"{IGD}.DeviceInfo.UpTime", str(3600 + index), "xsd:unsignedInt"),
        m.ParameterValue(
            f"{IGD}.ManagementServer.ConnectionRequestURL", f"http://10.{index % 250}.0.1:7547/"
        ),
        m.ParameterValue(f"{IGD}.ManagementServer.ParameterKey", ""),
        m.ParameterValue(
            f"{IGD}.ManagementServer.PeriodicInformInterval", "3600", "xsd:unsignedInt"
        ),
        m.ParameterValue(
            f"{IGD}.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress",
            f"100.64.{index // 250 % 250}.{index % 250}",
        ),
    )
    inform = m.Inform(
        m.DeviceIdStruct("Bench", "00BEEF", "HG8245", serial),
        (m.EventStruct("2 PERIODIC", ""),),
        1,
        None,
        0,
        params,
    )
    return soap.encode(inform, id=f"b{index}")


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def wait_port(port: int, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"server exited: {err[-2000:]}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise RuntimeError(f"nothing listens on {port} after {seconds} s")


async def baseline(args: argparse.Namespace) -> float:
    port = free_port()
    env = dict(os.environ)
    with process([sys.executable, "-m", "tools.bench.baseline", str(port)], env) as proc:
        await wait_port(port, proc)
        body = soap.encode(m.InformResponse(1), id="x")
        stats = await loadgen.run(
            "127.0.0.1",
            port,
            lambda i: (body,),
            connections=args.connections,
            seconds=args.seconds,
        )
    return stats.requests / args.seconds


def acs_environment(dsn: str, port: int) -> dict[str, str]:
    """How the benchmarks start `chronos acs`: on loopback, quiet, its own key."""
    return {
        **os.environ,
        "DATABASE_URL": dsn,
        "CHRONOS_SECRET_KEY": generate_key(),
        "CHRONOS_ACS__HOST": "127.0.0.1",
        "CHRONOS_ACS__PORT": str(port),
        "CHRONOS_LOG__LEVEL": "WARNING",
        "CHRONOS_CONFIG": os.devnull,
        # The file server is not measured; keep it off the ports the runs use.
        "CHRONOS_FILES__PORT": str(free_port()),
    }


async def acs(args: argparse.Namespace, dsn: str) -> loadgen.Stats:
    port = free_port()
    env = acs_environment(dsn, port)
    devices = args.connections * args.devices_per_connection
    bodies = [inform_body(i) for i in range(devices)]

    def script(i: int) -> tuple[bytes, bytes]:
        return bodies[i % devices], b""

    with process([sys.executable, "-m", "controller.cli", "acs"], env) as proc:
        await wait_port(port, proc)
        # Register every device once, so the measured sessions are periodic ones.
        await loadgen.run(
            "127.0.0.1",
            port,
            script,
            connections=args.connections,
            seconds=300,
            warmup=0,
            iterations=args.devices_per_connection,
        )
        stats = await loadgen.run(
            "127.0.0.1", port, script, connections=args.connections, seconds=args.seconds
        )
        if proc.poll() is not None:
            raise RuntimeError("the ACS died during the run")
    return stats


@contextlib.asynccontextmanager
async def database() -> Iterator[str]:
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="chronos-bench-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pg", delete_on_stop=True)
        await server.astart()
        try:
            dsn = await server.ensure_database("bench")
            conn = await asyncpg.connect(dsn)
            try:
                await migrate(conn)
            finally:
                await conn.close()
            yield dsn
        finally:
            await server.astop()


async def main(args: argparse.Namespace) -> None:
    base = await baseline(args)
    print(f"baseline: bare aiohttp POST {base:,.0f} req/s", flush=True)
    async with database() as dsn:
        stats = await acs(args, dsn)
    rate = stats.sessions / args.seconds
    p50, p99 = stats.percentile(0.5) * 1000, stats.percentile(0.99) * 1000
    print(
        f"acs: {stats.sessions} sessions ({stats.requests} requests, {stats.errors} failed) in"
        f" {args.seconds:g} s = {rate:,.0f} sessions/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms;"
        f" statuses {dict(sorted(stats.statuses.items()))}",
        flush=True,
    )
    print(
        f"RESULT sessions_per_s={rate:.0f} baseline_req_per_s={base:.0f}"
        f" ratio={rate / base:.3f} p99_ms={p99:.1f}"
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--devices-per-connection", type=int, default=20)
    return parser.parse_args(argv)


if __name__ == "__main__":
    uvloop.run(main(parse()))
