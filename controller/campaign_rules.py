"""The rules of a campaign, as pure functions. No I/O: `controller.campaigns` reads rows,
asks these functions what they mean, and writes the answers.

Campaign states and who moves them:

    pending  --engine, at startAt-->            running   (the device set is frozen)
    running  --engine, every wave finished-->   completed
    running  --engine, a wave finished and pauseBetweenWaves-->  paused
    running, paused  --engine, too many failures-->              halted
    pending, running  --operator pause-->       paused
    paused, halted  --operator resume-->        running
    pending, running, paused, halted  --operator cancel-->       cancelled

Device states: waiting -> queued (its first task is queued) -> running (the device has
begun: a session since, a task tried, or a step done) -> succeeded | failed; a device
that never began ends skipped (cancel, or halt with cancelQueuedOnHalt). A device that
began always runs all of its steps, whatever happens to the campaign meanwhile: a
half-applied firmware rollout is worse than a finished one.

Halting: failed / (succeeded + failed) above maxFailureRatio once at least minFinished
devices finished, or maxFailures failed devices. Checked after every round, while
running or paused. Waves start one after the other: the next only when every device of
the current one has finished, and not before waveDelaySeconds, or (pauseBetweenWaves)
an operator's resume.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from schemas.campaigns import CampaignSpec, Wave
from schemas.sealing import is_secret_path

# A campaign never has more waves than this; the last one takes whatever is left.
MAX_WAVE_COUNT = 1000
IN_FLIGHT = ("queued", "running")

# --- actions -------------------------------------------------------------------------------


def map_secrets(action: Mapping[str, Any], change: Callable[[str], str]) -> dict[str, Any]:
    """The action with its credentials passed through `change` (seal, unseal or mask)."""
    out = dict(action)
    if isinstance(out.get("password"), str) and out["password"]:
        out["password"] = change(out["password"])
    items = out.get("parameterValues")
    if isinstance(items, list):
        out["parameterValues"] = [
            [item[0], change(item[1]), *item[2:]]
            if isinstance(item, list)
            and len(item) >= 2
            and isinstance(item[0], str)
            and isinstance(item[1], str)
            and is_secret_path(item[0])
            else item
            for item in items
        ]
    return out


def task_body(action: Mapping[str, Any]) -> dict[str, Any]:
    """The task an action queues: a task template as it is, a provision as GenieACS's
    `provisions` task."""
    if "provision" in action:
        return {
            "name": "provisions",
            "provisions": [[action["provision"], *action.get("args", [])]],
        }
    return dict(action)


# --- operator actions ----------------------------------------------------------------------

TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "pause": (frozenset({"pending", "running"}), "paused"),
    "resume": (frozenset({"paused", "halted"}), "running"),
    "cancel": (frozenset({"pending", "running", "paused", "halted"}), "cancelled"),
}


class TransitionRefused(Exception):
    """An operator action the campaign's state does not allow."""

    def __init__(self, action: str, state: str) -> None:
        allowed = sorted(TRANSITIONS[action][0]) if action in TRANSITIONS else []
        super().__init__(
            f"cannot {action} a {state} campaign"
            + (f" (only {', '.join(allowed)} ones)" if allowed else "")
        )
        self.action = action
        self.state = state
        self.allowed = allowed


def operator_transition(action: str, state: str) -> str:
    """The state `action` leads to from `state`; TransitionRefused when it is not allowed."""
    rule = TRANSITIONS.get(action)
    if rule is None or state not in rule[0]:
        raise TransitionRefused(action, state)
    return rule[1]


def should_start(state: str, start_at: datetime | None, now: datetime) -> bool:
    """Whether a pending campaign starts now."""
    return state == "pending" and (start_at is None or start_at <= now)


# --- waves ----------------------------------------------------------------------------------


def wave_sizes(total: int, waves: Sequence[Wave]) -> list[int]:
    """How many devices each wave gets: consecutive slices of the frozen set.

    A percentage is of the whole set, rounded up (at least one device); the last listed
    wave repeats until every device has a wave; no wave is larger than what is left.
    """
    if total <= 0:
        return []
    if not waves:
        return [total]
    sizes: list[int] = []
    remaining = total
    while remaining > 0:
        if len(sizes) == MAX_WAVE_COUNT - 1:
            sizes.append(remaining)
            break
        spec = waves[min(len(sizes), len(waves) - 1)]
        if spec.size is not None:
            size = spec.size
        else:
            assert spec.percent is not None
            # rounded first so 7% of 100 is 7, not 8 by a float's last bit
            size = math.ceil(round(total * spec.percent / 100, 6))
        size = max(1, min(size, remaining))
        sizes.append(size)
        remaining -= size
    return sizes


def wave_starts(sizes: Sequence[int]) -> list[int]:
    """The first seq (1-based start order) of each wave: width_bucket's thresholds."""
    starts, at = [], 1
    for size in sizes:
        starts.append(at)
        at += size
    return starts


# --- counts and halting -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Counts:
    """Devices per state."""

    waiting: int = 0
    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0

    @classmethod
    def of(cls, by_state: Mapping[str, int]) -> Counts:
        return cls(**{k: int(by_state.get(k, 0)) for k in cls.__dataclass_fields__})

    @property
    def total(self) -> int:
        return (
            self.waiting + self.queued + self.running + self.succeeded + self.failed + self.skipped
        )

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed

    @property
    def in_flight(self) -> int:
        return self.queued + self.running

    @property
    def failure_ratio(self) -> float | None:
        return self.failed / self.finished if self.finished else None

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"total": self.total}


def halt_reason(counts: Counts, spec: CampaignSpec) -> str | None:
    """Why the campaign must halt now, or None."""
    if spec.maxFailures is not None and counts.failed >= spec.maxFailures:
        return f"{counts.failed} devices failed (maxFailures {spec.maxFailures})"
    ratio = counts.failure_ratio
    if counts.finished >= spec.minFinished and ratio is not None and ratio > spec.maxFailureRatio:
        return (
            f"failure ratio {ratio:.1%} ({counts.failed} of {counts.finished} finished)"
            f" above {spec.maxFailureRatio:.1%}"
        )
    return None


# --- one device -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskView:
    id: int
    status: str  # pending | waiting (a transfer) | done | expired
    touched: bool = False  # tried at least once (a retry counted or progress saved)


@dataclass(frozen=True, slots=True)
class DeviceObservation:
    """A device in flight as the database shows it this round."""

    device_id: str
    state: str  # queued | running
    step: int
    task_ids: tuple[int, ...]  # one per step queued so far
    tasks: Mapping[int, TaskView]  # those that still exist
    queued_at: datetime
    tasks_done_at: datetime | None = None
    present: bool = True  # the device still exists
    contacted: bool = False  # it held a session since its first task was queued
    fault: Mapping[str, Any] | None = None  # a fault of one of its tasks
    criterion_met: bool = False


VerdictKind = Literal["wait", "running", "next_step", "verify", "succeeded", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: VerdictKind
    detail: dict[str, Any] = field(default_factory=dict)


WAIT = Verdict("wait")


def _failed(reason: str, message: str, **extra: Any) -> Verdict:
    return Verdict("failed", {"reason": reason, "message": message, **extra})


def judge_device(
    obs: DeviceObservation,
    *,
    steps: int,
    has_criterion: bool,
    grace: float,
    timeout: float,
    now: datetime,
) -> Verdict:
    """What a device's tasks, faults and criterion say about it now.

    A fault fails the device at once (the ACS's retries are not waited for); so does a
    task that was deleted or expired, or the device itself deleted (before it began,
    that skips it instead). When its last step
    is done it succeeds if the criterion matches, else it is given `grace` seconds
    (the post-reboot Inform) before it fails. Steps not done within `timeout` of the
    first task being queued fail it too.
    """
    if not obs.present:
        if obs.state == "queued" and obs.step == 0:  # never began: not the action's fault
            return Verdict("skipped", {"reason": "device_deleted", "message": "device deleted"})
        return _failed("device_deleted", "the device was deleted")
    if obs.fault is not None:
        code, message = obs.fault.get("code", ""), obs.fault.get("message", "")
        return _failed(
            "task_fault", f"task faulted: {code} {message}".strip(), fault=dict(obs.fault)
        )
    for task_id in obs.task_ids:
        task = obs.tasks.get(task_id)
        if task is None:
            return _failed("task_deleted", "a task of the campaign was deleted", task=task_id)
        if task.status == "expired":
            return _failed("task_expired", "a task of the campaign expired", task=task_id)
    if obs.step >= len(obs.task_ids):
        return _failed("internal", f"no task recorded for step {obs.step + 1}")
    current = obs.tasks[obs.task_ids[obs.step]]
    if current.status == "done":
        if obs.step + 1 < steps:
            return Verdict("next_step")
        if not has_criterion:
            return Verdict("succeeded", {"reason": "tasks_done"})
        if obs.criterion_met:
            return Verdict("succeeded", {"reason": "criterion_met"})
        if obs.tasks_done_at is None and grace > 0:
            return Verdict("verify")
        waited = 0.0 if obs.tasks_done_at is None else (now - obs.tasks_done_at).total_seconds()
        if waited >= grace:
            return _failed(
                "criterion_not_met",
                f"tasks done but the success criterion did not match within {grace:g} s",
            )
        return WAIT
    if (now - obs.queued_at).total_seconds() >= timeout:
        return _failed(
            "timeout",
            f"step {obs.step + 1} of {steps} not done within {timeout:g} s",
            step=obs.step + 1,
        )
    begun = obs.step > 0 or current.touched or current.status != "pending" or obs.contacted
    if obs.state == "queued" and begun:
        return Verdict("running")
    return WAIT


# --- one round of a campaign ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CampaignView:
    """What planning a round needs, after this round's device verdicts were applied."""

    state: str
    current_wave: int  # from 0
    wave_count: int
    waiting_by_wave: Mapping[int, int]
    in_flight: int
    next_wave_at: datetime | None
    max_concurrent: int
    pause_between_waves: bool = False
    wave_delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do this round: the state to be in, and how many devices to start."""

    state: str
    current_wave: int
    next_wave_at: datetime | None = None
    start: int = 0  # devices of current_wave to start now, in seq order
    reason: str = ""
    events: tuple[tuple[str, dict[str, Any]], ...] = ()


def plan_round(view: CampaignView, now: datetime) -> Plan:
    """Start devices of the current wave up to maxConcurrent in flight; move to the next
    wave when the current one has finished; complete after the last."""
    if view.state != "running":
        return Plan(view.state, view.current_wave, view.next_wave_at)
    wave, next_at = view.current_wave, view.next_wave_at
    events: list[tuple[str, dict[str, Any]]] = []
    while view.waiting_by_wave.get(wave, 0) == 0 and view.in_flight == 0:
        events.append(("wave_finished", {"wave": wave + 1}))
        if wave + 1 >= view.wave_count:
            events.append(("completed", {}))
            return Plan("completed", wave, None, 0, "every wave finished", tuple(events))
        wave += 1
        if view.pause_between_waves:
            reason = f"wave {wave} of {view.wave_count} finished; resume to start wave {wave + 1}"
            return Plan("paused", wave, None, 0, reason, tuple(events))
        if view.wave_delay > 0:
            next_at = now + timedelta(seconds=view.wave_delay)
    if next_at is not None and now < next_at:
        return Plan("running", wave, next_at, 0, "", tuple(events))
    if next_at is not None or (events and events[-1][0] == "wave_finished"):
        events.append(("wave_started", {"wave": wave + 1}))
    slots = max(0, view.max_concurrent - view.in_flight)
    start = min(slots, view.waiting_by_wave.get(wave, 0))
    return Plan("running", wave, None, start, "", tuple(events))
