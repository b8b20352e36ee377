"""What a simulated fleet counts, and how it shows progress on a terminal or in a log.

`FleetStats` is fed one `SessionRecord` per finished session. Session times keep a
bounded uniform sample (reservoir sampling), so p50/p99 stay cheap over millions of
sessions. `Progress` rewrites one line in place when its stream is a TTY and prints a
line every few seconds otherwise (CI logs stay readable).
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

_MAX_FAILURE_KINDS = 40


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One finished session of one CPE."""

    index: int  # the CPE's session count before this one
    device_id: str
    events: tuple[str, ...]
    started: float  # monotonic seconds
    duration: float
    ok: bool
    error: str = ""
    rpcs: Counter[str] = field(default_factory=Counter)
    faults: Counter[int] = field(default_factory=Counter)


class FleetStats:
    """Counters shared by every CPE of a fleet."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, sample_size: int = 20_000
    ) -> None:
        self._clock = clock
        self.started = clock()
        self.cpes = 0
        self.sessions_ok = 0
        self.sessions_failed = 0
        self.in_flight = 0
        self.connection_requests = 0
        self.downloads = 0
        self.rpcs: Counter[str] = Counter()
        self.faults: Counter[int] = Counter()
        self.events: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self._sample: list[float] = []
        self._sample_size = sample_size
        self._seen = 0
        self._rng = random.Random(0)
        self._waiters: list[tuple[Callable[[FleetStats], bool], asyncio.Future[None]]] = []

    @property
    def sessions(self) -> int:
        """Finished sessions, good or bad."""
        return self.sessions_ok + self.sessions_failed

    def session_started(self) -> None:
        """A session is under way."""
        self.in_flight += 1
        self._changed()

    def count_connection_request(self) -> None:
        """A CPE accepted a connection request."""
        self.connection_requests += 1
        self._changed()

    def when(self, predicate: Callable[[FleetStats], bool]) -> asyncio.Future[None]:
        """A future done as soon as `predicate(self)` holds (checked on every change)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if predicate(self):
            future.set_result(None)
        else:
            self._waiters.append((predicate, future))
        return future

    def record(self, record: SessionRecord) -> None:
        """A session has finished."""
        self.in_flight -= 1
        if record.ok:
            self.sessions_ok += 1
        else:
            self.sessions_failed += 1
            kind = record.error.split(":", 1)[0][:80] or "unknown"
            if kind not in self.failures and len(self.failures) >= _MAX_FAILURE_KINDS:
                kind = "other"
            self.failures[kind] += 1
        self.rpcs.update(record.rpcs)
        self.faults.update(record.faults)
        self.events.update(record.events)
        self._sample_duration(record.duration)
        self._changed()

    def session_aborted(self) -> None:
        """A session was cancelled (the fleet is stopping): neither good nor bad."""
        self.in_flight -= 1
        self._changed()

    def percentile(self, fraction: float) -> float | None:
        """The session time below which `fraction` of sessions finished (seconds)."""
        if not self._sample:
            return None
        ordered = sorted(self._sample)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def elapsed(self) -> float:
        """Seconds since the stats were created."""
        return self._clock() - self.started

    def progress_line(self) -> str:
        """One line for the progress display."""
        elapsed = self.elapsed()
        rate = self.sessions / elapsed if elapsed > 0 else 0.0
        return (
            f"{elapsed:7.1f}s  cpes {self.cpes}  sessions {self.sessions_ok} ok"
            f" / {self.sessions_failed} failed  in flight {self.in_flight}"
            f"  {rate:.1f}/s  p50 {_ms(self.percentile(0.5))}"
            f" p99 {_ms(self.percentile(0.99))}  rpcs {sum(self.rpcs.values())}"
            f"  faults {sum(self.faults.values())}  conn-req {self.connection_requests}"
        )

    def summary(self) -> str:
        """The closing report: totals, rates, session times, RPCs, faults, failures."""
        elapsed = self.elapsed()
        lines = [
            f"simulated {self.cpes} CPEs for {elapsed:.1f} s",
            f"sessions: {self.sessions_ok} ok, {self.sessions_failed} failed"
            f" ({self.sessions / elapsed if elapsed > 0 else 0:.1f}/s)",
            f"session time: p50 {_ms(self.percentile(0.5))}, p99 {_ms(self.percentile(0.99))}",
            f"connection requests: {self.connection_requests}, downloads: {self.downloads}",
            "events sent: " + _counts(self.events),
            "RPCs answered: " + _counts(self.rpcs),
            "faults sent: " + _counts(self.faults),
        ]
        if self.failures:
            lines.append("failures: " + _counts(self.failures))
        return "\n".join(lines)

    def _changed(self) -> None:
        waiting = []
        for predicate, future in self._waiters:
            if future.done():
                continue
            if predicate(self):
                future.set_result(None)
            else:
                waiting.append((predicate, future))
        self._waiters = waiting

    def _sample_duration(self, duration: float) -> None:
        self._seen += 1
        if len(self._sample) < self._sample_size:
            self._sample.append(duration)
            return
        slot = self._rng.randrange(self._seen)
        if slot < self._sample_size:
            self._sample[slot] = duration


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}ms"


def _counts(counter: Counter) -> str:
    if not counter:
        return "none"
    return ", ".join(f"{key} {count}" for key, count in counter.most_common())


class Progress:
    """Shows `FleetStats.progress_line()` until stopped."""

    def __init__(
        self,
        stats: FleetStats,
        stream: TextIO | None = None,
        *,
        every: float = 5.0,
        tty: bool | None = None,
    ) -> None:
        self.stats = stats
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        # In place on a terminal, a few times a second; a log line every `every` s.
        self.every = 0.5 if self.tty else every
        self._width = 0

    def show(self) -> None:
        """Write the current line once."""
        line = self.stats.progress_line()
        if self.tty:
            padding = " " * max(0, self._width - len(line))
            self.stream.write(f"\r{line}{padding}")
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    async def run(self) -> None:
        """Show the line every `every` seconds until cancelled, then end the line."""
        try:
            while True:
                await asyncio.sleep(self.every)
                self.show()
        finally:
            if self.tty and self._width:
                self.stream.write("\n")
                self.stream.flush()
