"""SNMP benchmark: varbinds per second per core of our v2c walk against net-snmp's.

    python -m tools.bench.snmp [--rows 2000] [--runs 5] [--max-repetitions 25] [--pysnmp]

1. net-snmp's `snmpd` on 127.0.0.1 (a free UDP port) serves a generated ifTable of
   `--rows` rows x 17 columns (34,000 varbinds by default). snmpd has no directive for
   a table of that size, so each cell is an `override` line (the IF-MIB modules are
   left out with `-I -ifTable,ifXTable`, so the table is ours alone). `override` knows
   no Counter64, so the table holds what ifTable holds: INTEGER, OCTET STRING, Gauge32,
   TimeTicks, Counter32. snmpsim would serve Counter64 too, but it costs ~68 µs of CPU
   per varbind served: the walk would measure the simulator.
2. Baseline: `snmpbulkwalk -v2c -Cr25` of the table, its CPU time (user + system) taken
   from the child's resource usage. The CPU of the same command walking a one-varbind
   subtree (process start, MIB loading) is measured too and taken off, so both sides
   are charged for the walk alone (that is the stricter comparison for us; the raw
   figure is printed as well).
3. Ours: the driver's walk (`agents.snmp.session.walk` over `V2cSession`, our BER codec
   and shared UDP socket) of the same table with the same max-repetitions, under uvloop
   as the agent runs, CPU time of this process during the walk.

Each side runs `--runs` times, the two alternating; the medians count. `--pysnmp` also
times pysnmp 7's walk (its codec is what the fast path replaces). The last line is
`RESULT ours_vbps=... netsnmp_vbps=... ratio=...`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import uvloop

from agents.snmp import ber
from agents.snmp.session import walk
from agents.snmp.v2c import UdpTransport, V2cSession

COMMUNITY = "bench"
IF_TABLE = (1, 3, 6, 1, 2, 1, 2, 2, 1)
SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3)
# ifTable columns (IF-MIB) as `override` types, and each row's value.
COLUMNS: list[tuple[int, str, str]] = [
    (1, "integer", "{i}"),
    (2, "octet_str", '"GigabitEthernet0/{slot}/{port}"'),
    (3, "integer", "6"),
    (4, "integer", "1500"),
    (5, "unsigned", "1000000000"),
    (6, "octet_str", '"00e0fc{i:06x}"'),
    (7, "integer", "1"),
    (8, "integer", "{status}"),
    (9, "timeticks", "{ticks}"),
    (10, "counter", "{big}"),
    (11, "counter", "{pkts}"),
    (13, "counter", "{small}"),
    (14, "counter", "{tiny}"),
    (16, "counter", "{big2}"),
    (17, "counter", "{pkts2}"),
    (19, "counter", "0"),
    (20, "counter", "{tiny}"),
]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def snmpd_config(port: int, rows: int) -> str:
    lines = [f"agentaddress udp:127.0.0.1:{port}", f"rocommunity {COMMUNITY} 127.0.0.1"]
    for column, kind, template in COLUMNS:
        for i in range(1, rows + 1):
            value = template.format(
                i=i,
                slot=i // 48,
                port=i % 48,
                status=1 + i % 2,
                ticks=i * 100,
                big=(i * 2654435761) % 2**32,
                big2=(i * 40503) % 2**32,
                pkts=i * 31,
                pkts2=i * 29,
                small=i % 7,
                tiny=i % 3,
            )
            lines.append(f"override .{ber.dotted((*IF_TABLE, column, i))} {kind} {value}")
    return "\n".join(lines) + "\n"


def net_snmp_environment(base: Path) -> dict[str, str]:
    """Keep net-snmp's persistent files and configuration lookups in our folder."""
    return {**os.environ, "SNMP_PERSISTENT_DIR": str(base / "persist"), "SNMPCONFPATH": str(base)}


@contextlib.contextmanager
def snmpd(base: Path, rows: int) -> Iterator[int]:
    binary = shutil.which("snmpd") or "/usr/sbin/snmpd"
    if not Path(binary).exists():
        raise SystemExit("net-snmp snmpd is missing (apt-get install snmpd snmp)")
    port = free_udp_port()
    conf = base / "snmpd.conf"
    conf.write_text(snmpd_config(port, rows))
    with open(base / "snmpd.log", "wb") as log:
        proc = subprocess.Popen(
            [binary, "-f", "-Lo", "-C", "-c", str(conf), "-I", "-ifTable,ifXTable"],
            env=net_snmp_environment(base),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"snmpd did not start: {(base / 'snmpd.log').read_text()[-2000:]}")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def answers(port: int) -> bool:
    request = ber.encode_request(ber.V2C, COMMUNITY.encode(), ber.GET, 1, [(*SYS_UPTIME, 0)])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        s.sendto(request, ("127.0.0.1", port))
        try:
            s.recvfrom(65535)
        except OSError:
            return False
    return True


def snmpbulkwalk(
    base: Path, port: int, root: tuple[int, ...], repetitions: int
) -> tuple[int, float]:
    """(varbinds printed, CPU seconds of the snmpbulkwalk process)."""
    tool = shutil.which("snmpbulkwalk")
    if tool is None:
        raise SystemExit("net-snmp snmpbulkwalk is missing (apt-get install snmp)")
    out_path = base / "walk.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            [
                tool,
                "-v2c",
                f"-Cr{repetitions}",
                "-c",
                COMMUNITY,
                f"127.0.0.1:{port}",
                ber.dotted(root),
            ],
            env=net_snmp_environment(base),
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"snmpbulkwalk failed with {proc.returncode}")
    count = out_path.read_bytes().count(b"\n")
    return count, usage.ru_utime + usage.ru_stime


async def ours(port: int, repetitions: int) -> tuple[int, float]:
    """(varbinds walked, CPU seconds of this process during the walk)."""
    transport = UdpTransport()
    session = V2cSession(transport, ("127.0.0.1", port), COMMUNITY, timeout=2, retries=1)
    try:
        await session.get([(*SYS_UPTIME, 0)])  # socket open, agent warm: not measured
        started = time.process_time()
        result = await walk(session, [IF_TABLE], repetitions)
        cpu = time.process_time() - started
    finally:
        transport.close()
    if result.problems:
        raise SystemExit(f"our walk stopped early: {result.problems}")
    return result.count, cpu


async def pysnmp_walk(port: int, repetitions: int) -> tuple[int, float]:
    """pysnmp 7's GETBULK walk of the same table (no MIB lookup), for reference."""
    from pysnmp.hlapi.v3arch.asyncio import (
        CommunityData,
        ContextData,
        ObjectIdentity,
        ObjectType,
        SnmpEngine,
        UdpTransportTarget,
        bulk_cmd,
    )

    engine = SnmpEngine()
    target = await UdpTransportTarget.create(("127.0.0.1", port), timeout=2, retries=1)
    auth = CommunityData(COMMUNITY)
    cursor, count = IF_TABLE, 0
    started = time.process_time()
    while True:
        indication, status, _, varbinds = await bulk_cmd(
            engine, auth, target, ContextData(), 0, repetitions,
            ObjectType(ObjectIdentity(ber.dotted(cursor))), lookupMib=False,
        )  # fmt: skip
        if indication or status:
            raise SystemExit(f"pysnmp walk failed: {indication or status}")
        names = [tuple(name) for name, _ in varbinds]
        inside = [n for n in names if n[: len(IF_TABLE)] == IF_TABLE]
        count += len(inside)
        if len(inside) < len(names) or not names:
            break
        cursor = names[-1]
    cpu = time.process_time() - started
    engine.close_dispatcher()
    return count, cpu


def median_rate(samples: list[tuple[int, float]]) -> float:
    return statistics.median(count / cpu for count, cpu in samples)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="chronos-bench-snmp-") as tmp:
        base = Path(tmp)
        with snmpd(base, args.rows) as port:
            reps = args.max_repetitions
            startup = statistics.median(
                snmpbulkwalk(base, port, SYS_UPTIME, reps)[1] for _ in range(args.runs)
            )
            # Runs alternate between the two, so both see the same machine (other
            # processes, CPU frequency) as it drifts during the benchmark.
            theirs: list[tuple[int, float]] = []
            mine: list[tuple[int, float]] = []
            for _ in range(args.runs):
                theirs.append(snmpbulkwalk(base, port, IF_TABLE, reps))
                mine.append(await ours(port, reps))
            count = theirs[0][0]
            if any(n != count for n, _ in theirs + mine):
                counts = {"net-snmp": [n for n, _ in theirs], "ours": [n for n, _ in mine]}
                raise SystemExit(f"walks disagree on the number of varbinds: {counts}")
            raw = median_rate(theirs)
            net = median_rate([(n, max(cpu - startup, 1e-9)) for n, cpu in theirs])
            rate = median_rate(mine)
            print(
                f"net-snmp snmpbulkwalk -v2c -Cr{reps}: {count} varbinds, CPU per run"
                f" {[round(cpu, 4) for _, cpu in theirs]} s, start-up {startup:.4f} s;"
                f" {raw:,.0f} varbinds/s with start-up, {net:,.0f} without",
                flush=True,
            )
            print(
                f"ours (agents.snmp v2c walk, uvloop): {count} varbinds, CPU per run"
                f" {[round(cpu, 4) for _, cpu in mine]} s; {rate:,.0f} varbinds/s",
                flush=True,
            )
            if args.pysnmp:
                n, cpu = await pysnmp_walk(port, reps)
                print(f"pysnmp 7 bulk walk: {n} varbinds in {cpu:.2f} s CPU = {n / cpu:,.0f}/s")
    print(f"RESULT ours_vbps={rate:.0f} netsnmp_vbps={net:.0f} ratio={rate / net:.3f}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000, help="ifTable rows (17 columns each)")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--max-repetitions", type=int, default=25)
    parser.add_argument("--pysnmp", action="store_true", help="also time pysnmp's walk")
    return parser.parse_args(argv)


if __name__ == "__main__":
    uvloop.run(main(parse()))
