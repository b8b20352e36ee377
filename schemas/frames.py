"""The agent stream: frames between controllers and agents, as msgpack, defined once.

A WebSocket carries one frame per binary message: a msgpack map with "t" (the type) and
that type's fields. Every frame validates itself when decoded, so a peer's garbage
becomes a `FrameError`, never a crash. Protocol version `VERSION` is announced in hello;
a controller refuses an agent speaking another major version.

    agent -> controller: hello, heartbeat, report, revoked, bye, job_progress, job_result
    controller -> agent: welcome, heartbeat, assign, revoke, ack, job, error

Samples travel as rows `[target, metric, labels, ts_ms, value]`; a report's `seq` counts
up per agent boot (`boot`), so a resent report is recognised and stored once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import msgpack

VERSION = 1
MAX_FRAME_BYTES = 8 * 1024 * 1024
MAX_SAMPLES = 100_000


class FrameError(ValueError):
    """A frame that cannot be used: undecodable, unknown type, or a bad field."""


def _str(value: Any, name: str, *, empty: bool = False, limit: int = 256) -> str:
    if not isinstance(value, str) or (not empty and not value) or len(value) > limit:
        raise FrameError(f"{name} must be a string of 1 to {limit} characters")
    return value


def _int(value: Any, name: str, low: int = 0, high: int = 2**63 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FrameError(f"{name} must be an integer in [{low}, {high}]")
    return value


def _labels(value: Any, name: str = "labels") -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > 64:
        raise FrameError(f"{name} must be a map of at most 64 entries")
    for k, v in value.items():
        _str(k, f"{name} key", limit=64)
        _str(v, f"{name}[{k}]", empty=True, limit=256)
    return value


def _map(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FrameError(f"{name} must be a map")
    return value


# --- the pieces frames carry --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """A target as an agent needs it to poll: credentials included (the stream is the
    one place they travel in clear; never log a TargetSpec)."""

    id: int
    kind: str  # snmp | huawei-olt | padtec
    address: str
    port: int
    credentials: dict[str, Any] = field(repr=False)
    labels: dict[str, str]
    profile: dict[str, Any]  # poll groups: {"if": {"interval": 300}, ...}
    epoch: int

    def to_wire(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_wire(cls, raw: Any) -> TargetSpec:
        raw = _map(raw, "target")
        return cls(
            id=_int(raw.get("id"), "target.id", 1),
            kind=_str(raw.get("kind"), "target.kind", limit=32),
            address=_str(raw.get("address"), "target.address"),
            port=_int(raw.get("port"), "target.port", 1, 65535),
            credentials=_map(raw.get("credentials", {}), "target.credentials"),
            labels=_labels(raw.get("labels", {}), "target.labels"),
            profile=_map(raw.get("profile", {}), "target.profile"),
            epoch=_int(raw.get("epoch"), "target.epoch"),
        )


@dataclass(frozen=True, slots=True)
class Sample:
    target: int
    metric: str
    labels: dict[str, str]
    ts_ms: int
    value: float

    def to_wire(self) -> list[Any]:
        return [self.target, self.metric, self.labels, self.ts_ms, self.value]

    @classmethod
    def from_wire(cls, raw: Any) -> Sample:
        if not isinstance(raw, list | tuple) or len(raw) != 5:
            raise FrameError("a sample is [target, metric, labels, ts_ms, value]")
        target, metric, labels, ts_ms, value = raw
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FrameError("sample value must be a number")
        return cls(
            _int(target, "sample target", 1),
            _str(metric, "sample metric", limit=128),
            _labels(labels, "sample labels"),
            _int(ts_ms, "sample ts_ms", 0, 2**53),
            float(value),
        )


@dataclass(frozen=True, slots=True)
class Event:
    """Something a poll saw that is not a number: a target unreachable, a trap, a log."""

    target: int
    kind: str
    ts_ms: int
    detail: dict[str, Any]

    def to_wire(self) -> list[Any]:
        return [self.target, self.kind, self.ts_ms, self.detail]

    @classmethod
    def from_wire(cls, raw: Any) -> Event:
        if not isinstance(raw, list | tuple) or len(raw) != 4:
            raise FrameError("an event is [target, kind, ts_ms, detail]")
        target, kind, ts_ms, detail = raw
        return cls(
            _int(target, "event target", 1),
            _str(kind, "event kind", limit=64),
            _int(ts_ms, "event ts_ms", 0, 2**53),
            _map(detail, "event detail"),
        )


# --- frames ----------------------------------------------------------------------------------


class Frame(ABC):
    """Base of all frames: `TYPE` is the "t" on the wire."""

    TYPE: ClassVar[str] = ""

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t": self.TYPE}
        for f in fields(self):  # type: ignore[arg-type]
            out[f.name] = getattr(self, f.name)
        return out

    @classmethod
    @abstractmethod
    def from_wire(cls, raw: dict[str, Any]) -> Frame:
        """The frame from its decoded map; FrameError for a bad field."""


@dataclass(frozen=True, slots=True)
class Hello(Frame):
    TYPE: ClassVar[str] = "hello"
    agent: str
    boot: str  # this agent process's id: sequence numbers restart with it
    version: int
    labels: dict[str, str]
    capacity: int
    kinds: tuple[str, ...]  # drivers this agent has
    software: str

    def to_wire(self) -> dict[str, Any]:
        out = Frame.to_wire(self)
        out["kinds"] = list(self.kinds)
        return out

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> Hello:
        kinds = raw.get("kinds")
        if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
            raise FrameError("kinds must be a list of driver names")
        return cls(
            agent=_str(raw.get("agent"), "agent", limit=128),
            boot=_str(raw.get("boot"), "boot", limit=64),
            version=_int(raw.get("version"), "version", 1, 1000),
            labels=_labels(raw.get("labels", {})),
            capacity=_int(raw.get("capacity"), "capacity", 1, 1_000_000),
            kinds=tuple(kinds),
            software=_str(raw.get("software", "?"), "software", limit=64),
        )


@dataclass(frozen=True, slots=True)
class Welcome(Frame):
    TYPE: ClassVar[str] = "welcome"
    controller: str
    heartbeat_ms: int
    lease_ms: int
    acked: int  # the highest report seq of this boot already stored

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> Welcome:
        return cls(
            _str(raw.get("controller"), "controller", limit=128),
            _int(raw.get("heartbeat_ms"), "heartbeat_ms", 10, 600_000),
            _int(raw.get("lease_ms"), "lease_ms", 100, 3_600_000),
            _int(raw.get("acked"), "acked"),
        )


@dataclass(frozen=True, slots=True)
class Heartbeat(Frame):
    TYPE: ClassVar[str] = "heartbeat"
    n: int  # the agent numbers its heartbeats; the controller answers with the same n

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> Heartbeat:
        return cls(_int(raw.get("n"), "n"))


@dataclass(frozen=True, slots=True)
class Assign(Frame):
    """Poll these targets (new ones, or new details of owned ones). `full`: these are all
    the agent owns; it stops anything else (the first assign on every connection)."""

    TYPE: ClassVar[str] = "assign"
    targets: tuple[TargetSpec, ...]
    full: bool = False

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.TYPE, "targets": [t.to_wire() for t in self.targets], "full": self.full}

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> Assign:
        items = raw.get("targets")
        if not isinstance(items, list):
            raise FrameError("targets must be a list")
        full = raw.get("full", False)
        if not isinstance(full, bool):
            raise FrameError("full must be true or false")
        return cls(tuple(TargetSpec.from_wire(t) for t in items), full)


@dataclass(frozen=True, slots=True)
class Revoke(Frame):
    """Stop polling these targets (at these epochs) and confirm with `revoked`."""

    TYPE: ClassVar[str] = "revoke"
    targets: tuple[tuple[int, int], ...]  # (target id, epoch)

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.TYPE, "targets": [list(t) for t in self.targets]}

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> Revoke:
        return cls(_pairs(raw.get("targets"), "targets"))


@dataclass(frozen=True, slots=True)
class Revoked(Frame):
    TYPE: ClassVar[str] = "revoked"
    targets: tuple[tuple[int, int], ...]

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.TYPE, "targets": [list(t) for t in self.targets]}

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> Revoked:
        return cls(_pairs(raw.get("targets"), "targets"))


def _pairs(value: Any, name: str) -> tuple[tuple[int, int], ...]:
    if not isinstance(value, list):
        raise FrameError(f"{name} must be a list of [target, epoch]")
    out = []
    for item in value:
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise FrameError(f"{name} must be a list of [target, epoch]")
        out.append((_int(item[0], "target", 1), _int(item[1], "epoch")))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Bye(Frame):
    """The agent is shutting down and has stopped every poll: its targets may move now,
    without waiting for its lease to run out."""

    TYPE: ClassVar[str] = "bye"

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> Bye:
        return cls()


@dataclass(frozen=True, slots=True)
class Report(Frame):
    TYPE: ClassVar[str] = "report"
    seq: int
    samples: tuple[Sample, ...]
    events: tuple[Event, ...] = ()

    def to_wire(self) -> dict[str, Any]:
        return {
            "t": self.TYPE,
            "seq": self.seq,
            "samples": [s.to_wire() for s in self.samples],
            "events": [e.to_wire() for e in self.events],
        }

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> Report:
        samples = raw.get("samples", [])
        events = raw.get("events", [])
        if not isinstance(samples, list) or not isinstance(events, list):
            raise FrameError("samples and events must be lists")
        if len(samples) + len(events) > MAX_SAMPLES:
            raise FrameError(f"more than {MAX_SAMPLES} samples and events in one report")
        return cls(
            _int(raw.get("seq"), "seq", 1),
            tuple(Sample.from_wire(s) for s in samples),
            tuple(Event.from_wire(e) for e in events),
        )


@dataclass(frozen=True, slots=True)
class Ack(Frame):
    """Every report up to `seq` (of the agent's current boot) is stored."""

    TYPE: ClassVar[str] = "ack"
    seq: int

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> Ack:
        return cls(_int(raw.get("seq"), "seq"))


@dataclass(frozen=True, slots=True)
class Job(Frame):
    """An on-demand operation for a target this agent owns (the OLT issue uses them)."""

    TYPE: ClassVar[str] = "job"
    job: int
    target: int
    kind: str
    params: dict[str, Any]
    timeout_ms: int

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> Job:
        return cls(
            _int(raw.get("job"), "job", 1),
            _int(raw.get("target"), "target", 1),
            _str(raw.get("kind"), "kind", limit=64),
            _map(raw.get("params", {}), "params"),
            _int(raw.get("timeout_ms"), "timeout_ms", 1, 86_400_000),
        )


@dataclass(frozen=True, slots=True)
class JobProgress(Frame):
    TYPE: ClassVar[str] = "job_progress"
    job: int
    step: str
    detail: dict[str, Any]

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> JobProgress:
        return cls(
            _int(raw.get("job"), "job", 1),
            _str(raw.get("step"), "step", limit=128),
            _map(raw.get("detail", {}), "detail"),
        )


@dataclass(frozen=True, slots=True)
class JobResult(Frame):
    TYPE: ClassVar[str] = "job_result"
    job: int
    ok: bool
    result: dict[str, Any]
    error: str = ""

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> JobResult:
        ok = raw.get("ok")
        if not isinstance(ok, bool):
            raise FrameError("ok must be true or false")
        return cls(
            _int(raw.get("job"), "job", 1),
            ok,
            _map(raw.get("result", {}), "result"),
            _str(raw.get("error", ""), "error", empty=True, limit=4096),
        )


@dataclass(frozen=True, slots=True)
class Error(Frame):
    """Sent before closing: why the peer is being disconnected."""

    TYPE: ClassVar[str] = "error"
    code: str
    message: str

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> Error:
        return cls(
            _str(raw.get("code"), "code", limit=64),
            _str(raw.get("message", ""), "message", empty=True, limit=4096),
        )


FRAMES: dict[str, type[Frame]] = {
    cls.TYPE: cls
    for cls in (
        Hello,
        Welcome,
        Heartbeat,
        Assign,
        Revoke,
        Revoked,
        Bye,
        Report,
        Ack,
        Job,
        JobProgress,
        JobResult,
        Error,
    )
}


def encode(frame: Frame) -> bytes:
    """One frame as one binary WebSocket message; FrameError when it would be too big
    for the peer to take (`decode` refuses it)."""
    data = msgpack.packb(frame.to_wire(), use_bin_type=True)
    if len(data) > MAX_FRAME_BYTES:
        raise FrameError(f"a {frame.TYPE} frame of {len(data)} bytes exceeds {MAX_FRAME_BYTES}")
    return data


def decode(data: bytes) -> Frame:
    """One frame from one binary WebSocket message; FrameError for anything else."""
    if len(data) > MAX_FRAME_BYTES:
        raise FrameError(f"frame of {len(data)} bytes exceeds {MAX_FRAME_BYTES}")
    try:
        raw = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise FrameError(f"not a msgpack frame: {exc}") from None
    if not isinstance(raw, dict):
        raise FrameError("a frame is a map")
    kind = raw.get("t")
    cls = FRAMES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise FrameError(f"unknown frame type {kind!r}")
    try:
        return cls.from_wire(raw)
    except (TypeError, KeyError) as exc:
        raise FrameError(f"malformed {kind} frame: {exc}") from None
