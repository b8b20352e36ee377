"""Time-series maintenance: partitions ahead of need, rollups, retention.

The leader controller runs `maintain()` periodically (and any process may: a session
advisory lock lets one run at a time, the others return at once with `ran=False`).

**Partitions** (schemas/migrations/0006): `samples` and `samples_5m` by UTC day,
`samples_1h` and `events` by month, `samples_1d` by year, named `<table>_pYYYYMMDD`
(`_pYYYYMM`, `_pYYYY`). Each run creates those covering now .. now + `partitions_ahead_days`;
a write that needs another one creates it first (`ensure_partitions`, used by ingest and
rollups), so a row never meets a missing partition and there is no DEFAULT partition to
empty. A partition is created standalone and then ATTACHed, which takes SHARE UPDATE
EXCLUSIVE on the parent (CREATE TABLE ... PARTITION OF would take ACCESS EXCLUSIVE and
stall every writer); it is dropped after DETACH ... CONCURRENTLY for the same reason.

**Retention** drops a partition once its end is older than the table's retention, so data
is kept at least that long and at most one partition longer.

**Rollups** 5 min from raw, 1 h from 5 min, 1 d from 1 h (min, max, sum, count; avg is
sum / count). Buckets are aligned on the Unix epoch, so days are UTC days. A bucket is
rolled up once it is closed (its end `rollup_delay_s` in the past); `timeseries_state`
records how far each level is done. Recomputing a bucket rewrites it from its source with
an upsert, so it gives the same row (sums are taken in numeric, independent of row order).

**Late samples**: every stored report records its transaction id and its samples' time
span (agent_reports). A run saves its snapshot; the next one looks at the reports that
snapshot did not see, and recomputes the buckets of theirs that were already rolled up,
then the hours and days above them. No margin is guessed: a report committed while a run
was reading is, by construction, not visible in that run's snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from schemas.config import Config, TimeseriesConfig

log = logging.getLogger("chronos.timeseries")

# Any fixed 64-bit numbers unique to these purposes ("chrtsmnt", "chrtspar").
_MAINTENANCE_LOCK = 0x6368_7274_736D_6E74
_PARTITION_LOCK = 0x6368_7274_7370_6172

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- partitions ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartitionedTable:
    """A table partitioned by ranges of whole UTC days, months or years."""

    name: str
    unit: str  # day | month | year

    def floor(self, day: date) -> date:
        """The first day of the partition holding `day`."""
        if self.unit == "day":
            return day
        if self.unit == "month":
            return day.replace(day=1)
        return date(day.year, 1, 1)

    def following(self, start: date) -> date:
        """The first day of the partition after the one starting at `start`."""
        if self.unit == "day":
            return start + timedelta(days=1)
        if self.unit == "month":
            return date(start.year + start.month // 12, start.month % 12 + 1, 1)
        return date(start.year + 1, 1, 1)

    def partition(self, start: date) -> str:
        suffix = {"day": "%Y%m%d", "month": "%Y%m", "year": "%Y"}[self.unit]
        return f"{self.name}_p{start.strftime(suffix)}"

    def parse(self, relname: str) -> date | None:
        """The start of a partition named by `partition()`; None for any other name."""
        prefix = f"{self.name}_p"
        digits = relname[len(prefix) :]
        width = {"day": 8, "month": 6, "year": 4}[self.unit]
        if not relname.startswith(prefix) or len(digits) != width or not digits.isdigit():
            return None
        try:
            return date(int(digits[:4]), int(digits[4:6] or 1), int(digits[6:8] or 1))
        except ValueError:
            return None

    def covering(self, first: date, last: date) -> list[date]:
        """Starts of the partitions holding every day from `first` to `last`, inclusive."""
        out = []
        start = self.floor(first)
        while start <= last:
            out.append(start)
            start = self.following(start)
        return out


SAMPLES = PartitionedTable("samples", "day")
SAMPLES_5M = PartitionedTable("samples_5m", "day")
SAMPLES_1H = PartitionedTable("samples_1h", "month")
SAMPLES_1D = PartitionedTable("samples_1d", "year")
EVENTS = PartitionedTable("events", "month")
TABLES = (SAMPLES, SAMPLES_5M, SAMPLES_1H, SAMPLES_1D, EVENTS)

LIST_PARTITIONS = """
SELECT c.relname, i.inhdetachpending AS pending
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = to_regclass($1)
"""


def _stamp(day: date) -> str:
    return f"{day.isoformat()} 00:00:00+00"


def day_of(ts: datetime) -> date:
    return ts.astimezone(UTC).date()


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def partitions(conn: asyncpg.Connection, table: PartitionedTable) -> dict[date, str]:
    """This table's partitions named by us: start -> name (pending detaches included)."""
    rows = await conn.fetch(LIST_PARTITIONS, table.name)
    out = {}
    for row in rows:
        start = table.parse(row["relname"])
        if start is not None:
            out[start] = row["relname"]
    return out


async def ensure_partitions(
    conn: asyncpg.Connection, table: PartitionedTable, days: Iterable[date]
) -> list[str]:
    """Create the missing partitions holding `days`; returns the names created.

    When some are missing: one transaction (a savepoint inside the caller's), serialised
    with every other creator by an advisory lock, so two processes never race on a name.
    """
    wanted = {table.floor(d) for d in days}
    if not wanted or wanted.issubset(await partitions(conn, table)):
        return []
    created = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _PARTITION_LOCK)
        have = await partitions(conn, table)
        for start in sorted(wanted - set(have)):
            name = table.partition(start)
            end = table.following(start)
            # Names and bounds come from dates we formatted, never from input.
            await conn.execute(f"CREATE TABLE {name} (LIKE {table.name} INCLUDING DEFAULTS)")
            await conn.execute(
                f"ALTER TABLE {table.name} ATTACH PARTITION {name}"
                f" FOR VALUES FROM ('{_stamp(start)}') TO ('{_stamp(end)}')"
            )
            created.append(name)
    if created:
        log.info("partitions created", extra={"table": table.name, "partitions": created})
    return created


async def drop_partitions(
    conn: asyncpg.Connection, table: PartitionedTable, before: datetime
) -> list[str]:
    """Drop the partitions that end at or before `before`; returns the names dropped.

    Detached CONCURRENTLY first (writers and readers of the parent are never blocked), so
    `conn` must not be inside a transaction. A detach interrupted earlier is finalized.
    """
    rows = await conn.fetch(LIST_PARTITIONS, table.name)
    dropped = []
    for row in sorted(rows, key=lambda r: (not r["pending"], r["relname"])):
        start = table.parse(row["relname"])
        if start is None or midnight(table.following(start)) > before:
            continue
        name = row["relname"]
        mode = "FINALIZE" if row["pending"] else "CONCURRENTLY"
        await conn.execute(f"ALTER TABLE {table.name} DETACH PARTITION {name} {mode}")
        await conn.execute(f"DROP TABLE {name}")
        dropped.append(name)
    if dropped:
        log.info("partitions dropped", extra={"table": table.name, "partitions": dropped})
    return dropped


# --- rollups -------------------------------------------------------------------------------

_EPOCH_SQL = "'1970-01-01 00:00:00+00'::timestamptz"
_UPSERT = """
ON CONFLICT (series_id, bucket) DO UPDATE
SET min = EXCLUDED.min, max = EXCLUDED.max, sum = EXCLUDED.sum, count = EXCLUDED.count
WHERE (r.min, r.max, r.sum, r.count)
      IS DISTINCT FROM (EXCLUDED.min, EXCLUDED.max, EXCLUDED.sum, EXCLUDED.count)
"""


@dataclass(frozen=True, slots=True)
class Level:
    """One rollup resolution: where it is stored and what it is computed from."""

    name: str  # 5m | 1h | 1d
    width: timedelta
    table: PartitionedTable
    source: PartitionedTable
    sql: str  # $1, $2: the source time range [from, to), aligned on `width`
    chunk: timedelta  # source time range per statement (and per transaction)

    def floor(self, ts: datetime) -> datetime:
        return EPOCH + (ts - EPOCH) // self.width * self.width

    def ceil(self, ts: datetime) -> datetime:
        return EPOCH - (EPOCH - ts) // self.width * self.width


def _from_raw(table: str, width: str) -> str:
    return f"""
INSERT INTO {table} AS r (series_id, bucket, min, max, sum, count)
SELECT series_id, date_bin('{width}', ts, {_EPOCH_SQL}), min(value), max(value),
       sum(value::numeric)::float8, count(*)
FROM samples WHERE ts >= $1 AND ts < $2
GROUP BY 1, 2
{_UPSERT}"""


def _from_rollup(table: str, source: str, width: str) -> str:
    return f"""
INSERT INTO {table} AS r (series_id, bucket, min, max, sum, count)
SELECT series_id, date_bin('{width}', bucket, {_EPOCH_SQL}), min(min), max(max),
       sum(sum::numeric)::float8, sum(count)
FROM {source} WHERE bucket >= $1 AND bucket < $2
GROUP BY 1, 2
{_UPSERT}"""


LEVELS = (
    Level(
        "5m",
        timedelta(minutes=5),
        SAMPLES_5M,
        SAMPLES,
        _from_raw("samples_5m", "5 minutes"),
        timedelta(hours=1),
    ),
    Level(
        "1h",
        timedelta(hours=1),
        SAMPLES_1H,
        SAMPLES_5M,
        _from_rollup("samples_1h", "samples_5m", "1 hour"),
        timedelta(days=1),
    ),
    Level(
        "1d",
        timedelta(days=1),
        SAMPLES_1D,
        SAMPLES_1H,
        _from_rollup("samples_1d", "samples_1h", "1 day"),
        timedelta(days=30),
    ),
)

STATE = "SELECT done_5m, done_1h, done_1d, seen::text FROM timeseries_state"
SNAPSHOT = "SELECT pg_current_snapshot()::text"
SAVE_DONE = {lv.name: f"UPDATE timeseries_state SET done_{lv.name} = $1" for lv in LEVELS}
SAVE_RUN = "UPDATE timeseries_state SET seen = $1::text::pg_snapshot, last_run = $2"
# Time spans of the samples of reports the last run's snapshot ($2) did not see, with
# samples before $1, merged. Before any run finished, every report kept counts.
_SPANS = """
SELECT lower(r) AS lo, upper(r) AS hi FROM unnest((
    SELECT range_agg(tstzrange(min_ts, max_ts, '[]')) FROM agent_reports
    WHERE min_ts IS NOT NULL AND min_ts < $1 {}
)) AS r
"""
LATE_SPANS = _SPANS.format(
    "AND xid >= pg_snapshot_xmin($2::text::pg_snapshot)"
    " AND NOT pg_visible_in_snapshot(xid, $2::text::pg_snapshot)"
)
ALL_SPANS = _SPANS.format("")
DELETE_REPORTS = "DELETE FROM agent_reports WHERE stored < $1"


def _count(status: str) -> int:
    """Rows from a command status ("INSERT 0 12", "DELETE 3")."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _retention(config: TimeseriesConfig) -> dict[str, int]:
    return {
        "samples": config.retention_raw_days,
        "samples_5m": config.retention_5m_days,
        "samples_1h": config.retention_1h_days,
        "samples_1d": config.retention_1d_days,
        "events": config.retention_events_days,
    }


def retention_cutoff(config: TimeseriesConfig, table: str, now: datetime) -> datetime:
    """Data of `table` before this instant may be gone (dropped with its partition)."""
    return now - timedelta(days=_retention(config)[table])


Span = tuple[datetime, datetime]


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    """Sorted, non-overlapping spans covering the same instants (touching ones joined)."""
    out: list[Span] = []
    for lo, hi in sorted(s for s in spans if s[0] < s[1]):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def chunks(lo: datetime, hi: datetime, step: timedelta) -> list[Span]:
    out = []
    while lo < hi:
        out.append((lo, min(lo + step, hi)))
        lo += step
    return out


@dataclass
class MaintenanceReport:
    """What one `maintain()` run did."""

    ran: bool = True  # False: another process was running maintenance
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    rolled_up: dict[str, int] = field(default_factory=dict)  # rows written per level
    recomputed: dict[str, int] = field(default_factory=dict)  # rows rewritten (late samples)
    reports_deleted: int = 0
    done: dict[str, datetime | None] = field(default_factory=dict)
    seconds: float = 0.0

    def as_log(self) -> dict[str, Any]:
        """Flat fields for one structured log line."""
        return {
            "ran": self.ran,
            "partitions_created": len(self.created),
            "partitions_dropped": len(self.dropped),
            **{f"rolled_up_{k}": v for k, v in self.rolled_up.items()},
            **{f"recomputed_{k}": v for k, v in self.recomputed.items()},
            "reports_deleted": self.reports_deleted,
            "seconds": round(self.seconds, 3),
        }


class _Run:
    """One maintenance run on one connection (holding the maintenance lock)."""

    def __init__(self, conn: asyncpg.Connection, now: datetime, config: TimeseriesConfig) -> None:
        self.conn = conn
        self.now = now
        self.config = config
        self.report = MaintenanceReport()
        # Partitions known to exist (a rollup writes into a few, chunk after chunk).
        self.known: dict[str, set[date]] = {}

    async def partitions_ahead(self) -> None:
        today = day_of(self.now)
        last = today + timedelta(days=self.config.partitions_ahead_days)
        for table in TABLES:
            wanted = table.covering(today, last)
            self.report.created += await ensure_partitions(self.conn, table, wanted)

    async def write(self, level: Level, lo: datetime, hi: datetime) -> int:
        """Roll up source rows in [lo, hi) into `level` (partitions first)."""
        table = level.table
        wanted = table.covering(day_of(lo), day_of(hi - timedelta(microseconds=1)))
        if not self.known.get(table.name, set()).issuperset(wanted):
            self.report.created += await ensure_partitions(self.conn, table, wanted)
            self.known.setdefault(table.name, set()).update(wanted)
        return _count(await self.conn.execute(level.sql, lo, hi))

    async def oldest(self, table: PartitionedTable) -> datetime | None:
        have = await partitions(self.conn, table)
        return midnight(min(have)) if have else None

    async def progress(self, level: Level, done: datetime | None, closed: datetime) -> datetime:
        """Roll up every closed bucket from `done` on; returns the new frontier."""
        closed = level.floor(closed)
        floor = level.ceil(retention_cutoff(self.config, level.table.name, self.now))
        saved = done
        if done is None:  # the first run: from the oldest source data there can be
            done = await self.oldest(level.source) or closed
        start = max(level.floor(done), floor)
        written = 0
        for lo, hi in chunks(start, closed, level.chunk):
            async with self.conn.transaction():
                written += await self.write(level, lo, hi)
                await self.conn.execute(SAVE_DONE[level.name], hi)
            saved = hi
        self.report.rolled_up[level.name] = written
        new = max(start, closed)
        if saved != new:
            await self.conn.execute(SAVE_DONE[level.name], new)
        return new

    async def recompute(self, level: Level, spans: list[Span], done: datetime | None) -> None:
        """Roll `spans` (source time) up again where `level` was already done."""
        if done is None:
            return
        floor = level.ceil(retention_cutoff(self.config, level.table.name, self.now))
        written = 0
        for first, last in spans:
            lo, hi = max(level.floor(first), floor), min(level.ceil(last), done)
            for a, b in chunks(lo, hi, level.chunk):
                written += await self.write(level, a, b)
        self.report.recomputed[level.name] = written

    async def late_spans(self, done: datetime | None, seen: str | None) -> list[Span]:
        if done is None:
            return []
        if seen is None:
            rows = await self.conn.fetch(ALL_SPANS, done)
        else:
            rows = await self.conn.fetch(LATE_SPANS, done, seen)
        return merge_spans((r["lo"], r["hi"] + timedelta(microseconds=1)) for r in rows)

    async def rollups(self) -> None:
        snapshot = await self.conn.fetchval(SNAPSHOT)
        state = await self.conn.fetchrow(STATE)
        dones = {lv.name: state[f"done_{lv.name}"] for lv in LEVELS}
        spans = await self.late_spans(dones["5m"], state["seen"])
        closed = LEVELS[0].floor(self.now - timedelta(seconds=self.config.rollup_delay_s))
        for level in LEVELS:
            await self.recompute(level, spans, dones[level.name])
            dones[level.name] = await self.progress(level, dones[level.name], closed)
            # The next level may roll up what this one has finished.
            closed = dones[level.name]
        await self.conn.execute(SAVE_RUN, snapshot, self.now)
        self.report.done = dones

    async def retention(self) -> None:
        for table in TABLES:
            cutoff = retention_cutoff(self.config, table.name, self.now)
            self.report.dropped += await drop_partitions(self.conn, table, cutoff)
        kept = self.now - timedelta(days=self.config.retention_reports_days)
        self.report.reports_deleted = _count(await self.conn.execute(DELETE_REPORTS, kept))


async def maintain(
    pool: asyncpg.Pool, now: datetime, config: TimeseriesConfig | Config
) -> MaintenanceReport:
    """Create partitions ahead, roll up closed buckets (and late samples), drop what is
    past retention, forget old stored-report records. One process at a time; another
    returns at once with `ran=False`."""
    if isinstance(config, Config):
        config = config.timeseries
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    started = time.monotonic()
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _MAINTENANCE_LOCK):
            return MaintenanceReport(ran=False)
        try:
            run = _Run(conn, now, config)
            await run.partitions_ahead()
            await run.rollups()
            await run.retention()
        finally:
            try:
                await conn.execute("SELECT pg_advisory_unlock($1)", _MAINTENANCE_LOCK)
            except BaseException:
                # A pooled connection must never keep the lock: close it instead.
                conn.terminate()
                raise
    run.report.seconds = time.monotonic() - started
    log.info("time-series maintenance", extra=run.report.as_log())
    return run.report


async def maintenance_loop(pool: asyncpg.Pool, config: TimeseriesConfig) -> None:
    """Run `maintain()` every `maintenance_interval` seconds until cancelled; a failed
    run is logged and tried again at the next interval."""
    while True:
        try:
            await maintain(pool, datetime.now(UTC), config)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("time-series maintenance failed", extra={"error": repr(exc)})
        await asyncio.sleep(config.maintenance_interval)
