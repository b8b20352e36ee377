"""The device query language: GenieACS `query.expand` semantics, MongoDB matching rules."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from acs.query import (
    FALSE,
    TRUE,
    And,
    Compare,
    DeviceAttr,
    DeviceView,
    Exists,
    In,
    Matches,
    Not,
    Or,
    ParamAttr,
    ParamView,
    QueryError,
    Size,
    SortKey,
    evaluate,
    parse_device_query,
    parse_sort,
    sort_devices,
)
from acs.query_regex import compile_regex
from acs.query_scalars import js_number, parse_date

SW = "InternetGatewayDevice.DeviceInfo.SoftwareVersion"
MAC = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.MACAddress"


def value(path: str) -> ParamAttr:
    return ParamAttr(path, "_value")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# ---------------------------------------------------------------------------------------
# Expansion: the worked examples of GenieACS's query.expand.


def test_a_parameter_key_means_its_value_and_a_numeric_string_also_its_number() -> None:
    assert parse_device_query({SW: "1.0"}) == Or(
        (Compare(value(SW), "eq", "1.0"), Compare(value(SW), "eq", Decimal("1.0")))
    )


def test_a_date_string_compared_with_a_date_field_is_a_date() -> None:
    # the string alternative cannot match a Date field, so it is dropped
    query = {"_lastInform": {"$lt": "2017-12-11 13:16:23 +0000"}}
    assert parse_device_query(query) == Compare(
        DeviceAttr("_lastInform"), "lt", at(2017, 12, 11, 13, 16, 23)
    )


def test_an_id_and_a_tag_are_plain_equalities() -> None:
    assert parse_device_query({"_id": "202BC1-BM632w-000000"}) == Compare(
        DeviceAttr("_id"), "eq", "202BC1-BM632w-000000"
    )
    assert parse_device_query({"_tags": "test"}) == Compare(DeviceAttr("_tags"), "eq", "test")


def test_a_wildcard_string_also_matches_as_an_anchored_regex() -> None:
    assert parse_device_query({"X.Y": "abc*"}) == Or(
        (Compare(value("X.Y"), "eq", "abc*"), Matches(value("X.Y"), compile_regex("^abc")))
    )


def test_a_slashed_string_also_matches_as_a_regex_with_its_flags() -> None:
    assert parse_device_query({"X": "/ab+c/gi"}) == Or(
        (Compare(value("X"), "eq", "/ab+c/gi"), Matches(value("X"), compile_regex("ab+c", "i")))
    )


def test_each_operator_ors_its_alternatives_which_equals_the_cartesian_product() -> None:
    x = value("X")
    assert parse_device_query({"X": {"$gt": "5", "$lt": "10"}}) == And(
        (
            Or((Compare(x, "gt", "5"), Compare(x, "gt", Decimal(5)))),
            Or((Compare(x, "lt", "10"), Compare(x, "lt", Decimal(10)))),
        )
    )


def test_ne_must_differ_from_every_alternative() -> None:
    x = value("X")
    assert parse_device_query({"X": {"$ne": "5"}}) == Not(
        Or((Compare(x, "eq", "5"), Compare(x, "eq", Decimal(5))))
    )


def test_ne_may_be_mixed_with_other_operators() -> None:
    # GenieACS throws "Cannot mix $ne or $not with other operators"; the meaning is plain
    x = value("X")
    assert parse_device_query({"X": {"$ne": "a", "$exists": True}}) == And(
        (Not(Compare(x, "eq", "a")), Exists(x))
    )


def test_in_flattens_the_alternatives_of_every_element() -> None:
    assert parse_device_query({"X": {"$in": ["a", "1"]}}) == In(value("X"), ("a", "1", Decimal(1)))
    assert parse_device_query({"X": {"$nin": ["a"]}}) == Not(In(value("X"), ("a",)))


def test_inside_not_values_are_literal_as_genieacs_passes_them_to_mongodb() -> None:
    assert parse_device_query({"X": {"$not": {"$gt": "5"}}}) == Not(Compare(value("X"), "gt", "5"))


def test_operators_do_not_grow_regex_or_wildcard_alternatives() -> None:
    assert parse_device_query({"X": {"$eq": "a*"}}) == Compare(value("X"), "eq", "a*")


@pytest.mark.parametrize(
    ("text", "extra"),
    [
        ("1", [Decimal(1)]),
        (" 5", [Decimal(5)]),
        ("1e3", [Decimal(1000)]),
        (".5", [Decimal("0.5")]),
        ("0x0", [Decimal(0)]),
        ("0x10", []),
        ("1abc", []),
        ("", []),
        ("Infinity", []),
        ("18446744073709551615", [Decimal(18446744073709551615)]),
        ("2017-12-11", [at(2017, 12, 11)]),
        ("2017-12-11T13:16:23.5+01:00", [at(2017, 12, 11, 12, 16, 23, 500000)]),
        ("Mon, 11 Dec 2017 13:16:23 GMT", [at(2017, 12, 11, 13, 16, 23)]),
        ("Mon Dec 11 2017 13:16:23 GMT+0100 (CET)", [at(2017, 12, 11, 12, 16, 23)]),
        ("12/11/2017", [at(2017, 12, 11)]),
        ("1983-12-31", []),  # GenieACS: only years after 1983 are dates
        ("2017-1-1", [at(2017, 1, 1)]),
        ("2017", [Decimal(2017)]),  # shorter than 8 characters: not a date
        ("20171211", [Decimal(20171211)]),
        ("2017-02-30", []),
    ],
)
def test_string_values_expand_like_javascript_coercions(text: str, extra: list[object]) -> None:
    x = value("X")
    expected = [Compare(x, "eq", text), *(Compare(x, "eq", v) for v in extra)]  # type: ignore[arg-type]
    assert parse_device_query({"X": text}) == (expected[0] if not extra else Or(tuple(expected)))


def test_non_string_values_are_single_alternatives() -> None:
    x = value("X")
    assert parse_device_query({"X": 5}) == Compare(x, "eq", Decimal(5))
    assert parse_device_query({"X": 0.1}) == Compare(x, "eq", Decimal("0.1"))
    assert parse_device_query({"X": True}) == Compare(x, "eq", True)
    assert parse_device_query({"X": None}) == Not(Exists(x))


def test_booleans_and_numbers_are_different_values() -> None:
    x = value("X")
    assert Compare(x, "eq", True) != Compare(x, "eq", Decimal(1))
    assert In(x, (True,)) != In(x, (Decimal(1),))


def test_values_a_field_cannot_hold_match_nothing() -> None:
    assert parse_device_query({"X._writable": "true"}) == FALSE  # no boolean coercion
    assert parse_device_query({"_lastInform": "yesterday"}) == FALSE
    assert parse_device_query({"_id": "12345678"}) == Compare(DeviceAttr("_id"), "eq", "12345678")
    assert parse_device_query({"X._timestamp": {"$ne": 5}}) == TRUE


@pytest.mark.parametrize(
    ("key", "field"),
    [
        ("A.B", ParamAttr("A.B", "_value")),
        ("A.B._value", ParamAttr("A.B", "_value")),
        ("A.B._timestamp", ParamAttr("A.B", "_timestamp")),
        ("A.B._writable", ParamAttr("A.B", "_writable")),
        ("A.B._object", ParamAttr("A.B", "_object")),
        ("A.B._type", ParamAttr("A.B", "_type")),
        ("X_VENDOR_Thing", ParamAttr("X_VENDOR_Thing", "_value")),
        ("_deviceId._SerialNumber", DeviceAttr("_deviceId._SerialNumber")),
        ("_lastBootstrap", DeviceAttr("_lastBootstrap")),
    ],
)
def test_keys_name_device_attributes_or_parameter_attributes(key: str, field: object) -> None:
    assert parse_device_query({key: {"$exists": True}}) == Exists(field)  # type: ignore[arg-type]


def test_logical_operators_nest_and_flatten() -> None:
    a, b = value("A"), value("B")
    query = {"$and": [{"A": 1}, {"$and": [{"B": 2}]}], "$nor": [{"A": 3}, {"B": 4}]}
    assert parse_device_query(query) == And(
        (
            Compare(a, "eq", Decimal(1)),
            Compare(b, "eq", Decimal(2)),
            Not(Or((Compare(a, "eq", Decimal(3)), Compare(b, "eq", Decimal(4))))),
        )
    )
    assert parse_device_query({}) == TRUE


def test_regex_and_size_operators() -> None:
    assert parse_device_query({"X": {"$regex": "^a", "$options": "i"}}) == Matches(
        value("X"), compile_regex("^a", "i")
    )
    assert parse_device_query({"_tags": {"$size": 2}}) == Size(DeviceAttr("_tags"), 2)
    assert parse_device_query({"X": {"$size": 2}}) == FALSE  # parameters are not arrays
    assert parse_device_query({"_lastInform": {"$regex": "2017"}}) == FALSE


def test_null_in_operators_follows_mongodb() -> None:
    x = value("X")
    assert parse_device_query({"X": {"$in": [None, "a"]}}) == Or((In(x, ("a",)), Not(Exists(x))))
    assert parse_device_query({"X": {"$gte": None}}) == Not(Exists(x))
    assert parse_device_query({"X": {"$gt": None}}) == FALSE
    assert parse_device_query({"X": {"$ne": None}}) == Exists(x)


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("2", Decimal(2)),
        (" 1 ", Decimal(1)),
        ("", Decimal(0)),
        ("0x10", Decimal(16)),
        ("0b101", Decimal(5)),
        ("-1.5e2", Decimal(-150)),
        ("1e999", Decimal("Infinity")),
        ("1abc", None),
        ("+0x10", None),
    ],
)
def test_javascript_number_coercion_for_task_and_fault_fields(
    text: str, number: Decimal | None
) -> None:
    assert js_number(text) == number


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("2017", at(2017, 1, 1)),
        ("1970-01-01", at(1970, 1, 1)),
        ("11-Dec-2017", at(2017, 12, 11)),
        ("December 11, 2017 1:16 PM", at(2017, 12, 11, 13, 16)),
        ("2017-12-11 13:16:23 EST", at(2017, 12, 11, 18, 16, 23)),
        ("2017-12-11T24:00", None),
        ("Version 2017-12-11", None),  # V8 accepts this; our grammar does not
        ("13/01/2017", None),
    ],
)
def test_date_strings_for_task_and_fault_fields(text: str, date: datetime | None) -> None:
    assert parse_date(text) == date


# ---------------------------------------------------------------------------------------
# Refusals: every one names what is wrong.


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ([], "query: expected an object, got an array"),
        ({"$and": {"A": 1}}, "$and: expected a non-empty array of queries"),
        ({"$or": []}, "$or: expected a non-empty array of queries"),
        ({"$or": ["A"]}, "$or[0]: expected an object, got str"),
        ({"$where": "1"}, "$where: unknown top-level operator"),
        ({"$not": {"A": 1}}, "$not: unknown top-level operator"),
        ({"A": {"$elemMatch": {}}}, "A: unsupported operator $elemMatch"),
        ({"A": {"$type": "string"}}, "A: unsupported operator $type"),
        ({"A": {"$in": "a"}}, "A: $in/$nin needs an array, got str"),
        ({"A": {"$nin": {"a": 1}}}, "A: $in/$nin needs an array, got an object"),
        ({"A": {"$in": [["a"]]}}, "A: expected a string, number, boolean or null, got an array"),
        ({"A": {"$exists": "yes"}}, "A: $exists needs true or false, got str"),
        ({"A": {"$regex": 5}}, "A: $regex needs a string, got int"),
        ({"A": {"$regex": "a", "$options": 1}}, "A: $options needs a string"),
        ({"A": {"$options": "i"}}, "A: $options without $regex"),
        ({"A": {"$regex": "a", "$options": "u"}}, "A: unsupported regex option(s) 'u'"),
        ({"A": {"$regex": "(?<=a)b"}}, "A: lookbehind is not supported"),
        ({"A": "/(?<=a)b/"}, "A: lookbehind is not supported"),
        ({"A": "/(/"}, "A: missing ')'"),
        ({"A": {"$not": "x"}}, "A: $not needs an object of operators, got str"),
        ({"A": {"$size": -1}}, "A: $size needs a non-negative integer"),
        (
            {"A": {"$gt": {"$lt": 1}}},
            "A: expected a string, number, boolean or null, got an object",
        ),
        ({"A": ["a"]}, "A: an array is only allowed as the operand of $in or $nin"),
        ({"A": {"b": 1}}, "A: embedded documents are not supported"),
        ({"A": {}}, "A: empty object"),
        ({"A": "a\x00"}, "A: strings may not contain NUL characters"),
        ({"A": "\ud800"}, "A: string is not valid Unicode"),
        ({"A": float("nan")}, "A: numbers must be finite"),
        ({"A": 10**101}, "A: number has more than 100 digits"),
        ({"A": object()}, "A: expected a string, number, boolean or null, got object"),
        ({"_foo": 1}, "unknown device attribute '_foo'"),
        ({"_deviceId._Foo": 1}, "unknown device attribute '_deviceId._Foo'"),
        ({"A._bogus": 1}, "'A._bogus': unknown parameter attribute '_bogus'"),
        ({"A._value.B": 1}, "'A._value.B': only the last segment may be an attribute"),
        ({"A..B": 1}, "'A..B': empty segment in parameter path"),
        ({"A.": 1}, "'A.': empty segment in parameter path"),
    ],
)
def test_malformed_queries_are_refused_with_a_message_naming_the_culprit(
    query: object, message: str
) -> None:
    with pytest.raises(QueryError) as caught:
        parse_device_query(query)
    assert message in str(caught.value)


def test_nesting_is_limited() -> None:
    query: dict[str, object] = {"A": 1}
    for _ in range(17):
        query = {"$or": [query]}
    with pytest.raises(QueryError, match="nested more than 16 levels deep"):
        parse_device_query(query)
    deep: dict[str, object] = {"$gt": 1}
    for _ in range(17):
        deep = {"$not": deep}
    with pytest.raises(QueryError, match="A: nested more than 16 levels deep"):
        parse_device_query({"A": deep})


def test_the_number_of_clauses_is_limited() -> None:
    with pytest.raises(QueryError, match="more than 256 clauses"):
        parse_device_query({f"P{i}": i for i in range(300)})
    with pytest.raises(QueryError, match="more than 10000 values"):
        parse_device_query({"A": {"$in": list(range(10_001))}})
    assert parse_device_query({"_id": {"$in": [str(i) for i in range(10_000)]}})


# ---------------------------------------------------------------------------------------
# Evaluation.

NOW = at(2024, 1, 2, 3, 4, 5)


def device(**params: ParamView) -> DeviceView:
    return DeviceView(id="dev", params=params)


def matches(query: object, dev: DeviceView) -> bool:
    return evaluate(parse_device_query(query), dev)


@pytest.mark.parametrize(
    ("stored", "query", "expected"),
    [
        (ParamView("1", "xsd:string"), "1", True),
        (ParamView("1", "xsd:int"), "1", True),
        (ParamView("1.0", "xsd:decimal"), "1", True),
        (ParamView("1.0", "xsd:string"), "1", False),
        (ParamView("true", "xsd:boolean"), "1", False),
        (ParamView("1", "xsd:string"), 1, False),  # a JSON number only matches numbers
        (ParamView("true", "xsd:boolean"), "true", False),  # no boolean coercion
        (ParamView("true", "xsd:boolean"), True, True),
        (ParamView("2017-12-11T00:00:00.000Z", "xsd:dateTime"), "2017-12-11", True),
        (ParamView("2017-12-11T00:00:00.000Z", "xsd:dateTime"), "Dec 11 2017", True),
        (ParamView("2017-12-11T00:00:00.000Z", "xsd:dateTime"), "2017-12-11T00:00:00.000Z", True),
        (ParamView("abcdef", "xsd:string"), "abc*", True),
        (ParamView("xabc", "xsd:string"), "abc*", False),
        (ParamView("a.b", "xsd:string"), "a.*", True),
        (ParamView("axb", "xsd:string"), "a.*", False),  # the '.' is literal
        (ParamView("ABC", "xsd:string"), "/^abc$/i", True),
        (ParamView("dGVzdA==", "xsd:base64"), "dGVzdA==", True),
        (ParamView(None, None, object=True), None, True),  # an object has no value
    ],
)
def test_values_match_within_their_type_bracket(
    stored: ParamView, query: object, expected: bool
) -> None:
    assert matches({"X": query}, device(X=stored)) is expected


def test_negations_match_devices_without_the_parameter() -> None:
    bare = device()
    other = device(X=ParamView("b", "xsd:string"))
    assert matches({"X": {"$ne": "a"}}, bare)
    assert matches({"X": {"$nin": ["a"]}}, bare)
    assert matches({"X": {"$not": {"$regex": "a"}}}, bare)
    assert matches({"X": {"$exists": False}}, bare)
    assert matches({"X": None}, bare)
    assert matches({"$nor": [{"X": "a"}]}, bare)
    assert not matches({"X": {"$gt": ""}}, bare)
    assert matches({"X": {"$gt": "a"}}, other)
    assert not matches({"X": {"$exists": False}}, other)


def test_sealed_secrets_exist_but_match_no_value() -> None:
    secret = device(X=ParamView("sealed:v1:gAAAAB", "xsd:string"))
    assert matches({"X": {"$exists": True}}, secret)
    assert not matches({"X": "sealed*"}, secret)
    assert not matches({"X": {"$gte": ""}}, secret)
    assert matches({"X": {"$ne": "sealed:v1:gAAAAB"}}, secret)


def test_strings_order_bytewise_and_regexes_only_see_strings() -> None:
    b = device(X=ParamView("B", "xsd:string"))
    assert matches({"X": {"$lt": "a"}}, b)  # 'B' < 'a' by code point, as MongoDB
    assert not matches({"X": {"$regex": "1"}}, device(X=ParamView("1", "xsd:int")))


def test_numbers_compare_numerically() -> None:
    ten = device(X=ParamView("10", "xsd:unsignedInt"))
    assert matches({"X": {"$gt": "9"}}, ten)  # the number 9 alternative
    assert matches({"X": {"$gte": 10, "$lt": 10.5}}, ten)
    assert not matches({"X": {"$gt": 10}}, ten)
    assert matches({"X": {"$in": ["1", "10"]}}, ten)


def test_parameter_attributes() -> None:
    dev = device(X=ParamView("a", "xsd:string", value_ts=NOW, writable=True, object=False))
    assert matches({"X._timestamp": {"$gte": "2024-01-02T03:04:05Z"}}, dev)
    assert not matches({"X._timestamp": {"$gt": "2024-01-02T03:04:05Z"}}, dev)
    assert matches({"X._writable": True, "X._object": False, "X._type": "xsd:string"}, dev)
    assert matches({"X._type": {"$regex": "string$"}}, dev)


def test_tags_match_when_any_tag_does() -> None:
    tagged = DeviceView(id="d", tags=("office", "vip"))
    untagged = DeviceView(id="u")
    assert matches({"_tags": "vip"}, tagged)
    assert not matches({"_tags": {"$ne": "vip"}}, tagged)
    assert matches({"_tags": {"$ne": "vip"}}, untagged)
    assert matches({"_tags": {"$in": ["x", "office"]}}, tagged)
    assert matches({"_tags": {"$regex": "^of"}}, tagged)
    assert matches({"_tags": {"$gt": "p"}}, tagged)  # 'vip' > 'p'
    assert matches({"_tags": {"$size": 2}}, tagged)
    assert matches({"_tags": {"$size": 0}}, untagged)
    assert matches({"_tags": None}, untagged)
    assert not matches({"_tags": {"$exists": True}}, untagged)


def test_device_attributes() -> None:
    dev = DeviceView(
        id="202BC1-BM632w-000000",
        last_inform=at(2017, 12, 1),
        registered=at(2017, 1, 1),
        oui="202BC1",
        product_class="BM632w",
        serial_number="000000",
        manufacturer="Acme",
    )
    assert matches({"_lastInform": {"$lt": "2017-12-11 13:16:23 +0000"}}, dev)
    assert not matches({"_lastBoot": {"$lt": "2017-12-11 13:16:23 +0000"}}, dev)
    assert matches({"_lastBoot": {"$exists": False}}, dev)
    assert matches({"_deviceId._OUI": "202BC1", "_deviceId._SerialNumber": "000000"}, dev)
    assert matches({"_deviceId._Manufacturer": "Ac*"}, dev)
    assert matches({"_registered": {"$gte": "2017-01-01"}}, dev)


def test_a_compiled_predicate_is_reused() -> None:
    expr = parse_device_query({"X": "1"})
    assert parse_device_query({"X": "1"}) == expr
    assert hash(parse_device_query({"X": "1"})) == hash(expr)


# ---------------------------------------------------------------------------------------
# Sorting.


def test_sort_keys_mean_values_for_parameters() -> None:
    assert parse_sort({"A.B": -1, "_lastInform": 1, "A._timestamp": 1}) == [
        SortKey(ParamAttr("A.B"), descending=True),
        SortKey(DeviceAttr("_lastInform")),
        SortKey(ParamAttr("A", "_timestamp")),
    ]
    assert parse_sort(None) == []


@pytest.mark.parametrize(
    ("sort", "message"),
    [
        ([], "sort: expected an object"),
        ({"A": 0}, "sort: A: direction must be 1 or -1"),
        ({"A": True}, "sort: A: direction must be 1 or -1"),
        ({"A": "asc"}, "sort: A: direction must be 1 or -1"),
        ({"_nope": 1}, "unknown device attribute '_nope'"),
    ],
)
def test_bad_sorts_are_refused(sort: object, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_sort(sort)
    assert message in str(caught.value)


def test_sorting_follows_mongodb_type_order_with_missing_first() -> None:
    devices = [
        DeviceView("date", params={"X": ParamView("2020-01-01T00:00:00.000Z", "xsd:dateTime")}),
        DeviceView("bool", params={"X": ParamView("false", "xsd:boolean")}),
        DeviceView("str", params={"X": ParamView("a", "xsd:string")}),
        DeviceView("num", params={"X": ParamView("10", "xsd:int")}),
        DeviceView("missing"),
        DeviceView("num2", params={"X": ParamView("9", "xsd:int")}),
    ]
    up = [d.id for d in sort_devices(devices, parse_sort({"X": 1}))]
    assert up == ["missing", "num2", "num", "str", "bool", "date"]
    down = [d.id for d in sort_devices(devices, parse_sort({"X": -1}))]
    assert down == ["date", "bool", "str", "num", "num2", "missing"]


def test_sorting_by_tags_uses_the_smallest_or_largest_tag_and_ties_break_by_id() -> None:
    devices = [
        DeviceView("c", tags=("b", "z")),
        DeviceView("b", tags=("c",)),
        DeviceView("a", tags=("c",)),
    ]
    assert [d.id for d in sort_devices(devices, parse_sort({"_tags": 1}))] == ["c", "a", "b"]
    assert [d.id for d in sort_devices(devices, parse_sort({"_tags": -1}))] == ["c", "a", "b"]
