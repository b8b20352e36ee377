"""Query SQL against a real PostgreSQL: the same devices as the Python evaluator selects."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acs.query import (
    DeviceView,
    ParamView,
    QueryError,
    SortKey,
    evaluate,
    parse_device_query,
    parse_sort,
    sort_devices,
)
from acs.query_sql import (
    FAULT_FIELDS,
    TASK_FIELDS,
    Field,
    collection_order_by,
    collection_where,
    device_order_by,
    device_where,
)
from acs.values import canonical, format_datetime, to_json

MAC = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.MACAddress"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


async def insert(pool: asyncpg.Pool, devices: Iterable[DeviceView]) -> None:
    """Store devices as `acs.store` does: canonical values, `value_num = cwmp_number(...)`."""
    devices = list(devices)
    await pool.executemany(
        "INSERT INTO devices (id, oui, product_class, serial_number, manufacturer, tags,"
        " registered, last_inform, last_boot, last_bootstrap)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        [
            (
                d.id,
                d.oui,
                d.product_class,
                d.serial_number,
                d.manufacturer,
                list(d.tags),
                d.registered or at(2017, 1, 1),
                d.last_inform,
                d.last_boot,
                d.last_bootstrap,
            )
            for d in devices
        ],
    )
    await pool.executemany(
        "INSERT INTO device_params (device_id, path, object, writable, value, value_type,"
        " value_num, value_ts) VALUES ($1, $2, $3, $4, $5, $6, cwmp_number($5, $6), $7)",
        [
            (d.id, path, p.object, p.writable, p.value, p.type, p.value_ts)
            for d in devices
            for path, p in d.params.items()
        ],
    )


async def select(pool: asyncpg.Pool, query: object) -> set[str]:
    args: list[object] = []
    where = device_where(parse_device_query(query), args)
    return {r["id"] for r in await pool.fetch(f"SELECT d.id FROM devices d WHERE {where}", *args)}


async def ordered(pool: asyncpg.Pool, keys: list[SortKey]) -> list[str]:
    args: list[object] = []
    order = device_order_by(keys, args)
    return [
        r["id"] for r in await pool.fetch(f"SELECT d.id FROM devices d ORDER BY {order}", *args)
    ]


# ---------------------------------------------------------------------------------------
# The examples of the GenieACS API reference.

DOC_DEVICES = [
    DeviceView(
        "202BC1-BM632w-000000",
        oui="202BC1",
        product_class="BM632w",
        serial_number="000000",
        tags=("test",),
        last_inform=at(2017, 12, 1, 8),
        params={MAC: ParamView("20:2B:C1:E0:06:65", "xsd:string")},
    ),
    DeviceView(
        "202BC1-BM632w-000001",
        oui="202BC1",
        product_class="BM632w",
        serial_number="000001",
        params={MAC: ParamView("20:2B:C1:E0:06:66", "xsd:string")},
    ),
    DeviceView(
        "00236a-96318REF-SR360NA0A4%2D0003196",
        oui="00236a",
        product_class="96318REF",
        serial_number="SR360NA0A4-0003196",
        last_inform=at(2017, 12, 11, 13, 16, 24),
    ),
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"_id": "202BC1-BM632w-000000"}, {"202BC1-BM632w-000000"}),
        ({"_id": "00236a-96318REF-SR360NA0A4%2D0003196"}, {"00236a-96318REF-SR360NA0A4%2D0003196"}),
        ({MAC: "20:2B:C1:E0:06:65"}, {"202BC1-BM632w-000000"}),
        # "no inform in the last 7 days": a device that never informed has no _lastInform
        ({"_lastInform": {"$lt": "2017-12-11 13:16:23 +0000"}}, {"202BC1-BM632w-000000"}),
        ({"_tags": "test"}, {"202BC1-BM632w-000000"}),  # the preset precondition example
        ({MAC: "20:2B:C1:*"}, {"202BC1-BM632w-000000", "202BC1-BM632w-000001"}),
        (
            {"_deviceId._SerialNumber": "SR360NA0A4-0003196"},
            {"00236a-96318REF-SR360NA0A4%2D0003196"},
        ),
    ],
)
async def test_documentation_queries_select_the_documented_devices(
    pool: asyncpg.Pool, query: object, expected: set[str]
) -> None:
    await insert(pool, DOC_DEVICES)
    assert await select(pool, query) == expected
    assert {d.id for d in DOC_DEVICES if evaluate(parse_device_query(query), d)} == expected


async def test_values_reach_sql_only_as_bind_parameters(pool: asyncpg.Pool) -> None:
    hostile = "x'); DROP TABLE devices; --"
    args: list[object] = []
    where = device_where(parse_device_query({hostile: hostile, "_tags": {"$in": [hostile]}}), args)
    assert hostile not in where
    assert hostile in args
    assert await pool.fetch(f"SELECT d.id FROM devices d WHERE {where}", *args) == []
    assert await pool.fetchval("SELECT count(*) FROM devices") == 0


async def test_equality_and_ranges_use_the_value_indexes(pool: asyncpg.Pool) -> None:
    await insert(
        pool,
        (
            DeviceView(
                f"dev{i}",
                params={
                    MAC: ParamView(f"20:2B:C1:00:{i // 256:02X}:{i % 256:02X}", "xsd:string"),
                    "Uptime": ParamView(str(i), "xsd:unsignedInt"),
                },
            )
            for i in range(3000)
        ),
    )
    await pool.execute("ANALYZE")
    for query, index in [
        ({MAC: "20:2B:C1:00:01:02"}, "device_params_value"),
        ({"Uptime": {"$gt": 2990}}, "device_params_num"),
    ]:
        args: list[object] = []
        where = device_where(parse_device_query(query), args)
        plan = "\n".join(
            r[0]
            for r in await pool.fetch(f"EXPLAIN SELECT d.id FROM devices d WHERE {where}", *args)
        )
        assert index in plan, plan
    assert await select(pool, {MAC: "20:2B:C1:00:01:02"}) == {"dev258"}


async def test_sorting_matches_the_evaluator_on_mixed_types(pool: asyncpg.Pool) -> None:
    devices = [
        DeviceView("date", params={"X": ParamView("2020-01-01T00:00:00.000Z", "xsd:dateTime")}),
        DeviceView("bool", tags=("b", "z"), params={"X": ParamView("false", "xsd:boolean")}),
        DeviceView("str", tags=("c",), params={"X": ParamView("a", "xsd:string")}),
        DeviceView("num", params={"X": ParamView("10", "xsd:int")}),
        DeviceView("missing", tags=("a",)),
        DeviceView("num2", params={"X": ParamView("9.5", "xsd:decimal")}),
        DeviceView("bool2", params={"X": ParamView("true", "xsd:boolean")}),
        DeviceView("a-bool", params={"X": ParamView("true", "xsd:boolean")}),
    ]
    await insert(pool, devices)
    for sort in ({"X": 1}, {"X": -1}, {"_tags": 1}, {"_tags": -1, "X": 1}, {"_id": -1}):
        keys = parse_sort(sort)
        assert await ordered(pool, keys) == [d.id for d in sort_devices(devices, keys)], sort


# ---------------------------------------------------------------------------------------
# Property: for random devices and random queries, SQL and the evaluator agree.

PATHS = ["A", "B.C", "X_1.Y"]
DATES = [
    at(2017, 12, 11),
    at(2017, 12, 11, 13, 16, 23),
    at(2017, 12, 11, 13, 16, 23, 500000),
    at(2020, 1, 1),
    datetime(2017, 12, 11, 13, 16, 23, 123, tzinfo=UTC),
]
STRINGS = ["", "1", "1.0", " 5", "10", "9", "abc", "abcd", "ABC", "a*c", "a.c", "é", "É", "B"]
STRINGS += ["2017-12-11", "x\ny", "/a/", "true", "0x0", "1e3", "a\n", "straße", "sealed:v1:gA"]


def _param() -> st.SearchStrategy[ParamView]:
    lexical = st.one_of(
        st.tuples(st.sampled_from(STRINGS), st.just("xsd:string")),
        st.tuples(
            st.sampled_from(["0", "1", "5", "9", "10", "-3", "1000"]),
            st.sampled_from(["xsd:int", "xsd:unsignedInt", "xsd:long", "xsd:unsignedLong"]),
        ),
        st.tuples(st.sampled_from(["1.0", "1.5", "0.5", "9.99", "-0"]), st.just("xsd:decimal")),
        st.tuples(st.sampled_from(["true", "false"]), st.just("xsd:boolean")),
        st.tuples(st.sampled_from([format_datetime(d) for d in DATES]), st.just("xsd:dateTime")),
        st.tuples(
            st.sampled_from(["abc", "QUJD", "1"]), st.sampled_from(["xsd:base64", "xsd:hexBinary"])
        ),
    )
    stored = lexical.map(lambda t: canonical(t[1], t[0]))
    value = st.one_of(stored, st.just((None, None)))
    return st.builds(
        lambda v, ts, w, o: ParamView(v[0], v[1], ts, w, o),
        value,
        st.none() | st.sampled_from(DATES),
        st.none() | st.booleans(),
        st.none() | st.booleans(),
    )


@st.composite
def _devices(draw: st.DrawFn) -> list[DeviceView]:
    ids = draw(
        st.lists(
            st.sampled_from(["d1", "d2", "d3", "D4", "d5", "é6", "d7"]),
            unique=True,
            min_size=2,
            max_size=6,
        )
    )
    names = st.sampled_from(["", "Acme", "ACME", "202BC1", "a*c"])
    return [
        DeviceView(
            id=i,
            tags=draw(
                st.lists(
                    st.sampled_from(["t1", "t2", "x y", "1", "B", "a"]), unique=True, max_size=3
                )
            ),
            registered=draw(st.sampled_from(DATES)),
            last_inform=draw(st.none() | st.sampled_from(DATES)),
            last_boot=draw(st.none() | st.sampled_from(DATES)),
            manufacturer=draw(names),
            oui=draw(names),
            params=draw(st.dictionaries(st.sampled_from(PATHS), _param(), min_size=1, max_size=3)),
        )
        for i in ids
    ]


ATTRIBUTES = ("_timestamp", "_writable", "_object", "_type")
KEYS = [*PATHS, "A._value", *(f"{p}.{a}" for p in PATHS for a in ATTRIBUTES)]
KEYS += ["_id", "_tags", "_lastInform", "_registered", "_lastBoot", "_deviceId._OUI"]
KEYS += ["_deviceId._Manufacturer"]
SCALARS: list[object] = [
    *STRINGS,
    *["2017-12-11 13:16:23 +0000", "Mon, 11 Dec 2017 13:16:23 GMT", "2020-01-01"],
    *["2017-12-11T13:16:23.5Z", "xsd:int", "xsd:dateTime", "t1"],
    *["a*", "*c", "a*c", "*", "A*", "*.*", "/^a/", "/B/i", "/1$/", "/^$/m"],
    *[0, 1, 5, 10, -3, 1000, 1.5, 0.5, 9.99, True, False, None],
]
PATTERNS = ["^a", "b", "1", "^$", r"\d", "c$", "é", "^[a-c]+$", "^x.y$", "SS", "^t", "^\\w+$"]
OPERATORS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$regex"]
OPERATORS += ["$size", "$not"]


def _seen(devices: list[DeviceView]) -> dict[str, list[object]]:
    """For each query key, values the devices hold, spelled as an operator would query them."""
    seen: dict[str, list[object]] = defaultdict(list)
    for d in devices:
        seen["_id"].append(d.id)
        seen["_tags"].extend(d.tags)
        seen["_deviceId._Manufacturer"].append(d.manufacturer)
        seen["_deviceId._OUI"].append(d.oui[:1] + "*")
        seen["_registered"].append(format_datetime(d.registered or at(2017, 1, 1)))
        if d.last_inform:
            seen["_lastInform"].append(d.last_inform.strftime("%a, %d %b %Y %H:%M:%S GMT"))
        for path, p in d.params.items():
            if p.value is not None and p.type is not None:
                seen[path] += [p.value, to_json(p.type, p.value), p.value[:1] + "*"]
                seen[f"{path}._type"].append(p.type)
            if p.value_ts is not None:
                seen[f"{path}._timestamp"].append(format_datetime(p.value_ts))
            seen[f"{path}._writable"].append(p.writable)
            seen[f"{path}._object"].append(p.object)
    seen["A._value"] = seen["A"]
    return dict(seen)


class QueryMaker:
    """Random queries about a device set: keys and values are often ones the devices hold,
    so that conditions split the set instead of matching nothing."""

    def __init__(self, rng: random.Random, seen: dict[str, list[object]]) -> None:
        self.rng = rng
        self.seen = seen

    def scalar(self, key: str) -> object:
        if self.seen.get(key) and self.rng.random() < 0.6:
            return self.rng.choice(self.seen[key])
        return self.rng.choice(SCALARS)

    def operand(self, key: str, op: str) -> object:
        rng = self.rng
        if op in ("$in", "$nin"):
            return [self.scalar(key) for _ in range(rng.randint(0, 3))]
        if op == "$exists":
            return rng.random() < 0.5
        if op == "$regex":
            return rng.choice(PATTERNS)
        if op == "$size":
            return rng.randint(0, 2)
        if op == "$not":
            return self.operators(key, allow_not=False)
        return self.scalar(key)

    def operators(self, key: str, *, allow_not: bool = True) -> dict[str, object]:
        names = OPERATORS if allow_not else OPERATORS[:-1]
        ops = self.rng.sample(names, self.rng.choice((1, 1, 2)))
        result = {op: self.operand(key, op) for op in ops}
        if "$regex" in result and self.rng.random() < 0.5:
            result["$options"] = self.rng.choice(["i", "m", "s", "x", "is"])
        return result

    def clause(self) -> dict[str, object]:
        key = self.rng.choice(KEYS)
        if self.rng.random() < 0.4:
            return {key: self.scalar(key)}
        return {key: self.operators(key)}

    def query(self, depth: int = 0) -> dict[str, object]:
        rng = self.rng
        roll = rng.random()
        if depth >= 3 or roll < 0.45:
            return self.clause()
        if roll < 0.6:
            return {**self.clause(), **self.clause()}
        logical = rng.choice(["$and", "$or", "$nor"])
        return {logical: [self.query(depth + 1) for _ in range(rng.randint(1, 3))]}


SORTS = st.dictionaries(st.sampled_from(KEYS), st.sampled_from([1, -1]), max_size=2)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(devices=_devices(), sort=SORTS, rng=st.randoms(use_true_random=False))
async def test_sql_selects_exactly_what_the_evaluator_selects(
    pool: asyncpg.Pool, devices: list[DeviceView], sort: Mapping[str, int], rng: random.Random
) -> None:
    await pool.execute("TRUNCATE devices CASCADE")
    await insert(pool, devices)
    maker = QueryMaker(rng, _seen(devices))
    for _ in range(12):
        query = maker.query()
        try:
            expr = parse_device_query(query)
        except QueryError:
            continue
        args: list[object] = []
        where = device_where(expr, args)
        rows = await pool.fetch(f"SELECT d.id FROM devices d WHERE {where}", *args)
        expected = {d.id for d in devices if evaluate(expr, d)}
        assert {r["id"] for r in rows} == expected, (query, where, args)
    keys = parse_sort(sort)
    assert await ordered(pool, keys) == [d.id for d in sort_devices(devices, keys)], sort


# ---------------------------------------------------------------------------------------
# Tasks and faults: MongoDB semantics with GenieACS's coercions.

TASK_ID = 0x5403908EF28EA3A2  # fits a bigint; printed as 24 hex digits


async def _tasks(pool: asyncpg.Pool) -> None:
    await insert(pool, [DeviceView("dev1"), DeviceView("dev2")])
    await pool.executemany(
        "INSERT INTO tasks (id, device_id, name, body, args, created, retries)"
        " VALUES ($1, $2, $3, $4::jsonb, $4::jsonb, $5, $6)",
        [
            (
                TASK_ID,
                "dev1",
                "getParameterValues",
                {"name": "getParameterValues", "parameterNames": ["A.B", "C"]},
                at(2018, 6, 14, 3, 1, 30),
                0,
            ),
            (2, "dev1", "reboot", {"name": "reboot"}, at(2018, 6, 15), 2),
            (
                3,
                "dev2",
                "download",
                {"name": "download", "file": "fw.bin", "fileType": "1 Firmware Upgrade Image"},
                at(2018, 6, 16),
                1,
            ),
        ],
    )
    await pool.executemany(
        "INSERT INTO faults (id, device_id, channel, code, message, detail, retries, timestamp)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)",
        [
            (
                "dev1:default",
                "dev1",
                "default",
                "cwmp.9005",
                "Invalid parameter name",
                {"faultCode": "9005"},
                0,
                at(2018, 6, 14),
            ),
            (
                "dev2:task_3",
                "dev2",
                "task_3",
                "cwmp.9002",
                "Internal error",
                None,
                3,
                at(2018, 6, 17),
            ),
        ],
    )


async def _collection(
    pool: asyncpg.Pool, table: str, fields: Mapping[str, Field], query: object, sort: object = None
) -> list[object]:
    args: list[object] = []
    where = collection_where(query, fields, args)
    order = collection_order_by(sort, fields, args) or "1"
    alias = table[0]
    rows = await pool.fetch(
        f"SELECT {alias}.id FROM {table} {alias} WHERE {where} ORDER BY {order}", *args
    )
    return [r["id"] for r in rows]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"device": "dev1"}, [TASK_ID, 2]),  # the documentation's "pending tasks of a device"
        ({"_id": f"{TASK_ID:024x}"}, [TASK_ID]),
        ({"_id": {"$in": [f"{TASK_ID:024x}", "ffffffffffffffffffffffff"]}}, [TASK_ID]),
        ({"_id": {"$lt": "ffffffffffffffffffffffff"}}, [2, 3, TASK_ID]),
        ({"retries": "2"}, [2]),  # Number("2")
        ({"retries": {"$gte": " 1 "}}, [2, 3]),
        ({"timestamp": {"$gt": "2018-06-14T03:01:30.212Z"}}, [2, 3]),
        ({"timestamp": {"$lte": 1528945290000}}, [TASK_ID]),  # epoch milliseconds
        ({"name": {"$regex": "^get"}}, [TASK_ID]),
        ({"parameterNames": "C"}, [TASK_ID]),  # array membership inside the body
        ({"parameterNames": {"$size": 2}}, [TASK_ID]),
        ({"file": {"$exists": True}}, [3]),
        ({"file": {"$ne": "fw.bin"}}, [2, TASK_ID]),
        ({"$or": [{"device": "dev2"}, {"retries": 0}]}, [3, TASK_ID]),
    ],
)
async def test_task_queries(pool: asyncpg.Pool, query: object, expected: list[int]) -> None:
    await _tasks(pool)
    assert await _collection(pool, "tasks", TASK_FIELDS, query, {"_id": 1}) == sorted(expected)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"_id": "dev1:default"}, ["dev1:default"]),
        ({"channel": {"$regex": "^task_"}}, ["dev2:task_3"]),
        ({"code": {"$in": ["cwmp.9005", "cwmp.9003"]}}, ["dev1:default"]),
        ({"detail.faultCode": "9005"}, ["dev1:default"]),
        ({"detail.faultCode": {"$exists": False}}, ["dev2:task_3"]),
        ({"retries": {"$gt": "1"}}, ["dev2:task_3"]),
        ({"timestamp": {"$lt": "2018-06-15"}}, ["dev1:default"]),
        ({"message": {"$not": {"$regex": "internal", "$options": "i"}}}, ["dev1:default"]),
    ],
)
async def test_fault_queries(pool: asyncpg.Pool, query: object, expected: list[str]) -> None:
    await _tasks(pool)
    assert await _collection(pool, "faults", FAULT_FIELDS, query, {"_id": 1}) == expected


async def test_collection_sorting(pool: asyncpg.Pool) -> None:
    await _tasks(pool)
    assert await _collection(pool, "tasks", TASK_FIELDS, {}, {"retries": -1}) == [2, 3, TASK_ID]
    assert await _collection(pool, "faults", FAULT_FIELDS, {}, {"timestamp": -1}) == [
        "dev2:task_3",
        "dev1:default",
    ]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"retries": {"$regex": "1"}}, "retries: Operator not supported: $regex"),
        ({"timestamp": {"$not": {"$gt": 1}}}, "timestamp: Operator not supported: $not"),
        ({"retries": "many"}, "retries: 'many' is not a number"),
        ({"timestamp": "last week"}, "timestamp: 'last week' is not a date"),
        ({"timestamp": True}, "timestamp: True is not a date"),
        (
            {"_id": "5403908ef28ea3a25c138adz"},
            "_id: '5403908ef28ea3a25c138adz' is not a 24-hex-digit id",
        ),
        ({"_id": 5}, "_id: 5 is not a 24-hex-digit id"),
        ({"status": "x"}, "unknown field 'status'"),
        ({"$where": "1"}, "$where: unknown top-level operator"),
    ],
)
def test_bad_collection_queries_are_refused(query: object, message: str) -> None:
    fields = FAULT_FIELDS if "status" in query else TASK_FIELDS  # type: ignore[operator]
    with pytest.raises(QueryError) as caught:
        collection_where(query, fields, [])
    assert message in str(caught.value)
