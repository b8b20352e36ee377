"""When to poll what: every poll group of every owned target, on its own period.

- Phase: a group polls at the same offset within its interval on every agent (a hash of
  target and group), so polls of many targets spread evenly over the interval, and a
  target keeps its rhythm when it changes hands. A target just assigned is polled
  within `first_poll_within` seconds first, so a hand-over leaves no gap longer than
  one interval plus the time the hand-over took.
- Isolation: at most `max_in_flight` polls run at once, each under a deadline (its
  interval, at most `max_deadline`); a poll still running when its next turn comes skips
  that turn (a missed cycle, counted) instead of piling up. A dead target costs one slot
  for its deadline per cycle and delays nobody else.
- Ownership: `revoke` returns once the target's polls have stopped (cancelled and
  finished), which is what lets the controller hand it to another agent; `drop_all`
  does that for everything (fencing).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from hashlib import blake2b

from prometheus_client import Counter, Gauge, Histogram

from agents.driver import Driver, GroupPlan, PollError
from schemas.frames import Event, Sample, TargetSpec

log = logging.getLogger("chronos.agent.scheduler")

POLLS = Counter("chronos_agent_polls_total", "Polls finished", ["kind", "outcome"])
POLL_SECONDS = Histogram(
    "chronos_agent_poll_seconds",
    "Time one poll took",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
MISSED = Counter("chronos_agent_missed_cycles_total", "Poll turns skipped: the last poll still ran")
IN_FLIGHT = Gauge("chronos_agent_polls_in_flight", "Polls running now")
TARGETS = Gauge("chronos_agent_targets", "Targets this agent owns")

Sink = Callable[[list[Sample], list[Event]], None]
Clock = Callable[[], float]


def phase(target: int, group: str, interval: float) -> float:
    """The fixed offset (seconds) within `interval` at which this group polls."""
    digest = blake2b(f"{target}\x00{group}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * interval


def next_turn(now: float, offset: float, interval: float) -> float:
    """The first time after `now` that is `offset` past a multiple of `interval`."""
    turns = (now - offset) // interval + 1
    return turns * interval + offset


@dataclass(slots=True)
class _Group:
    spec: TargetSpec
    plan: GroupPlan
    due: float
    running: asyncio.Task[None] | None = None
    generation: int = 0  # bumped when the group is replaced: stale heap entries are ignored


@dataclass(slots=True)
class _Target:
    spec: TargetSpec
    groups: dict[str, _Group] = field(default_factory=dict)


class Scheduler:
    """Polls the targets it is given, reporting samples and events to `sink`."""

    def __init__(
        self,
        drivers: Mapping[str, Driver],
        sink: Sink,
        *,
        max_in_flight: int = 256,
        max_deadline: float = 60.0,
        first_poll_within: float = 2.0,
        clock: Clock = time.time,
        may_poll: Callable[[], bool] = lambda: True,
    ) -> None:
        self.drivers = drivers
        self.sink = sink
        self.max_deadline = max_deadline
        self.first_poll_within = first_poll_within
        self.clock = clock
        # Asked right before every poll: false once the lease may have run out. The fence
        # task stops everything then, but after a pause (a stopped process, a long GC) a
        # due poll could otherwise run before the fence task does.
        self.may_poll = may_poll
        self.targets: dict[int, _Target] = {}
        self._heap: list[tuple[float, int, str, int]] = []
        self._slots = asyncio.Semaphore(max_in_flight)
        self._wake = asyncio.Event()
        self._rng = random.Random()

    # --- ownership ---

    def assign(self, spec: TargetSpec) -> None:
        """Own `spec` (new target, or new details of one already owned)."""
        current = self.targets.get(spec.id)
        if current is not None and current.spec.epoch > spec.epoch:
            return  # an older assignment arriving late
        if current is not None and current.spec == spec:
            return
        driver = self.drivers.get(spec.kind)
        if driver is None:
            self._event(spec.id, "bad_target", {"message": f"this agent has no {spec.kind} driver"})
            return
        try:
            plans = driver.plan(spec)
        except PollError as exc:
            self._event(spec.id, "bad_profile", {"message": str(exc)})
            plans = []
        now = self.clock()
        target = current or _Target(spec)
        target.spec = spec
        kept: dict[str, _Group] = {}
        for plan in plans:
            old = target.groups.pop(plan.name, None)
            if old is not None and old.plan == plan:
                old.spec = spec  # new credentials or address take effect next turn
                kept[plan.name] = old
                continue
            if old is not None and old.running is not None:
                old.running.cancel()
            first = now + self._rng.uniform(0, min(self.first_poll_within, plan.interval / 10))
            group = _Group(spec, plan, first, generation=(old.generation + 1) if old else 0)
            kept[plan.name] = group
            self._push(spec.id, group)
        for gone in target.groups.values():  # groups the new profile no longer has
            if gone.running is not None:
                gone.running.cancel()
        target.groups = kept
        self.targets[spec.id] = target
        TARGETS.set(len(self.targets))
        self._wake.set()

    async def revoke(self, target_id: int, epoch: int) -> None:
        """Stop polling `target_id` (held at `epoch` or earlier); returns when stopped."""
        target = self.targets.get(target_id)
        if target is None or target.spec.epoch > epoch:
            return
        del self.targets[target_id]
        TARGETS.set(len(self.targets))
        await self._stop(target)

    async def drop_all(self) -> None:
        """Stop everything (the lease is about to run out); returns when stopped."""
        targets = list(self.targets.values())
        self.targets.clear()
        TARGETS.set(0)
        await asyncio.gather(*(self._stop(t) for t in targets))

    async def _stop(self, target: _Target) -> None:
        running = [g.running for g in target.groups.values() if g.running is not None]
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        driver = self.drivers.get(target.spec.kind)
        if driver is not None:
            await driver.release(target.spec.id)

    # --- the loop ---

    def _push(self, target_id: int, group: _Group) -> None:
        heapq.heappush(self._heap, (group.due, target_id, group.plan.name, group.generation))

    async def run(self) -> None:
        """Start polls as they fall due, forever."""
        while True:
            self._wake.clear()
            now = self.clock()
            while self._heap and self._heap[0][0] <= now:
                due, target_id, name, generation = heapq.heappop(self._heap)
                target = self.targets.get(target_id)
                group = target.groups.get(name) if target else None
                if group is None or group.generation != generation or group.due != due:
                    continue  # revoked or replaced since it was queued
                self._start(group)
                group.due = next_turn(
                    now, phase(target_id, name, group.plan.interval), group.plan.interval
                )
                self._push(target_id, group)
            delay = self._heap[0][0] - now if self._heap else 3600.0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(delay, 0.001)):
                    await self._wake.wait()

    def _start(self, group: _Group) -> None:
        if group.running is not None and not group.running.done():
            MISSED.inc()
            self._event(group.spec.id, "missed_cycle", {"group": group.plan.name})
            return
        group.running = asyncio.create_task(self._poll(group))

    async def _poll(self, group: _Group) -> None:
        spec, plan = group.spec, group.plan
        driver = self.drivers[spec.kind]
        deadline = min(plan.interval, self.max_deadline)
        async with self._slots:
            IN_FLIGHT.inc()
            started = time.monotonic()
            try:
                if not self.may_poll():
                    POLLS.labels(spec.kind, "fenced").inc()
                    return
                async with asyncio.timeout(deadline):
                    result = await driver.poll(spec, plan, int(self.clock() * 1000))
            except TimeoutError:
                POLLS.labels(spec.kind, "timeout").inc()
                self._event(spec.id, "poll_timeout", {"group": plan.name, "deadline_s": deadline})
                return
            except PollError as exc:
                POLLS.labels(spec.kind, "failed").inc()
                detail = {"group": plan.name, "code": exc.code, "message": str(exc)}
                self._event(spec.id, "poll_failed", detail)
                return
            except Exception:
                # A driver bug must not take the agent down; it is logged and counted.
                POLLS.labels(spec.kind, "error").inc()
                log.exception("driver error", extra={"target_id": spec.id, "group": plan.name})
                return
            finally:
                IN_FLIGHT.dec()
                POLL_SECONDS.labels(spec.kind).observe(time.monotonic() - started)
        POLLS.labels(spec.kind, "ok").inc()
        if self.targets.get(spec.id) is not None:  # still ours: report it
            self.sink(result.samples, result.events)

    def _event(self, target_id: int, kind: str, detail: dict[str, object]) -> None:
        self.sink([], [Event(target_id, kind, int(self.clock() * 1000), detail)])
