"""Provisioning benchmark: CPU per bootstrap of a 1,400-parameter device, and sessions per
second with a preset in force.

    python -m tools.bench.provisioning [--bootstraps 20] [--seconds 10] [--connections 32]

The devices' data model is the tree a real ZTE gateway listed (the 1,384 names in
../shared/data/soap/zte-igd-GetParameterNamesResponse-1384params.xml). Each bootstrap is
the default `bootstrap` and `inform` presets: one GetParameterNames of the whole tree,
GetParameterValues in batches for every value, the connection-request credentials set.
CPU is the `chronos acs` process's (and PostgreSQL's, shown apart) per session.

Then every session of the run is a periodic Inform under a preset declaring five values
(already right after the first session: the steady state of a provisioned network, which
the ACS checks against what it knows without extra RPCs). Last line:
`RESULT bootstrap_cpu_ms=... sessions_per_s=...`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp
import asyncpg
import psutil
import uvloop

from acs import messages as m
from acs import soap
from tools.bench.cwmp import acs_environment, database, free_port, process, wait_port

IGD = "InternetGatewayDevice"
DEFAULT_NAMES = (
    Path(__file__).resolve().parents[3]
    / "shared/data/soap/zte-igd-GetParameterNamesResponse-1384params.xml"
)


class TreeCpe:
    """A CPE answering from a fixed tree: enough CWMP to be bootstrapped and provisioned."""

    def __init__(self, listing: m.GetParameterNamesResponse, serial: str) -> None:
        self.names = listing.parameters
        self.serial = serial
        self.values = {
            p.name: ("0" if p.name.endswith(("Enable", "NumberOfEntries")) else f"v-{i}")
            for i, p in enumerate(self.names)
            if not p.name.endswith(".")
        }
        self.values[f"{IGD}.DeviceInfo.SerialNumber"] = serial

    def inform(self, events: tuple[str, ...]) -> bytes:
        forced = [
            f"{IGD}.DeviceInfo.SoftwareVersion",
            f"{IGD}.DeviceInfo.HardwareVersion",
            f"{IGD}.ManagementServer.ConnectionRequestURL",
            f"{IGD}.ManagementServer.ParameterKey",
        ]
        params = tuple(m.ParameterValue(n, self.values.get(n, "")) for n in forced)
        body = m.Inform(
            m.DeviceIdStruct("ZTE", "00E0FC", "F660", self.serial),
            tuple(m.EventStruct(e) for e in events),
            1,
            None,
            0,
            params,
        )
        return soap.encode(body, id="i")

    def answer(self, request: m.Message) -> m.Message:
        match request:
            case m.GetParameterNames(path, next_level):
                if path in ("", f"{IGD}.") and not next_level:
                    return m.GetParameterNamesResponse(self.names)
                depth = path.count(".")
                return m.GetParameterNamesResponse(
                    tuple(
                        p
                        for p in self.names
                        if p.name.startswith(path)
                        and (not next_level or p.name.rstrip(".").count(".") == depth)
                    )
                )
            case m.GetParameterValues(names):
                return m.GetParameterValuesResponse(
                    tuple(m.ParameterValue(n, self.values.get(n, "")) for n in names)
                )
            case m.SetParameterValues(params, _):
                for p in params:
                    self.values[p.name] = p.value
                return m.SetParameterValuesResponse(0)
        return m.Fault(9000, "Method not supported")

    async def session(self, http: aiohttp.ClientSession, url: str, events: tuple[str, ...]) -> int:
        """One whole session; returns the RPCs answered."""
        rpcs = 0
        body = self.inform(events)
        async with http.post(url, data=body) as r:
            assert r.status == 200, await r.text()
            await r.read()
        outgoing = b""
        while True:
            async with http.post(url, data=outgoing) as r:
                if r.status == 204:
                    return rpcs
                assert r.status == 200, await r.text()
                envelope = soap.decode(await r.read())
            assert envelope is not None
            rpcs += 1
            outgoing = soap.encode(self.answer(envelope.body), id=envelope.header.id or "x")


def cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def postgres() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]


async def run(args: argparse.Namespace, names: bytes) -> None:
    listing_env = soap.decode(names)
    assert listing_env is not None and isinstance(listing_env.body, m.GetParameterNamesResponse)
    listing = listing_env.body
    leaves = sum(1 for p in listing.parameters if not p.name.endswith("."))
    async with database() as dsn:
        port = free_port()
        env = acs_environment(dsn, port)
        url = f"http://127.0.0.1:{port}/"
        with process([sys.executable, "-m", "controller.cli", "acs"], env) as proc:
            await wait_port(port, proc)
            acs = psutil.Process(proc.pid)
            # 1. Bootstraps, one at a time so CPU is per session.
            cpes = [TreeCpe(listing, f"BS{i:06d}") for i in range(args.bootstraps)]
            a0, p0, t0 = cpu([acs]), cpu(postgres()), time.perf_counter()
            rpcs = 0
            for cpe in cpes:
                async with aiohttp.ClientSession() as one:  # its own cookie jar
                    rpcs += await cpe.session(one, url, ("0 BOOTSTRAP", "1 BOOT"))
            a1, p1, t1 = cpu([acs]), cpu(postgres()), time.perf_counter()
            n = len(cpes)
            boot_cpu = (a1 - a0) / n * 1000
            print(
                f"bootstrap: {n} devices of {leaves} parameters, {rpcs / n:.0f} RPCs each;"
                f" acs {boot_cpu:.0f} ms CPU, postgresql {(p1 - p0) / n * 1000:.0f} ms CPU,"
                f" {(t1 - t0) / n * 1000:.0f} ms wall per session",
                flush=True,
            )
            # 2. A preset in force; devices inform periodically.
            conn = await asyncpg.connect(dsn)
            try:
                steps = [
                    {"value": [f"{IGD}.ManagementServer.PeriodicInformInterval", "3600"]},
                    {"value": [f"{IGD}.ManagementServer.PeriodicInformEnable", "1"]},
                    {"declare": f"{IGD}.DeviceInfo.ProvisioningCode", "value": "ISP.${serial}"},
                    {"value": [f"{IGD}.Time.NTPServer1", "pool.ntp.org"]},
                    {"value": [f"{IGD}.ManagementServer.UpgradesManaged", "0"]},
                ]
                await conn.execute(
                    "INSERT INTO provisions (name, source, document) VALUES ('bench', $1, $2)",
                    json.dumps(steps),
                    json.dumps(steps),
                )
                await conn.execute(
                    "INSERT INTO presets (name, document) VALUES ('bench', $1)",
                    json.dumps({"channel": "bench", "provisions": [["bench"]]}),
                )
                await conn.execute("SELECT pg_notify('chronos_catalog', 'bench')")
                await conn.execute("ANALYZE")
            finally:
                await conn.close()
            await asyncio.sleep(0.5)
            fleet = [TreeCpe(listing, f"BS{i % n:06d}") for i in range(args.connections)]
            for cpe in fleet[:n]:  # converge each device once
                async with aiohttp.ClientSession() as one:
                    await cpe.session(one, url, ("2 PERIODIC",))
            done = 0
            deadline = time.perf_counter() + args.seconds

            async def loop(cpe: TreeCpe) -> None:
                nonlocal done
                async with aiohttp.ClientSession() as own:
                    while time.perf_counter() < deadline:
                        await cpe.session(own, url, ("2 PERIODIC",))
                        done += 1

            distinct = {c.serial: c for c in fleet}  # one loop per device
            a0 = cpu([acs])
            await asyncio.gather(*(loop(c) for c in distinct.values()))
            a1 = cpu([acs])
            rate = done / args.seconds
            print(
                f"provisioning: {done} sessions under a 5-value preset in {args.seconds:g} s"
                f" = {rate:.0f} sessions/s; acs {(a1 - a0) / max(done, 1) * 1000:.2f} ms CPU"
                " per session",
                flush=True,
            )
        print(f"RESULT bootstrap_cpu_ms={boot_cpu:.0f} sessions_per_s={rate:.0f}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstraps", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--names", default=str(DEFAULT_NAMES), help="a GetParameterNamesResponse")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    uvloop.run(run(arguments, Path(arguments.names).read_bytes()))
