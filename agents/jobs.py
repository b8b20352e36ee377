"""The agent's job runner: on-demand operations on targets this agent owns.

Jobs of one target run one at a time, in the order they came (an OLT takes one
configuration change after another), each under its timeout. Progress and the result
go back as frames; a result that cannot be sent (the stream is down) is kept and sent
again on every new connection until it is an hour old (the controller records a result
once and ignores repeats). Revoking a target, or fencing, waits for its running job to
stop: a job holds the target's session, and a new owner must not open a second one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from prometheus_client import Counter

from agents.driver import Driver, PollError
from schemas import frames as f
from schemas.frames import TargetSpec

log = logging.getLogger("chronos.agent.jobs")

JOBS = Counter(
    "chronos_agent_jobs_total", "Jobs finished, by kind and outcome", ["kind", "outcome"]
)
KEEP_RESULTS_S = 3600.0

Send = Callable[[f.Frame], Awaitable[None]]
Owned = Callable[[int], TargetSpec | None]


class JobRunner:
    def __init__(self, drivers: Mapping[str, Driver], owned: Owned) -> None:
        self.drivers = drivers
        self.owned = owned
        self.send: Send | None = None  # set while a stream is up
        self._locks: dict[int, asyncio.Lock] = {}
        self._running: dict[int, set[asyncio.Task[None]]] = {}
        self._results: dict[int, tuple[float, f.JobResult]] = {}
        self._seen: set[int] = set()

    def submit(self, job: f.Job) -> None:
        """Queue a job behind the other jobs of its target."""
        if job.job in self._seen:
            return  # sent twice (a controller restarted between claim and send)
        self._seen.add(job.job)
        task = asyncio.create_task(self._run(job), name=f"job-{job.job}")
        tasks = self._running.setdefault(job.target, set())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _run(self, job: f.Job) -> None:
        lock = self._locks.setdefault(job.target, asyncio.Lock())
        async with lock:
            result = await self._execute(job)
        self._results[job.job] = (time.monotonic(), result)
        JOBS.labels(job.kind, "ok" if result.ok else "failed").inc()
        await self._deliver(result)

    async def _execute(self, job: f.Job) -> f.JobResult:
        spec = self.owned(job.target)
        if spec is None:
            return f.JobResult(job.job, False, {}, f"this agent does not poll target {job.target}")
        driver = self.drivers.get(spec.kind)
        if driver is None:
            return f.JobResult(job.job, False, {}, f"this agent has no {spec.kind} driver")

        async def progress(step: str, detail: dict[str, Any]) -> None:
            await self._deliver(f.JobProgress(job.job, step, detail))

        log.info(
            "job started", extra={"job_id": job.job, "target_id": job.target, "kind": job.kind}
        )
        try:
            async with asyncio.timeout(job.timeout_ms / 1000):
                result = await driver.run_job(spec, job.kind, job.params, progress)
        except TimeoutError:
            return f.JobResult(job.job, False, {}, f"timed out after {job.timeout_ms} ms")
        except PollError as exc:
            return f.JobResult(job.job, False, {"code": exc.code}, str(exc))
        except Exception:
            log.exception("job failed in the driver", extra={"job_id": job.job})
            return f.JobResult(job.job, False, {}, "internal error in the agent (logged)")
        return f.JobResult(job.job, True, result)

    async def _deliver(self, frame: f.Frame) -> None:
        if self.send is None:
            return  # kept (results) or dropped (progress) until a stream is up
        with contextlib.suppress(Exception):
            await self.send(frame)

    async def connected(self, send: Send) -> None:
        """A new stream is up: resend recent results (the last stream may have lost them)."""
        self.send = send
        now = time.monotonic()
        for job, (at, _) in list(self._results.items()):
            if now - at > KEEP_RESULTS_S:
                del self._results[job]
        for _, result in list(self._results.values()):
            await self._deliver(result)

    def disconnected(self) -> None:
        self.send = None

    def targets_busy(self) -> list[int]:
        return [t for t, tasks in self._running.items() if tasks]

    async def stop_target(self, target: int) -> None:
        """Wait until no job of `target` runs (queued ones fail: the target moved)."""
        for task in list(self._running.get(target, ())):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def cancel_all(self) -> None:
        """Fencing: stop every job now (their drivers close their sessions)."""
        tasks = [t for group in self._running.values() for t in group]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
