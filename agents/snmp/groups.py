"""The SNMP driver's poll groups: which OIDs each asks for, and its samples from a walk.

Pure code: options in, `TableSpec`s out; walked varbinds and the previous poll's
counters in, samples, events and the next counters out. The driver (`agents.snmp.driver`)
does the I/O around it.

Groups:
- `system`: sysUpTime as `sys_uptime_s`.
- `if`: IF-MIB ifTable + ifXTable, one set of samples per interface, labelled
  `{"ifIndex": "3", "ifName": "..."}` (ifDescr when the agent has no ifName):
  `if_in_bps`/`if_out_bps` (bits/s from ifHCIn/OutOctets where the agent has them,
  ifIn/OutOctets otherwise), `if_oper_status` (1 up, 2 down, ... as IF-MIB numbers it),
  `if_in_errors_ps`, `if_out_errors_ps`, `if_in_discards_ps`, `if_out_discards_ps`.
- any other name: a table group, options
      {"walk": ["1.3.6.1.2.1.2.2.1.10", ...],   # numeric column OIDs, 1 to 32
       "metric": "name" | ["name per column", ...],
       "scale": 0.01, "offset": 0,              # value * scale + offset
       "skip_values": [2147483647],             # raw values meaning "no reading"
       "rate": false,                           # true: per-second rate of a counter
       "labels": {"onu": "1.3.6.1...."},        # label from a walked string column
       "index_label": "index"}                  # name of the row index label
  Each walked numeric value (INTEGER, unsigned types, or an OCTET STRING holding a
  decimal number, as some vendors send optical levels) becomes a sample labelled by its
  row index (the OID arcs after the column, dotted). With several columns and one metric
  name, a `column` label (the column OID) tells them apart.

Options every group takes: timeout (s), retries, max_repetitions, max_varbinds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

from agents.driver import PollError
from agents.snmp.ber import (
    BYTES_TAGS,
    COUNTER64,
    INTEGER,
    OCTET_STRING,
    UNSIGNED_TAGS,
    Oid,
    VarBind,
    dotted,
    parse_oid,
)
from agents.snmp.counters import (
    DEFAULT_MAX_BYTES_PER_S,
    DEFAULT_MAX_EVENTS_PER_S,
    CounterMemory,
    Rate,
    Reading,
    Reset,
    counter_rate,
    elapsed,
    max_bytes_per_second,
)
from schemas.frames import Event, Sample

SYS_UPTIME: Final[Oid] = (1, 3, 6, 1, 2, 1, 1, 3, 0)

IF_TABLE: Final[Oid] = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IF_X_TABLE: Final[Oid] = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
# Column name -> OID (IF-MIB, RFC 2863).
IF_COLUMNS: Final[dict[str, Oid]] = {
    "descr": (*IF_TABLE, 2),
    "speed": (*IF_TABLE, 5),
    "oper_status": (*IF_TABLE, 8),
    "in_octets": (*IF_TABLE, 10),
    "in_discards": (*IF_TABLE, 13),
    "in_errors": (*IF_TABLE, 14),
    "out_octets": (*IF_TABLE, 16),
    "out_discards": (*IF_TABLE, 19),
    "out_errors": (*IF_TABLE, 20),
    "name": (*IF_X_TABLE, 1),
    "hc_in_octets": (*IF_X_TABLE, 6),
    "hc_out_octets": (*IF_X_TABLE, 10),
    "high_speed": (*IF_X_TABLE, 15),
    "discontinuity": (*IF_X_TABLE, 19),
}
# Rate samples of the `if` group: metric, counter, factor (8: octets to bits).
IF_RATES: Final = (
    ("if_in_bps", "in_octets", 8),
    ("if_out_bps", "out_octets", 8),
    ("if_in_errors_ps", "in_errors", 1),
    ("if_out_errors_ps", "out_errors", 1),
    ("if_in_discards_ps", "in_discards", 1),
    ("if_out_discards_ps", "out_discards", 1),
)

COMMON_OPTIONS: Final = {"timeout", "retries", "max_repetitions", "max_varbinds"}
TABLE_OPTIONS: Final = {
    "walk",
    "metric",
    "scale",
    "offset",
    "skip_values",
    "rate",
    "labels",
    "index_label",
}
_METRIC = re.compile(r"^[A-Za-z_][A-Za-z0-9_:.]{0,127}$")
_LABEL = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Settings:
    """The options every group takes, checked, with defaults filled in."""

    timeout: float
    retries: int
    max_repetitions: int
    max_varbinds: int


@dataclass(frozen=True, slots=True)
class TableSpec:
    columns: tuple[Oid, ...]
    metrics: tuple[str, ...]  # one per column
    scale: float
    offset: float
    skip_values: frozenset[float]
    rate: bool
    labels: tuple[tuple[str, Oid], ...]
    index_label: str
    column_label: bool  # several columns share one metric name

    @property
    def walk_roots(self) -> list[Oid]:
        return [*self.columns, *(oid for _, oid in self.labels)]


def _number(options: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise PollError(f"option {name} must be a number in [{low}, {high}]", code="bad_options")
    return float(value)


def settings(options: dict[str, Any], credentials: dict[str, Any]) -> Settings:
    """Timeout and retries from the group's options, else the target's credentials (where
    an inventory may set them per device), else 2 s and 1 retry."""
    base = {k: credentials[k] for k in ("timeout", "retries") if k in credentials}
    merged = {**base, **{k: v for k, v in options.items() if k in COMMON_OPTIONS}}
    return Settings(
        timeout=_number(merged, "timeout", 2.0, 0.05, 60),
        retries=int(_number(merged, "retries", 1, 0, 10)),
        max_repetitions=int(_number(merged, "max_repetitions", 25, 1, 500)),
        max_varbinds=int(_number(merged, "max_varbinds", 1_000_000, 1, 10_000_000)),
    )


def check_options(name: str, options: dict[str, Any]) -> TableSpec | None:
    """PollError unless group `name` can be polled with `options`; a table's spec."""
    if not isinstance(options, dict):
        raise PollError(f"options of group {name} must be a map", code="bad_options")
    settings(options, {})
    if name in ("system", "if"):
        unknown = set(options) - COMMON_OPTIONS
        if unknown:
            raise PollError(
                f"group {name} takes no option {', '.join(sorted(unknown))}", code="bad_options"
            )
        return None
    if "walk" not in options:
        raise PollError(
            f"unknown SNMP group {name!r} (a table group needs options.walk)",
            code="unknown_group",
        )
    return table_spec(name, options)


def table_spec(name: str, options: dict[str, Any]) -> TableSpec:
    """The checked spec of table group `name`; PollError naming the bad option."""

    def bad(message: str) -> PollError:
        return PollError(f"group {name}: {message}", code="bad_options")

    unknown = set(options) - COMMON_OPTIONS - TABLE_OPTIONS
    if unknown:
        raise bad(f"unknown option {', '.join(sorted(unknown))}")
    walk = options["walk"]
    if isinstance(walk, str):
        walk = [walk]
    if not isinstance(walk, list) or not 1 <= len(walk) <= 32:
        raise bad("walk must be a list of 1 to 32 numeric OIDs")
    if not all(isinstance(w, str) for w in walk):
        raise bad("walk must be a list of numeric OIDs as strings")
    try:
        columns = tuple(parse_oid(w) for w in walk)
    except ValueError as exc:
        raise bad(str(exc)) from None
    metric = options.get("metric")
    if isinstance(metric, str):
        metrics = (metric,) * len(columns)
    elif isinstance(metric, list) and len(metric) == len(columns):
        metrics = tuple(metric)
    else:
        raise bad("metric must be a name, or a list of one name per walked column")
    for m in metrics:
        if not isinstance(m, str) or not _METRIC.match(m):
            raise bad(f"metric {m!r} is not a valid metric name")
    skip = options.get("skip_values", [])
    if not isinstance(skip, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in skip
    ):
        raise bad("skip_values must be a list of numbers")
    rate = options.get("rate", False)
    if not isinstance(rate, bool):
        raise bad("rate must be true or false")
    labels_raw = options.get("labels", {})
    if not isinstance(labels_raw, dict) or len(labels_raw) > 8:
        raise bad("labels must map at most 8 label names to column OIDs")
    labels = []
    for label, oid in labels_raw.items():
        if not isinstance(label, str) or not _LABEL.match(label) or not isinstance(oid, str):
            raise bad(f"label {label!r} must name a column OID")
        try:
            labels.append((label, parse_oid(oid)))
        except ValueError as exc:
            raise bad(str(exc)) from None
    index_label = options.get("index_label", "index")
    if not isinstance(index_label, str) or not _LABEL.match(index_label):
        raise bad("index_label must be a label name")
    return TableSpec(
        columns=columns,
        metrics=metrics,
        scale=_number(options, "scale", 1.0, -1e12, 1e12),
        offset=_number(options, "offset", 0.0, -1e12, 1e12),
        skip_values=frozenset(float(v) for v in skip),
        rate=rate,
        labels=tuple(labels),
        index_label=index_label,
        column_label=len(set(metrics)) < len(metrics),
    )


# --- values ------------------------------------------------------------------------------


def numeric(tag: int, value: object) -> float | None:
    """A walked value as a number, or None when it is not one."""
    if tag == INTEGER or tag in UNSIGNED_TAGS:
        return float(value)  # type: ignore[arg-type]
    if tag == OCTET_STRING and isinstance(value, bytes) and 0 < len(value) <= 32:
        try:
            number = float(value.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            return None
        return number if math.isfinite(number) else None
    return None


def text(tag: int, value: object) -> str:
    """A walked value as a label value: printable, at most 256 characters."""
    if tag in BYTES_TAGS and isinstance(value, bytes):
        out = value.decode("utf-8", "replace")
    elif isinstance(value, tuple):
        out = dotted(value)
    else:
        out = "" if value is None else str(value)
    return _CONTROL.sub(" ", out).strip()[:256]


def by_index(column: Oid, varbinds: list[VarBind]) -> dict[str, VarBind]:
    """A column's varbinds keyed by their row index ("3", "1.2.5")."""
    n = len(column)
    return {".".join(map(str, vb[0][n:])): vb for vb in varbinds}


# --- the `if` group -----------------------------------------------------------------------


def if_samples(
    target: int,
    columns: dict[Oid, list[VarBind]],
    uptime: int | None,
    now_ms: int,
    memory: CounterMemory | None,
) -> tuple[list[Sample], list[Event], CounterMemory]:
    """Samples and events of one poll of ifTable/ifXTable, and the counters to keep."""
    col = {name: by_index(oid, columns.get(oid, [])) for name, oid in IF_COLUMNS.items()}
    seconds, restart = elapsed(memory, now_ms, uptime)
    samples: list[Sample] = []
    events: list[Event] = []
    readings: dict[tuple[str, str], Reading] = {}
    if restart:
        events.append(Event(target, "counter_reset", now_ms, {"group": "if", "reason": restart}))
    indexes = sorted(
        set(col["oper_status"]) | set(col["in_octets"]) | set(col["hc_in_octets"]),
        key=_index_key,
    )
    for index in indexes:
        label_vb = col["name"].get(index) or col["descr"].get(index)
        labels = {"ifIndex": index, "ifName": text(label_vb[1], label_vb[2]) if label_vb else ""}
        oper = col["oper_status"].get(index)
        if oper is not None and (status := numeric(oper[1], oper[2])) is not None:
            samples.append(Sample(target, "if_oper_status", labels, now_ms, status))
        discontinuity = _int_of(col["discontinuity"].get(index))
        row_readings = _if_readings(col, index, discontinuity)
        readings.update(((index, name), r) for name, r in row_readings.items())
        if seconds is None or memory is None:
            continue
        speed = max_bytes_per_second(
            _int_of(col["speed"].get(index)), _int_of(col["high_speed"].get(index))
        )
        resets: list[str] = []
        for metric, counter, factor in IF_RATES:
            current = row_readings.get(counter)
            if current is None:
                continue
            # Packets and errors: a port carries at most speed/84 bytes worth of frames.
            limit = speed if factor == 8 else _max_frames(speed)
            outcome = counter_rate(memory.readings.get((index, counter)), current, seconds, limit)
            if isinstance(outcome, Rate):
                samples.append(Sample(target, metric, labels, now_ms, outcome.per_second * factor))
            elif isinstance(outcome, Reset):
                resets.append(f"{counter}: {outcome.reason}")
        if resets:
            events.append(
                Event(
                    target,
                    "counter_reset",
                    now_ms,
                    {"group": "if", "ifIndex": index, "reasons": resets},
                )
            )
    return samples, events, CounterMemory(now_ms, uptime, readings)


def _if_readings(
    col: dict[str, dict[str, VarBind]], index: str, discontinuity: int | None
) -> dict[str, Reading]:
    out: dict[str, Reading] = {}
    for name in ("in_octets", "out_octets"):
        hc = _int_of(col["hc_" + name].get(index))
        if hc is not None:
            out[name] = Reading(hc, 64, discontinuity)
        elif (low := _int_of(col[name].get(index))) is not None:
            out[name] = Reading(low, 32, discontinuity)
    for name in ("in_errors", "out_errors", "in_discards", "out_discards"):
        value = _int_of(col[name].get(index))
        if value is not None:
            out[name] = Reading(value, 32, discontinuity)
    return out


def _max_frames(bytes_per_second: float) -> float:
    if bytes_per_second >= DEFAULT_MAX_BYTES_PER_S:
        return DEFAULT_MAX_EVENTS_PER_S
    return bytes_per_second / 84  # 64-byte frame + preamble + inter-frame gap


def _int_of(vb: VarBind | None) -> int | None:
    if (
        vb is None
        or not isinstance(vb[2], int)
        or (vb[1] not in UNSIGNED_TAGS and vb[1] != INTEGER)
    ):
        return None
    return vb[2]


def _index_key(index: str) -> tuple[int, ...]:
    return tuple(int(p) for p in index.split("."))


# --- table groups -------------------------------------------------------------------------


def table_samples(
    target: int,
    group: str,
    spec: TableSpec,
    columns: dict[Oid, list[VarBind]],
    *,
    uptime: int | None,
    now_ms: int,
    memory: CounterMemory | None,
) -> tuple[list[Sample], list[Event], CounterMemory | None]:
    """Samples of one poll of a table group (and its counters, when it reports rates)."""
    samples: list[Sample] = []
    events: list[Event] = []
    label_cols = [(name, by_index(oid, columns.get(oid, []))) for name, oid in spec.labels]
    seconds, restart = elapsed(memory, now_ms, uptime) if spec.rate else (None, None)
    if restart:
        events.append(Event(target, "counter_reset", now_ms, {"group": group, "reason": restart}))
    readings: dict[tuple[str, str], Reading] = {}
    resets: list[str] = []
    for column, metric in zip(spec.columns, spec.metrics, strict=True):
        n = len(column)
        col_name = dotted(column)
        for oid, tag, value in columns.get(column, []):
            index = ".".join(map(str, oid[n:]))
            labels = {spec.index_label: index}
            for name, rows in label_cols:
                vb = rows.get(index)
                labels[name] = text(vb[1], vb[2]) if vb else ""
            if spec.column_label:
                labels["column"] = col_name
            if spec.rate:
                if not isinstance(value, int) or tag not in UNSIGNED_TAGS:
                    continue
                current = Reading(value, 64 if tag == COUNTER64 else 32)
                readings[(col_name, index)] = current
                if seconds is None or memory is None:
                    continue
                previous = memory.readings.get((col_name, index))
                outcome = counter_rate(previous, current, seconds, DEFAULT_MAX_EVENTS_PER_S)
                if isinstance(outcome, Reset):
                    resets.append(f"{col_name}.{index}: {outcome.reason}")
                if not isinstance(outcome, Rate):
                    continue
                number = outcome.per_second * spec.scale
            else:
                raw = numeric(tag, value)
                if raw is None or raw in spec.skip_values:
                    continue
                number = raw * spec.scale + spec.offset
            samples.append(Sample(target, metric, labels, now_ms, number))
    if resets:
        events.append(
            Event(target, "counter_reset", now_ms, {"group": group, "reasons": resets[:100]})
        )
    return samples, events, CounterMemory(now_ms, uptime, readings) if spec.rate else None
