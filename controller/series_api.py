"""The time-series API: which series exist, and their samples over a time range.

    GET /api/v1/series?target=&metric=&label.<name>=&skip=&limit=
    GET /api/v1/series/{id}
    GET /api/v1/series/{id}/samples?from=&to=&step=

Series are listed by id, filtered by target id, metric (exact, or a prefix with a
trailing `*`) and labels (`label.ifName=gpon 0/1/1`); the count before paging is in the
`total` header.

Samples: `from` and `to` are ISO 8601 instants (UTC when no offset is given) or epoch
milliseconds; by default the last 24 hours. Without `step` the resolution follows the
range: raw samples up to 2 days, 5-minute rollups up to 2 weeks, hourly up to a year,
daily beyond, each only while its retention still covers `from` (else the next coarser
one). With `step` (`raw`, `5m`, `1h`, `1d`, or a duration such as `90s`, `10m`, `6h`,
`2d`, plain numbers being seconds) points are buckets of that width, computed from the
coarsest rollup whose width divides it (or from raw samples). Buckets are aligned on
the Unix epoch (days are UTC days); a bucket starting before `from` is included whole.

The answer names the resolution it used and the step, and has at most 10,000 points:
raw samples beyond that are cut (`truncated: true`); an automatic step grows to fit; an
explicit step that would give more is refused. Buckets that maintenance has not rolled
up yet (the last minutes) are computed from raw samples on the fly, so a range always
reaches its end.

    {"series": {...}, "from": "...", "to": "...", "resolution": "5m", "step": 300,
     "columns": ["ts", "min", "max", "avg", "count"], "points": [[ts_ms, ...], ...],
     "truncated": false}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web

from controller import documents as docs
from controller.errors import ApiError, bad_request, not_found, page_of
from controller.nbi import CONFIG, POOL
from schemas.config import TimeseriesConfig

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_POINTS = 10_000
DEFAULT_RANGE = timedelta(days=1)
DEFAULT_PAGE = 1000
MAX_PAGE = 10_000

_EPOCH_SQL = "'1970-01-01 00:00:00+00'::timestamptz"
_MS = "floor(extract(epoch FROM {}) * 1000)::bigint"

SERIES_COLUMNS = """s.id, s.target_id, t.name AS target_name, s.metric, s.labels, s.created
FROM series s JOIN targets t ON t.id = s.target_id"""
SERIES_BY_ID = f"SELECT {SERIES_COLUMNS} WHERE s.id = $1"
RAW = f"""
SELECT {_MS.format("ts")} AS t, value FROM samples
WHERE series_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts LIMIT $4
"""
# Raw samples in buckets of $5 (an interval).
RAW_BUCKETS = f"""
SELECT {_MS.format(f"date_bin($5, ts, {_EPOCH_SQL})")} AS t, min(value) AS min,
       max(value) AS max, avg(value) AS avg, count(*) AS count
FROM samples WHERE series_id = $1 AND ts >= $2 AND ts < $3
GROUP BY 1 ORDER BY 1 LIMIT $4
"""


def _rollup_buckets(level: str, width: str) -> str:
    """Buckets of $5 from one rollup level: its rows up to where maintenance got, then raw
    samples in buckets of its width for the rest."""
    done = f"(SELECT coalesce(done_{level}, '-infinity') FROM timeseries_state)"
    return f"""
WITH b AS (
    SELECT bucket, min, max, sum, count FROM samples_{level}
    WHERE series_id = $1 AND bucket >= $2 AND bucket < least($3, {done})
    UNION ALL
    SELECT date_bin('{width}', ts, {_EPOCH_SQL}), min(value), max(value), sum(value), count(*)
    FROM samples WHERE series_id = $1 AND ts >= greatest($2, {done}) AND ts < $3
    GROUP BY 1
)
SELECT {_MS.format(f"date_bin($5, bucket, {_EPOCH_SQL})")} AS t, min(min) AS min,
       max(max) AS max, sum(sum) / sum(count)::float8 AS avg, sum(count)::bigint AS count
FROM b GROUP BY 1 ORDER BY 1 LIMIT $4
"""


@dataclass(frozen=True, slots=True)
class Resolution:
    name: str
    width: timedelta  # zero for raw samples
    max_range: timedelta | None  # chosen automatically for ranges up to this
    retention: str  # the TimeseriesConfig field that says how long it is kept
    sql: str  # buckets of $5

    def kept_since(self, config: TimeseriesConfig, now: datetime) -> datetime:
        return now - timedelta(days=getattr(config, self.retention))


RESOLUTIONS = (
    Resolution("raw", timedelta(0), timedelta(days=2), "retention_raw_days", RAW_BUCKETS),
    Resolution(
        "5m",
        timedelta(minutes=5),
        timedelta(days=14),
        "retention_5m_days",
        _rollup_buckets("5m", "5 minutes"),
    ),
    Resolution(
        "1h",
        timedelta(hours=1),
        timedelta(days=366),
        "retention_1h_days",
        _rollup_buckets("1h", "1 hour"),
    ),
    Resolution("1d", timedelta(days=1), None, "retention_1d_days", _rollup_buckets("1d", "1 day")),
)
BY_NAME = {r.name: r for r in RESOLUTIONS}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d{1,9})([smhdw]?)")


# --- request parsing ------------------------------------------------------------------------


def _bad(name: str, message: str) -> ApiError:
    return bad_request("BAD_PARAMETER", message, parameter=name)


def parse_instant(text: str, name: str) -> datetime:
    """An ISO 8601 instant (UTC without an offset) or epoch milliseconds."""
    text = text.strip()
    if re.fullmatch(r"-?\d{1,15}", text):
        return EPOCH + timedelta(milliseconds=int(text))
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _bad(
            name, f"{name} must be an ISO 8601 instant or epoch milliseconds, not {text!r}"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_step(text: str) -> timedelta | None:
    """A step: None for raw samples, else a positive whole number of seconds."""
    text = text.strip()
    if text == "raw":
        return None
    if text in BY_NAME:
        return BY_NAME[text].width
    match = _DURATION.fullmatch(text)
    if match is None or int(match[1]) == 0:
        raise _bad(
            "step", f"step must be raw, 5m, 1h, 1d or a duration such as 90s or 6h, not {text!r}"
        )
    return timedelta(seconds=int(match[1]) * _UNITS[match[2] or "s"])


def floor(ts: datetime, width: timedelta) -> datetime:
    return EPOCH + (ts - EPOCH) // width * width


def points(start: datetime, end: datetime, step: timedelta) -> int:
    """How many buckets of `step` cover [floor(start), end)."""
    return -(-(end - floor(start, step)) // step)


def choose(
    start: datetime, end: datetime, step: str | None, config: TimeseriesConfig, now: datetime
) -> tuple[Resolution, timedelta | None]:
    """The resolution and bucket width (None: raw samples) for a range, by its length or
    by the `step` asked for."""
    if step is not None:
        width = parse_step(step)
        if width is None:
            return RESOLUTIONS[0], None
        # The coarsest data whose buckets fit whole in a step.
        level = RESOLUTIONS[0]
        for r in RESOLUTIONS[1:]:
            if width % r.width == timedelta(0):
                level = r
        n = points(start, end, width)
        if n > MAX_POINTS:
            raise bad_request(
                "TOO_MANY_POINTS",
                f"step {step} gives {n} points from {docs.iso(start)} to {docs.iso(end)};"
                f" at most {MAX_POINTS}",
                points=n,
                maxPoints=MAX_POINTS,
            )
        return level, width
    level = RESOLUTIONS[-1]
    for r in RESOLUTIONS:
        if (r.max_range is None or end - start <= r.max_range) and start >= r.kept_since(
            config, now
        ):
            level = r
            break
    if level.width == timedelta(0):
        return level, None
    # Wider buckets when the range would give too many.
    k = -(-points(start, end, level.width) // MAX_POINTS)
    while points(start, end, level.width * k) > MAX_POINTS:
        k += 1
    return level, level.width * k


def _series_id(request: web.Request) -> int:
    text = request.match_info["id"]
    if not re.fullmatch(r"\d{1,18}", text):
        raise not_found("SERIES_NOT_FOUND", f"no series {text!r}", series=text)
    return int(text)


# --- handlers ---------------------------------------------------------------------------------


def series_document(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "target": row["target_id"],
        "targetName": row["target_name"],
        "metric": row["metric"],
        "labels": row["labels"],
        "created": docs.iso(row["created"]),
    }


async def list_series(request: web.Request) -> web.Response:
    """GET /api/v1/series?target=&metric=&label.<name>=&skip=&limit="""
    filters: list[str] = []
    args: list[Any] = []
    if target := request.query.get("target"):
        if not target.isdigit():
            raise _bad("target", "target is a target id")
        args.append(int(target))
        filters.append(f"s.target_id = ${len(args)}")
    if metric := request.query.get("metric"):
        if metric.endswith("*"):
            args.append(metric[:-1])
            filters.append(f"left(s.metric, length(${len(args)})) = ${len(args)}")
        else:
            args.append(metric)
            filters.append(f"s.metric = ${len(args)}")
    labels = {k[6:]: v for k, v in request.query.items() if k.startswith("label.") and k[6:]}
    if labels:
        args.append(labels)
        filters.append(f"s.labels @> ${len(args)}::jsonb")
    where = " WHERE " + " AND ".join(filters) if filters else ""
    skip, limit = page_of(request, DEFAULT_PAGE, MAX_PAGE)
    pool = request.app[POOL]
    total = await pool.fetchval(
        f"SELECT count(*) FROM series s JOIN targets t ON t.id = s.target_id{where}", *args
    )
    rows = await pool.fetch(
        f"SELECT {SERIES_COLUMNS}{where} ORDER BY s.id OFFSET {skip} LIMIT {limit}", *args
    )
    return web.json_response([series_document(r) for r in rows], headers={"total": str(total)})


async def get_series(request: web.Request) -> web.Response:
    """GET /api/v1/series/{id}"""
    series_id = _series_id(request)
    row = await request.app[POOL].fetchrow(SERIES_BY_ID, series_id)
    if row is None:
        raise not_found("SERIES_NOT_FOUND", f"no series {series_id}", series=series_id)
    return web.json_response(series_document(row))


async def get_samples(request: web.Request) -> web.Response:
    """GET /api/v1/series/{id}/samples?from=&to=&step="""
    series_id = _series_id(request)
    now = datetime.now(UTC)
    q = request.query
    end = parse_instant(q["to"], "to") if q.get("to") else now
    start = parse_instant(q["from"], "from") if q.get("from") else end - DEFAULT_RANGE
    if start >= end:
        raise bad_request(
            "BAD_RANGE", "from must be before to", **{"from": docs.iso(start), "to": docs.iso(end)}
        )
    config = request.app[CONFIG].timeseries if CONFIG in request.app else TimeseriesConfig()
    level, width = choose(start, end, q.get("step") or None, config, now)
    pool = request.app[POOL]
    row = await pool.fetchrow(SERIES_BY_ID, series_id)
    if row is None:
        raise not_found("SERIES_NOT_FOUND", f"no series {series_id}", series=series_id)
    if width is None:
        rows = await pool.fetch(RAW, series_id, start, end, MAX_POINTS + 1)
        columns = ["ts", "value"]
        found = [[r["t"], r["value"]] for r in rows]
    else:
        lower = floor(start, width)
        rows = await pool.fetch(level.sql, series_id, lower, end, MAX_POINTS + 1, width)
        columns = ["ts", "min", "max", "avg", "count"]
        found = [[r["t"], r["min"], r["max"], r["avg"], r["count"]] for r in rows]
    body = {
        "series": series_document(row),
        "from": docs.iso(start),
        "to": docs.iso(end),
        "resolution": level.name,
        "step": None if width is None else int(width.total_seconds()),
        "columns": columns,
        "points": found[:MAX_POINTS],
        "truncated": len(found) > MAX_POINTS,
    }
    return web.json_response(body)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/series", list_series)
    r.add_get("/api/v1/series/{id}", get_series)
    r.add_get("/api/v1/series/{id}/samples", get_samples)
