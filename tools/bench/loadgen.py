"""A small HTTP/1.1 load generator for the benchmarks: keep-alive connections on
127.0.0.1, each running a fixed script of POSTs, echoing the session cookie as a CPE
does. Deliberately minimal (Content-Length bodies only) so that it costs far less CPU
than the servers it measures; every benchmark runs its baseline through the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# A script turns an iteration number into the bodies of one "session" of requests.
Script = Callable[[int], Sequence[bytes]]


@dataclass
class Stats:
    sessions: int = 0
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _request(host: str, port: int, path: str, body: bytes, cookie: bytes | None) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        'Content-Type: text/xml; charset="utf-8"\r\n'
        f"Content-Length: {len(body)}\r\n"
    ).encode()
    if cookie:
        head += b"Cookie: " + cookie + b"\r\n"
    return head + b"\r\n" + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes | None]:
    """(status, session cookie if one was set); the body is read and dropped."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    cookie = None
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        lname = name.strip().lower()
        if lname == b"content-length":
            length = int(value)
        elif lname == b"set-cookie":
            cookie = value.strip().split(b";", 1)[0]
    if length:
        await reader.readexactly(length)
    return status, cookie


@dataclass
class _Plan:
    host: str
    port: int
    script: Script
    step: int
    deadline: float
    measure_from: float
    iterations: int | None
    stats: Stats


async def _connection(plan: _Plan, first: int) -> None:
    reader, writer = await asyncio.open_connection(plan.host, plan.port)
    stats = plan.stats
    iteration = first
    done = 0
    try:
        while time.perf_counter() < plan.deadline and (
            plan.iterations is None or done < plan.iterations
        ):
            done += 1
            started = time.perf_counter()
            measured = started >= plan.measure_from
            cookie: bytes | None = None
            ok = True
            for body in plan.script(iteration):
                writer.write(_request(plan.host, plan.port, "/", body, cookie))
                status, set_cookie = await _read_response(reader)
                if measured:
                    stats.requests += 1
                    stats.statuses[status] = stats.statuses.get(status, 0) + 1
                if set_cookie:
                    cookie = set_cookie
                if status >= 400:
                    ok = False
                    break
            iteration += plan.step
            if measured:
                if ok:
                    stats.sessions += 1
                    stats.latencies.append(time.perf_counter() - started)
                else:
                    stats.errors += 1
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def run(
    host: str,
    port: int,
    script: Script,
    *,
    connections: int,
    seconds: float,
    warmup: float = 1.0,
    iterations: int | None = None,
) -> Stats:
    """Run `connections` loops for warmup + seconds; only the measured part counts.

    Connection k runs iterations k, k + connections, ... so no two connections use the
    same iteration number (the benchmarks map it to a device, which must not be shared).
    `iterations` stops each connection after that many sessions.
    """
    measure_from = time.perf_counter() + warmup
    plan = _Plan(
        host, port, script, connections, measure_from + seconds, measure_from, iterations, Stats()
    )
    await asyncio.gather(*(_connection(plan, k) for k in range(connections)))
    return plan.stats
