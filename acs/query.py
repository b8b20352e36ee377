"""The device query language: GenieACS's MongoDB-style filters as a typed AST.

`parse_device_query` reads the JSON an operator sends to `GET /devices/?query=` (or a
preset precondition) and applies GenieACS's `query.expand` while parsing: a parameter
key means its `._value`; a string value also stands for the number, the Date, the
`/regex/flags` and the `*` wildcard it may spell; each operator's alternatives are
OR-ed (the same result as GenieACS's cartesian product) and `$ne`/`$nin` must differ
from every alternative. The AST is then matched in Python by `evaluate` (presets inside
a CWMP session) or compiled to SQL by `acs.query_sql`; both follow MongoDB's rules:

* values compare only within their type bracket (number, string, boolean, date), so
  `"1"` matches the string "1" or the number 1, never the boolean true;
* negations (`$ne`, `$nin`, `$not`, `$exists: false`, `{key: null}`, `$nor`) also match
  devices that lack the field;
* `_tags` is an array: a condition holds when some tag satisfies it; a device without
  tags has no `_tags` field.

Deliberate differences from GenieACS: a string inside an operator (`{"$gt": "5"}`) does
not grow regex or wildcard alternatives (in MongoDB they can never match there), an
operator object may mix `$ne`/`$not` with others (GenieACS throws "Cannot mix…"; the
meaning is the obvious conjunction), and inside `$not` values are taken literally,
exactly as GenieACS passes them to MongoDB unexpanded.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cached_property
from typing import Literal, Protocol

from acs.query_regex import Regex, RegexError, compile_regex, wildcard_source
from acs.query_scalars import MAX_DIGITS, date_string, epoch_ms, numeric_string
from acs.values import BOOLEAN, DATETIME, NUMERIC_TYPES, parse_datetime

MAX_DEPTH = 16
MAX_CLAUSES = 256
MAX_IN = 10_000
MAX_SORT_KEYS = 16


class QueryError(ValueError):
    """A query that cannot be run: the message names the offending key or operator."""


# ---------------------------------------------------------------------------------------
# Fields and values.

Kind = Literal["string", "number", "boolean", "date"]
Scalar = str | Decimal | bool | datetime
CompareOp = Literal["eq", "gt", "gte", "lt", "lte"]
ALL_KINDS: frozenset[Kind] = frozenset(("string", "number", "boolean", "date"))


@dataclass(frozen=True, slots=True)
class DeviceAttr:
    """A device-level field: `_id`, `_tags`, `_lastInform`, `_deviceId._OUI`..."""

    name: str


@dataclass(frozen=True, slots=True)
class ParamAttr:
    """An attribute of a parameter: `_value`, `_timestamp`, `_writable`, `_object`, `_type`."""

    path: str
    attr: str = "_value"


@dataclass(frozen=True, slots=True)
class Column:
    """A field of a plain collection (tasks, faults); `subpath` reaches into JSON."""

    name: str
    subpath: tuple[str, ...] = ()


FieldRef = DeviceAttr | ParamAttr | Column


def kind_of(value: Scalar) -> Kind:
    """The MongoDB type bracket of a query value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, Decimal):
        return "number"
    if isinstance(value, datetime):
        return "date"
    return "string"


# ---------------------------------------------------------------------------------------
# The AST. Nodes carry the kinds of their values so that `True` and `Decimal(1)`, equal
# in Python, never make two different conditions compare equal.


@dataclass(frozen=True, slots=True)
class Compare:
    """`field <op> value` within the value's type bracket."""

    field: FieldRef
    op: CompareOp
    value: Scalar
    kind: Kind = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", kind_of(self.value))


@dataclass(frozen=True, slots=True)
class In:
    """The field equals one of `values` (each compared within its own bracket)."""

    field: FieldRef
    values: tuple[Scalar, ...]
    kinds: tuple[Kind, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", tuple(kind_of(v) for v in self.values))


@dataclass(frozen=True, slots=True)
class Exists:
    """The field is present."""

    field: FieldRef


@dataclass(frozen=True, slots=True)
class Matches:
    """A string value of the field matches the regex."""

    field: FieldRef
    regex: Regex


@dataclass(frozen=True, slots=True)
class Size:
    """The array field has exactly `size` elements."""

    field: FieldRef
    size: int


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Expr


Expr = Compare | In | Exists | Matches | Size | And | Or | Not
TRUE: Expr = And(())
FALSE: Expr = Or(())


def conjunction(items: Iterable[Expr]) -> Expr:
    """AND, flattened and with constants folded."""
    out: list[Expr] = []
    for item in items:
        if item == FALSE:
            return FALSE
        out.extend(item.items if isinstance(item, And) else (item,))
    return out[0] if len(out) == 1 else And(tuple(out))


def disjunction(items: Iterable[Expr]) -> Expr:
    """OR, flattened and with constants folded."""
    out: list[Expr] = []
    for item in items:
        if item == TRUE:
            return TRUE
        out.extend(item.items if isinstance(item, Or) else (item,))
    return out[0] if len(out) == 1 else Or(tuple(out))


def negation(item: Expr) -> Expr:
    """NOT, with double negations and constants folded."""
    if isinstance(item, Not):
        return item.item
    if item == TRUE:
        return FALSE
    if item == FALSE:
        return TRUE
    return Not(item)


# ---------------------------------------------------------------------------------------
# Parsing.

Context = Literal["value", "operator", "literal"]
Alternative = Scalar | Regex | None


class QueryPolicy(Protocol):
    """What a collection contributes to parsing: its keys and its value coercions."""

    def field(self, key: str) -> FieldRef:
        """The field a query key names; raises `QueryError` for unknown keys."""
        ...

    def kinds(self, ref: FieldRef) -> frozenset[Kind]:
        """The value kinds the field can hold (conditions on others are false)."""
        ...

    def is_array(self, ref: FieldRef) -> bool:
        """Whether the field holds an array (`$size` applies)."""
        ...

    def check(self, ref: FieldRef, key: str, op: str) -> None:
        """Refuse an operator the field does not support."""
        ...

    def alternatives(
        self, ref: FieldRef, key: str, value: object, context: Context
    ) -> list[Alternative]:
        """What a JSON value stands for: a direct value, an operator operand, or
        (inside `$not`) a literal."""
        ...


def json_scalar(key: str, value: object) -> Scalar | None:
    """A JSON scalar as a query value: numbers become exact decimals."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if "\x00" in value:
            raise QueryError(f"{key}: strings may not contain NUL characters")
        try:
            value.encode()
        except UnicodeEncodeError:
            raise QueryError(f"{key}: string is not valid Unicode") from None
        return value
    if isinstance(value, int):
        if len(str(abs(value))) > MAX_DIGITS:
            raise QueryError(f"{key}: number has more than {MAX_DIGITS} digits")
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QueryError(f"{key}: numbers must be finite")
        return Decimal(repr(value))
    raise QueryError(f"{key}: expected a string, number, boolean or null, got {_json_type(value)}")


def _json_type(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


class _Parser:
    def __init__(self, policy: QueryPolicy) -> None:
        self.policy = policy
        self.clauses = 0

    def _count(self, key: str) -> None:
        self.clauses += 1
        if self.clauses > MAX_CLAUSES:
            raise QueryError(f"{key}: query has more than {MAX_CLAUSES} clauses")

    def query(self, obj: object, depth: int, where: str = "query") -> Expr:
        if not isinstance(obj, dict):
            raise QueryError(f"{where}: expected an object, got {_json_type(obj)}")
        if depth > MAX_DEPTH:
            raise QueryError(f"{where}: nested more than {MAX_DEPTH} levels deep")
        parts: list[Expr] = []
        for key, value in obj.items():
            self._count(key)
            if key.startswith("$"):
                parts.append(self._logical(key, value, depth))
            else:
                ref = self.policy.field(key)
                parts.append(self._condition(ref, key, value, depth, literal=False))
        return conjunction(parts)

    def _logical(self, key: str, value: object, depth: int) -> Expr:
        if key not in ("$and", "$or", "$nor"):
            raise QueryError(f"{key}: unknown top-level operator (use $and, $or or $nor)")
        if not isinstance(value, list) or not value:
            raise QueryError(f"{key}: expected a non-empty array of queries")
        items = [self.query(v, depth + 1, f"{key}[{i}]") for i, v in enumerate(value)]
        if key == "$and":
            return conjunction(items)
        return disjunction(items) if key == "$or" else negation(disjunction(items))

    def _condition(
        self, ref: FieldRef, key: str, value: object, depth: int, *, literal: bool
    ) -> Expr:
        if isinstance(value, list):
            raise QueryError(f"{key}: an array is only allowed as the operand of $in or $nin")
        if not isinstance(value, dict):
            return self._equals(ref, key, value, "literal" if literal else "value")
        if not value:
            raise QueryError(f"{key}: empty object; expected operators such as $eq")
        if not all(isinstance(op, str) and op.startswith("$") for op in value):
            raise QueryError(
                f"{key}: embedded documents are not supported; operators start with '$'"
            )
        if "$options" in value and "$regex" not in value:
            raise QueryError(f"{key}: $options without $regex")
        if depth > MAX_DEPTH:
            raise QueryError(f"{key}: nested more than {MAX_DEPTH} levels deep")
        site = _Site(ref, key, value, depth, "literal" if literal else "operator")
        parts = []
        for op, operand in value.items():
            self._count(f"{key}.{op}")
            if op == "$options":
                continue
            handler = _OPERATORS.get(op)
            if handler is None:
                raise QueryError(f"{key}: unsupported operator {op}")
            self.policy.check(ref, key, op)
            parts.append(handler(self, site, operand))
        return conjunction(parts)

    def _alternatives(
        self, ref: FieldRef, key: str, value: object, context: Context
    ) -> list[Alternative]:
        if isinstance(value, dict | list):
            raise QueryError(
                f"{key}: expected a string, number, boolean or null, got {_json_type(value)}"
            )
        return self.policy.alternatives(ref, key, value, context)

    def _typed(self, ref: FieldRef, node: Expr, kind: Kind) -> Expr:
        return node if kind in self.policy.kinds(ref) else FALSE

    def _equals(self, ref: FieldRef, key: str, value: object, context: Context) -> Expr:
        out: list[Expr] = []
        for alt in self._alternatives(ref, key, value, context):
            if alt is None:
                out.append(negation(Exists(ref)))
            elif isinstance(alt, Regex):
                out.append(self._typed(ref, Matches(ref, alt), "string"))
            else:
                out.append(self._typed(ref, Compare(ref, "eq", alt), kind_of(alt)))
        return disjunction(out)

    def op_eq(self, site: _Site, operand: object) -> Expr:
        return self._equals(site.ref, site.key, operand, site.context)

    def op_ne(self, site: _Site, operand: object) -> Expr:
        return negation(self.op_eq(site, operand))

    def _range(self, op: CompareOp, site: _Site, operand: object) -> Expr:
        out: list[Expr] = []
        for alt in self._alternatives(site.ref, site.key, operand, site.context):
            if alt is None:  # MongoDB: $gte/$lte null match a missing field, $gt/$lt nothing
                out.append(negation(Exists(site.ref)) if op in ("gte", "lte") else FALSE)
            elif not isinstance(alt, Regex):
                out.append(self._typed(site.ref, Compare(site.ref, op, alt), kind_of(alt)))
        return disjunction(out)

    def op_gt(self, site: _Site, operand: object) -> Expr:
        return self._range("gt", site, operand)

    def op_gte(self, site: _Site, operand: object) -> Expr:
        return self._range("gte", site, operand)

    def op_lt(self, site: _Site, operand: object) -> Expr:
        return self._range("lt", site, operand)

    def op_lte(self, site: _Site, operand: object) -> Expr:
        return self._range("lte", site, operand)

    def op_in(self, site: _Site, operand: object) -> Expr:
        ref, key = site.ref, site.key
        if not isinstance(operand, list):
            raise QueryError(f"{key}: $in/$nin needs an array, got {_json_type(operand)}")
        if len(operand) > MAX_IN:
            raise QueryError(f"{key}: $in/$nin has more than {MAX_IN} values")
        kinds = self.policy.kinds(ref)
        values: list[Scalar] = []
        seen: set[tuple[Kind, Scalar]] = set()
        missing = False
        for element in operand:
            for alt in self._alternatives(ref, key, element, site.context):
                if alt is None:
                    missing = True
                elif not isinstance(alt, Regex) and (kind_of(alt), alt) not in seen:
                    seen.add((kind_of(alt), alt))
                    if kind_of(alt) in kinds:
                        values.append(alt)
        found = In(ref, tuple(values)) if values else FALSE
        return disjunction([found, negation(Exists(ref))]) if missing else found

    def op_nin(self, site: _Site, operand: object) -> Expr:
        return negation(self.op_in(site, operand))

    def op_exists(self, site: _Site, operand: object) -> Expr:
        if isinstance(operand, bool | int | float):
            return Exists(site.ref) if operand else negation(Exists(site.ref))
        raise QueryError(f"{site.key}: $exists needs true or false, got {_json_type(operand)}")

    def op_regex(self, site: _Site, operand: object) -> Expr:
        key = site.key
        options = site.operators.get("$options", "")
        if not isinstance(operand, str):
            raise QueryError(f"{key}: $regex needs a string, got {_json_type(operand)}")
        if not isinstance(options, str):
            raise QueryError(f"{key}: $options needs a string, got {_json_type(options)}")
        json_scalar(key, operand)
        return self._typed(site.ref, Matches(site.ref, _regex(key, operand, options)), "string")

    def op_not(self, site: _Site, operand: object) -> Expr:
        if not isinstance(operand, dict):
            raise QueryError(
                f"{site.key}: $not needs an object of operators, got {_json_type(operand)}"
            )
        return negation(self._condition(site.ref, site.key, operand, site.depth + 1, literal=True))

    def op_size(self, site: _Site, operand: object) -> Expr:
        size = operand
        if isinstance(size, float) and size.is_integer():
            size = int(size)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise QueryError(f"{site.key}: $size needs a non-negative integer")
        return Size(site.ref, size) if self.policy.is_array(site.ref) else FALSE


@dataclass(frozen=True, slots=True)
class _Site:
    """Where an operator sits: its field, key, sibling operators and nesting."""

    ref: FieldRef
    key: str
    operators: dict[str, object]
    depth: int
    context: Context  # "operator", or "literal" inside $not


_Handler = Callable[[_Parser, _Site, object], Expr]
_OPERATORS: dict[str, _Handler] = {
    "$eq": _Parser.op_eq,
    "$ne": _Parser.op_ne,
    "$gt": _Parser.op_gt,
    "$gte": _Parser.op_gte,
    "$lt": _Parser.op_lt,
    "$lte": _Parser.op_lte,
    "$in": _Parser.op_in,
    "$nin": _Parser.op_nin,
    "$exists": _Parser.op_exists,
    "$regex": _Parser.op_regex,
    "$not": _Parser.op_not,
    "$size": _Parser.op_size,
}


def _regex(key: str, source: str, options: str) -> Regex:
    try:
        return compile_regex(source, options)
    except RegexError as exc:
        raise QueryError(f"{key}: {exc}") from None


def parse_query(obj: object, policy: QueryPolicy) -> Expr:
    """Parse a MongoDB-style filter against any collection's policy."""
    return _Parser(policy).query(obj, 0)


# ---------------------------------------------------------------------------------------
# Devices.

_STRING: frozenset[Kind] = frozenset(("string",))
_DATE: frozenset[Kind] = frozenset(("date",))
_BOOL: frozenset[Kind] = frozenset(("boolean",))
DEVICE_ATTRS: dict[str, frozenset[Kind]] = {
    "_id": _STRING,
    "_tags": _STRING,
    "_registered": _DATE,
    "_lastInform": _DATE,
    "_lastBoot": _DATE,
    "_lastBootstrap": _DATE,
    "_deviceId._Manufacturer": _STRING,
    "_deviceId._OUI": _STRING,
    "_deviceId._ProductClass": _STRING,
    "_deviceId._SerialNumber": _STRING,
}
PARAM_ATTRS: dict[str, frozenset[Kind]] = {
    "_value": ALL_KINDS,
    "_timestamp": _DATE,
    "_writable": _BOOL,
    "_object": _BOOL,
    "_type": _STRING,
}
_SLASHED = re.compile(r"/([^\n\r\u2028\u2029]*?)/(g?i?m?y?)\Z")


class DevicePolicy:
    """GenieACS `query.expand`: `._value` keys and string values grown into alternatives."""

    def field(self, key: str) -> FieldRef:
        if key in DEVICE_ATTRS:
            return DeviceAttr(key)
        json_scalar(key, key)
        segments = key.split(".")
        if key.startswith("_"):
            raise QueryError(f"unknown device attribute {key!r}")
        if not all(segments):
            raise QueryError(f"{key!r}: empty segment in parameter path")
        attr = "_value"
        if segments[-1].startswith("_"):
            attr = segments.pop()
            if attr not in PARAM_ATTRS:
                known = ", ".join(PARAM_ATTRS)
                raise QueryError(f"{key!r}: unknown parameter attribute {attr!r} (known: {known})")
        if any(s.startswith("_") for s in segments):
            raise QueryError(f"{key!r}: only the last segment may be an attribute")
        return ParamAttr(".".join(segments), attr)

    def kinds(self, ref: FieldRef) -> frozenset[Kind]:
        if isinstance(ref, ParamAttr):
            return PARAM_ATTRS[ref.attr]
        return DEVICE_ATTRS[ref.name] if isinstance(ref, DeviceAttr) else frozenset()

    def is_array(self, ref: FieldRef) -> bool:
        return ref == DeviceAttr("_tags")

    def check(self, ref: FieldRef, key: str, op: str) -> None:
        return None

    def alternatives(
        self, ref: FieldRef, key: str, value: object, context: Context
    ) -> list[Alternative]:
        scalar = json_scalar(key, value)
        if not isinstance(scalar, str) or context == "literal":
            return [scalar]
        out: list[Alternative] = [scalar]
        if context == "value" and (slashed := _SLASHED.match(scalar)):
            options = "".join(f for f in slashed[2] if f in "im")  # g and y change nothing
            out.append(_regex(key, slashed[1], options))
        if (number := numeric_string(scalar)) is not None:
            out.append(number)
        if (date := date_string(scalar)) is not None:
            out.append(date)
        if context == "value" and "*" in scalar:
            out.append(_regex(key, wildcard_source(scalar), ""))
        return out


DEVICES = DevicePolicy()


def parse_device_query(obj: object) -> Expr:
    """A `GET /devices/?query=` filter (already JSON-decoded) as an expression."""
    return parse_query(obj, DEVICES)


# ---------------------------------------------------------------------------------------
# Sorting.


@dataclass(frozen=True, slots=True)
class SortKey:
    field: FieldRef
    descending: bool = False


def parse_sort(obj: object, policy: QueryPolicy = DEVICES) -> list[SortKey]:
    """`{"_lastInform": -1, "Device.X": 1}` -> sort keys (parameter keys mean `._value`)."""
    if obj is None:
        return []
    if not isinstance(obj, dict):
        raise QueryError(f"sort: expected an object, got {_json_type(obj)}")
    if len(obj) > MAX_SORT_KEYS:
        raise QueryError(f"sort: more than {MAX_SORT_KEYS} keys")
    keys = []
    for key, direction in obj.items():
        if isinstance(direction, bool) or direction not in (1, -1):
            raise QueryError(f"sort: {key}: direction must be 1 or -1")
        keys.append(SortKey(policy.field(key), direction == -1))
    return keys


# ---------------------------------------------------------------------------------------
# Evaluation in Python.

SEALED = "sealed:"  # secrets at rest (schemas.sealing); cwmp_number ignores them too
_RANK: dict[str, int] = {"number": 1, "string": 2, "boolean": 3, "date": 4}
_NO_TYPE_BRACKET = NUMERIC_TYPES | {BOOLEAN, DATETIME}
Typed = tuple[tuple[Kind, object], ...]


@dataclass(frozen=True)
class ParamView:
    """One stored parameter as the evaluator sees it (a `device_params` row)."""

    value: str | None = None
    type: str | None = None
    # When the value last came from the CPE: for a value the last Inform carried
    # unchanged, that Inform's time (the store rewrites changed values only).
    value_ts: datetime | None = None
    writable: bool | None = None
    object: bool | None = None

    @cached_property
    def typed_value(self) -> Typed:
        """`_value` in its MongoDB bracket; numbers and dates as `value_num` holds them."""
        value, type_ = self.value, self.type
        if value is None or value.startswith(SEALED):
            return ()  # a sealed secret exists, but its value is not there to compare
        if type_ is None or type_ not in _NO_TYPE_BRACKET:
            return (("string", value),)
        if type_ == BOOLEAN:
            return (("boolean", value == "true"),) if value in ("true", "false") else ()
        number = stored_number(type_, value)
        if number is None:
            return ()
        return (("date" if type_ == DATETIME else "number", number),)


def stored_number(type_: str, value: str) -> Decimal | None:
    """What the `cwmp_number` SQL function stores in `value_num`, computed in Python.

    Integers and decimals as written; dateTime as epoch milliseconds rounded half away
    from zero; sealed secrets and anything unparsable give None. A NaN decimal sorts
    above every number in PostgreSQL, which Infinity reproduces for finite query values.
    """
    if type_ == DATETIME:
        parsed = parse_datetime(value)
        if parsed is None:
            return None
        return epoch_ms(parsed).to_integral_value(rounding=ROUND_HALF_UP)
    if type_ not in NUMERIC_TYPES or value.startswith(SEALED):
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    if number.is_snan():
        return None
    return Decimal("Infinity") if number.is_nan() else number


@dataclass(frozen=True)
class DeviceView:
    """A device as the evaluator sees it (a `devices` row plus its parameters)."""

    id: str
    tags: Sequence[str] = ()
    registered: datetime | None = None
    last_inform: datetime | None = None
    last_boot: datetime | None = None
    last_bootstrap: datetime | None = None
    manufacturer: str = ""
    oui: str = ""
    product_class: str = ""
    serial_number: str = ""
    params: Mapping[str, ParamView] = field(default_factory=dict)


def _date(value: datetime | None) -> Typed:
    return () if value is None else (("date", epoch_ms(value)),)


_DEVICE_VALUES: dict[str, Callable[[DeviceView], Typed]] = {
    "_id": lambda d: (("string", d.id),),
    "_tags": lambda d: tuple(("string", t) for t in d.tags),
    "_registered": lambda d: _date(d.registered),
    "_lastInform": lambda d: _date(d.last_inform),
    "_lastBoot": lambda d: _date(d.last_boot),
    "_lastBootstrap": lambda d: _date(d.last_bootstrap),
    "_deviceId._Manufacturer": lambda d: (("string", d.manufacturer),),
    "_deviceId._OUI": lambda d: (("string", d.oui),),
    "_deviceId._ProductClass": lambda d: (("string", d.product_class),),
    "_deviceId._SerialNumber": lambda d: (("string", d.serial_number),),
}
_PARAM_VALUES: dict[str, Callable[[ParamView], Typed]] = {
    "_value": lambda p: p.typed_value,
    "_timestamp": lambda p: _date(p.value_ts),
    "_writable": lambda p: () if p.writable is None else (("boolean", p.writable),),
    "_object": lambda p: () if p.object is None else (("boolean", p.object),),
    "_type": lambda p: () if p.type is None else (("string", p.type),),
}


def _values(ref: FieldRef) -> Callable[[DeviceView], Typed]:
    if isinstance(ref, DeviceAttr):
        return _DEVICE_VALUES[ref.name]
    if isinstance(ref, Column):
        raise QueryError(f"{ref.name}: collection fields cannot be evaluated on a device")
    path, get = ref.path, _PARAM_VALUES[ref.attr]

    def values(device: DeviceView) -> Typed:
        param = device.params.get(path)
        return () if param is None else get(param)

    return values


def _present(ref: FieldRef) -> Callable[[DeviceView], bool]:
    if isinstance(ref, ParamAttr) and ref.attr == "_value":
        path = ref.path

        def has_value(device: DeviceView) -> bool:
            param = device.params.get(path)
            return param is not None and param.value is not None

        return has_value
    values = _values(ref)
    return lambda device: bool(values(device))


def _comparable(value: Scalar) -> object:
    return epoch_ms(value) if isinstance(value, datetime) else value


_COMPARE: dict[str, Callable[[object, object], bool]] = {
    "eq": operator.eq,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
Predicate = Callable[[DeviceView], bool]


def _compile_compare(expr: Compare) -> Predicate:
    values, kind, key, cmp = (
        _values(expr.field),
        expr.kind,
        _comparable(expr.value),
        _COMPARE[expr.op],
    )
    return lambda d: any(k == kind and cmp(v, key) for k, v in values(d))


def _compile_in(expr: In) -> Predicate:
    values = _values(expr.field)
    wanted = frozenset(zip(expr.kinds, map(_comparable, expr.values), strict=True))
    return lambda d: any(item in wanted for item in values(d))


def _compile_matches(expr: Matches) -> Predicate:
    values, search = _values(expr.field), expr.regex.search
    return lambda d: any(k == "string" and search(v) for k, v in values(d))  # type: ignore[arg-type]


def _compile_size(expr: Size) -> Predicate:
    values, size = _values(expr.field), expr.size
    return lambda d: len(values(d)) == size


def _compile_and(expr: And) -> Predicate:
    parts = tuple(map(compile_predicate, expr.items))
    return lambda d: all(p(d) for p in parts)


def _compile_or(expr: Or) -> Predicate:
    parts = tuple(map(compile_predicate, expr.items))
    return lambda d: any(p(d) for p in parts)


def _compile_not(expr: Not) -> Predicate:
    inner = compile_predicate(expr.item)
    return lambda d: not inner(d)


_COMPILERS: dict[type, Callable[[Expr], Predicate]] = {
    Compare: _compile_compare,  # type: ignore[dict-item]
    In: _compile_in,  # type: ignore[dict-item]
    Exists: lambda expr: _present(expr.field),  # type: ignore[union-attr]
    Matches: _compile_matches,  # type: ignore[dict-item]
    Size: _compile_size,  # type: ignore[dict-item]
    And: _compile_and,  # type: ignore[dict-item]
    Or: _compile_or,  # type: ignore[dict-item]
    Not: _compile_not,  # type: ignore[dict-item]
}


@functools.lru_cache(maxsize=1024)
def compile_predicate(expr: Expr) -> Predicate:
    """The expression as a Python function of a device (cached: presets repeat)."""
    return _COMPILERS[type(expr)](expr)


def evaluate(expr: Expr, device: DeviceView) -> bool:
    """Whether the device matches, with the same answer the SQL compilation gives."""
    return compile_predicate(expr)(device)


def _sort_value(values: Typed, descending: bool) -> tuple[object, ...]:
    """MongoDB's sort value: missing lowest; arrays by their min (ascending) or max."""
    ranked = [(_RANK[k], v) for k, v in values]
    if not ranked:
        return (0,)
    return max(ranked) if descending else min(ranked)  # type: ignore[type-var]


def sort_devices(devices: Iterable[DeviceView], keys: Sequence[SortKey]) -> list[DeviceView]:
    """Devices in sort order, ties broken by `_id`, as `device_order_by` orders rows."""
    result = sorted(devices, key=lambda d: d.id)
    for key in reversed(keys):  # stable sorts, least significant key first
        values = _values(key.field)
        result.sort(
            key=lambda d, v=values, k=key: _sort_value(v(d), k.descending), reverse=key.descending
        )
    return result
