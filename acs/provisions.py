"""Provision, preset and virtual-parameter documents: parsing and validation. Pure code.

A provision is a list of declarative steps (JSON or YAML); nothing in it runs as code:

    - declare: InternetGatewayDevice.LANDevice.1.WLANConfiguration.*.SSID
      value: "ISP-${substr(serial, -6)}"          # desired value (a template, see acs.expr)
      type: xsd:string                             # optional; else the device's own type
      refresh: 3600                                # optional: value read within the hour
    - declare: Device.PPP.Interface.[Alias:internet]
      instances: 1                                 # or {min: 1, max: 2}
    - value: [InternetGatewayDevice.ManagementServer.PeriodicInformInterval, 3600, xsd:unsignedInt]
    - refresh: InternetGatewayDevice.DeviceInfo.   # an object: its whole subtree
      age: 86400
    - tag: business                                # or untag
    - reboot: 86400          # unless the device booted within the last 86400 s
    - factoryReset: 0        # unless it bootstrapped within the last N s
    - download: {fileType: 1 Firmware Upgrade Image, fileName: fw-2.0.bin}
    - upload: {fileType: 1 Vendor Configuration File, every: 86400}

Errors point at the step: `ProvisionError("step 3 (declare): ...")`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml
from croniter import croniter

from acs import expr, paths
from acs.query import Expr as Query
from acs.query import QueryError, parse_device_query
from acs.values import normalize_type

MAX_STEPS = 500
MAX_SOURCE = 256 * 1024
RESERVED = frozenset({"bootstrap", "inform"})
VIRTUAL_ROOT = "VirtualParameters"


class ProvisionError(ValueError):
    """A document that cannot be used; the message says which step or field and why."""


# --- steps ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Declare:
    pattern: paths.Pattern
    value: expr.Template | None = None
    type: str | None = None
    value_age: int | None = None  # the value must have been read within this many seconds
    path_age: int | None = None  # the instances must have been listed within this many seconds
    instances: tuple[int, int] | None = None  # (min, max) matching instances


@dataclass(frozen=True, slots=True)
class Tag:
    name: expr.Template
    add: bool


@dataclass(frozen=True, slots=True)
class Reboot:
    within: int  # seconds: reboot unless the last boot is this recent


@dataclass(frozen=True, slots=True)
class FactoryReset:
    within: int


@dataclass(frozen=True, slots=True)
class DownloadStep:
    file_type: str
    file_name: expr.Template
    target_file_name: expr.Template


@dataclass(frozen=True, slots=True)
class UploadStep:
    file_type: str
    every: int


Step = Declare | Tag | Reboot | FactoryReset | DownloadStep | UploadStep


def _seconds(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ProvisionError(f"{what} must be a number of seconds (>= 0)")
    return int(value)


def _template(value: Any, what: str) -> expr.Template:
    if isinstance(value, bool):
        return expr.Template((expr.Literal(value),))
    if isinstance(value, int | float):
        return expr.Template((expr.Literal(value),))
    if not isinstance(value, str):
        raise ProvisionError(f"{what} must be a string, number or boolean")
    try:
        return expr.template(value)
    except expr.ExprError as exc:
        raise ProvisionError(f"{what}: {exc}") from None


def _pattern(value: Any, what: str) -> paths.Pattern:
    if not isinstance(value, str):
        raise ProvisionError(f"{what} must be a parameter path")
    try:
        return paths.parse(value)
    except paths.PathError as exc:
        raise ProvisionError(f"{what}: {exc}") from None


def _type(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProvisionError("type must be an xsd type name such as xsd:string")
    return normalize_type(value)


def _instances(value: Any) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value, value
    if isinstance(value, dict) and set(value) <= {"min", "max"}:
        low = value.get("min", 0)
        high = value.get("max", 2**31)
        counts = all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in (low, high))
        if counts and low <= high:
            return low, high
    raise ProvisionError("instances must be a count or {min: N, max: M} with min <= max")


def _declare(body: dict[str, Any]) -> Declare:
    allowed = {"declare", "value", "type", "refresh", "pathRefresh", "instances"}
    unknown = set(body) - allowed
    if unknown:
        raise ProvisionError(f"unknown field(s) {', '.join(sorted(unknown))}")
    pattern = _pattern(body["declare"], "declare")
    instances = _instances(body["instances"]) if "instances" in body else None
    if instances is not None and (pattern.object or isinstance(pattern.segments[-1], str)):
        raise ProvisionError("instances needs a path ending in a wildcard or an alias")
    if "value" in body and pattern.object:
        raise ProvisionError("a value cannot be declared for an object (path ends in '.')")
    return Declare(
        pattern=pattern,
        value=_template(body["value"], "value") if "value" in body else None,
        type=_type(body.get("type")),
        value_age=_seconds(body["refresh"], "refresh") if "refresh" in body else None,
        path_age=_seconds(body["pathRefresh"], "pathRefresh") if "pathRefresh" in body else None,
        instances=instances,
    )


def _value(body: Any) -> Declare:
    if not isinstance(body, list) or len(body) not in (2, 3):
        raise ProvisionError("value takes [path, value] or [path, value, type]")
    return _declare(
        {"declare": body[0], "value": body[1], **({"type": body[2]} if len(body) == 3 else {})}
    )


def _refresh(body: Any, age: Any) -> Declare:
    pattern = _pattern(body, "refresh")
    seconds = _seconds(age if age is not None else 0, "age")
    return Declare(pattern=pattern, value_age=seconds, path_age=seconds)


def _file_step(kind: str, body: Any) -> Step:
    if not isinstance(body, dict):
        raise ProvisionError(f"{kind} takes an object")
    file_type = body.get("fileType")
    if not isinstance(file_type, str) or not file_type:
        raise ProvisionError(f"{kind} needs a fileType")
    if kind == "download":
        if "fileName" not in body:
            raise ProvisionError("download needs a fileName")
        return DownloadStep(
            file_type,
            _template(body["fileName"], "fileName"),
            _template(body.get("targetFileName", ""), "targetFileName"),
        )
    return UploadStep(file_type, _seconds(body.get("every", 86400), "every"))


def parse_step(raw: Any) -> Step:
    """One step of a provision document."""
    if not isinstance(raw, dict) or not raw:
        raise ProvisionError("a step is an object such as {declare: PATH, value: V}")
    if "declare" in raw:
        return _declare(raw)
    if len(raw) > 2 or (len(raw) == 2 and "age" not in raw):
        raise ProvisionError(f"unknown step fields {', '.join(sorted(raw))}")
    kind = next(k for k in raw if k != "age")
    body = raw[kind]
    match kind:
        case "value":
            return _value(body)
        case "refresh":
            return _refresh(body, raw.get("age"))
        case "tag" | "untag":
            return Tag(_template(body, kind), kind == "tag")
        case "reboot":
            return Reboot(_seconds(body, "reboot"))
        case "factoryReset":
            return FactoryReset(_seconds(body, "factoryReset"))
        case "download" | "upload":
            return _file_step(kind, body)
    raise ProvisionError(
        f"unknown step {kind!r}; steps are declare, value, refresh, tag, untag, reboot,"
        " factoryReset, download, upload"
    )


def load_source(source: str) -> Any:
    """JSON, or YAML (a superset); never with tags that build objects."""
    if len(source) > MAX_SOURCE:
        raise ProvisionError(f"document larger than {MAX_SOURCE} bytes")
    try:
        return json.loads(source)
    except json.JSONDecodeError:
        pass
    try:
        return yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise ProvisionError(f"neither valid JSON nor YAML: {exc}") from None


def parse_provision(document: Any) -> tuple[Step, ...]:
    """A provision's steps, from a list or {"steps": [...]}."""
    steps = document.get("steps") if isinstance(document, dict) else document
    if not isinstance(steps, list):
        raise ProvisionError("a provision is a list of steps (or {steps: [...]})")
    if len(steps) > MAX_STEPS:
        raise ProvisionError(f"more than {MAX_STEPS} steps")
    out = []
    for i, raw in enumerate(steps, 1):
        try:
            out.append(parse_step(raw))
        except ProvisionError as exc:
            kind = next(iter(raw), "?") if isinstance(raw, dict) and raw else "?"
            raise ProvisionError(f"step {i} ({kind}): {exc}") from None
    return tuple(out)


def check_name(name: str, *, reserved: frozenset[str] = frozenset()) -> None:
    if not name or len(name) > 128 or not all(c.isalnum() or c in "-_.:" for c in name):
        raise ProvisionError("a name is 1 to 128 letters, digits, '-', '_', '.', ':'")
    if name in reserved:
        raise ProvisionError(f"{name!r} is a built-in name")


# --- presets --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Schedule:
    cron: str
    duration: int  # seconds after each cron time during which the preset applies

    def active(self, now: float) -> bool:
        previous = croniter(self.cron, now + 1e-6).get_prev(float)
        return now - previous < self.duration


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    channel: str
    weight: int
    events: tuple[tuple[str, bool], ...]
    precondition: Query
    precondition_source: Any
    schedule: Schedule | None
    provisions: tuple[tuple[str, tuple[Any, ...]], ...]
    steps: tuple[Step, ...] = ()  # inline steps from GenieACS 1.1 "configurations"
    _paths: frozenset[str] = field(default=frozenset())

    def events_match(self, events: frozenset[str]) -> bool:
        return all((code in events) == wanted for code, wanted in self.events)


def _configurations(items: Any) -> tuple[list[tuple[str, tuple[Any, ...]]], list[Step]]:
    """GenieACS 1.1 preset `configurations` as provisions and inline steps."""
    if not isinstance(items, list):
        raise ProvisionError("configurations must be a list")
    provisions: list[tuple[str, tuple[Any, ...]]] = []
    steps: list[Step] = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise ProvisionError(f"configuration {i} must be an object")
        kind = item.get("type")
        name = item.get("name")
        try:
            match kind:
                case "value":
                    steps.append(_declare({"declare": name, "value": item.get("value")}))
                case "age":
                    steps.append(_refresh(name, item.get("age")))
                case "add_object":
                    target = f"{name}.[{item.get('object')}]" if item.get("object") else f"{name}.*"
                    steps.append(_declare({"declare": target, "instances": {"min": 1}}))
                case "delete_object":
                    steps.append(
                        _declare({"declare": f"{name}.[{item.get('object')}]", "instances": 0})
                    )
                case "provision":
                    provisions.append((str(name), tuple(item.get("args") or ())))
                case _:
                    raise ProvisionError(f"unknown type {kind!r}")
        except ProvisionError as exc:
            raise ProvisionError(f"configuration {i} ({kind}): {exc}") from None
    return provisions, steps


def _schedule(value: Any) -> Schedule | None:
    if value in (None, "", {}):
        return None
    if isinstance(value, str):
        value = {"cron": value, "duration": 3600}
    if not isinstance(value, dict) or not isinstance(value.get("cron"), str):
        raise ProvisionError('schedule is {"cron": "m h dom mon dow", "duration": seconds}')
    cron = value["cron"]
    if not croniter.is_valid(cron) or len(cron.split()) != 5:
        raise ProvisionError(f"schedule: {cron!r} is not a 5-field cron expression")
    duration = _seconds(value.get("duration", 3600), "schedule duration")
    if not 0 < duration <= 7 * 86400:
        raise ProvisionError("schedule duration must be between 1 s and 7 days")
    return Schedule(cron, duration)


def parse_preset(name: str, document: Any) -> Preset:
    """A preset in GenieACS's JSON shape (1.2 `provisions`, or 1.1 `configurations`)."""
    if not isinstance(document, dict):
        raise ProvisionError("a preset is a JSON object")
    allowed = {
        "_id",
        "channel",
        "weight",
        "events",
        "precondition",
        "schedule",
        "provisions",
        "configurations",
    }
    unknown = set(document) - allowed
    if unknown:
        raise ProvisionError(f"unknown preset field(s) {', '.join(sorted(unknown))}")
    channel = document.get("channel") or "default"
    if not isinstance(channel, str) or len(channel) > 128:
        raise ProvisionError("channel must be a short string")
    weight = document.get("weight", 0)
    if isinstance(weight, bool) or not isinstance(weight, int):
        raise ProvisionError("weight must be an integer")
    events = document.get("events") or {}
    if not isinstance(events, dict) or not all(
        isinstance(k, str) and isinstance(v, bool) for k, v in events.items()
    ):
        raise ProvisionError('events maps event codes to true/false, e.g. {"1 BOOT": true}')
    source = document.get("precondition") or {}
    if isinstance(source, str):
        try:
            source = json.loads(source) if source.strip() else {}
        except json.JSONDecodeError as exc:
            raise ProvisionError(f"precondition is not valid JSON: {exc.msg}") from None
    try:
        precondition = parse_device_query(source)
    except QueryError as exc:
        raise ProvisionError(f"precondition: {exc}") from None
    provisions: list[tuple[str, tuple[Any, ...]]] = []
    for i, item in enumerate(document.get("provisions") or [], 1):
        if not isinstance(item, list) or not item or not isinstance(item[0], str):
            raise ProvisionError(f"provisions[{i}] must be [name, args...]")
        if not all(isinstance(a, str | int | float | bool) or a is None for a in item[1:]):
            raise ProvisionError(f"provisions[{i}]: arguments must be scalars")
        provisions.append((item[0], tuple(item[1:])))
    extra, steps = _configurations(document.get("configurations") or [])
    return Preset(
        name=name,
        channel=channel,
        weight=weight,
        events=tuple(sorted(events.items())),
        precondition=precondition,
        precondition_source=source,
        schedule=_schedule(document.get("schedule")),
        provisions=tuple(provisions + extra),
        steps=tuple(steps),
    )


# --- virtual parameters ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VirtualParameter:
    name: str
    type: str
    value: expr.Template
    inputs: frozenset[str]  # the paths (patterns) it reads

    @property
    def path(self) -> str:
        return f"{VIRTUAL_ROOT}.{self.name}"


def parse_virtual_parameter(name: str, document: Any) -> VirtualParameter:
    """{"type": "xsd:string", "value": "${first('A.*.B', 'C.D')}"}, or the shorthand
    {"first": ["A.*.B", "C.D"]}: the first non-empty of several paths."""
    check_name(name)
    if "." in name:
        raise ProvisionError("a virtual parameter name has no dots")
    if not isinstance(document, dict):
        raise ProvisionError("a virtual parameter is an object with a value")
    unknown = set(document) - {"type", "value", "first"}
    if unknown:
        raise ProvisionError(f"unknown field(s) {', '.join(sorted(unknown))}")
    if ("value" in document) == ("first" in document):
        raise ProvisionError("give either value (a template) or first (a list of paths)")
    if "first" in document:
        items = document["first"]
        if not isinstance(items, list) or not items or not all(isinstance(p, str) for p in items):
            raise ProvisionError("first is a list of parameter paths")
        for item in items:
            _pattern(item, "first")
        value = expr.Template((expr.Call("first", tuple(expr.Literal(p) for p in items)),))
    else:
        value = _template(document["value"], "value")
    inputs = frozenset(value.paths())
    for item in inputs:
        _pattern(item, "input")
    return VirtualParameter(name, _type(document.get("type")) or "xsd:string", value, inputs)


def check_cycles(vparams: dict[str, VirtualParameter]) -> None:
    """Refuse definitions that read each other in a circle."""
    prefix = VIRTUAL_ROOT + "."
    edges = {
        name: {p[len(prefix) :].split(".")[0] for p in v.inputs if p.startswith(prefix)}
        for name, v in vparams.items()
    }
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            loop = [*trail[trail.index(name) :], name]
            raise ProvisionError(
                f"virtual parameters read each other in a cycle: {' -> '.join(loop)}"
            )
        state[name] = 1
        for nxt in sorted(edges.get(name, ())):
            if nxt in edges:
                visit(nxt, [*trail, name])
        state[name] = 2

    for name in sorted(edges):
        visit(name, [])
