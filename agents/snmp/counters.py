"""Rates from SNMP counters between two polls: wraps, resets and agent restarts.

Pure code. A Counter32/Counter64 only means something as a difference (RFC 2578 7.1.6:
"the value has its maximum value 2^n-1 ... when it reaches it, it wraps to zero"; and a
discontinuity, such as an agent restart, makes the difference meaningless). So:

- sysUpTime went back since the last poll (and its own 497-day wrap does not explain
  it): the agent restarted; every difference of that cycle is void. The poll reports one
  `counter_reset` event and no rates, and keeps the new values as the next baseline.
- a counter went back: a wrap explains it only if the rate the wrap implies is one the
  interface can carry (`max_rate`, from ifSpeed/ifHighSpeed, or a generous ceiling when
  the agent does not say). A 64-bit counter never wraps in practice, so a 64-bit counter
  going back is a reset; a 32-bit counter wrapping is ordinary on a busy port.
- a counter changed width (the agent started or stopped answering the HC column) or
  its discontinuity marker (ifCounterDiscontinuityTime) moved: no rate this cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Highest rate a wrap may imply when the agent does not give the interface's speed:
# 1.6 Tbit/s in bytes per second, a bound no single port reaches today.
DEFAULT_MAX_BYTES_PER_S: Final = 200e9
# A bound for counters that do not count bytes (packets, errors): a port at its speed in
# minimum-size frames sends about speed/672 packets per second.
DEFAULT_MAX_EVENTS_PER_S: Final = 3e9
UPTIME_WRAP: Final = 2**32  # sysUpTime is TimeTicks: hundredths of a second, 32 bits


@dataclass(frozen=True, slots=True)
class Reading:
    """One counter as one poll saw it."""

    value: int
    width: int  # 32 or 64
    discontinuity: int | None = None  # ifCounterDiscontinuityTime when the agent has it


@dataclass(frozen=True, slots=True)
class Rate:
    per_second: float


@dataclass(frozen=True, slots=True)
class Reset:
    """The counter cannot give a rate this cycle, and why (safe to store in an event)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Baseline:
    """The first reading, or one after a change of width: remembered, no rate yet."""


Outcome = Rate | Reset | Baseline


def counter_rate(
    previous: Reading | None,
    current: Reading,
    seconds: float,
    max_per_second: float,
) -> Outcome:
    """The per-second rate between two readings of one counter, `seconds` apart."""
    if previous is None or previous.width != current.width or seconds <= 0:
        return Baseline()
    if previous.discontinuity != current.discontinuity:
        return Reset("the agent reports a counter discontinuity")
    if current.value >= previous.value:
        return Rate((current.value - previous.value) / seconds)
    wrapped = current.value + 2**current.width - previous.value
    if current.width == 32 and wrapped / seconds <= max_per_second:
        return Rate(wrapped / seconds)
    return Reset(f"{current.width}-bit counter went back from {previous.value} to {current.value}")


def uptime_seconds(previous: int, current: int, wall_seconds: float) -> float | None:
    """Seconds the agent's sysUpTime says passed between two polls, or None when the
    agent restarted (sysUpTime went back and its 32-bit wrap does not explain it)."""
    if current >= previous:
        return (current - previous) / 100
    wrapped = (current + UPTIME_WRAP - previous) / 100
    # A wrap comes after 497 days of uptime; it must match the time that really passed.
    if abs(wrapped - wall_seconds) <= max(30.0, 0.25 * wall_seconds):
        return wrapped
    return None


def max_bytes_per_second(if_speed: int | None, if_high_speed: int | None) -> float:
    """Bytes per second a port can carry, from IF-MIB: ifSpeed is bits/s and saturates
    at 2^32-1 for ports of 4 Gbit/s and more, where ifHighSpeed (Mbit/s) takes over.
    Allow 10% above the nominal speed: agents sample counters at slightly uneven times."""
    bits: float | None = None
    if if_high_speed:
        bits = if_high_speed * 1e6
    if if_speed and if_speed < 2**32 - 1:
        bits = max(bits or 0.0, float(if_speed))
    if not bits:
        return DEFAULT_MAX_BYTES_PER_S
    return bits / 8 * 1.1


@dataclass(slots=True)
class CounterMemory:
    """The previous poll of one group of one target: its time, uptime and counters."""

    ts_ms: int
    uptime: int | None
    readings: dict[tuple[str, str], Reading]


def elapsed(
    memory: CounterMemory | None, now_ms: int, uptime: int | None
) -> tuple[float | None, str | None]:
    """(seconds between the previous poll and this one, or None) and the reason the
    previous counters are void (an agent restart), or None."""
    if memory is None:
        return None, None
    wall = (now_ms - memory.ts_ms) / 1000
    if wall <= 0:
        return None, None
    if (
        memory.uptime is not None
        and uptime is not None
        and uptime_seconds(memory.uptime, uptime, wall) is None
    ):
        return None, f"sysUpTime went back from {memory.uptime} to {uptime}: the agent restarted"
    # Rates use the poll's own clock, not the agent's uptime: sysUpTime counts in 10 ms
    # steps and some agents freeze it under load, while the scheduler's timestamps are
    # taken the same way every cycle.
    return wall, None
