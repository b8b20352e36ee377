"""The agent's scheduler: phases, isolation of slow targets, and clean revocation.

The driver here is a small recording driver written for these tests: the scheduler is
what is under test. Drivers themselves are tested against real SNMP agents.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any, ClassVar

import pytest

from agents.driver import Driver, GroupPlan, PollError, PollResult
from agents.scheduler import Scheduler, next_turn, phase
from schemas.frames import Event, Sample, TargetSpec


class RecordingDriver(Driver):
    kind: ClassVar[str] = "snmp"
    default_groups: ClassVar[dict[str, str]] = {"g": "normal"}

    def __init__(self, hang: set[int] = frozenset(), fail: set[int] = frozenset()) -> None:
        self.hang, self.fail = hang, fail
        self.polls: Counter[int] = Counter()
        self.running: Counter[int] = Counter()
        self.most_at_once: Counter[int] = Counter()
        self.cancelled: list[int] = []
        self.forgotten: list[int] = []

    def check_group(self, name: str, options: dict[str, Any]) -> None:
        if name == "bogus":
            raise PollError("no such group: bogus")

    async def poll(self, target: TargetSpec, group: GroupPlan, now_ms: int) -> PollResult:
        self.running[target.id] += 1
        self.most_at_once[target.id] = max(self.most_at_once[target.id], self.running[target.id])
        try:
            if target.id in self.hang:
                await asyncio.Event().wait()
            if target.id in self.fail:
                raise PollError("refused", code="auth")
            await asyncio.sleep(0.001)
            self.polls[target.id] += 1
            return PollResult([Sample(target.id, "up", {}, now_ms, 1.0)])
        except asyncio.CancelledError:
            self.cancelled.append(target.id)
            raise
        finally:
            self.running[target.id] -= 1

    def forget(self, target_id: int) -> None:
        self.forgotten.append(target_id)


def spec(target: int, interval: float = 0.1, epoch: int = 1, **profile: Any) -> TargetSpec:
    groups = profile or {"g": {"interval": interval}}
    return TargetSpec(target, "snmp", "127.0.0.1", 161, {}, {}, groups, epoch)


class Sink:
    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.events: list[Event] = []

    def __call__(self, samples: list[Sample], events: list[Event]) -> None:
        self.samples += samples
        self.events += events

    def kinds(self, target: int) -> Counter[str]:
        return Counter(e.kind for e in self.events if e.target == target)


@contextlib.asynccontextmanager
async def running(scheduler: Scheduler):  # type: ignore[no-untyped-def]
    task = asyncio.create_task(scheduler.run())
    try:
        yield scheduler
    finally:
        task.cancel()
        await scheduler.drop_all()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_each_group_keeps_a_fixed_phase_within_its_interval() -> None:
    offset = phase(42, "if", 300)
    assert 0 <= offset < 300 and offset == phase(42, "if", 300)
    assert phase(42, "if", 300) != phase(43, "if", 300)
    assert next_turn(1000.0, 7.0, 60.0) == 1027.0
    assert next_turn(1027.0, 7.0, 60.0) == 1087.0


async def test_a_target_that_never_answers_delays_no_other() -> None:
    driver, sink = RecordingDriver(hang={1}), Sink()
    scheduler = Scheduler({"snmp": driver}, sink, max_in_flight=2, first_poll_within=0.01)
    async with running(scheduler):
        for target in range(1, 6):
            scheduler.assign(spec(target))
        await asyncio.sleep(1.0)
    # ~10 turns each in a second; the hung one times out at its deadline every turn.
    assert all(driver.polls[t] >= 6 for t in range(2, 6)), driver.polls
    assert driver.polls[1] == 0 and sink.kinds(1)["poll_timeout"] >= 5
    assert max(driver.most_at_once.values()) == 1  # never two polls of one target at once


async def test_a_failing_target_reports_an_event_not_an_exception() -> None:
    driver, sink = RecordingDriver(fail={3}), Sink()
    scheduler = Scheduler({"snmp": driver}, sink, first_poll_within=0.01)
    async with running(scheduler):
        scheduler.assign(spec(3))
        await asyncio.sleep(0.25)
    failed = [e for e in sink.events if e.kind == "poll_failed"]
    assert failed and failed[0].detail == {"group": "g", "code": "auth", "message": "refused"}


async def test_revoke_returns_only_after_the_poll_in_flight_stopped() -> None:
    driver, sink = RecordingDriver(hang={9}), Sink()
    scheduler = Scheduler({"snmp": driver}, sink, first_poll_within=0.01)
    async with running(scheduler):
        scheduler.assign(spec(9, interval=30))
        for _ in range(100):
            if driver.running[9]:
                break
            await asyncio.sleep(0.01)
        assert driver.running[9] == 1
        await scheduler.revoke(9, epoch=1)
        assert driver.running[9] == 0 and driver.cancelled == [9] and driver.forgotten == [9]
        assert 9 not in scheduler.targets


async def test_an_older_epoch_neither_assigns_nor_revokes() -> None:
    driver, sink = RecordingDriver(), Sink()
    scheduler = Scheduler({"snmp": driver}, sink)
    scheduler.assign(spec(5, epoch=10))
    scheduler.assign(spec(5, interval=99, epoch=9))
    assert scheduler.targets[5].spec.epoch == 10
    await scheduler.revoke(5, epoch=9)
    assert 5 in scheduler.targets
    await scheduler.revoke(5, epoch=10)
    assert 5 not in scheduler.targets


async def test_a_fenced_scheduler_starts_no_poll() -> None:
    driver, sink = RecordingDriver(), Sink()
    allowed = False
    scheduler = Scheduler({"snmp": driver}, sink, first_poll_within=0.01, may_poll=lambda: allowed)
    async with running(scheduler):
        scheduler.assign(spec(1))
        await asyncio.sleep(0.3)
        assert driver.polls[1] == 0
        allowed = True
        await asyncio.sleep(0.3)
        assert driver.polls[1] >= 1


async def test_a_profile_the_driver_cannot_poll_becomes_an_event() -> None:
    driver, sink = RecordingDriver(), Sink()
    scheduler = Scheduler({"snmp": driver}, sink)
    scheduler.assign(spec(4, bogus={"interval": 60}))
    assert sink.kinds(4)["bad_profile"] == 1


async def test_reassigning_the_same_target_keeps_its_schedule() -> None:
    scheduler = Scheduler({"snmp": RecordingDriver()}, Sink())
    scheduler.assign(spec(1, interval=60))
    due = scheduler.targets[1].groups["g"].due
    scheduler.assign(spec(1, interval=60))
    assert scheduler.targets[1].groups["g"].due == due
    scheduler.assign(spec(1, interval=120))  # a new interval: a new schedule
    assert scheduler.targets[1].groups["g"].plan.interval == 120


@pytest.mark.parametrize("kind", ["padtec"])
async def test_a_target_of_a_kind_without_driver_is_reported(kind: str) -> None:
    sink = Sink()
    scheduler = Scheduler({"snmp": RecordingDriver()}, sink)
    scheduler.assign(TargetSpec(8, kind, "h", 1, {}, {}, {}, 1))
    assert sink.kinds(8)["bad_target"] == 1 and 8 not in scheduler.targets
