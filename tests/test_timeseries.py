"""Time-series maintenance (controller/timeseries.py) on a real PostgreSQL: partitions
ahead of need, retention by dropping partitions, rollups checked against Python."""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller import timeseries as ts
from controller.ingest import Ingest, store_report
from controller.timeseries import (
    SAMPLES,
    SAMPLES_1D,
    SAMPLES_1H,
    SAMPLES_5M,
    ensure_partitions,
    maintain,
    merge_spans,
)
from schemas.config import Config, TimeseriesConfig
from schemas.frames import Sample

NOW = datetime(2031, 3, 30, 12, 0, tzinfo=UTC)
WIDTHS = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1), "1d": timedelta(days=1)}


# --- pure parts -----------------------------------------------------------------------------


def test_partitions_are_named_by_their_first_day_and_cover_whole_units() -> None:
    assert SAMPLES.partition(date(2031, 3, 30)) == "samples_p20310330"
    assert SAMPLES.following(date(2031, 3, 31)) == date(2031, 4, 1)
    assert SAMPLES_1H.floor(date(2031, 12, 17)) == date(2031, 12, 1)
    assert SAMPLES_1H.following(date(2031, 12, 1)) == date(2032, 1, 1)
    assert SAMPLES_1H.partition(date(2031, 12, 1)) == "samples_1h_p203112"
    assert SAMPLES_1D.floor(date(2031, 12, 17)) == date(2031, 1, 1)
    assert SAMPLES_1D.following(date(2031, 1, 1)) == date(2032, 1, 1)
    assert SAMPLES_1H.covering(date(2031, 1, 31), date(2031, 3, 1)) == [
        date(2031, 1, 1),
        date(2031, 2, 1),
        date(2031, 3, 1),
    ]


@pytest.mark.parametrize(
    ("table", "name", "start"),
    [
        (SAMPLES, "samples_p20310330", date(2031, 3, 30)),
        (SAMPLES_5M, "samples_5m_p20310330", date(2031, 3, 30)),
        (SAMPLES_1H, "samples_1h_p203103", date(2031, 3, 1)),
        (SAMPLES_1D, "samples_1d_p2031", date(2031, 1, 1)),
        (SAMPLES, "samples_5m_p20310330", None),  # another table's partition
        (SAMPLES, "samples_p2031033", None),
        (SAMPLES, "samples_p20310231", None),  # no such day
        (SAMPLES, "samples_archive", None),  # made by hand: never touched
    ],
)
def test_only_partitions_named_by_us_are_recognised(
    table: ts.PartitionedTable, name: str, start: date | None
) -> None:
    assert table.parse(name) == start


def test_buckets_are_aligned_on_the_epoch() -> None:
    five, day = ts.LEVELS[0], ts.LEVELS[2]
    t = datetime(2031, 3, 30, 12, 7, 30, tzinfo=UTC)
    assert five.floor(t) == datetime(2031, 3, 30, 12, 5, tzinfo=UTC)
    assert five.ceil(t) == datetime(2031, 3, 30, 12, 10, tzinfo=UTC)
    assert five.ceil(five.floor(t)) == five.floor(t)
    assert day.floor(t) == datetime(2031, 3, 30, tzinfo=UTC)


def test_spans_are_merged_when_they_overlap_or_touch() -> None:
    h = [datetime(2031, 3, 30, i, tzinfo=UTC) for i in range(8)]
    assert merge_spans([(h[4], h[5]), (h[0], h[2]), (h[1], h[3]), (h[3], h[4]), (h[6], h[7])]) == [
        (h[0], h[5]),
        (h[6], h[7]),
    ]
    assert merge_spans([(h[2], h[2])]) == []


# --- partitions and retention -----------------------------------------------------------------


async def partition_names(pool: asyncpg.Pool, table: ts.PartitionedTable) -> list[str]:
    async with pool.acquire() as conn:
        return sorted((await ts.partitions(conn, table)).values())


async def test_maintenance_creates_partitions_days_ahead(pool: asyncpg.Pool) -> None:
    report = await maintain(pool, NOW, TimeseriesConfig(partitions_ahead_days=3))
    days = ["20310330", "20310331", "20310401", "20310402"]
    assert await partition_names(pool, SAMPLES) == [f"samples_p{d}" for d in days]
    assert await partition_names(pool, SAMPLES_5M) == [f"samples_5m_p{d}" for d in days]
    assert await partition_names(pool, SAMPLES_1H) == ["samples_1h_p203103", "samples_1h_p203104"]
    assert await partition_names(pool, SAMPLES_1D) == ["samples_1d_p2031"]
    assert await partition_names(pool, ts.EVENTS) == ["events_p203103", "events_p203104"]
    assert len(report.created) == 13
    again = await maintain(pool, NOW, TimeseriesConfig(partitions_ahead_days=3))
    assert again.created == []


async def test_a_new_partition_carries_the_tables_keys(pool: asyncpg.Pool) -> None:
    await maintain(pool, NOW, Config())
    await pool.execute("INSERT INTO samples VALUES (1, $1, 1.0)", NOW)
    with pytest.raises(asyncpg.UniqueViolationError):
        await pool.execute("INSERT INTO samples VALUES (1, $1, 2.0)", NOW)
    with pytest.raises(asyncpg.CheckViolationError, match="no partition"):
        await pool.execute("INSERT INTO samples VALUES (1, $1, 2.0)", NOW + timedelta(days=9))


async def test_partitions_past_retention_are_dropped_whole(pool: asyncpg.Pool) -> None:
    config = TimeseriesConfig(retention_raw_days=30, retention_1h_days=40)
    async with pool.acquire() as conn:
        old = [date(2031, 2, 26), date(2031, 2, 27), date(2031, 2, 28), date(2031, 3, 1)]
        await ensure_partitions(conn, SAMPLES, old)
        await ensure_partitions(conn, SAMPLES_1H, [date(2031, 1, 1), date(2031, 2, 1)])
    await pool.execute("INSERT INTO samples VALUES (1, '2031-02-26 10:00+00', 1.0)")

    report = await maintain(pool, NOW, config)

    # Kept at least 30 days: 2031-02-28 ends after NOW - 30 days (2031-02-28 12:00).
    assert sorted(report.dropped) == [
        "samples_1h_p203101",
        "samples_p20310226",
        "samples_p20310227",
    ]
    assert (await partition_names(pool, SAMPLES))[:2] == ["samples_p20310228", "samples_p20310301"]
    assert await pool.fetchval("SELECT count(*) FROM samples") == 0


async def test_records_of_old_reports_are_forgotten(pool: asyncpg.Pool) -> None:
    await pool.executemany(
        "INSERT INTO agent_reports (agent_id, boot, seq, stored) VALUES ('a', 'b', $1, $2)",
        [(1, NOW - timedelta(days=8)), (2, NOW - timedelta(days=6)), (3, NOW)],
    )
    report = await maintain(pool, NOW, TimeseriesConfig())
    assert report.reports_deleted == 1
    await maintain(pool, NOW, TimeseriesConfig(retention_reports_days=1))
    assert await pool.fetchval("SELECT array_agg(seq) FROM agent_reports") == [3]


async def test_one_maintenance_runs_at_a_time(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", ts._MAINTENANCE_LOCK)
        try:
            report = await maintain(pool, NOW, TimeseriesConfig())
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", ts._MAINTENANCE_LOCK)
    assert report.ran is False
    assert await partition_names(pool, SAMPLES) == []
    assert (await maintain(pool, NOW, TimeseriesConfig())).ran is True


# --- rollups ------------------------------------------------------------------------------------

# Samples from 22:00 two days ago to 01:00 yesterday (UTC): three hours across midnight.
START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
    days=2, hours=-22
)
SPAN_MS = 3 * 3_600_000


def at(offset_ms: int) -> int:
    return int(START.timestamp() * 1000) + offset_ms


def later() -> datetime:
    """A maintenance clock after every bucket of the samples has closed."""
    return datetime.now(UTC) + timedelta(days=1)


async def make_target(pool: asyncpg.Pool) -> int:
    return await pool.fetchval(
        "INSERT INTO targets (name, kind, address, port) VALUES ('olt', 'snmp', '192.0.2.1', 161)"
        " RETURNING id"
    )


async def empty(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "TRUNCATE samples, samples_5m, samples_1h, samples_1d, agent_reports;"
        " UPDATE timeseries_state SET done_5m = NULL, done_1h = NULL, done_1d = NULL,"
        " seen = NULL, last_run = NULL"
    )


def expected(samples: list[Sample]) -> dict[str, dict[tuple[str, datetime], tuple]]:
    """Rollups computed in Python from the samples as stored (the first of duplicates)."""
    first: dict[tuple[str, int], float] = {}
    for s in samples:
        first.setdefault((s.metric, s.ts_ms), s.value)
    out: dict[str, dict[tuple[str, datetime], tuple]] = {}
    for name, width in WIDTHS.items():
        groups: dict[tuple[str, datetime], list[float]] = defaultdict(list)
        for (metric, ms), value in first.items():
            t = datetime.fromtimestamp(ms / 1000, UTC)
            bucket = ts.EPOCH + (t - ts.EPOCH) // width * width
            groups[(metric, bucket)].append(value)
        out[name] = {k: (min(v), max(v), math.fsum(v), len(v)) for k, v in groups.items()}
    return out


async def rollups(pool: asyncpg.Pool) -> dict[str, dict[tuple[str, datetime], tuple]]:
    out = {}
    for name in WIDTHS:
        rows = await pool.fetch(
            f"SELECT s.metric, r.bucket, r.min, r.max, r.sum, r.count FROM samples_{name} r"
            " JOIN series s ON s.id = r.series_id"
        )
        out[name] = {
            (r["metric"], r["bucket"]): (r["min"], r["max"], r["sum"], r["count"]) for r in rows
        }
    return out


def assert_rollups_match(got: dict[str, Any], want: dict[str, Any]) -> None:
    for name in WIDTHS:
        assert got[name].keys() == want[name].keys(), name
        for key, (lo, hi, total, n) in want[name].items():
            g = got[name][key]
            assert (g[0], g[1], g[3]) == (lo, hi, n), (name, key)
            assert math.isclose(g[2], total, rel_tol=1e-12, abs_tol=1e-3), (name, key)
            assert math.isclose(g[2] / g[3], total / n, rel_tol=1e-12, abs_tol=1e-3)


samples_strategy = st.lists(
    st.tuples(
        st.sampled_from(["rxPower", "txPower", "temperature"]),
        st.integers(0, SPAN_MS - 1),
        st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=150,
)


@settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=samples_strategy, size=st.integers(1, 60), resend=st.booleans())
async def test_rollups_equal_python_aggregates_of_the_stored_samples(
    pool: asyncpg.Pool, rows: list[tuple[str, int, float]], size: int, resend: bool
) -> None:
    await empty(pool)
    target = await pool.fetchval("SELECT id FROM targets") or await make_target(pool)
    samples = [Sample(target, m, {"ont": "0/1/1:7"}, at(ms), v) for m, ms, v in rows]
    keeper = Ingest()
    reports = [samples[i : i + size] for i in range(0, len(samples), size)]
    for seq, report in enumerate(reports, 1):
        await keeper.store_report(pool, "agent-1", "boot-a", seq, report, ())
    if resend:  # the same instants once more, other values: the first stay
        again = [Sample(s.target, s.metric, s.labels, s.ts_ms, s.value + 1) for s in reports[0]]
        await keeper.store_report(pool, "agent-1", "boot-b", 1, again, ())

    report = await maintain(pool, later(), TimeseriesConfig())

    assert_rollups_match(await rollups(pool), expected(samples))
    assert report.rolled_up["5m"] == len(expected(samples)["5m"])


async def test_late_samples_are_rolled_up_again_and_reruns_change_nothing(
    pool: asyncpg.Pool,
) -> None:
    target = await make_target(pool)
    on_time = [Sample(target, "rxPower", {}, at(m * 60_000), -20.0 - m) for m in range(0, 180, 7)]
    assert await store_report(pool, "agent-1", "boot-a", 1, on_time, ())
    first = await maintain(pool, later(), TimeseriesConfig())
    assert first.rolled_up["5m"] > 0
    assert_rollups_match(await rollups(pool), expected(on_time))

    # An agent back from an outage sends what it spooled: into buckets rolled up already.
    late = [Sample(target, "rxPower", {}, at(m * 60_000 + 1), -30.0 + m) for m in range(3, 60, 11)]
    assert await store_report(pool, "agent-1", "boot-b", 1, late, ())
    second = await maintain(pool, later(), TimeseriesConfig())
    assert second.rolled_up == {"5m": 0, "1h": 0, "1d": 0}
    assert second.recomputed["5m"] == len({(s.ts_ms - at(0)) // 300_000 for s in late})
    assert second.recomputed["1h"] == 1
    assert second.recomputed["1d"] == 1
    settled = await rollups(pool)
    assert_rollups_match(settled, expected(on_time + late))

    third = await maintain(pool, later(), TimeseriesConfig())
    assert third.recomputed == {"5m": 0, "1h": 0, "1d": 0}
    assert await rollups(pool) == settled

    # Recomputing every bucket from scratch gives the very same rows.
    await pool.execute("UPDATE timeseries_state SET seen = NULL")
    redo = await maintain(pool, later(), TimeseriesConfig())
    assert redo.recomputed["5m"] == 0  # nothing differed, so nothing was rewritten
    assert await rollups(pool) == settled


async def test_a_report_committed_during_a_run_is_rolled_up_by_the_next(
    pool: asyncpg.Pool,
) -> None:
    target = await make_target(pool)
    on_time = [Sample(target, "rxPower", {}, at(m * 60_000), 1.0) for m in range(30)]
    assert await store_report(pool, "agent-1", "boot-a", 1, on_time, ())
    await maintain(pool, later(), TimeseriesConfig())

    late = [Sample(target, "rxPower", {}, at(m * 60_000 + 500), 5.0) for m in range(30)]
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        assert await store_report(conn, "agent-1", "boot-b", 1, late, ())
        # The run neither sees the report nor records it as seen.
        during = await asyncio.wait_for(maintain(pool, later(), TimeseriesConfig()), 10)
        await tx.commit()
    assert during.recomputed["5m"] == 0
    after = await maintain(pool, later(), TimeseriesConfig())
    assert after.recomputed["5m"] == 6
    assert_rollups_match(await rollups(pool), expected(on_time + late))


async def test_a_first_run_on_an_empty_database_starts_from_its_partitions(
    pool: asyncpg.Pool,
) -> None:
    """A first run on an empty database rolls nothing up and remembers where it is."""
    report = await maintain(pool, NOW, TimeseriesConfig(rollup_delay_s=120))
    assert report.done["5m"] == datetime(2031, 3, 30, 11, 55, tzinfo=UTC)
    assert report.done["1h"] == datetime(2031, 3, 30, 11, 0, tzinfo=UTC)
    assert report.done["1d"] == datetime(2031, 3, 30, tzinfo=UTC)
    assert report.rolled_up == {"5m": 0, "1h": 0, "1d": 0}


async def test_partitions_are_attached_while_a_report_transaction_is_open(
    pool: asyncpg.Pool,
) -> None:
    """ATTACH takes SHARE UPDATE EXCLUSIVE on the parent: writers do not stop it."""
    async with pool.acquire() as writer, pool.acquire() as creator:
        await ensure_partitions(writer, SAMPLES, [date(2031, 3, 30)])
        tx = writer.transaction()
        await tx.start()
        await writer.execute("INSERT INTO samples VALUES (1, $1, 1.0)", NOW)
        created = await asyncio.wait_for(
            ensure_partitions(creator, SAMPLES, [date(2031, 3, 31)]), 5
        )
        await tx.commit()
        # Transactions from then on write into it (ingest creates partitions before
        # its report transaction begins, never inside it).
        await writer.execute("INSERT INTO samples VALUES (1, $1, 1.0)", NOW + timedelta(days=1))
    assert created == ["samples_p20310331"]
    assert await pool.fetchval("SELECT count(*) FROM samples") == 2
