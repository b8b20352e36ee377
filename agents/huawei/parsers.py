"""Pure parsers for Huawei SmartAX (MA5600T/MA5608T/MA5800) CLI output: text in, our
models out; no I/O. Each parser runs `strip_noise`, then reads groups of lines between
dashed rules: a known column header makes the next group its rows, each row must match
its table's pattern. What does not fit (unknown column header, malformed or cut row, a
table not closed by a rule, a count line that disagrees) raises `ParseError` naming the
line, never a silently wrong row. Unknown lines pass only before the first table
(banners); line numbers are those of the output as given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from pydantic import BaseModel, ValidationError

from schemas.olt import AutofindEntry, Board, Ont, serial_forms

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)
Line = tuple[int, str]  # (1-based line number, text without trailing blanks)

_CONTEXT = 120


class ParseError(ValueError):
    """Output that does not read as the known form of `command`; names the line."""

    def __init__(
        self, command: str, reason: str, line_no: int | None = None, line: str | None = None
    ) -> None:
        super().__init__(command, reason, line_no, line)
        self.command = command
        self.reason = reason
        self.line_no = line_no
        self.line = line

    def __str__(self) -> str:
        where = f"line {self.line_no}: " if self.line_no is not None else ""
        if self.line is None:
            return f"{self.command}: {where}{self.reason}"
        shown = self.line if len(self.line) <= _CONTEXT else self.line[: _CONTEXT - 3] + "..."
        return f"{self.command}: {where}{self.reason} {shown!r}"


def _guarded(command: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Map any stray error of a parser to ParseError: callers catch one exception."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @wraps(func)
        def parse(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except ParseError:
                raise
            except (ValueError, LookupError, TypeError, ArithmeticError) as exc:
                raise ParseError(command, f"cannot parse: {exc}") from exc

        return parse

    return decorate


# --- noise ------------------------------------------------------------------------------

_PAGER = re.compile(r"[ \t]*-+ *More *\( *Press 'Q' to break *\) *-+")
# The pager is erased with ESC[37D, blanks, ESC[37D; netmiko also meets a stray " ESC[1D".
_PAGER_ERASE = re.compile(r"\x1b\[\d*D *\x1b\[\d*D")
_BACKSTEP = re.compile(r" ?\x1b\[1D")
_CSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_ALARM_START = re.compile(r"[ \t]*(?:![ \t]*(?:[A-Z]+[ \t]+)*(?:ALARM|EVENT)\b|ALARM[ \t])")
_ALARM_END = re.compile(r"[ \t]*-*[ \t]*END[ \t]*")
_ALARM_FIELD = re.compile(
    r"[ \t]*(?:ALARM NAME|EVENT NAME|ALARM ID|PARAMETERS|DESCRIPTION|CAUSE|ADVICE)[ \t]*:"
)
_ALARM_WINDOW = 30
_SMART_PROMPT = re.compile(r"[ \t]*\{ *<cr>.*\}:[ \t]*")
_COMMAND_ECHO = re.compile(r"[ \t]*Command:[ \t]*")
_WAIT = re.compile(r"[ \t]*Command is being executed\. Please wait\.*[ \t]*")
_RULE = re.compile(r"[ \t]*-{5,}[- \t]*")


def strip_noise(text: str) -> str:
    """The output without terminal noise, line numbering kept (removed lines are blanked).

    Recognised: `\\r`; the pager `---- More ( Press 'Q' to break ) ----` with the
    ESC[nD / blanks / ESC[nD sequence that erases it, and a stray " ESC[1D"; any other
    ANSI CSI sequence and other control characters; unsolicited alarm/event blocks,
    from a header line (`! MAJOR ALARM ...`, `! EVENT WARNING ...`, `ALARM 3046 FAULT
    ...`) through its `END` line (`--- END`) when one follows within 30 lines with no
    dashed rule between, else the header and the `ALARM NAME/PARAMETERS/DESCRIPTION/
    CAUSE/ADVICE :` lines after it; the smart-mode `{ <cr>||<K> }:` prompt, the
    `Command:` echo with the echoed command line, and `Command is being executed.`.
    Alarms are recognised only on their own lines.
    """
    text = text.replace("\r", "")
    text = _PAGER.sub("", text)
    text = _PAGER_ERASE.sub("", text)
    text = _BACKSTEP.sub("", text)
    text = _CSI.sub("", text)
    text = _CONTROL.sub("", text)
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        if _ALARM_START.match(line):
            index = _blank_alarm(lines, index)
        elif _SMART_PROMPT.fullmatch(line) or _WAIT.fullmatch(line):
            lines[index] = ""
            index += 1
        elif _COMMAND_ECHO.fullmatch(line):
            lines[index] = ""
            index += 1
            while index < len(lines) and not lines[index].strip():
                index += 1
            if index < len(lines):
                lines[index] = ""
                index += 1
        else:
            index += 1
    return "\n".join(lines)


def _blank_alarm(lines: list[str], start: int) -> int:
    """Blank the alarm block starting at `start`; the index after it."""
    end = None
    for index in range(start + 1, min(len(lines), start + _ALARM_WINDOW)):
        if _ALARM_END.fullmatch(lines[index]):
            end = index
            break
        if _RULE.fullmatch(lines[index]):
            break
    if end is None:
        end = start
        while end + 1 < len(lines) and _ALARM_FIELD.match(lines[end + 1]):
            end += 1
    for index in range(start, end + 1):
        lines[index] = ""
    return end + 1


# --- shared reading ---------------------------------------------------------------------


@dataclass(slots=True)
class _Group:
    lines: list[Line]
    closed: bool  # followed by a dashed rule


def _groups(text: str) -> list[_Group]:
    """Non-blank lines of the cleaned output, grouped between dashed rules."""
    groups: list[_Group] = []
    current: list[Line] = []
    for number, raw in enumerate(strip_noise(text).split("\n"), 1):
        if _RULE.fullmatch(raw):
            if current:
                groups.append(_Group(current, closed=True))
                current = []
        elif raw.strip():
            current.append((number, raw.rstrip()))
    if current:
        groups.append(_Group(current, closed=False))
    return groups


def _norm(line: str) -> str:
    return " ".join(line.split())


def _sections(
    command: str, text: str, headers: dict[str, tuple[str, ...]]
) -> Iterator[tuple[str | None, list[Line]]]:
    """(table name, rows) for each known header, ("", lines) for a group before the
    first table (a banner; never one that looks like data rows), (None, lines) for any
    other group. A group led by a header's first word that is not a known header is an
    unknown column header; a table must be closed by a rule (else the output was cut
    short).
    """
    groups = _groups(text)
    leaders = {header[0].split()[0] for header in headers.values()}
    seen_table = False
    pending: tuple[str, Line] | None = None
    for group in groups:
        normalised = tuple(_norm(line) for _, line in group.lines)
        name = next((key for key, header in headers.items() if header == normalised), None)
        if name is not None:
            if pending is not None:
                raise ParseError(command, "table header without rows", *pending[1])
            if not group.closed:
                raise ParseError(command, "table header without rows", *group.lines[-1])
            pending, seen_table = (name, group.lines[0]), True
            continue
        if normalised[0].split()[0] in leaders:
            bad = next(
                (line for line in group.lines if not line[1].lstrip()[:1].isdigit()),
                group.lines[0],
            )
            raise ParseError(command, "unknown column header", *bad)
        if pending is not None:
            if not group.closed:
                raise ParseError(command, "table not closed (output cut short?)", *group.lines[-1])
            yield pending[0], group.lines
            pending = None
        elif seen_table:
            yield None, group.lines
        else:
            for line in group.lines:
                if line[1].lstrip()[:1].isdigit():
                    raise ParseError(command, "row outside a table", *line)
            yield "", group.lines
    if pending is not None:
        raise ParseError(command, "table header without rows (output cut short?)", *pending[1])
    if groups and not seen_table:
        raise ParseError(command, "no known table in the output", *groups[0].lines[0])


def _build(model: type[M], command: str, line: Line, **fields: Any) -> M:
    """A model from parsed fields; a field out of range is a ParseError on `line`."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        detail = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()[:2]
        )
        raise ParseError(command, f"invalid value ({detail})", *line) from exc


_SERIAL = re.compile(r"([0-9A-Za-z-]{4,32})(?:\s*\(\s*([0-9A-Za-z-]{4,32})\s*\))?", re.A)


def _serials(command: str, value: str, line: Line) -> tuple[str, str]:
    """(serial, serial_vendor) of `48575443A1B2C3D4 (HWTC-A1B2C3D4)`, either form alone,
    or a serial that is no valid form (sanitised samples): kept upper-cased, vendor ""."""
    match = _SERIAL.fullmatch(value.strip())
    if match is None:
        raise ParseError(command, "not an ONT serial", *line)
    try:
        serial, vendor = serial_forms(match[1])
    except ValueError:
        return match[1].upper(), ""
    if match[2] is not None:
        try:
            other = serial_forms(match[2])
        except ValueError:
            other = None
        if other is not None and other != (serial, vendor):
            raise ParseError(command, "the two forms of the serial disagree", *line)
    return serial, vendor


_FSP = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*/\s*(\d+)\s*", re.A)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?", re.A)


def _float(command: str, value: str, line: Line) -> float | None:
    """A reading; "-" means none."""
    if value == "-":
        return None
    if not _NUMBER.fullmatch(value):
        raise ParseError(command, f"not a number: {value!r} in", *line)
    return float(value)


def _distance(command: str, value: str, line: Line) -> int | None:
    return None if value == "-" else _int(command, value, line)


def _int(command: str, value: str, line: Line) -> int:
    if not value.isascii() or not value.isdigit():
        raise ParseError(command, f"not a number: {value!r} in", *line)
    return int(value)


def _fsp(command: str, value: str, line: Line) -> dict[str, int]:
    """frame/slot/port of "0/1/2" (or "0/ 1/2")."""
    where = _FSP.fullmatch(value)
    if where is None:
        raise ParseError(command, "not a F/S/P", *line)
    return {"frame": int(where[1]), "slot": int(where[2]), "port": int(where[3])}


def _text(value: str) -> str:
    """A state, time or cause column; "-" (none) becomes ""."""
    return "" if value == "-" else value


_KV = re.compile(r"\s*([^:]*[^:\s])\s*:\s*(.*?)\s*")


def _key(text: str) -> str:
    return _norm(text).lower()


# --- display board ----------------------------------------------------------------------

BOARD = "display board"
_BOARD_HEADERS = {"board": ("SlotID BoardName Status SubType0 SubType1 Online/Offline",)}
_BOARD_ROW = re.compile(r"\s*(\d+)(?:\s+(\S+)\s+(\S+)((?:\s+\S+){0,3}))?\s*", re.A)
_ONLINE = frozenset({"online", "offline"})


@_guarded(BOARD)
def parse_board(text: str, frame: int = 0) -> list[Board]:
    """`display board F`: one Board per slot row (an empty slot has only its number)."""
    boards: list[Board] = []
    for name, lines in _sections(BOARD, text, _BOARD_HEADERS):
        if not name:
            if name is None:
                raise ParseError(BOARD, "unexpected line", *lines[0])
            continue
        for line in lines:
            match = _BOARD_ROW.fullmatch(line[1])
            if match is None:
                raise ParseError(BOARD, "unexpected row", *line)
            rest = (match[4] or "").split()
            online = rest.pop() if rest and rest[-1].lower() in _ONLINE else ""
            if len(rest) > 2:
                raise ParseError(BOARD, "more than two subtypes", *line)
            fields = {"board": match[2] or "", "status": match[3] or "", "online": online}
            fields.update(frame=frame, slot=int(match[1]), subtypes=rest)
            boards.append(_build(Board, BOARD, line, **fields))
    return boards


# --- display version --------------------------------------------------------------------

VERSION = "display version"
_MAINBOARD = re.compile(r"\s*(\w+) Mainboard Running Area Information\s*:\s*", re.A)
_UPTIME = re.compile(r"\s*Uptime is\s+(.+?)\s*")


def _snake(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


@_guarded(VERSION)
def parse_version(text: str) -> dict[str, str]:
    """`display version`: VERSION/PATCH/PRODUCT as "version"/"patch"/"product", each
    mainboard's areas prefixed ("active_mainboard_current_program_area"), "uptime"."""
    found: dict[str, str] = {}
    prefix = ""
    for number, raw in enumerate(strip_noise(text).split("\n"), 1):
        if not raw.strip() or _RULE.fullmatch(raw):
            continue
        line = (number, raw.rstrip())
        if mainboard := _MAINBOARD.fullmatch(raw):
            prefix = f"{_snake(mainboard[1])}_mainboard_"
            continue
        if uptime := _UPTIME.fullmatch(raw):
            key, value = "uptime", uptime[1]
        elif pair := _KV.fullmatch(raw):
            key, value = prefix + _snake(pair[1]), pair[2]
        else:
            raise ParseError(VERSION, "unexpected line", *line)
        if not key or key == prefix:
            raise ParseError(VERSION, "no key", *line)
        if key in found:
            raise ParseError(VERSION, f"{key} given twice", *line)
        found[key] = value
    if "version" not in found:
        raise ParseError(VERSION, "no VERSION line")
    return found


# --- display ont autofind ---------------------------------------------------------------

AUTOFIND = "display ont autofind"
_AUTOFIND_FIELDS = {
    "password": "password",
    "loid": "loid",
    "vendorid": "vendor_id",
    "ont version": "version",
    "ont softwareversion": "software_version",
    "ont equipmentid": "equipment_id",
    "ont autofind time": "found_at",
}
_AUTOFIND_COUNT = re.compile(r"\s*The number of .*autofind ONTs? (?:is|are)\s*:?\s*(\d+)\s*", re.A)


@_guarded(AUTOFIND)
def parse_autofind(text: str) -> list[AutofindEntry]:
    """`display ont autofind all|F/S/P`: one entry per dashed block of `key : value` lines
    (keys the model has no field for, such as Ont MAC, are skipped)."""
    entries: list[AutofindEntry] = []
    for group in _groups(text):
        if count := _AUTOFIND_COUNT.fullmatch(group.lines[0][1]):
            if int(count[1]) != len(entries) or len(group.lines) > 1:
                raise ParseError(AUTOFIND, "count disagrees with the entries", *group.lines[0])
            continue
        fields: dict[str, tuple[str, Line]] = {}
        for line in group.lines:
            pair = _KV.fullmatch(line[1])
            if pair is None:
                raise ParseError(AUTOFIND, "not a 'name : value' line", *line)
            fields.setdefault(_key(pair[1]), (pair[2], line))
        for required in ("number", "f/s/p", "ont sn"):
            if required not in fields:
                raise ParseError(AUTOFIND, f"entry without {required!r}", *group.lines[0])
        if not group.closed:
            raise ParseError(AUTOFIND, "entry not closed (output cut short?)", *group.lines[-1])
        _int(AUTOFIND, *fields["number"])
        serial, vendor = _serials(AUTOFIND, *fields["ont sn"])
        values = {
            ours: fields[theirs][0] for theirs, ours in _AUTOFIND_FIELDS.items() if theirs in fields
        }
        values.update(_fsp(AUTOFIND, *fields["f/s/p"]), serial=serial, serial_vendor=vendor)
        entries.append(_build(AutofindEntry, AUTOFIND, fields["f/s/p"][1], **values))
    return entries


# --- display ont info -------------------------------------------------------------------

ONT_INFO = "display ont info"
_ONT_HEADERS = {
    "onts": (
        "F/S/P ONT SN Control Run Config Match Protect",
        "ID flag state state state side",
    ),
    "descriptions": ("F/S/P ONT-ID Description",),
    "descriptions_2": ("F/S/P ONT Description", "ID"),
}
_FSP_ROW = r"\s*(\d+)\s*/\s*(\d+)\s*/\s*(\d+)\s+(\d+)"
_ONT_ROW = re.compile(_FSP_ROW + r"\s+(\S+)" * 6 + r"\s*", re.A)
_DESCRIPTION_ROW = re.compile(_FSP_ROW + r"(?:\s+(.*?))?\s*", re.A)
_PORT_TOTAL = re.compile(
    r"\s*In port\s+(\d+)\s*/\s*(\d+)\s*/\s*(\d+)\s*,\s*the total (?:number )?of ONTs"
    r" (?:are|is)\s*:\s*(\d+)(?:\s*,\s*online\s*:\s*\d+)?(?:\s*,\s*offline\s*:\s*\d+)?\s*",
    re.A | re.I,
)
_DETAIL_START = re.compile(r"\s*F/S/P\s*:")
_DETAIL_FIELDS = {
    "control flag": "control_flag",
    "run state": "run_state",
    "config state": "config_state",
    "match state": "match_state",
    "description": "description",
    "line profile name": "line_profile",
    "ont-lineprofile name": "line_profile",
    "service profile name": "service_profile",
    "ont-srvprofile name": "service_profile",
    "last up time": "last_up",
    "last down time": "last_down",
    "last down cause": "last_down_cause",
}
_DETAIL_REQUIRED = ("ont-id", "sn", "control flag", "run state", "config state", "match state")
_STATES = ("control_flag", "run_state", "config_state", "match_state")
_DETAIL_TEXT = frozenset({*_STATES, "last_up", "last_down", "last_down_cause"})


@_guarded(ONT_INFO)
def parse_ont_info(text: str) -> list[Ont]:
    """`display ont info F S [P [ID]]` / `display ont info by-sn SN`: the table form (ONT
    table, optional description table, per-port total lines) or the detail form."""
    for raw in strip_noise(text).split("\n"):
        if raw.strip() and not _RULE.fullmatch(raw):
            return _ont_detail(text) if _DETAIL_START.match(raw) else _ont_table(text)
    return []


Key = tuple[int, int, int, int]


def _ont_table(text: str) -> list[Ont]:
    rows: dict[Key, tuple[dict[str, Any], Line]] = {}
    totals: dict[tuple[int, int, int], tuple[int, Line]] = {}
    for name, lines in _sections(ONT_INFO, text, _ONT_HEADERS):
        for line in lines:
            if name == "onts":
                match = _ONT_ROW.fullmatch(line[1])
                if match is None:
                    raise ParseError(ONT_INFO, "unexpected row", *line)
                key: Key = (int(match[1]), int(match[2]), int(match[3]), int(match[4]))
                if key in rows:
                    raise ParseError(ONT_INFO, "ONT listed twice", *line)
                serial, vendor = _serials(ONT_INFO, match[5], line)
                states = [_text(value) for value in match.groups()[5:9]]
                rows[key] = (dict(zip(_STATES, states, strict=True), serial=serial), line)
                rows[key][0]["serial_vendor"] = vendor
            elif name == "":
                break  # a banner before the tables
            elif name is not None:
                match = _DESCRIPTION_ROW.fullmatch(line[1])
                if match is None:
                    raise ParseError(ONT_INFO, "unexpected row", *line)
                key = (int(match[1]), int(match[2]), int(match[3]), int(match[4]))
                if key not in rows or "description" in rows[key][0]:
                    raise ParseError(ONT_INFO, "description of an ONT not listed once", *line)
                rows[key][0]["description"] = match[5] or ""
            elif total := _PORT_TOTAL.fullmatch(line[1]):
                port = (int(total[1]), int(total[2]), int(total[3]))
                totals[port] = (int(total[4]), line)
            else:
                raise ParseError(ONT_INFO, "unexpected line", *line)
    onts: list[Ont] = []
    for (frame, slot, port, ont_id), (fields, line) in rows.items():
        if (frame, slot, port) not in totals:
            raise ParseError(ONT_INFO, f"no total line for port {frame}/{slot}/{port}", *line)
        onts.append(
            _build(Ont, ONT_INFO, line, frame=frame, slot=slot, port=port, ont_id=ont_id, **fields)
        )
    for (frame, slot, port), (total, line) in totals.items():
        listed = sum(1 for key in rows if key[:3] == (frame, slot, port))
        if listed != total:
            raise ParseError(ONT_INFO, f"{listed} ONTs listed but the total says", *line)
    return onts


def _ont_detail(text: str) -> list[Ont]:
    records: list[tuple[Line, dict[str, tuple[str, Line]]]] = []
    required_count: tuple[int, Line] | None = None
    for number, raw in enumerate(strip_noise(text).split("\n"), 1):
        line = (number, raw.rstrip())
        pair = _KV.fullmatch(raw)
        if pair is None:
            continue  # the profile sub-tables of the detail form are not read
        key = _key(pair[1])
        if key == "f/s/p":
            records.append((line, {}))
        if key == "the number of required onts" and pair[2].isascii() and pair[2].isdigit():
            required_count = (int(pair[2]), line)
        elif records:
            records[-1][1].setdefault(key, (pair[2], line))
    if required_count is not None and required_count[0] != len(records):
        raise ParseError(
            ONT_INFO, f"{len(records)} ONTs shown but the count says", *required_count[1]
        )
    onts: list[Ont] = []
    for start, fields in records:
        for required in _DETAIL_REQUIRED:
            if required not in fields:
                raise ParseError(ONT_INFO, f"ONT without {required!r} (output cut short?)", *start)
        values = {
            ours: fields[theirs][0] for theirs, ours in _DETAIL_FIELDS.items() if theirs in fields
        }
        for name in _DETAIL_TEXT & values.keys():
            values[name] = _text(values[name])
        serial, vendor = _serials(ONT_INFO, *fields["sn"])
        distance = fields.get("ont distance(m)")
        values.update(_fsp(ONT_INFO, *fields["f/s/p"]), serial=serial, serial_vendor=vendor)
        values["ont_id"] = _int(ONT_INFO, *fields["ont-id"])
        values["distance_m"] = _distance(ONT_INFO, *distance) if distance else None
        onts.append(_build(Ont, ONT_INFO, start, **values))
    return onts


# --- display ont info summary -----------------------------------------------------------

SUMMARY = "display ont info summary"
_SUMMARY_HEADERS = {
    "states": ("ONT Run Last Last Last", "ID State UpTime DownTime DownCause"),
    "onts": ("ONT SN Type Distance Rx/Tx power Description", "ID (m) (dBm)"),
}
_TIME = r"(-|\d{1,4}[-/]\d{1,2}[-/]\d{1,4} \d{1,2}:\d{2}:\d{2}(?:[+-]\d{2}:\d{2})?)"
_STATE_ROW = re.compile(rf"\s*(\d+)\s+(\S+)\s+{_TIME}\s+{_TIME}\s+(\S.*?)\s*", re.A)
_POWER = r"(-|-?\d+(?:\.\d+)?)"
_SUMMARY_ROW = re.compile(
    rf"\s*(\d+)\s+(\S+)\s+(\S+)\s+(\d+|-)\s+{_POWER}/{_POWER}(?:\s+(.*?))?\s*", re.A
)


_SUMMARY_TEXT = ("run_state", "last_up", "last_down", "last_down_cause")


@dataclass(slots=True)
class _Port:
    where: tuple[int, int, int]
    total: int | None
    line: Line
    states: dict[int, tuple[re.Match[str], Line]]
    onts: dict[int, tuple[re.Match[str], Line]]


@_guarded(SUMMARY)
def parse_ont_summary(
    text: str, frame: int | None = None, slot: int | None = None, port: int | None = None
) -> list[Ont]:
    """`display ont info summary F/S/P`: the state table joined with the SN table per
    ONT; the port comes from "In port F/S/P" lines, else from the arguments. The Rx/Tx
    power and ONT type columns are checked but not kept (Ont has no field for them)."""
    ports: list[_Port] = []
    for name, lines in _sections(SUMMARY, text, _SUMMARY_HEADERS):
        for line in lines:
            if not name:
                total = _PORT_TOTAL.fullmatch(line[1])
                if total is None and name is None:
                    raise ParseError(SUMMARY, "unexpected line", *line)
                if total is None:
                    continue  # a banner before the tables
                where = (int(total[1]), int(total[2]), int(total[3]))
                ports.append(_Port(where, int(total[4]), line, {}, {}))
                continue
            if not ports:
                if frame is None or slot is None or port is None:
                    raise ParseError(SUMMARY, "no 'In port F/S/P' line and no port given", *line)
                ports.append(_Port((frame, slot, port), None, line, {}, {}))
            pattern = _STATE_ROW if name == "states" else _SUMMARY_ROW
            match = pattern.fullmatch(line[1])
            if match is None:
                raise ParseError(SUMMARY, "unexpected row", *line)
            table = ports[-1].states if name == "states" else ports[-1].onts
            if int(match[1]) in table:
                raise ParseError(SUMMARY, "ONT listed twice", *line)
            table[int(match[1])] = (match, line)
    onts: list[Ont] = []
    for entry in ports:
        if entry.states.keys() != entry.onts.keys():
            raise ParseError(SUMMARY, "the two tables list different ONTs", *entry.line)
        if entry.total is not None and entry.total != len(entry.states):
            raise ParseError(
                SUMMARY, f"{len(entry.states)} ONTs listed but the total says", *entry.line
            )
        for ont_id, (state, _) in entry.states.items():
            row, line = entry.onts[ont_id]
            serial, vendor = _serials(SUMMARY, row[2], line)
            for power in row.group(5, 6):  # checked, not kept
                _float(SUMMARY, power, line)
            times = dict(zip(_SUMMARY_TEXT, map(_text, state.group(2, 3, 4, 5)), strict=True))
            values = dict(zip(("frame", "slot", "port"), entry.where, strict=True), **times)
            values.update(ont_id=ont_id, serial=serial, serial_vendor=vendor)
            values.update(description=row[7] or "", distance_m=_distance(SUMMARY, row[4], line))
            onts.append(_build(Ont, SUMMARY, line, **values))
    return onts


# --- display ont optical-info -----------------------------------------------------------

OPTICAL = "display ont optical-info"
_OPTICAL_HEADERS = {
    "optical": (
        "ONT Rx power Tx power OLT Rx ONT Temperature Voltage Current Distance",
        "ID (dBm) (dBm) power(dBm) (C) (V) (mA) (m)",
    )
}


@dataclass(frozen=True, slots=True)
class OntOptical:
    """One ONT's optical readings (`display ont optical-info P all`); None: not shown."""

    port: int
    ont_id: int
    rx_dbm: float | None
    tx_dbm: float | None
    olt_rx_dbm: float | None
    temperature_c: float | None
    voltage_v: float | None
    bias_ma: float | None
    distance_m: int | None


@_guarded(OPTICAL)
def parse_optical(text: str, port: int) -> list[OntOptical]:
    """`display ont optical-info P all` (inside `interface gpon F/S`): one per ONT row."""
    readings: list[OntOptical] = []
    for name, lines in _sections(OPTICAL, text, _OPTICAL_HEADERS):
        if not name:
            if name is None:
                raise ParseError(OPTICAL, "unexpected line", *lines[0])
            continue
        for line in lines:
            tokens = line[1].split()
            if len(tokens) != 8 or not tokens[0].isascii() or not tokens[0].isdigit():
                raise ParseError(OPTICAL, "unexpected row", *line)
            values = [_float(OPTICAL, token, line) for token in tokens[1:7]]
            readings.append(
                OntOptical(port, int(tokens[0]), *values, _distance(OPTICAL, tokens[7], line))
            )
    return readings


# --- display service-port ---------------------------------------------------------------

SERVICE_PORT = "display service-port"
_SERVICE_PORT_HEADERS = {
    "service_ports": (
        "INDEX VLAN VLAN PORT F/ S/ P VPI VCI FLOW FLOW RX TX STATE",
        "ID ATTR TYPE TYPE PARA",
    )
}
_SERVICE_PORT_ROW = re.compile(
    r"\s*(\d+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\d+)\s*/\s*(\d+)\s*/\s*(\d+)"
    r"\s+(\d+|-)\s+(\d+|-)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s*",
    re.A,
)
_SERVICE_PORT_TOTAL = re.compile(
    r"\s*Total\s*:\s*(\d+)\s*\(\s*Up/Down\s*:\s*\d+\s*/\s*\d+\s*\)\s*", re.A
)
_NOTE = re.compile(r"\s*Note\s*:")


@dataclass(frozen=True, slots=True)
class ServicePort:
    """A row of `display service-port all`. VPI/VCI are the ONT id and GEM index only on
    PON ports; elsewhere `ont_id` and `gemport` are None."""

    index: int
    vlan: int
    frame: int
    slot: int
    port: int
    ont_id: int | None
    gemport: int | None
    flow_type: str
    flow_para: str
    state: str
    vlan_attr: str = ""
    port_type: str = ""
    rx: str = ""
    tx: str = ""


@_guarded(SERVICE_PORT)
def parse_service_ports(text: str) -> list[ServicePort]:
    """`display service-port all`: the flow table, checked against its "Total : N" line."""
    ports: list[ServicePort] = []
    total: tuple[int, Line] | None = None
    for name, lines in _sections(SERVICE_PORT, text, _SERVICE_PORT_HEADERS):
        if name == "":
            continue
        if name is None:
            for line in lines:
                if _NOTE.match(line[1]):
                    break  # the legend that ends the output
                if (count := _SERVICE_PORT_TOTAL.fullmatch(line[1])) and total is None:
                    total = (int(count[1]), line)
                else:
                    raise ParseError(SERVICE_PORT, "unexpected line", *line)
            continue
        for line in lines:
            match = _SERVICE_PORT_ROW.fullmatch(line[1])
            if match is None:
                raise ParseError(SERVICE_PORT, "unexpected row", *line)
            pon = "pon" in match[4].lower()
            vpi, vci = (int(v) if pon and v != "-" else None for v in match.group(8, 9))
            numbers = map(int, match.group(1, 2, 5, 6, 7))
            texts = match.group(10, 11, 14, 3, 4, 12, 13)
            ports.append(ServicePort(*numbers, vpi, vci, *texts))
    if total is not None and total[0] != len(ports):
        raise ParseError(SERVICE_PORT, f"{len(ports)} rows but the total says", *total[1])
    return ports


# --- ont add ----------------------------------------------------------------------------

ONT_ADD = "ont add"
_ADDED = re.compile(r"Number of ONTs that can be added\s*:\s*(\d+)\s*,\s*success\s*:\s*(\d+)", re.A)
_ADDED_AT = re.compile(r"PortID\s*:\s*(\d+)\s*,\s*ONTID\s*:\s*(\d+)", re.A)


@_guarded(ONT_ADD)
def parse_ont_add(text: str) -> tuple[int, int]:
    """`ont add ...` in `interface gpon F/S`: (port, ont_id) of the ONT added."""
    lines = [(n, raw.rstrip()) for n, raw in enumerate(strip_noise(text).split("\n"), 1)]
    shown = [line for line in lines if line[1].strip()]
    first = shown[0] if shown else (None, None)
    added = next(((line, m) for line in shown if (m := _ADDED.search(line[1]))), None)
    if added is None:
        raise ParseError(ONT_ADD, "no 'Number of ONTs that can be added' line", *first)
    if int(added[1][2]) < 1:
        raise ParseError(ONT_ADD, "no ONT was added", *added[0])
    at = next((m for line in shown if (m := _ADDED_AT.search(line[1]))), None)
    if at is None:
        raise ParseError(ONT_ADD, "no 'PortID :P, ONTID :N' line", *added[0])
    return int(at[1]), int(at[2])
