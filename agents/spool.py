"""Reports not yet acknowledged by a controller, kept in order until they are.

Every report gets the next sequence number of this agent process (its boot) and stays
here until an `ack` names it. While the stream is down, reports pile up: the spool keeps
at most `max_bytes` in memory; with a directory it writes every report there too (so a
restarted agent resends what its predecessor had not delivered) and keeps overflow on
disk only, up to `max_disk_bytes`. When full, the oldest reports are dropped and
counted: a bounded loss, reported, rather than an agent that runs out of memory.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import Counter, Gauge

from schemas import frames as f

log = logging.getLogger("chronos.agent.spool")

SPOOLED = Gauge("chronos_agent_spool_reports", "Reports waiting for an acknowledgement")
SPOOL_BYTES = Gauge("chronos_agent_spool_bytes", "Bytes of reports held in memory")
DROPPED = Counter("chronos_agent_spool_dropped_total", "Reports dropped because the spool was full")

_SUFFIX = ".report"


@dataclass(slots=True)
class _Entry:
    size: int
    data: bytes | None  # None: only on disk


class Spool:
    def __init__(
        self,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        directory: Path | None = None,
        max_disk_bytes: int = 1024 * 1024 * 1024,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_disk_bytes = max_disk_bytes
        self.directory = directory
        self.dropped = 0
        self.samples_added = 0  # by this process: what a controller should end up storing
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._memory = 0
        self._disk = 0
        # Entries whose bytes are only on disk: always the newest ones, oldest first.
        self._disk_only: deque[int] = deque()
        self._last = 0
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._recover(directory)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def last_seq(self) -> int:
        return self._last

    def add(self, samples: list[f.Sample], events: list[f.Event]) -> int:
        """Keep one report; returns its sequence number."""
        data = f.encode(f.Report(self._last + 1, tuple(samples), tuple(events)))  # or raise
        self._last += 1
        self.samples_added += len(samples)
        self._keep(self._last, data)
        return self._last

    def _keep(self, seq: int, data: bytes) -> None:
        size = len(data)
        if self.directory is not None:
            while self._disk + size > self.max_disk_bytes and self._entries:
                self._drop_oldest()
            self._path(seq).write_bytes(data)
            self._disk += size
        in_memory = not self._disk_only and self._memory + size <= self.max_bytes
        if not in_memory and self.directory is None:
            while self._entries and self._memory + size > self.max_bytes:
                self._drop_oldest()
            in_memory = True
        self._entries[seq] = _Entry(size, data if in_memory else None)
        if in_memory:
            self._memory += size
        else:
            self._disk_only.append(seq)
        self._gauges()

    def _drop_oldest(self) -> None:
        seq = next(iter(self._entries))
        self._forget(seq)
        self.dropped += 1
        DROPPED.inc()
        log.warning("spool full: oldest report dropped", extra={"seq": seq})

    def ack(self, seq: int) -> None:
        """The controller stored report `seq`."""
        if seq in self._entries:
            self._forget(seq)
            self._gauges()

    def ack_through(self, seq: int) -> None:
        """Every report up to `seq` is stored (what a welcome says)."""
        for old in [s for s in self._entries if s <= seq]:
            self._forget(old)
        self._gauges()

    def pending(self, after: int = 0) -> list[int]:
        """Sequence numbers still unacknowledged, above `after`, oldest first."""
        return [s for s in self._entries if s > after]

    def first_after(self, after: int) -> int | None:
        for seq in self._entries:
            if seq > after:
                return seq
        return None

    def frame(self, seq: int) -> bytes:
        """The encoded report `seq` (read back from disk when it is only there)."""
        entry = self._entries[seq]
        if entry.data is not None:
            return entry.data
        assert self.directory is not None
        return self._path(seq).read_bytes()

    def _forget(self, seq: int) -> None:
        entry = self._entries.pop(seq)
        if entry.data is not None:
            self._memory -= entry.size
        if self.directory is not None:
            self._disk -= entry.size
            with contextlib.suppress(FileNotFoundError):
                self._path(seq).unlink()
        if self._disk_only:
            self._promote()

    def _promote(self) -> None:
        """Bring disk-only reports back into memory, oldest first, while room allows."""
        while self._disk_only:
            entry = self._entries.get(self._disk_only[0])
            if entry is not None:
                if self._memory + entry.size > self.max_bytes:
                    return
                entry.data = self._path(self._disk_only[0]).read_bytes()
                self._memory += entry.size
            self._disk_only.popleft()

    def _path(self, seq: int) -> Path:
        assert self.directory is not None
        return self.directory / f"{seq:020d}{_SUFFIX}"

    def _gauges(self) -> None:
        SPOOLED.set(len(self._entries))
        SPOOL_BYTES.set(self._memory)

    def _recover(self, directory: Path) -> None:
        """Adopt reports a previous process of this agent left undelivered, renumbered in
        this process's sequence (the controller stores each sample once regardless)."""
        files = sorted(p for p in directory.iterdir() if p.name.endswith(_SUFFIX))
        recovered = 0
        for path in files:
            try:
                old = f.decode(path.read_bytes())
            except (OSError, f.FrameError) as exc:
                log.warning(
                    "unreadable spool file skipped", extra={"file": path.name, "error": str(exc)}
                )
                old = None
            os.unlink(path)
            if isinstance(old, f.Report):
                self._last += 1
                self._keep(self._last, f.encode(f.Report(self._last, old.samples, old.events)))
                recovered += 1
        if recovered:
            log.info("reports recovered from the spool directory", extra={"reports": recovered})
