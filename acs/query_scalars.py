"""The JavaScript coercions GenieACS queries inherit: which strings are numbers or dates.

GenieACS expands a query string into a number when `+s === parseFloat(s)` and into a
Date when `new Date(s)` is valid, at least 8 characters long and after 1983; the task
and fault collections coerce with `Number(x)` and `new Date(x)`. These functions give
the same answers for the inputs operators write, with two deliberate differences:

* numbers keep their exact decimal value (`"18446744073709551615"` stays exact instead of
  rounding to a double) unless they have more than 100 digits or leave the double range;
* dates follow a documented grammar instead of V8's anything-goes fallback parser: ISO
  8601 (`2017-12-11`, `2017-12-11T13:16:23.5+01:00`, `2017-12-11 13:16:23 +0000`),
  `2017/12/11` and `12/11/2017`, RFC 2822 (`Mon, 11 Dec 2017 13:16:23 GMT`) and JavaScript's
  `Date.toString()` (`Mon Dec 11 2017 13:16:23 GMT+0100 (CET)`). A date without a zone
  is UTC (V8 would use the server's zone; ours run in UTC). Milliseconds are kept,
  finer fractions truncated, as a JavaScript Date does.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

MAX_DIGITS = 100
_JS_SPACE = "".join(
    ["\t\n\v\f\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff"]
    + [chr(c) for c in range(0x2000, 0x200B)]
)
_DECIMAL = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
_RADIX = re.compile(r"0(?:[xX](?P<x>[0-9a-fA-F]+)|[oO](?P<o>[0-7]+)|[bB](?P<b>[01]+))")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _literal_value(text: str) -> Decimal:
    """A JS decimal literal's value: exact when reasonable, else what a double holds."""
    if text.lstrip("+-") == "Infinity":
        return Decimal("-Infinity" if text.startswith("-") else "Infinity")
    value = Decimal(text)
    digits = len(value.as_tuple().digits)
    if value and (digits > MAX_DIGITS or not -324 <= value.adjusted() <= 308):
        return Decimal(repr(float(text)))  # 'inf' and 0.0 as JavaScript would round
    return value


def _radix_value(match: re.Match[str]) -> int:
    if match["x"]:
        return int(match["x"], 16)
    return int(match["o"], 8) if match["o"] else int(match["b"], 2)


def js_number(text: str) -> Decimal | None:
    """JavaScript `Number(text)` (`+text`); None stands for NaN."""
    stripped = text.strip(_JS_SPACE)
    if not stripped:
        return Decimal(0)
    if radix := _RADIX.fullmatch(stripped):
        return Decimal(_radix_value(radix))
    return _literal_value(stripped) if _DECIMAL.fullmatch(stripped) else None


def numeric_string(text: str) -> Decimal | None:
    """The finite number `text` stands for when `+text === parseFloat(text)`, else None.

    `"1"`, `"1.0"`, `" 5"`, `"1e3"`, `".5"` qualify; `""`, `"0x10"`, `"1abc"`, `"1e"` do not;
    `"0x0"` does (both sides are 0). `"Infinity"` qualifies in JavaScript but is not
    finite, and no stored parameter holds it, so it is left out.
    """
    stripped = text.strip(_JS_SPACE)
    if radix := _RADIX.fullmatch(stripped):
        return Decimal(0) if _radix_value(radix) == 0 else None  # parseFloat reads "0"
    if not _DECIMAL.fullmatch(stripped):
        return None
    value = _literal_value(stripped)
    return value if value.is_finite() else None


_ZONES = {"Z": 0, "UT": 0, "UTC": 0, "GMT": 0, "EST": -300, "EDT": -240, "CST": -360}
_ZONES |= {"CDT": -300, "MST": -420, "MDT": -360, "PST": -480, "PDT": -420}
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_WEEKDAYS = frozenset(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
_TIME = r"(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d+))?)?"
_ZONE = r"(?P<tz>[A-Za-z]{1,3}(?:[+-]\d{2}:?\d{2})?|[+-]\d{2}(?::?\d{2})?)"
_NUMERIC_DATE = re.compile(
    rf"""\+?(?:(?P<y>\d{{4}})(?:(?P<sep>[-/])(?P<mo>\d{{1,2}})(?:(?P=sep)(?P<d>\d{{1,2}}))?)?
        |(?P<us_mo>\d{{1,2}})/(?P<us_d>\d{{1,2}})/(?P<us_y>\d{{4}}))
        (?:(?:[Tt]|\s+){_TIME})?\s*{_ZONE}?""",
    re.VERBOSE,
)
_TOKEN_TIME = re.compile(_TIME + r"(?:\s*(?P<ampm>[AaPp][Mm]))?")
_TOKEN_ZONE = re.compile(_ZONE)


def _zone_minutes(zone: str | None) -> int | None:
    """Minutes east of UTC for `Z`, `GMT`, `EST`, `+0100`, `-05:00`, `GMT+0100`..."""
    if not zone:
        return 0
    name = zone.rstrip("+-:0123456789").upper()
    offset = zone[len(name) :]
    if name and name not in _ZONES:
        return None
    minutes = _ZONES.get(name, 0)
    if offset:
        digits = offset[1:].replace(":", "")
        if name and len(digits) != 4:
            return None
        hours, mins = int(digits[:2]), int(digits[2:] or 0)
        if hours > 23 or mins > 59:
            return None
        minutes += (hours * 60 + mins) * (-1 if offset[0] == "-" else 1)
    return minutes


def _assemble(
    year: int,
    month: int,
    day: int,
    time: re.Match[str] | None,
    zone: str | None,
) -> datetime | None:
    hour = minute = second = micro = 0
    if time is not None:
        hour, minute = int(time["h"]), int(time["mi"])
        second = int(time["s"] or 0)
        micro = int(((time["f"] or "") + "000")[:3]) * 1000
        ampm = (time.groupdict().get("ampm") or "").lower()
        if ampm:
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if ampm == "pm" else 0)
    offset = _zone_minutes(zone)
    if offset is None:
        return None
    try:
        local = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
        return local - timedelta(minutes=offset)
    except (ValueError, OverflowError):
        return None


def _textual_date(text: str) -> datetime | None:
    """`Mon, 11 Dec 2017 13:16:23 GMT`, `Dec 11, 2017 1:16 PM`, `11-Dec-2017`..."""
    text = re.sub(r"\([^)]*\)", " ", text).replace(",", " ")
    text = re.sub(r"\b(\d{1,2})-([A-Za-z]{3,})-(\d{4})\b", r"\1 \2 \3", text)
    month: int | None = None
    numbers: list[int] = []
    time: re.Match[str] | None = None
    zone: str | None = None
    tokens = text.split()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        word = token.lower()
        if i + 1 < len(tokens) and tokens[i + 1].lower() in ("am", "pm"):
            token, i = token + tokens[i + 1], i + 1
        if token.isdigit() and len(token) in (1, 2, 4):
            numbers.append(int(token) if len(token) < 4 else -int(token))  # years negative
        elif word[:3] in _MONTHS and word.isalpha() and month is None:
            month = _MONTHS[word[:3]]
        elif word[:3] in _WEEKDAYS and word.isalpha():
            pass
        elif time is None and (m := _TOKEN_TIME.fullmatch(token)):
            time = m
        elif zone is None and _TOKEN_ZONE.fullmatch(token):
            zone = token
        else:
            return None
        i += 1
    days = [n for n in numbers if n > 0]
    years = [-n for n in numbers if n < 0]
    if month is None or len(days) != 1 or len(years) != 1:
        return None
    return _assemble(years[0], month, days[0], time, zone)


def parse_date(text: str) -> datetime | None:
    """What `new Date(text)` means, as an aware UTC datetime, or None when invalid."""
    stripped = text.strip(_JS_SPACE)
    m = _NUMERIC_DATE.fullmatch(stripped)
    if m is None:
        return _textual_date(stripped) if any(c.isalpha() for c in stripped) else None
    if m["us_y"]:
        year, month, day = int(m["us_y"]), int(m["us_mo"]), int(m["us_d"])
    else:
        year, month, day = int(m["y"]), int(m["mo"] or 1), int(m["d"] or 1)
        if m["h"] is not None and m["d"] is None:
            return None
    return _assemble(year, month, day, m if m["h"] is not None else None, m["tz"])


def date_string(text: str) -> datetime | None:
    """GenieACS's test for a query string that also means a Date: valid, >= 8 characters,
    year after 1983."""
    if len(text) < 8:
        return None
    value = parse_date(text)
    return value if value is not None and value.year > 1983 else None


def epoch_ms(value: datetime) -> Decimal:
    """Milliseconds since 1970 as an exact decimal (microseconds are fractions)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    whole = (delta.days * 86_400 + delta.seconds) * 1000
    return Decimal(whole) + Decimal(delta.microseconds) / 1000


def from_epoch_ms(ms: Decimal) -> datetime | None:
    """`new Date(ms)`: None outside the years 1-9999 we can store."""
    try:
        return _EPOCH + timedelta(milliseconds=int(ms))
    except (OverflowError, ValueError):
        return None
