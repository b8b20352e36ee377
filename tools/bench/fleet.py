"""Fleet benchmark: K agent processes poll M simulated SNMP devices; one agent is killed.

    python -m tools.bench.fleet [--agents 4] [--targets 2000] [--interval 60] [--cycles 2]

A `chronos controller` process (default fleet timings: heartbeat 1 s, lease 6 s) and K
`chronos agent` processes run against an embedded PostgreSQL (or DATABASE_URL). This
process serves the M devices (`tools.sim.snmp`, one UDP port, a community each) and
logs every request. After the agents settle, `--cycles` whole intervals are watched;
then one agent gets SIGKILL and the benchmark waits until every device it polled has
been polled by another agent.

Figures:
- missed: device-cycles without a poll (a gap between two polls of one device longer
  than 1.5 intervals counts the cycles it spans), over the watched cycles and the
  cycle after the kill;
- reassign_s: from the kill until the last of the killed agent's devices was polled by
  its new owner;
- ratio: device-cycles polled / device-cycles watched (1.0: not one cycle missed).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import sys
import time
import urllib.request
from contextlib import ExitStack

import asyncpg
import uvloop

from controller.auth import create_token
from tools.bench.cwmp import database, free_port, process, wait_port
from tools.sim import snmp as sim


def controller_env(dsn: str, port: int) -> dict[str, str]:
    from schemas.sealing import generate_key

    return {
        **os.environ,
        "DATABASE_URL": dsn,
        "CHRONOS_SECRET_KEY": generate_key(),
        "CHRONOS_API__HOST": "127.0.0.1",
        "CHRONOS_API__PORT": str(port),
        "CHRONOS_LOG__LEVEL": "WARNING",
        "CHRONOS_CONFIG": os.devnull,
    }


def import_targets(url: str, token: str, targets: list[dict]) -> None:
    request = urllib.request.Request(
        url + "/api/v1/targets/import",
        data=json.dumps({"targets": targets}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=120) as reply:
        reply.read()


def missed_cycles(times: list[float], start: float, end: float, interval: float) -> int:
    """Cycles of one device in [start, end) that saw no poll."""
    inside = [t for t in times if start <= t < end]
    if not inside:
        return int((end - start) // interval)
    edges = [start, *inside, end]
    return sum(
        max(0, round((b - a) / interval) - 1)
        for a, b in itertools.pairwise(edges)
        if b - a > 1.5 * interval
    )


async def run(args: argparse.Namespace) -> None:
    simulator = sim.SnmpSimulator(devices=args.targets, interfaces=2)
    async with database() as dsn, sim.running(simulator) as sim_port:
        conn = await asyncpg.connect(dsn)
        admin = await create_token(conn, "bench admin", "admin")
        agent_token = await create_token(conn, "bench agents", "agent")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with ExitStack() as stack:
            ctl = stack.enter_context(
                process(
                    [sys.executable, "-m", "controller.cli", "controller"],
                    controller_env(dsn, port),
                )
            )
            await wait_port(port, ctl)
            targets = sim.targets(
                sim_port, range(1, args.targets + 1), zone="bench", interval=args.interval
            )
            await asyncio.to_thread(import_targets, url, admin, targets)
            agents = {}
            for i in range(args.agents):
                name = f"bench-{i}"
                cmd = [
                    sys.executable,
                    "-m",
                    "controller.cli",
                    "agent",
                    "--controller",
                    url,
                    "--id",
                    name,
                    "--labels",
                    "zone=bench",
                    "--http",
                    f"127.0.0.1:{free_port()}",
                ]
                env = {
                    **os.environ,
                    "CHRONOS_AGENT_TOKEN": agent_token,
                    "CHRONOS_LOG__LEVEL": "WARNING",
                }
                agents[name] = stack.enter_context(process(cmd, env))
            # Settle: every device assigned and polled once.
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                n = await conn.fetchval("SELECT count(*) FROM assignments WHERE state = 'active'")
                if n == args.targets and len(simulator.log) == args.targets:
                    break
                await asyncio.sleep(0.5)
            else:
                raise SystemExit(f"not settled: {n} assigned, {len(simulator.log)} polled")
            watch_from = time.monotonic() + 2
            print(f"settled; watching {args.cycles} cycles of {args.interval} s", flush=True)
            await asyncio.sleep(2 + args.cycles * args.interval)
            watch_to = time.monotonic()
            victim = sorted(agents)[0]
            rows = await conn.fetch(
                "SELECT t.name FROM assignments a JOIN targets t ON t.id = a.target_id"
                " WHERE a.agent_id = $1",
                victim,
            )
            lost = {int(r["name"].removeprefix("sim-dev")) for r in rows}
            victim_sources = {
                r.source for n in lost for r in simulator.requests_for(n) if r.at > watch_from
            }
            killed_at = time.monotonic()
            agents[victim].send_signal(signal.SIGKILL)
            print(f"killed {victim} ({len(lost)} devices)", flush=True)
            deadline = killed_at + 60
            pending = set(lost)
            while pending and time.monotonic() < deadline:
                for n in list(pending):
                    if any(
                        r.at > killed_at and r.source not in victim_sources
                        for r in simulator.requests_for(n)
                    ):
                        pending.discard(n)
                await asyncio.sleep(0.1)
            taken = [
                next(
                    r.at
                    for r in simulator.requests_for(n)
                    if r.at > killed_at and r.source not in victim_sources
                )
                for n in lost - pending
            ]
            reassign_s = (max(taken) - killed_at) if taken and not pending else float("inf")
            await asyncio.sleep(max(0.0, killed_at + args.interval - time.monotonic()))
            after_to = time.monotonic()
        await conn.close()
    steady_missed = sum(
        missed_cycles(
            [r.at for r in simulator.requests_for(n)], watch_from, watch_to, args.interval
        )
        for n in range(1, args.targets + 1)
    )
    after_missed = sum(
        missed_cycles([r.at for r in simulator.requests_for(n)], killed_at, after_to, args.interval)
        for n in lost
    )
    cycles = args.targets * int((watch_to - watch_from) // args.interval)
    print(
        f"devices={args.targets} agents={args.agents} interval_s={args.interval}"
        f" steady_missed={steady_missed} missed_after_kill={after_missed}"
        f" answered={simulator.answered}"
    )
    print(
        f"RESULT targets={args.targets} agents={args.agents} missed={steady_missed + after_missed}"
        f" reassign_s={reassign_s:.1f} ratio={(cycles - steady_missed) / cycles:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.fleet")
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--targets", type=int, default=2000)
    parser.add_argument("--interval", type=int, default=60)
    parser.add_argument("--cycles", type=int, default=2)
    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
