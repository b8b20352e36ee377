"""Ingest benchmark: samples/s committed through `store_report` against a raw COPY.

    python -m tools.bench.ingest [--agents 4] [--targets 25] [--series 500] [--polls 8]
                                 [--rounds 3]

The workload is what agents send: each of `--agents` agents polls `--targets` targets of
`--series` series each (an OLT's interface counters), `--polls` times a minute apart; a
poll is one report (`--series` samples, one per series), and an agent sends its reports
one after the other (as on its stream) while the agents run at once.

Measured paths, each alternately in every round, from an empty `samples` table:

- `copy`, the baseline: the same rows (series ids already known), in the same batches,
  by `copy_records_to_table` into the same partitioned table, one COPY per report;
- `store_report`: controller.ingest.store_report(pool, ...) per report, which also
  records the report for deduplication, resolves series ids and keeps duplicates out.

Series, partitions and caches are warmed up first, as in a controller that has run for
a while. Each path must leave exactly the samples sent. PostgreSQL is an embedded one
in a temporary folder, or DATABASE_URL: a scratch database, since `samples` and
`agent_reports` are emptied before each run. Rates are the medians of the
rounds; the last line is `RESULT ingest_samples_per_s=... copy_samples_per_s=...
ratio=...` (ratio = store_report / copy).

Another measured path (say, agents -> WebSocket -> controller -> store_report) is one
more entry in `PATHS`: an async function of the `Bench` that stores the workload.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import uvloop

from controller import ingest
from controller.database import create_pool
from schemas.frames import Sample
from tools.bench.cwmp import database

METRICS = ("ifHCInOctets", "ifHCOutOctets", "ifInErrors", "ifOutErrors", "ifOperStatus")


@dataclass
class Workload:
    """Reports per agent, in the order each agent sends them."""

    reports: dict[str, list[list[Sample]]]
    targets: list[int]

    @property
    def samples(self) -> int:
        return sum(len(r) for reports in self.reports.values() for r in reports)


@dataclass
class Bench:
    dsn: str
    pool: asyncpg.Pool
    work: Workload
    # (target, metric, labels as a set) -> series id, for the baseline's rows
    series_ids: dict[tuple[int, str, frozenset[tuple[str, str]]], int] = field(default_factory=dict)


# A measured path stores the whole workload and returns the seconds that took.
Path = Callable[[Bench], Awaitable[float]]


def workload(targets: list[int], args: argparse.Namespace) -> Workload:
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=args.polls)
    start_ms = int(start.timestamp() * 1000)
    reports: dict[str, list[list[Sample]]] = {}
    for a in range(args.agents):
        mine = targets[a * args.targets : (a + 1) * args.targets]
        out = reports[f"bench-agent-{a}"] = []
        for poll in range(args.polls):
            for target in mine:
                ts_ms = start_ms + poll * 60_000 + target % 1000
                out.append(
                    [
                        Sample(
                            target,
                            METRICS[i % len(METRICS)],
                            {"ifIndex": str(i // len(METRICS)), "ifName": f"gpon 0/1/{i}"},
                            ts_ms,
                            float(poll * 1_000_003 + i),
                        )
                        for i in range(args.series)
                    ]
                )
    return Workload(reports, targets)


async def via_copy(bench: Bench) -> float:
    """The baseline: a raw COPY of each report's rows."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    batches = {
        agent: [
            [
                (
                    bench.series_ids[(s.target, s.metric, frozenset(s.labels.items()))],
                    epoch + timedelta(milliseconds=s.ts_ms),
                    s.value,
                )
                for s in report
            ]
            for report in reports
        ]
        for agent, reports in bench.work.reports.items()
    }

    async def agent(rows: list[list[tuple[int, datetime, float]]]) -> None:
        async with bench.pool.acquire() as conn:
            for batch in rows:
                await conn.copy_records_to_table(
                    "samples", records=batch, columns=("series_id", "ts", "value")
                )

    started = time.perf_counter()
    await asyncio.gather(*(agent(rows) for rows in batches.values()))
    return time.perf_counter() - started


async def via_store_report(bench: Bench) -> float:
    boot = uuid.uuid4().hex[:12]

    async def agent(name: str, reports: list[list[Sample]]) -> None:
        for seq, samples in enumerate(reports, 1):
            await ingest.store_report(bench.pool, name, boot, seq, samples, ())

    started = time.perf_counter()
    await asyncio.gather(*(agent(n, r) for n, r in bench.work.reports.items()))
    return time.perf_counter() - started


# The baseline first; every other entry is a measured path.
PATHS: dict[str, Path] = {"copy": via_copy, "store_report": via_store_report}


async def setup(pool: asyncpg.Pool, args: argparse.Namespace) -> list[int]:
    if await pool.fetchval("SELECT EXISTS (SELECT 1 FROM samples)"):
        raise SystemExit("the database holds samples: give the benchmark a scratch database")
    count = args.agents * args.targets
    await pool.execute("DELETE FROM targets WHERE name LIKE 'bench-olt-%'")
    rows = await pool.fetch(
        """
        INSERT INTO targets (name, kind, address, port, labels)
        SELECT 'bench-olt-' || n, 'snmp', '10.9.' || (n / 250) || '.' || (n % 250), 161,
               '{"zone": "bench"}'
        FROM generate_series(1, $1) AS n RETURNING id
        """,
        count,
    )
    return sorted(r["id"] for r in rows)


async def empty(pool: asyncpg.Pool) -> None:
    await pool.execute("TRUNCATE samples, agent_reports")
    await pool.execute("VACUUM ANALYZE agent_reports")


async def measure(bench: Bench, name: str) -> float:
    await empty(bench.pool)
    elapsed = await PATHS[name](bench)
    stored = await bench.pool.fetchval("SELECT count(*) FROM samples")
    if stored != bench.work.samples:
        raise RuntimeError(f"{name} left {stored} samples of {bench.work.samples} sent")
    return bench.work.samples / elapsed


async def main(args: argparse.Namespace) -> None:
    async with database() as dsn:
        pool = await create_pool(dsn, min_size=args.agents + 1, max_size=args.agents + 2)
        try:
            targets = await setup(pool, args)
            bench = Bench(dsn, pool, workload(targets, args))
            print(
                f"workload: {args.agents} agents x {args.targets} targets x {args.series}"
                f" series x {args.polls} polls = {bench.work.samples:,} samples"
                f" in reports of {args.series}",
                flush=True,
            )
            await empty(pool)
            await via_store_report(bench)  # warm-up: series, partitions, caches
            rows = await pool.fetch("SELECT id, target_id, metric, labels FROM series")
            bench.series_ids = {
                (r["target_id"], r["metric"], frozenset(r["labels"].items())): r["id"] for r in rows
            }
            await measure(bench, "copy")  # warm-up of the baseline
            rates: dict[str, list[float]] = {name: [] for name in PATHS}
            for round_ in range(1, args.rounds + 1):
                for name in PATHS:
                    rate = await measure(bench, name)
                    rates[name].append(rate)
                    print(f"round {round_}: {name:>12} {rate:>12,.0f} samples/s", flush=True)
        finally:
            await pool.close()
    copy = statistics.median(rates["copy"])
    ours = statistics.median(rates["store_report"])
    print(
        f"RESULT ingest_samples_per_s={ours:.0f} copy_samples_per_s={copy:.0f}"
        f" ratio={ours / copy:.3f}"
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--targets", type=int, default=25, help="targets per agent")
    parser.add_argument("--series", type=int, default=500, help="series per target")
    parser.add_argument("--polls", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args(argv)


if __name__ == "__main__":
    uvloop.run(main(parse()))
