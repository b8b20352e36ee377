"""Query expressions as PostgreSQL: WHERE and ORDER BY text, every value a bind parameter.

Device queries run over `devices d`; a parameter condition is an `EXISTS` over
`device_params p` on `(device_id, path)`, and conditions on one path that sit together
under an AND/OR share one `EXISTS` (a device has one row per path, so this is exact).
String equality goes through the `(path, left(value, 256))` index, numbers and dates
through `(path, value_num)`. Every generated condition is two-valued (never NULL), so
`NOT` means what MongoDB means: a negation also matches a device that lacks the field.

Task and fault queries (`collection_where`) use GenieACS's plain MongoDB semantics with
its `sanitizeQueryTypes` coercions, over whatever columns a `Field` mapping names.

SQL text only ever contains our own identifiers and constants; user values are appended
to `args` and referenced as `$n`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from acs.query import (
    SEALED,
    Alternative,
    Column,
    Compare,
    Context,
    DeviceAttr,
    Exists,
    Expr,
    FieldRef,
    In,
    Kind,
    Matches,
    Not,
    ParamAttr,
    QueryError,
    Scalar,
    Size,
    SortKey,
    json_scalar,
    parse_query,
    parse_sort,
)
from acs.query import (
    And as AndExpr,
)
from acs.query import (
    Or as OrExpr,
)
from acs.query_scalars import epoch_ms, from_epoch_ms, js_number, parse_date
from acs.values import BOOLEAN, DATETIME, NUMERIC_TYPES

Args = list[object]
_OPS = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_PREFIX = 256  # the length the (path, left(value, 256)) index holds


def _bind(args: Args, value: object, cast: str) -> str:
    args.append(value)
    return f"${len(args)}::{cast}"


def _sql_list(names: set[str]) -> str:
    # Our own type names, never user input.
    return ", ".join(f"'{n}'" for n in sorted(names))


_NUMERIC = _sql_list(set(NUMERIC_TYPES))
_NOT_STRING = _sql_list(set(NUMERIC_TYPES) | {BOOLEAN, DATETIME})
_NUMBER_OR_DATE = _sql_list(set(NUMERIC_TYPES) | {DATETIME})


@dataclass(frozen=True, slots=True)
class _Slot:
    """Where values of one kind live: an SQL expression, the cast for its bind values,
    the condition that the row holds that kind, and how to turn a query value into a
    bind value."""

    expr: str
    cast: str
    guard: str | None = None
    convert: Callable[[Scalar], object] = lambda v: v
    collate: bool = False  # compare text bytewise like MongoDB, not by locale
    prefix_index: bool = False
    bigint: bool = False  # object ids: values beyond bigint cannot be stored ids

    def value(self, expr: Compare) -> object:
        return self.convert(expr.value)

    def ordered(self) -> str:
        return f'{self.expr} COLLATE "C"' if self.collate else self.expr


def _guarded(slot: _Slot, condition: str) -> str:
    return f"({condition} AND {slot.guard})" if slot.guard else condition


def _compare(slot: _Slot, expr: Compare, args: Args) -> str:
    value = slot.value(expr)
    if slot.bigint and isinstance(value, Decimal) and value > 2**63 - 1:
        return "FALSE" if expr.op in ("eq", "gt", "gte") else f"({slot.expr} IS NOT NULL)"
    if slot.bigint:
        value = int(value)  # type: ignore[call-overload]
    param = _bind(args, value, slot.cast)
    if expr.op == "eq" and slot.prefix_index:
        left = f"left({slot.expr}, {_PREFIX}) = left({param}, {_PREFIX})"
        return _guarded(slot, f"{left} AND {slot.expr} = {param}")
    lhs = slot.ordered() if expr.op != "eq" else slot.expr
    return _guarded(slot, f"{lhs} {_OPS[expr.op]} {param}")


def _in(slot: _Slot, values: list[Scalar], args: Args) -> str:
    converted = [slot.convert(v) for v in values]
    if slot.bigint:
        converted = [int(v) for v in converted if v <= 2**63 - 1]  # type: ignore[operator, call-overload]
        if not converted:
            return "FALSE"
    param = _bind(args, converted, slot.cast + "[]")
    condition = f"{slot.expr} = ANY({param})"
    if slot.prefix_index:
        prefixes = sorted({str(v)[:_PREFIX] for v in converted})
        prefix = _bind(args, prefixes, "text[]")
        condition = f"left({slot.expr}, {_PREFIX}) = ANY({prefix}) AND {condition}"
    return _guarded(slot, condition)


def _leaf(expr: Expr, slots: Mapping[Kind, _Slot], present: str, args: Args) -> str:
    """A positive condition on one field's slots (it may be NULL for a missing value)."""
    if isinstance(expr, Compare):
        slot = slots.get(expr.kind)
        return _compare(slot, expr, args) if slot else "FALSE"
    if isinstance(expr, In):
        parts = []
        for kind, slot in slots.items():
            values = [v for v, k in zip(expr.values, expr.kinds, strict=True) if k == kind]
            if values:
                parts.append(_in(slot, values, args))
        return "(" + " OR ".join(parts) + ")" if parts else "FALSE"
    if isinstance(expr, Exists):
        return present
    if isinstance(expr, Matches):
        slot = slots.get("string")
        if slot is None:
            return "FALSE"
        return _guarded(slot, f"{slot.expr} ~ {_bind(args, expr.regex.postgres, 'text')}")
    return "FALSE"  # $size of a field that is not an array


# ---------------------------------------------------------------------------------------
# Devices.

_STRING_GUARD = (
    f"(p.value_type IS NULL OR p.value_type NOT IN ({_NOT_STRING}))"
    f" AND left(p.value, {len(SEALED)}) <> '{SEALED}'"
)


def _bool_text(value: Scalar) -> str:
    return "true" if value else "false"


def _ms(value: Scalar) -> Decimal:
    assert isinstance(value, datetime)
    return epoch_ms(value)


# A value the device's last Inform carried unchanged is as fresh as that Inform (only
# changed values are rewritten: see acs.store).
_VALUE_TS = "GREATEST(p.value_ts, CASE WHEN p.path = ANY(d.inform_params) THEN d.last_inform END)"

_PARAM_SLOTS: dict[str, dict[Kind, _Slot]] = {
    "_value": {
        "string": _Slot("p.value", "text", _STRING_GUARD, collate=True, prefix_index=True),
        "number": _Slot("p.value_num", "numeric", f"p.value_type IN ({_NUMERIC})"),
        "date": _Slot("p.value_num", "numeric", f"p.value_type = '{DATETIME}'", _ms),
        "boolean": _Slot(
            "p.value",
            "text",
            f"p.value_type = '{BOOLEAN}' AND p.value IN ('true', 'false')",
            _bool_text,
            collate=True,
        ),
    },
    "_timestamp": {"date": _Slot(_VALUE_TS, "timestamptz")},
    "_writable": {"boolean": _Slot("p.writable", "boolean")},
    "_object": {"boolean": _Slot("p.object", "boolean")},
    "_type": {"string": _Slot("p.value_type", "text", collate=True)},
}
_PARAM_PRESENT = {
    "_value": "p.value IS NOT NULL",
    "_timestamp": "p.value_ts IS NOT NULL",
    "_writable": "p.writable IS NOT NULL",
    "_object": "p.object IS NOT NULL",
    "_type": "p.value_type IS NOT NULL",
}
DEVICE_COLUMNS = {
    "_id": "d.id",
    "_registered": "d.registered",
    "_lastInform": "d.last_inform",
    "_lastBoot": "d.last_boot",
    "_lastBootstrap": "d.last_bootstrap",
    "_deviceId._Manufacturer": "d.manufacturer",
    "_deviceId._OUI": "d.oui",
    "_deviceId._ProductClass": "d.product_class",
    "_deviceId._SerialNumber": "d.serial_number",
}
_NULLABLE = frozenset({"d.last_inform", "d.last_boot", "d.last_bootstrap"})
_TAG_SLOTS: dict[Kind, _Slot] = {"string": _Slot("t.v", "text", collate=True)}


def _device_slots(name: str) -> dict[Kind, _Slot]:
    column = DEVICE_COLUMNS[name]
    if name in ("_registered", "_lastInform", "_lastBoot", "_lastBootstrap"):
        return {"date": _Slot(column, "timestamptz")}
    return {"string": _Slot(column, "text", collate=True)}


def _tags_condition(expr: Expr, args: Args) -> str:
    if isinstance(expr, Compare) and expr.op == "eq" and expr.kind == "string":
        return f"d.tags @> ARRAY[{_bind(args, expr.value, 'text')}]"  # the GIN index
    if isinstance(expr, In):
        tags = [v for v, k in zip(expr.values, expr.kinds, strict=True) if k == "string"]
        return f"d.tags && {_bind(args, tags, 'text[]')}" if tags else "FALSE"
    if isinstance(expr, Exists):
        return "cardinality(d.tags) > 0"
    if isinstance(expr, Size):
        return f"cardinality(d.tags) = {_bind(args, expr.size, 'integer')}"
    inner = _leaf(expr, _TAG_SLOTS, "TRUE", args)
    return f"EXISTS (SELECT 1 FROM unnest(d.tags) AS t(v) WHERE {inner})"


def _device_leaf(expr: Expr, args: Args) -> str:
    ref = expr.field  # type: ignore[union-attr]
    assert isinstance(ref, DeviceAttr)
    if ref.name == "_tags":
        return _tags_condition(expr, args)
    column = DEVICE_COLUMNS[ref.name]
    nullable = column in _NULLABLE
    condition = _leaf(
        expr, _device_slots(ref.name), f"{column} IS NOT NULL" if nullable else "TRUE", args
    )
    if nullable and not isinstance(expr, Exists) and condition != "FALSE":
        return f"({column} IS NOT NULL AND {condition})"
    return condition


_LEAVES = (Compare, In, Exists, Matches, Size)


def _single_path(expr: Expr) -> str | None:
    """The parameter path a positive AND/OR tree is entirely about, if it is one path."""
    if isinstance(expr, _LEAVES):
        return expr.field.path if isinstance(expr.field, ParamAttr) else None
    if isinstance(expr, AndExpr | OrExpr) and expr.items:
        paths = {_single_path(i) for i in expr.items}
        return paths.pop() if len(paths) == 1 else None
    return None


def _param_inner(expr: Expr, args: Args) -> str:
    if isinstance(expr, AndExpr | OrExpr):
        joiner = " AND " if isinstance(expr, AndExpr) else " OR "
        return "(" + joiner.join(_param_inner(i, args) for i in expr.items) + ")"
    ref = expr.field  # type: ignore[union-attr]
    assert isinstance(ref, ParamAttr)
    return _leaf(expr, _PARAM_SLOTS[ref.attr], _PARAM_PRESENT[ref.attr], args)


def _param_exists(path: str, inner: Callable[[], str], args: Args) -> str:
    path_param = _bind(args, path, "text")
    return (
        "EXISTS (SELECT 1 FROM device_params p WHERE p.device_id = d.id"
        f" AND p.path = {path_param} AND {inner()})"
    )


def _junction(items: Sequence[Expr], joiner: str, args: Args) -> str:
    groups: dict[str, list[Expr]] = {}
    order: list[str | Expr] = []
    for item in items:
        path = _single_path(item)
        if path is None:
            order.append(item)
        else:
            if path not in groups:
                order.append(path)
            groups.setdefault(path, []).append(item)
    parts = []
    for entry in order:
        if isinstance(entry, str):
            grouped = groups[entry]
            node = (
                grouped[0]
                if len(grouped) == 1
                else (AndExpr if joiner == " AND " else OrExpr)(tuple(grouped))
            )
            parts.append(_param_exists(entry, lambda n=node: _param_inner(n, args), args))
        else:
            parts.append(_device_sql(entry, args))
    return "(" + joiner.join(parts) + ")"


def _device_sql(expr: Expr, args: Args) -> str:
    if isinstance(expr, AndExpr):
        return _junction(expr.items, " AND ", args) if expr.items else "TRUE"
    if isinstance(expr, OrExpr):
        return _junction(expr.items, " OR ", args) if expr.items else "FALSE"
    if isinstance(expr, Not):
        return f"NOT {_device_sql(expr.item, args)}"
    ref = expr.field
    if isinstance(ref, ParamAttr):
        return _param_exists(ref.path, lambda: _param_inner(expr, args), args)
    if isinstance(ref, Column):
        raise QueryError(f"{ref.name}: not a device field")
    return _device_leaf(expr, args)


def device_where(expr: Expr, args: Args) -> str:
    """A boolean SQL expression over `devices d`; bind values are appended to `args`."""
    return _device_sql(expr, args)


def _direction(key: SortKey) -> str:
    return "DESC NULLS LAST" if key.descending else "ASC NULLS FIRST"


_RANK = (
    f"CASE WHEN p.value IS NULL OR left(p.value, {len(SEALED)}) = '{SEALED}' THEN 0"
    f" WHEN p.value_type IN ({_NUMERIC}) THEN CASE WHEN p.value_num IS NULL THEN 0 ELSE 1 END"
    f" WHEN p.value_type = '{DATETIME}' THEN CASE WHEN p.value_num IS NULL THEN 0 ELSE 4 END"
    f" WHEN p.value_type = '{BOOLEAN}'"
    " THEN CASE WHEN p.value IN ('true', 'false') THEN 3 ELSE 0 END"
    " ELSE 2 END"
)
_PARAM_ORDER = {
    "_timestamp": _VALUE_TS,
    "_writable": "p.writable",
    "_object": "p.object",
    "_type": 'p.value_type COLLATE "C"',
}


def _param_order(ref: ParamAttr, key: SortKey, args: Args) -> list[str]:
    path = _bind(args, ref.path, "text")
    direction = _direction(key)

    def select(what: str, where: str = "") -> str:
        return (
            f"(SELECT {what} FROM device_params p"
            f" WHERE p.device_id = d.id AND p.path = {path}{where})"
        )

    if ref.attr != "_value":
        return [f"{select(_PARAM_ORDER[ref.attr])} {direction}"]
    number = select("p.value_num", f" AND p.value_type IN ({_NUMBER_OR_DATE})")
    text = select('p.value COLLATE "C"', f" AND {_STRING_GUARD}")
    # false before true, as MongoDB orders booleans (and as 'false' < 'true' in "C").
    boolean = select('p.value COLLATE "C"', f" AND p.value_type = '{BOOLEAN}'")
    return [
        f"COALESCE({select(_RANK)}, 0) {direction}",
        f"{number} {direction}",
        f"{text} {direction}",
        f"{boolean} {direction}",
    ]


def device_order_by(keys: Sequence[SortKey], args: Args) -> str:
    """ORDER BY items over `devices d` in MongoDB order (missing first, then numbers,
    strings, booleans, dates); ties are broken by `_id` so pages are stable."""
    items: list[str] = []
    for key in keys:
        ref = key.field
        direction = _direction(key)
        if isinstance(ref, ParamAttr):
            items.extend(_param_order(ref, key, args))
        elif isinstance(ref, DeviceAttr) and ref.name == "_tags":
            pick = "max" if key.descending else "min"
            items.append(f"CASE WHEN cardinality(d.tags) = 0 THEN 0 ELSE 2 END {direction}")
            items.append(
                f'(SELECT {pick}(t.v COLLATE "C") FROM unnest(d.tags) AS t(v)) {direction}'
            )
        elif isinstance(ref, DeviceAttr):
            items.append(f"{_device_slots(ref.name).popitem()[1].ordered()} {direction}")
        else:
            raise QueryError(f"{ref.name}: not a device field")
    items.append('d.id COLLATE "C" ASC')
    return ", ".join(items)


# ---------------------------------------------------------------------------------------
# Plain collections: tasks and faults.


class FieldKind(StrEnum):
    TEXT = "text"
    NUMBER = "number"  # coerced with JavaScript Number(), like GenieACS's `retries`
    DATE = "date"  # coerced with new Date(), like `timestamp`
    OBJECT_ID = "object_id"  # a 24-hex id over a bigint column, like a task's `_id`
    JSON = "json"  # a jsonb value; `key.sub.path` reaches inside it


@dataclass(frozen=True, slots=True)
class Field:
    """A query key's SQL expression and how its values are typed."""

    sql: str
    kind: FieldKind


TASK_FIELDS: Mapping[str, Field] = {
    "_id": Field("t.id", FieldKind.OBJECT_ID),
    "device": Field("t.device_id", FieldKind.TEXT),
    "name": Field("t.name", FieldKind.TEXT),
    "timestamp": Field("t.created", FieldKind.DATE),
    "expiry": Field("t.expiry", FieldKind.DATE),
    "retries": Field("t.retries", FieldKind.NUMBER),
    "*": Field("t.body", FieldKind.JSON),  # any other key: the task as the client sent it
}
FAULT_FIELDS: Mapping[str, Field] = {
    "_id": Field("f.id", FieldKind.TEXT),
    "device": Field("f.device_id", FieldKind.TEXT),
    "channel": Field("f.channel", FieldKind.TEXT),
    "code": Field("f.code", FieldKind.TEXT),
    "message": Field("f.message", FieldKind.TEXT),
    "detail": Field("f.detail", FieldKind.JSON),
    "timestamp": Field("f.timestamp", FieldKind.DATE),
    "retries": Field("f.retries", FieldKind.NUMBER),
}
_COERCED = frozenset({FieldKind.NUMBER, FieldKind.DATE, FieldKind.OBJECT_ID})
# sanitizeQueryTypes converts these and ignores $exists; anything else it refuses
_COERCED_OPERATORS = frozenset(
    {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"}
)
_KINDS: dict[FieldKind, frozenset[Kind]] = {
    FieldKind.TEXT: frozenset(("string",)),
    FieldKind.NUMBER: frozenset(("number",)),
    FieldKind.DATE: frozenset(("date",)),
    FieldKind.OBJECT_ID: frozenset(("number",)),
    FieldKind.JSON: frozenset(("string", "number", "boolean")),
}
_HEX24 = frozenset("0123456789abcdefABCDEF")


def _to_number(key: str, value: object) -> Decimal:
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, str):
        number = js_number(value)
        if number is None or not number.is_finite():
            raise QueryError(f"{key}: {value!r} is not a number")
        return number
    scalar = json_scalar(key, value)
    assert isinstance(scalar, Decimal)
    return scalar


def _to_date(key: str, value: object) -> datetime:
    date: datetime | None = None
    if isinstance(value, str):
        date = parse_date(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = json_scalar(key, value)
        assert isinstance(number, Decimal)
        date = from_epoch_ms(number)
    if date is None:
        raise QueryError(f"{key}: {value!r} is not a date")
    return date


def _to_object_id(key: str, value: object) -> Decimal:
    if isinstance(value, str) and len(value) == 24 and set(value) <= _HEX24:
        return Decimal(int(value, 16))
    raise QueryError(f"{key}: {value!r} is not a 24-hex-digit id")


_COERCIONS: dict[FieldKind, Callable[[str, object], Scalar]] = {
    FieldKind.NUMBER: _to_number,
    FieldKind.DATE: _to_date,
    FieldKind.OBJECT_ID: _to_object_id,
}


class CollectionPolicy:
    """MongoDB semantics over named columns, with GenieACS's type coercions."""

    def __init__(self, fields: Mapping[str, Field]) -> None:
        self.fields = fields

    def field(self, key: str) -> FieldRef:
        if key in self.fields and key != "*":
            return Column(key)
        head, _, rest = key.partition(".")
        if rest and head in self.fields and self.fields[head].kind is FieldKind.JSON:
            return Column(head, tuple(rest.split(".")))
        if "*" in self.fields and not key.startswith(("$", "_")):
            return Column("*", tuple(key.split(".")))
        raise QueryError(
            f"unknown field {key!r} (known: {', '.join(k for k in self.fields if k != '*')})"
        )

    def kind(self, ref: FieldRef) -> FieldKind:
        assert isinstance(ref, Column)
        return FieldKind.JSON if ref.subpath else self.fields[ref.name].kind

    def kinds(self, ref: FieldRef) -> frozenset[Kind]:
        return _KINDS[self.kind(ref)]

    def is_array(self, ref: FieldRef) -> bool:
        return self.kind(ref) is FieldKind.JSON

    def check(self, ref: FieldRef, key: str, op: str) -> None:
        if self.kind(ref) in _COERCED and op not in _COERCED_OPERATORS:
            raise QueryError(f"{key}: Operator not supported: {op}")

    def alternatives(
        self, ref: FieldRef, key: str, value: object, context: Context
    ) -> list[Alternative]:
        coerce = _COERCIONS.get(self.kind(ref))
        if value is None or coerce is None:
            return [json_scalar(key, value)]
        return [coerce(key, value)]


_JSON_SLOTS: dict[Kind, _Slot] = {
    "string": _Slot(
        "CASE WHEN jsonb_typeof(j.v) = 'string' THEN j.v #>> '{}' END", "text", collate=True
    ),
    "number": _Slot("CASE WHEN jsonb_typeof(j.v) = 'number' THEN (j.v)::numeric END", "numeric"),
    "boolean": _Slot("CASE WHEN jsonb_typeof(j.v) = 'boolean' THEN (j.v)::boolean END", "boolean"),
}


def _column_sql(ref: Column, fields: Mapping[str, Field], args: Args) -> str:
    sql = fields[ref.name].sql
    return f"({sql} #> {_bind(args, list(ref.subpath), 'text[]')})" if ref.subpath else sql


def _column_leaf(expr: Expr, policy: CollectionPolicy, args: Args) -> str:
    ref = expr.field  # type: ignore[union-attr]
    assert isinstance(ref, Column)
    kind = policy.kind(ref)
    sql = _column_sql(ref, policy.fields, args)
    if kind is FieldKind.JSON:
        present = f"({sql} IS NOT NULL AND jsonb_typeof({sql}) <> 'null')"
        if isinstance(expr, Exists):
            return present
        if isinstance(expr, Size):
            size = _bind(args, expr.size, "integer")
            length = f"jsonb_array_length({sql}) = {size}"
            return f"(CASE WHEN jsonb_typeof({sql}) = 'array' THEN {length} ELSE false END)"
        inner = _leaf(expr, _JSON_SLOTS, "TRUE", args)
        elements = (
            f"CASE jsonb_typeof({sql}) WHEN 'array' THEN {sql} ELSE jsonb_build_array({sql}) END"
        )
        return f"EXISTS (SELECT 1 FROM jsonb_array_elements({elements}) AS j(v) WHERE {inner})"
    slot_kind: Kind = next(iter(_KINDS[kind]))
    slot = _Slot(
        sql,
        {FieldKind.TEXT: "text", FieldKind.NUMBER: "numeric", FieldKind.DATE: "timestamptz"}.get(
            kind, "bigint"
        ),
        collate=kind is FieldKind.TEXT,
        bigint=kind is FieldKind.OBJECT_ID,
    )
    condition = _leaf(expr, {slot_kind: slot}, f"{sql} IS NOT NULL", args)
    if isinstance(expr, Exists) or condition == "FALSE":
        return condition
    return f"({sql} IS NOT NULL AND {condition})"


def _collection_sql(expr: Expr, policy: CollectionPolicy, args: Args) -> str:
    if isinstance(expr, AndExpr | OrExpr):
        if not expr.items:
            return "TRUE" if isinstance(expr, AndExpr) else "FALSE"
        joiner = " AND " if isinstance(expr, AndExpr) else " OR "
        return "(" + joiner.join(_collection_sql(i, policy, args) for i in expr.items) + ")"
    if isinstance(expr, Not):
        return f"NOT {_collection_sql(expr.item, policy, args)}"
    return _column_leaf(expr, policy, args)


def collection_where(query_obj: object, fields: Mapping[str, Field], args: Args) -> str:
    """A MongoDB filter over a plain collection (`TASK_FIELDS`, `FAULT_FIELDS`...) as SQL."""
    policy = CollectionPolicy(fields)
    return _collection_sql(parse_query(query_obj, policy), policy, args)


def collection_order_by(sort_obj: object, fields: Mapping[str, Field], args: Args) -> str:
    """ORDER BY items for a `sort` object over a plain collection ("" when empty)."""
    policy = CollectionPolicy(fields)
    items = []
    for key in parse_sort(sort_obj, policy):
        ref = key.field
        assert isinstance(ref, Column)
        sql = _column_sql(ref, fields, args)
        if policy.kind(ref) is FieldKind.TEXT:
            sql = f'{sql} COLLATE "C"'
        items.append(f"{sql} {_direction(key)}")
    return ", ".join(items)
