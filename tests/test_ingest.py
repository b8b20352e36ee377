"""Ingest of agent reports (controller/ingest.py) against a real PostgreSQL: a report is
stored once, all or nothing, and a sample exists once however often it is sent."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import asyncpg
import pytest

from controller import ingest
from controller.ingest import Ingest, event_json, store_report
from schemas.config import TimeseriesConfig
from schemas.frames import Event, Sample

T = TypeVar("T")
HOUR_MS = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


async def make_targets(pool: asyncpg.Pool, n: int = 1) -> list[int]:
    rows = await pool.fetch(
        "INSERT INTO targets (name, kind, address, port)"
        " SELECT 'olt-' || g, 'snmp', '192.0.2.' || g, 161 FROM generate_series(1, $1) g"
        " RETURNING id",
        n,
    )
    return [r["id"] for r in rows]


def poll(target: int, ts_ms: int, ports: int = 4, base: float = 0.0) -> list[Sample]:
    """One poll of an OLT's interface counters: two metrics per port."""
    return [
        Sample(target, metric, {"ifName": f"gpon 0/1/{p}"}, ts_ms, base + p)
        for p in range(ports)
        for metric in ("ifHCInOctets", "ifHCOutOctets")
    ]


async def stored_samples(pool: asyncpg.Pool) -> dict[tuple[str, str, datetime], float]:
    rows = await pool.fetch(
        "SELECT s.metric, s.labels ->> 'ifName' AS port, x.ts, x.value"
        " FROM samples x JOIN series s ON s.id = x.series_id"
    )
    return {(r["metric"], r["port"], r["ts"]): r["value"] for r in rows}


async def count(pool: asyncpg.Pool, table: str) -> int:
    return await pool.fetchval(f"SELECT count(*) FROM {table}")


async def wait_until_blocked(pool: asyncpg.Pool, task: asyncio.Task[T]) -> None:
    """Until some session of this database waits for a lock (and `task` still runs)."""
    async with asyncio.timeout(10):
        while not await pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock')"
        ):
            assert not task.done(), task
            await asyncio.sleep(0.01)


async def finish(task: Awaitable[T]) -> T:
    async with asyncio.timeout(10):
        return await task


async def test_a_report_is_stored_once_and_a_resend_changes_nothing(pool: asyncpg.Pool) -> None:
    (target,) = await make_targets(pool)
    samples = poll(target, now_ms() - HOUR_MS)
    events = [Event(target, "unreachable", now_ms() - HOUR_MS, {"after_s": 3})]

    assert await store_report(pool, "agent-1", "boot-a", 1, samples, events) is True
    before = await stored_samples(pool)
    assert await store_report(pool, "agent-1", "boot-a", 1, samples, events) is False

    assert await stored_samples(pool) == before
    assert len(before) == len(samples)
    assert await count(pool, "events") == 1
    assert await count(pool, "agent_reports") == 1
    assert await count(pool, "series") == 8


async def test_the_same_seq_of_another_boot_or_agent_is_another_report(
    pool: asyncpg.Pool,
) -> None:
    (target,) = await make_targets(pool)
    t = now_ms() - HOUR_MS
    assert await store_report(pool, "agent-1", "boot-a", 1, poll(target, t), ())
    assert await store_report(pool, "agent-1", "boot-b", 1, poll(target, t + 60_000), ())
    assert await store_report(pool, "agent-2", "boot-a", 1, poll(target, t + 120_000), ())
    assert await count(pool, "samples") == 24


async def test_overlapping_reports_keep_each_sample_once_with_its_first_value(
    pool: asyncpg.Pool,
) -> None:
    (target,) = await make_targets(pool)
    t = now_ms() - HOUR_MS
    first = poll(target, t) + poll(target, t + 60_000)
    # After a restart the agent resends the second poll under a new boot, with a third.
    again = poll(target, t + 60_000, base=100.0) + poll(target, t + 120_000, base=100.0)

    assert await store_report(pool, "agent-1", "boot-a", 1, first, ())
    assert await store_report(pool, "agent-1", "boot-b", 1, again, ())

    stored = await stored_samples(pool)
    assert len(stored) == 24
    second = datetime.fromtimestamp((t + 60_000) / 1000, UTC)
    third = datetime.fromtimestamp((t + 120_000) / 1000, UTC)
    assert stored[("ifHCInOctets", "gpon 0/1/2", second)] == 2.0  # the first value stays
    assert stored[("ifHCInOctets", "gpon 0/1/2", third)] == 102.0


async def test_a_sample_repeated_inside_one_report_is_stored_once(pool: asyncpg.Pool) -> None:
    (target,) = await make_targets(pool)
    t = now_ms() - HOUR_MS
    samples = [*poll(target, t), *poll(target, t, base=50.0)]
    assert await store_report(pool, "agent-1", "boot-a", 1, samples, ())
    stored = await stored_samples(pool)
    assert len(stored) == 8
    assert set(stored.values()) == {0.0, 1.0, 2.0, 3.0}


async def test_labels_in_another_order_are_the_same_series(pool: asyncpg.Pool) -> None:
    (target,) = await make_targets(pool)
    t = now_ms() - HOUR_MS
    a = Sample(target, "rxPower", {"pon": "0/1/1", "ont": "7"}, t, -21.5)
    b = Sample(target, "rxPower", {"ont": "7", "pon": "0/1/1"}, t + 60_000, -21.7)
    assert await store_report(pool, "agent-1", "boot-a", 1, [a], ())
    assert await store_report(pool, "agent-1", "boot-a", 2, [b], ())
    assert await count(pool, "series") == 1
    assert await count(pool, "samples") == 2


async def test_the_same_report_on_two_connections_at_once_is_stored_once(
    pool: asyncpg.Pool,
) -> None:
    (target,) = await make_targets(pool)
    samples = poll(target, now_ms() - HOUR_MS)
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        assert await store_report(conn, "agent-1", "boot-a", 7, samples, ())
        # The resend arrives at another controller before the first commit.
        other = asyncio.create_task(store_report(pool, "agent-1", "boot-a", 7, samples, ()))
        await wait_until_blocked(pool, other)
        await tx.commit()
    assert await finish(other) is False
    assert await count(pool, "samples") == len(samples)
    assert await count(pool, "agent_reports") == 1


async def test_a_report_whose_first_store_rolls_back_is_stored_by_the_other(
    pool: asyncpg.Pool,
) -> None:
    (target,) = await make_targets(pool)
    samples = poll(target, now_ms() - HOUR_MS)
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        assert await store_report(conn, "agent-1", "boot-a", 7, samples, ())
        other = asyncio.create_task(store_report(pool, "agent-1", "boot-a", 7, samples, ()))
        await wait_until_blocked(pool, other)
        await tx.rollback()
    assert await finish(other) is True
    assert await count(pool, "samples") == len(samples)


async def test_overlapping_reports_on_two_connections_at_once_store_each_sample_once(
    pool: asyncpg.Pool,
) -> None:
    (target,) = await make_targets(pool)
    t = now_ms() - HOUR_MS
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        assert await store_report(conn, "agent-1", "boot-a", 1, poll(target, t), ())
        # Another poller of the same target during a handover: same instants.
        overlap = poll(target, t, base=9.0) + poll(target, t + 60_000)
        other = asyncio.create_task(store_report(pool, "agent-2", "boot-x", 1, overlap, ()))
        await wait_until_blocked(pool, other)
        await tx.commit()
    assert await finish(other) is True
    stored = await stored_samples(pool)
    assert len(stored) == 16
    assert stored[("ifHCOutOctets", "gpon 0/1/3", datetime.fromtimestamp(t / 1000, UTC))] == 3.0


async def test_many_reports_from_many_agents_leave_exactly_the_samples_sent(
    pool: asyncpg.Pool,
) -> None:
    """Agents resend some reports and overlap others; the count is what was sent."""
    targets = await make_targets(pool, 6)
    rng = random.Random(4)
    start = now_ms() - 5 * HOUR_MS
    sent: set[tuple[int, str, str, int]] = set()

    async def agent(name: str, mine: list[int]) -> None:
        reports: list[tuple[str, int, list[Sample]]] = []
        boot, seq = "boot-1", 0
        for minute in range(40):
            if rng.random() < 0.1:  # a restart: sequence numbers start over
                boot, seq = f"boot-{minute}", 0
            seq += 1
            t = start + minute * 60_000
            samples = [s for target in mine for s in poll(target, t, ports=3)]
            if reports and rng.random() < 0.3:  # the previous poll once more
                samples += reports[-1][2][: rng.randint(1, 12)]
            reports.append((boot, seq, samples))
            sent.update((s.target, s.metric, s.labels["ifName"], s.ts_ms) for s in samples)
        order = reports + rng.sample(reports, 10)  # ten resends, anywhere
        for boot_, seq_, samples in order:
            await store_report(pool, name, boot_, seq_, samples, ())

    await asyncio.gather(*(agent(f"agent-{i}", targets[i * 2 : i * 2 + 2]) for i in range(3)))

    assert await count(pool, "samples") == len(sent)
    assert await count(pool, "series") == 6 * 3 * 2


async def test_what_cannot_be_stored_is_left_out_and_the_rest_is_stored(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    (target,) = await make_targets(pool)
    t = now_ms() - HOUR_MS
    day = 86_400_000
    samples = [
        Sample(target, "ok", {}, t, 1.0),
        Sample(target + 1000, "no such target", {}, t, 1.0),
        Sample(target, "nan", {}, t, float("nan")),
        Sample(target, "inf", {}, t, float("inf")),
        Sample(target, "too old", {}, now_ms() - 31 * day, 1.0),
        Sample(target, "clock ahead", {}, now_ms() + 2 * day, 1.0),
        Sample(target, "nul\x00metric", {}, t, 1.0),
        Sample(target, "long", {f"k{i}": "v" * 200 for i in range(20)}, t, 1.0),
    ]
    events = [
        Event(target + 1000, "unreachable", t, {}),
        Event(target, "unreachable", now_ms() - 91 * day, {}),
    ]
    assert await store_report(pool, "agent-1", "boot-a", 1, samples, events)

    assert await pool.fetchval("SELECT array_agg(metric) FROM series") == ["ok"]
    assert await count(pool, "samples") == 1
    assert await count(pool, "events") == 0
    [record] = [r for r in caplog.records if r.getMessage() == "report stored in part"]
    assert record.__dict__["unknown_series"] == 1
    assert record.__dict__["not_finite"] == 2
    assert record.__dict__["out_of_window"] == 2
    assert record.__dict__["bad_series"] == 1
    assert record.__dict__["series_too_long"] == 1
    assert record.__dict__["events_out_of_window"] == 1


async def test_events_are_stored_with_a_detail_postgresql_accepts(pool: asyncpg.Pool) -> None:
    (target,) = await make_targets(pool)
    t = now_ms() - HOUR_MS
    detail = {"trap": "linkDown", "raw": b"\x01\xff", "ratio": float("nan"), "why": "a\x00b"}
    assert await store_report(pool, "agent-1", "boot-a", 1, (), [Event(target, "trap", t, detail)])
    row = await pool.fetchrow("SELECT target_id, ts, kind, detail, agent_id FROM events")
    assert row["detail"] == {"trap": "linkDown", "raw": "01ff", "ratio": None, "why": "ab"}
    assert (row["target_id"], row["kind"], row["agent_id"]) == (target, "trap", "agent-1")
    assert row["ts"] == datetime.fromtimestamp(t / 1000, UTC)


def test_event_details_become_json_text() -> None:
    assert event_json({"a": [1, 2.5, "x"]}) == '{"a":[1,2.5,"x"]}'
    assert event_json({1: {b"k": (b"\x00",)}}) == '{"1":{"6b":["00"]}}'
    assert event_json({"v": float("-inf")}) == '{"v":null}'


async def test_a_report_that_fails_leaves_nothing_and_can_be_sent_again(
    pool: asyncpg.Pool,
) -> None:
    (target,) = await make_targets(pool)
    t = now_ms() - HOUR_MS
    await pool.execute(
        """
        CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;
        CREATE TRIGGER refuse BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse();
        """
    )
    report = ("agent-1", "boot-a", 1, poll(target, t), [Event(target, "trap", t, {})])
    with pytest.raises(asyncpg.PostgresError, match="disk full"):
        await store_report(pool, *report)
    assert await count(pool, "samples") == 0
    assert await count(pool, "agent_reports") == 0

    await pool.execute("DROP TRIGGER refuse ON events")
    assert await store_report(pool, *report) is True
    assert await count(pool, "samples") == 8
    assert await count(pool, "events") == 1


async def test_a_day_without_partition_gets_one_before_its_samples(pool: asyncpg.Pool) -> None:
    (target,) = await make_targets(pool)
    days_ago = datetime.now(UTC) - timedelta(days=12)
    name = f"samples_p{days_ago:%Y%m%d}"
    assert await pool.fetchval("SELECT to_regclass($1)", name) is None
    t = int(days_ago.timestamp() * 1000)
    assert await store_report(pool, "agent-1", "boot-a", 1, poll(target, t), ())
    assert await pool.fetchval("SELECT to_regclass($1)::text", name) == name
    assert await pool.fetchval(f"SELECT count(*) FROM {name}") == 8


async def test_a_partition_dropped_under_the_cache_is_created_again(pool: asyncpg.Pool) -> None:
    (target,) = await make_targets(pool)
    t = now_ms() - HOUR_MS
    day = datetime.fromtimestamp(t / 1000, UTC)
    keeper = Ingest()
    assert await keeper.store_report(pool, "agent-1", "boot-a", 1, poll(target, t), ())
    name = f"samples_p{day:%Y%m%d}"
    await pool.execute(f"ALTER TABLE samples DETACH PARTITION {name}; DROP TABLE {name}")

    assert await keeper.store_report(pool, "agent-1", "boot-a", 2, poll(target, t + 1000), ())
    assert await count(pool, "samples") == 8


async def test_inside_the_callers_transaction_a_rollback_takes_the_report_back(
    pool: asyncpg.Pool,
) -> None:
    (target,) = await make_targets(pool)
    t = now_ms() - HOUR_MS
    keeper = Ingest()
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        assert await keeper.store_report(conn, "agent-1", "boot-a", 1, poll(target, t), ())
        await tx.rollback()
    assert await count(pool, "series") == 0
    # Nothing of the rolled-back transaction was remembered: the series come back.
    assert await keeper.store_report(pool, "agent-1", "boot-a", 1, poll(target, t), ())
    assert len(await stored_samples(pool)) == 8


async def test_series_ids_are_remembered_per_pool(pool: asyncpg.Pool) -> None:
    (target,) = await make_targets(pool)
    t = now_ms() - HOUR_MS
    assert await store_report(pool, "agent-1", "boot-a", 1, poll(target, t), ())
    remembered = ingest.ingest_for(pool)
    assert len(remembered.series) == 8
    assert ingest.ingest_for(pool) is remembered
    configured = TimeseriesConfig(retention_raw_days=2)
    assert ingest.ingest_for(pool, configured).config is configured
    assert await store_report(pool, "agent-1", "boot-a", 2, poll(target, t + 1000), ())
    assert await count(pool, "samples") == 16


async def test_the_series_cache_starts_over_when_full(pool: asyncpg.Pool) -> None:
    (target,) = await make_targets(pool)
    t = now_ms() - HOUR_MS
    small = Ingest(TimeseriesConfig(series_cache=9))
    assert await small.store_report(pool, "agent-1", "boot-a", 1, poll(target, t), ())
    assert len(small.series) == 8
    second = poll(target, t + 1000, ports=5)
    assert await small.store_report(pool, "agent-1", "boot-a", 2, second, ())
    assert len(small.series) == 2  # cleared, then the two new ones
    assert await count(pool, "series") == 10
    assert await count(pool, "samples") == 8 + 10
