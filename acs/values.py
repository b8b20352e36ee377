"""CWMP data types (TR-106 section 3.2): normalising what CPEs send, converting for storage.

CPEs label values with `xsd:int`, `xs:int`, `int`, the 1999 XMLSchema namespace or vendor
types such as `xsd:string(256)`. `normalize_type` maps all of them to one canonical
`xsd:` name; `canonical` puts a value into the one lexical form we store, keeping the
original text (and downgrading the type to string) when a CPE sends something its own
type does not allow, so nothing a CPE said is lost.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache

STRING = "xsd:string"
BOOLEAN = "xsd:boolean"
DATETIME = "xsd:dateTime"

_CANONICAL = {
    name.lower(): f"xsd:{name}"
    for name in (
        "string",
        "int",
        "unsignedInt",
        "long",
        "unsignedLong",
        "boolean",
        "dateTime",
        "base64",
        "base64Binary",
        "hexBinary",
        "decimal",
    )
}
_CANONICAL["base64binary"] = "xsd:base64"
INTEGER_TYPES = frozenset({"xsd:int", "xsd:unsignedInt", "xsd:long", "xsd:unsignedLong"})
NUMERIC_TYPES = INTEGER_TYPES | {"xsd:decimal"}
_INT_RANGES = {
    "xsd:int": (-(2**31), 2**31 - 1),
    "xsd:unsignedInt": (0, 2**32 - 1),
    "xsd:long": (-(2**63), 2**63 - 1),
    "xsd:unsignedLong": (0, 2**64 - 1),
}
_TRUE = frozenset({"1", "true"})
_FALSE = frozenset({"0", "false"})
_DATETIME_RE = re.compile(
    r"(?P<y>-?\d{4,})-(?P<mo>\d\d)-(?P<d>\d\d)T(?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)"
    r"(?:\.(?P<f>\d+))?(?P<tz>Z|[+-]\d\d:?\d\d)?"
)


@lru_cache(maxsize=1024)
def normalize_type(raw: str | None) -> str:
    """`xsd:string(256)`, `xs:int`, ` unsignedInt ` -> canonical `xsd:` names."""
    if not raw:
        return STRING
    local = raw.strip().rpartition(":")[2]
    paren = local.find("(")
    if paren >= 0:
        local = local[:paren]
    return _CANONICAL.get(local.strip().lower(), STRING)


def parse_datetime(text: str) -> datetime | None:
    """An xsd:dateTime as an aware datetime; no zone means UTC (TR-106 3.2.1)."""
    m = _DATETIME_RE.fullmatch(text.strip())
    if m is None:
        return None
    try:
        year = int(m["y"])
        if year < 1 or year > 9999:
            return None
        frac = m["f"] or "0"
        micro = int((frac + "000000")[:6])
        value = datetime(
            year,
            int(m["mo"]),
            int(m["d"]),
            int(m["h"]),
            int(m["mi"]),
            min(int(m["s"]), 59),
            micro,
            tzinfo=UTC,
        )
    except ValueError:
        return None
    tz = m["tz"]
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        try:
            value = value - sign * offset
        except OverflowError:
            return None
    return value


def format_datetime(value: datetime) -> str:
    """The form we send and store: UTC, milliseconds (microseconds when given), a Z."""
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    micro = value.microsecond
    fraction = f"{micro // 1000:03d}" if micro % 1000 == 0 else f"{micro:06d}"
    return f"{value.year:04d}" + value.strftime("-%m-%dT%H:%M:%S.") + fraction + "Z"


def canonical(type_: str, text: str) -> tuple[str, str]:
    """(value, type) in stored form; a value its type does not allow is kept as a string."""
    if type_ == STRING:
        return text, type_
    stripped = text.strip()
    if type_ in INTEGER_TYPES:
        try:
            number = int(stripped)
        except ValueError:
            return text, STRING
        low, high = _INT_RANGES[type_]
        if not low <= number <= high:
            return text, STRING
        return str(number), type_
    if type_ == BOOLEAN:
        low = stripped.lower()
        if low in _TRUE:
            return "true", type_
        if low in _FALSE:
            return "false", type_
        return text, STRING
    if type_ == DATETIME:
        parsed = parse_datetime(stripped)
        return (format_datetime(parsed), type_) if parsed else (text, STRING)
    if type_ == "xsd:decimal":
        try:
            number = Decimal(stripped)
        except InvalidOperation:
            return text, STRING
        return (stripped, type_) if number.is_finite() else (text, STRING)
    return stripped, type_


def to_json(type_: str, value: str) -> object:
    """A stored value as GenieACS shows it: numbers and booleans native, the rest text."""
    if type_ in INTEGER_TYPES:
        try:
            return int(value)
        except ValueError:
            return value
    if type_ == BOOLEAN:
        return value == "true"
    if type_ == "xsd:decimal":
        try:
            return float(value)
        except ValueError:
            return value
    return value


def from_json(value: object, type_: str | None) -> tuple[str, str]:
    """An API-supplied value (and optional type) as (lexical value, canonical type)."""
    if type_ is None:
        if isinstance(value, bool):
            type_ = BOOLEAN
        elif isinstance(value, int):
            type_ = "xsd:int" if -(2**31) <= value < 2**31 else "xsd:long"
        else:
            type_ = STRING
    else:
        type_ = normalize_type(type_)
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = ""
    else:
        text = str(value)
    return canonical(type_, text)


def for_cpe(
    type_: str, value: str, *, boolean_style: str = "word", datetime_ms: bool = False
) -> str:
    """A stored value in the form sent to a CPE: some CPEs only accept 1/0 booleans, and
    many refuse fractional seconds, so dateTimes go without them unless asked."""
    if type_ == BOOLEAN and boolean_style == "digit":
        return "1" if value == "true" else "0"
    if type_ == DATETIME and not datetime_ms:
        parsed = parse_datetime(value)
        if parsed is not None:
            return f"{parsed.year:04d}" + parsed.strftime("-%m-%dT%H:%M:%SZ")
    return value
