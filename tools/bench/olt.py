"""OLT benchmark: an inventory poll through the huawei-olt driver against the same CLI
commands read raw over SSH.

    python -m tools.bench.olt [--onts 512] [--runs 5]

1. `chronos sim olt` runs in a process of its own on 127.0.0.1 (scroll on, no latency).
2. Baseline: one asyncssh shell sends each command the driver's inventory poll sends
   and reads until the prompt comes back, nothing else: no pager or prompt handling,
   no parsing. That is the floor any client pays for the same exchanges.
3. Ours: `HuaweiOltDriver.poll(inventory)` over its reused session: the CLI screen,
   every parser and the inventory models.

Both sides run `--runs` times, alternating, on sessions opened beforehand; the medians
count. The last line is `RESULT onts=... ours_s=... raw_s=... ratio=...` (raw / ours:
1.0 would mean the driver adds nothing to the exchanges themselves).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import socket
import statistics
import subprocess
import sys
import time

import asyncssh

from agents.driver import GroupPlan
from agents.huawei.driver import HuaweiOltDriver, gpon_slots
from schemas import olt
from schemas.frames import TargetSpec

USER, PASSWORD = "root", "admin123"
PROMPT = re.compile(r"MA5800-X7(\(config[^)]*\))?[>#]$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_listening(port: int, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return


class RawShell:
    """Send a line, read until the prompt: the least a CLI client can do."""

    def __init__(self, process: asyncssh.SSHClientProcess[str]) -> None:
        self.process = process

    async def until_prompt(self) -> str:
        out = ""
        while not PROMPT.search(out.rstrip(" ")):
            chunk = await self.process.stdout.read(65536)
            if not chunk:
                raise ConnectionError("the OLT closed the session")
            out += chunk
        return out

    async def run(self, command: str) -> str:
        self.process.stdin.write(command + "\n")
        return await self.until_prompt()


async def raw_session(port: int) -> tuple[asyncssh.SSHClientConnection, RawShell]:
    conn = await asyncssh.connect(
        "127.0.0.1", port, username=USER, password=PASSWORD, known_hosts=None, config=None
    )
    process = await conn.create_process(term_type="vt100", encoding="utf-8")
    shell = RawShell(process)
    out = ""
    while "(YES/NO)" not in out:
        out += await process.stdout.read(65536)
    process.stdin.write("yes\n")
    await shell.until_prompt()
    for command in ("enable", "undo smart", "scroll 512"):
        await shell.run(command)
    return conn, shell


async def bench(ssh: int, runs: int) -> int:
    await wait_listening(ssh)
    target = TargetSpec(
        1, "huawei-olt", "127.0.0.1", ssh, {"username": USER, "password": PASSWORD}, {}, {}, 1
    )
    driver = HuaweiOltDriver()
    plan = GroupPlan("inventory", 3600)
    first = (await driver.poll(target, plan, 0)).events[0].detail  # opens the session
    # The commands one inventory poll sends, for the raw side to send as well.
    commands = ["display version", "display board 0"]
    boards = [olt.Board.model_validate(b) for b in first["boards"]]
    for board, count in gpon_slots(boards):
        commands += [f"display ont info 0 {board.slot} {port}" for port in range(count)]
    ports = sorted({(o["slot"], o["port"]) for o in first["onts"]})
    commands += [f"display ont info summary 0/{slot}/{port}" for slot, port in ports]
    conn, shell = await raw_session(ssh)
    ours, raw = [], []
    for _ in range(runs):
        start = time.perf_counter()
        await driver.poll(target, plan, 0)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        for command in commands:
            await shell.run(command)
        raw.append(time.perf_counter() - start)
    conn.close()
    await driver.close()
    ours_s, raw_s = statistics.median(ours), statistics.median(raw)
    print(f"{len(commands)} commands per poll, {len(first['onts'])} ONTs")
    print(f"runs (s): ours {[round(x, 3) for x in ours]} raw {[round(x, 3) for x in raw]}")
    print(
        f"RESULT onts={len(first['onts'])} ours_s={ours_s:.3f} raw_s={raw_s:.3f}"
        f" ratio={raw_s / ours_s:.3f}"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.olt")
    parser.add_argument("--onts", type=int, default=512, help="at most 512 (4 ports x 128)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ssh = free_port()
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controller.cli",
            "sim",
            "olt",
            "--port",
            str(ssh),
            "--onts",
            str(args.onts),
            "--autofind",
            "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        return asyncio.run(bench(ssh, args.runs))
    finally:
        sim.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            sim.wait(10)


if __name__ == "__main__":
    sys.exit(main())
