"""What every driver offers the agent: poll groups of a target, one poll, and cleanup.

A driver turns a target (as assigned over the stream) and one of its poll groups into
samples and events. The scheduler (`agents.scheduler`) decides when; the driver only
answers "poll this group of this target now", within the deadline the scheduler sets
(it cancels a poll that overruns; a driver must leave its state consistent then).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from schemas.frames import Event, Sample, TargetSpec
from schemas.targets import CLASS_INTERVALS

Progress = Callable[[str, dict[str, Any]], Awaitable[None]]


class PollError(Exception):
    """A poll that failed (unreachable, refused credentials, garbage answer, timeout).

    The message is safe to log and to store as an event: it never holds a secret.
    """

    def __init__(self, message: str, *, code: str = "poll_failed") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """One poll group of one target: what to poll, how often."""

    name: str
    interval: float  # seconds
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class PollResult:
    samples: list[Sample] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


class Driver(ABC):
    """One protocol or vendor. Instances are shared by all targets of their kind."""

    kind: ClassVar[str]
    # Groups polled when a target's profile names none, with their poll class.
    default_groups: ClassVar[dict[str, str]]
    # Class of a group the profile names without an interval or class.
    group_classes: ClassVar[dict[str, str]] = {}

    def plan(self, target: TargetSpec) -> list[GroupPlan]:
        """The groups to poll for `target` and their intervals (profile over defaults).

        Raises PollError for a profile this driver cannot poll (unknown group, bad
        options): the agent reports it as an event instead of polling.
        """
        profile = target.profile or {
            name: {"class": cls} for name, cls in self.default_groups.items()
        }
        out = []
        for name, spec in profile.items():
            raw = spec if isinstance(spec, dict) else {}
            if raw.get("enabled", True) is False:
                continue
            options = raw.get("options") or {}
            self.check_group(name, options)
            interval = raw.get("interval")
            if interval is None:
                cls = (
                    raw.get("class")
                    or self.group_classes.get(name)
                    or self.default_groups.get(name, "normal")
                )
                interval = CLASS_INTERVALS.get(cls, CLASS_INTERVALS["normal"])
            out.append(GroupPlan(name, float(interval), dict(options)))
        return out

    @abstractmethod
    def check_group(self, name: str, options: dict[str, Any]) -> None:
        """Raise PollError unless this driver knows how to poll group `name` so."""

    @abstractmethod
    async def poll(self, target: TargetSpec, group: GroupPlan, now_ms: int) -> PollResult:
        """Poll one group of one target once; PollError when the target fails."""

    async def run_job(
        self, target: TargetSpec, kind: str, params: dict[str, Any], progress: Progress
    ) -> dict[str, Any]:
        """Run an on-demand job on `target`; its result, or PollError with the reason.

        `progress(step, detail)` reports a step as it is done. A job that fails after
        changing something undoes what it can before raising.
        """
        raise PollError(f"{self.kind} targets run no {kind!r} jobs", code="unsupported")

    def forget(self, target_id: int) -> None:  # noqa: B027 - optional hook
        """Drop per-target state (previous counters, sessions): the target went away."""

    async def release(self, target_id: int) -> None:
        """Forget `target_id` and return once nothing of this agent talks to it any more
        (a driver with sessions closes them here: the target's next owner may open its
        own, and devices such as OLTs allow few)."""
        self.forget(target_id)

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release sockets and sessions at agent shutdown."""


DriverFactory = Callable[[], Driver]
DRIVERS: dict[str, DriverFactory] = {}


def register(kind: str) -> Callable[[type[Driver]], type[Driver]]:
    """Class decorator: make a driver available to agents under `kind`."""

    def add(cls: type[Driver]) -> type[Driver]:
        DRIVERS[kind] = cls
        return cls

    return add


def load_drivers() -> dict[str, DriverFactory]:
    """Every driver this installation has (importing their packages registers them)."""
    import agents.huawei.driver
    import agents.snmp  # noqa: F401

    return DRIVERS
