"""The time-series API (controller/series_api.py) over real HTTP on 127.0.0.1, with
samples stored by the ingest and rolled up by maintenance in a real PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from controller import app as api_app
from controller import nbi, series_api
from controller import timeseries as ts
from controller.auth import CHECKER, TokenChecker, auth_middleware, create_token
from controller.errors import ApiError, error_middleware
from controller.ingest import store_report
from controller.series_api import choose, parse_instant, parse_step
from schemas.config import Config, TimeseriesConfig
from schemas.frames import Sample
from schemas.sealing import Sealer
from tests.conftest import SECRET_KEY, serving

NOW = datetime(2031, 3, 30, 12, 0, tzinfo=UTC)
CONFIG = TimeseriesConfig()


# --- pure parts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span", "resolution", "step"),
    [
        (timedelta(hours=1), "raw", None),
        (timedelta(days=2), "raw", None),
        (timedelta(days=5), "5m", 300),
        (timedelta(days=14), "5m", 300),
        (timedelta(days=60), "1h", 3600),
        (timedelta(days=366), "1h", 3600),
        (timedelta(days=1000), "1d", 86400),
        (timedelta(days=40_000), "1d", 5 * 86400),  # widened to 10,000 points at most
    ],
)
def test_the_resolution_follows_the_range(
    span: timedelta, resolution: str, step: int | None
) -> None:
    level, width = choose(NOW - span, NOW, None, CONFIG, NOW)
    assert level.name == resolution
    assert (None if width is None else width.total_seconds()) == step


def test_a_range_older_than_a_retention_is_served_by_coarser_data() -> None:
    start = NOW - timedelta(days=40)  # raw samples are kept 30 days
    assert choose(start, start + timedelta(hours=1), None, CONFIG, NOW)[0].name == "5m"
    start = NOW - timedelta(days=100)  # 5-minute rollups 90
    assert choose(start, start + timedelta(hours=1), None, CONFIG, NOW)[0].name == "1h"


@pytest.mark.parametrize(
    ("step", "resolution", "seconds"),
    [
        ("raw", "raw", None),
        ("90s", "raw", 90),
        ("7m", "raw", 420),  # not a whole number of 5-minute buckets
        ("5m", "5m", 300),
        ("600", "5m", 600),
        ("2h", "1h", 7200),
        ("1d", "1d", 86400),
        ("1w", "1d", 604800),
    ],
)
def test_an_explicit_step_picks_the_coarsest_data_that_divides_it(
    step: str, resolution: str, seconds: int | None
) -> None:
    level, width = choose(NOW - timedelta(days=7), NOW, step, CONFIG, NOW)
    assert level.name == resolution
    assert (None if width is None else width.total_seconds()) == seconds


@pytest.mark.parametrize("text", ["0", "0s", "abc", "5 m", "-5m", "1.5h", "5y"])
def test_a_bad_step_is_refused(text: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_step(text)
    assert (caught.value.status, caught.value.code) == (400, "BAD_PARAMETER")


def test_instants_are_iso_8601_or_epoch_milliseconds() -> None:
    assert parse_instant("1900000000000", "from") == datetime(2030, 3, 17, 17, 46, 40, tzinfo=UTC)
    assert parse_instant("2031-03-30T12:00:00Z", "from") == NOW
    assert parse_instant("2031-03-30T14:00:00+02:00", "from") == NOW
    assert parse_instant("2031-03-30T12:00", "from") == NOW  # no offset: UTC
    with pytest.raises(ApiError):
        parse_instant("yesterday", "from")


# --- over HTTP ----------------------------------------------------------------------------------


@dataclass
class Api:
    base: str
    http: aiohttp.ClientSession

    async def get(self, path: str, **params: Any) -> tuple[int, dict[str, str], Any]:
        async with self.http.get(self.base + path, params=params) as r:
            return r.status, dict(r.headers), await r.json()


@pytest.fixture
async def api(pool: asyncpg.Pool) -> AsyncIterator[Api]:
    """The series routes in an app with the API's middlewares, and a viewer's token."""
    app = web.Application(middlewares=[error_middleware, auth_middleware])
    app[nbi.POOL] = pool
    app[nbi.CONFIG] = Config()
    app[CHECKER] = TokenChecker(pool)
    series_api.add_routes(app)
    token = await create_token(pool, "noc viewer", "viewer")
    headers = {"Authorization": f"Bearer {token}"}
    async with serving(app) as base, aiohttp.ClientSession(headers=headers) as http:
        yield Api(base, http)


async def make_targets(pool: asyncpg.Pool, n: int) -> list[int]:
    rows = await pool.fetch(
        "INSERT INTO targets (name, kind, address, port)"
        " SELECT 'olt-' || g, 'snmp', '192.0.2.' || g, 161 FROM generate_series(1, $1) g"
        " RETURNING id",
        n,
    )
    return [r["id"] for r in rows]


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def same_points(a: list[list[Any]], b: list[list[Any]]) -> bool:
    """Equal buckets: the same instants, extremes and counts, averages up to rounding."""
    return len(a) == len(b) and all(
        (p[0], p[1], p[2], p[4]) == (q[0], q[1], q[2], q[4]) and p[3] == pytest.approx(q[3])
        for p, q in zip(a, b, strict=True)
    )


async def series_id(pool: asyncpg.Pool, metric: str = "rxPower") -> int:
    return await pool.fetchval("SELECT id FROM series WHERE metric = $1", metric)


async def test_the_controller_app_mounts_the_series_routes(pool: asyncpg.Pool) -> None:
    app = api_app.create_app(pool, "postgresql://unused", Config(), Sealer(SECRET_KEY))
    paths = {r.canonical for r in app.router.resources()}
    assert {"/api/v1/series", "/api/v1/series/{id}", "/api/v1/series/{id}/samples"} <= paths


async def test_series_are_listed_filtered_and_paged(pool: asyncpg.Pool, api: Api) -> None:
    a, b = await make_targets(pool, 2)
    t = int(time.time() * 1000) - 60_000
    samples = [
        Sample(target, metric, {"ifName": f"gpon 0/1/{p}"}, t, 1.0)
        for target in (a, b)
        for metric in ("ifHCInOctets", "ifHCOutOctets", "rxPower")
        for p in range(2)
    ]
    assert await store_report(pool, "agent-1", "boot-a", 1, samples, ())

    status, headers, body = await api.get("/api/v1/series")
    assert status == 200
    assert headers["total"] == "12"
    assert [s["id"] for s in body] == sorted(s["id"] for s in body)
    first = body[0]
    assert set(first) == {"id", "target", "targetName", "metric", "labels", "created"}

    _, headers, body = await api.get("/api/v1/series", target=str(b), metric="ifHC*")
    assert headers["total"] == "4"
    assert {(s["target"], s["targetName"]) for s in body} == {(b, "olt-2")}
    assert {s["metric"] for s in body} == {"ifHCInOctets", "ifHCOutOctets"}

    _, headers, body = await api.get(
        "/api/v1/series", metric="rxPower", **{"label.ifName": "gpon 0/1/1"}
    )
    assert headers["total"] == "2"
    assert {s["labels"]["ifName"] for s in body} == {"gpon 0/1/1"}

    _, headers, page = await api.get("/api/v1/series", skip="10", limit="5")
    assert headers["total"] == "12"
    assert len(page) == 2

    status, _, error = await api.get("/api/v1/series", target="olt-1")
    assert status == 400
    assert error["error"]["code"] == "BAD_PARAMETER"
    assert error["error"]["details"] == {"parameter": "target"}


async def test_unknown_series_and_missing_tokens_get_the_error_shape(
    pool: asyncpg.Pool, api: Api
) -> None:
    for path in ("/api/v1/series/999", "/api/v1/series/999/samples", "/api/v1/series/x"):
        status, _, body = await api.get(path)
        assert status == 404, path
        assert body["error"]["code"] == "SERIES_NOT_FOUND"
        assert set(body["error"]) == {"code", "message", "details"}
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.get(api.base + "/api/v1/series") as r,
    ):
        assert r.status == 401
        assert (await r.json())["error"]["code"] == "UNAUTHORIZED"


async def test_recent_samples_come_raw_and_as_stored(pool: asyncpg.Pool, api: Api) -> None:
    (target,) = await make_targets(pool, 1)
    now = datetime.now(UTC).replace(microsecond=0)
    stamps = [now - timedelta(minutes=m) for m in range(60, 0, -1)]
    samples = [Sample(target, "rxPower", {}, ms(t), -20.0 - i / 10) for i, t in enumerate(stamps)]
    assert await store_report(pool, "agent-1", "boot-a", 1, samples, ())
    sid = await series_id(pool)

    status, _, body = await api.get(
        f"/api/v1/series/{sid}/samples",
        **{"from": str(ms(now - timedelta(hours=2))), "to": now.isoformat()},
    )
    assert status == 200
    assert (body["resolution"], body["step"], body["truncated"]) == ("raw", None, False)
    assert body["columns"] == ["ts", "value"]
    assert body["points"] == [[s.ts_ms, s.value] for s in samples]
    assert body["series"]["id"] == sid
    assert body["to"] == now.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    _, _, default = await api.get(f"/api/v1/series/{sid}/samples")  # the last 24 hours
    assert default["resolution"] == "raw"
    assert len(default["points"]) == 60


async def test_buckets_not_yet_rolled_up_are_computed_from_raw_samples_alike(
    pool: asyncpg.Pool, api: Api
) -> None:
    (target,) = await make_targets(pool, 1)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    samples = [
        Sample(target, "rxPower", {}, ms(end - timedelta(seconds=s)), float(s % 97))
        for s in range(30, 3 * 86400, 45)
    ]
    for seq in range(0, len(samples), 1000):
        assert await store_report(pool, "agent-1", "boot-a", seq + 1, samples[seq : seq + 1000], ())
    sid = await series_id(pool)
    params = {"from": (end - timedelta(days=5)).isoformat(), "to": end.isoformat()}

    _, _, before = await api.get(f"/api/v1/series/{sid}/samples", **params)
    assert (before["resolution"], before["step"]) == ("5m", 300)
    assert before["columns"] == ["ts", "min", "max", "avg", "count"]
    assert sum(p[4] for p in before["points"]) == len(samples)
    first = [s.value for s in samples if ms(end) - s.ts_ms <= 300_000 and s.ts_ms < ms(end)]
    last_bucket = before["points"][-1]
    assert last_bucket[0] == ms(end) - 300_000
    assert last_bucket[1:] == [min(first), max(first), pytest.approx(sum(first) / len(first)), 7]

    report = await ts.maintain(pool, datetime.now(UTC), TimeseriesConfig())
    assert report.rolled_up["5m"] > 0
    _, _, after = await api.get(f"/api/v1/series/{sid}/samples", **params)
    assert same_points(after["points"], before["points"])

    _, _, hourly = await api.get(f"/api/v1/series/{sid}/samples", step="1h", **params)
    assert (hourly["resolution"], hourly["step"]) == ("1h", 3600)
    assert sum(p[4] for p in hourly["points"]) == len(samples)
    _, _, odd = await api.get(f"/api/v1/series/{sid}/samples", step="7m", **params)
    assert (odd["resolution"], odd["step"]) == ("raw", 420)
    assert sum(p[4] for p in odd["points"]) == len(samples)


async def test_long_ranges_are_served_from_hourly_and_daily_rollups(
    pool: asyncpg.Pool, api: Api
) -> None:
    (target,) = await make_targets(pool, 1)
    now = datetime.now(UTC)
    today = Sample(target, "rxPower", {}, ms(now) - 1000, 1.0)
    assert await store_report(pool, "agent-1", "boot-a", 1, [today], ())
    sid = await series_id(pool)
    hour = series_api.floor(now - timedelta(days=60), timedelta(hours=2))
    day = ts.LEVELS[2].floor(now - timedelta(days=500))
    async with pool.acquire() as conn:
        await ts.ensure_partitions(conn, ts.SAMPLES_1H, [hour.date()])
        await ts.ensure_partitions(conn, ts.SAMPLES_1D, [day.date()])
    await pool.execute(
        "INSERT INTO samples_1h VALUES ($1, $2, -21, -19, -120, 6), ($1, $3, -22, -18, -80, 4)",
        sid,
        hour,
        hour + timedelta(hours=1),
    )
    await pool.execute("INSERT INTO samples_1d VALUES ($1, $2, -25, -15, -2000, 100)", sid, day)
    await pool.execute(
        "UPDATE timeseries_state SET done_5m = $1, done_1h = $1, done_1d = $2",
        ts.LEVELS[1].floor(now),
        ts.LEVELS[2].floor(now),
    )

    status, _, body = await api.get(
        f"/api/v1/series/{sid}/samples",
        **{"from": str(ms(hour - timedelta(days=10))), "to": str(ms(hour + timedelta(days=10)))},
    )
    assert status == 200
    assert (body["resolution"], body["step"]) == ("1h", 3600)
    assert body["points"] == [
        [ms(hour), -21, -19, -20, 6],
        [ms(hour) + 3_600_000, -22, -18, -20, 4],
    ]

    _, _, two_hours = await api.get(
        f"/api/v1/series/{sid}/samples",
        step="2h",
        **{"from": hour.isoformat(), "to": (hour + timedelta(hours=4)).isoformat()},
    )
    assert (two_hours["resolution"], two_hours["step"]) == ("1h", 7200)
    assert two_hours["points"] == [[ms(hour), -22, -18, -20, 10]]

    _, _, years = await api.get(
        f"/api/v1/series/{sid}/samples",
        **{"from": (now - timedelta(days=730)).isoformat(), "to": now.isoformat()},
    )
    assert (years["resolution"], years["step"]) == ("1d", 86400)
    assert [ms(day), -25, -15, -20, 100] in years["points"]
    assert years["points"][-1][0] == ms(ts.LEVELS[2].floor(now))  # today, from raw samples


async def test_raw_samples_beyond_the_point_limit_are_cut(pool: asyncpg.Pool, api: Api) -> None:
    (target,) = await make_targets(pool, 1)
    end = int(time.time() * 1000) - 1000
    samples = [Sample(target, "rxPower", {}, end - i * 1000, float(i)) for i in range(10_001)]
    assert await store_report(pool, "agent-1", "boot-a", 1, samples, ())
    sid = await series_id(pool)
    _, _, body = await api.get(
        f"/api/v1/series/{sid}/samples", step="raw", **{"from": str(end - 20_000_000)}
    )
    assert body["truncated"] is True
    assert len(body["points"]) == 10_000
    assert body["points"][0][0] == end - 10_000_000


@pytest.mark.parametrize(
    ("params", "code", "details"),
    [
        ({"from": "yesterday"}, "BAD_PARAMETER", {"parameter": "from"}),
        ({"to": "2031-02-30T00:00:00Z"}, "BAD_PARAMETER", {"parameter": "to"}),
        ({"step": "fortnight"}, "BAD_PARAMETER", {"parameter": "step"}),
        (
            {"from": "2031-03-30T12:00:00Z", "to": "2031-03-30T11:00:00Z"},
            "BAD_RANGE",
            {"from": "2031-03-30T12:00:00.000Z", "to": "2031-03-30T11:00:00.000Z"},
        ),
        (
            {"from": "2031-03-29T00:00:00Z", "to": "2031-03-30T00:00:00Z", "step": "1s"},
            "TOO_MANY_POINTS",
            {"points": 86400, "maxPoints": 10_000},
        ),
    ],
)
async def test_bad_sample_queries_are_refused_in_the_error_shape(
    pool: asyncpg.Pool, api: Api, params: dict[str, str], code: str, details: dict[str, Any]
) -> None:
    (target,) = await make_targets(pool, 1)
    sample = Sample(target, "rxPower", {}, int(time.time() * 1000), 1.0)
    assert await store_report(pool, "agent-1", "boot-a", 1, [sample], ())
    status, _, body = await api.get(f"/api/v1/series/{await series_id(pool)}/samples", **params)
    assert status == 400
    assert body["error"]["code"] == code
    assert body["error"]["details"] == details
    assert body["error"]["message"]
