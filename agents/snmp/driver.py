"""The SNMP driver: targets' poll groups turned into samples and events.

v2c targets go through our own codec on one shared UDP socket (`agents.snmp.v2c`); v3
targets through pysnmp (`agents.snmp.v3`). Which groups exist and what they make of a
walk is `agents.snmp.groups`; this module only does the I/O around it and keeps, per
target, its sessions and the previous poll's counters (`forget` drops both).

Errors: everything an exchange can raise is an `SnmpError`, a `PollError` whose message
names the target's address and never its community or keys.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from agents.driver import Driver, GroupPlan, PollError, PollResult, register
from agents.snmp.ber import TIMETICKS
from agents.snmp.counters import CounterMemory
from agents.snmp.groups import (
    IF_COLUMNS,
    SYS_UPTIME,
    Settings,
    check_options,
    if_samples,
    settings,
    table_samples,
    table_spec,
)
from agents.snmp.session import Session, SnmpError, SnmpProtocolError, SnmpTimeout, Walk, walk
from agents.snmp.v2c import UdpTransports, V2cSession
from agents.snmp.v3 import Engines, V3Session
from schemas.frames import Event, Sample, TargetSpec

log = logging.getLogger(__name__)

GroupPoller = Callable[
    ["SnmpDriver", Session, TargetSpec, GroupPlan, Settings, int], Awaitable[PollResult]
]


@register("snmp")
class SnmpDriver(Driver):
    """SNMP v2c/v3 targets: system uptime, interfaces, and configurable tables."""

    kind: ClassVar[str] = "snmp"
    default_groups: ClassVar[dict[str, str]] = {"system": "normal", "if": "normal"}
    group_classes: ClassVar[dict[str, str]] = {"system": "normal", "if": "normal"}

    def __init__(self) -> None:
        self._transports = UdpTransports()
        self._engines = Engines()
        # target id -> (address, port, version, credentials digest, timeout, retries) ->
        # session: an edited target gets fresh sessions, groups with their own timeout
        # or retries sessions of their own.
        self._sessions: dict[int, dict[tuple[Any, ...], Session]] = {}
        self._memory: dict[tuple[int, str], CounterMemory] = {}

    # --- Driver ------------------------------------------------------------------------

    def check_group(self, name: str, options: dict[str, Any]) -> None:
        check_options(name, options)

    async def poll(self, target: TargetSpec, group: GroupPlan, now_ms: int) -> PollResult:
        opts = settings(group.options, target.credentials)
        session = await self.session(target, opts)
        poller = _POLLERS.get(group.name, SnmpDriver._poll_table)
        try:
            result = await poller(self, session, target, group, opts, now_ms)
        except SnmpTimeout:
            if not _is_ip(target.address):
                # Resolve the name again next time: it may point elsewhere now.
                self._drop_session(target.id, session)
            raise
        for event in result.events:
            # Polls run every few minutes: a line per unusual event is not noise.
            log.info(
                "snmp %s",
                event.kind.replace("_", " "),
                extra={"target_id": target.id, "group": group.name, "detail": event.detail},
            )
        return result

    def forget(self, target_id: int) -> None:
        for session in self._sessions.pop(target_id, {}).values():
            session.close()
        for key in [k for k in self._memory if k[0] == target_id]:
            del self._memory[key]

    async def close(self) -> None:
        for target_id in list(self._sessions):
            self.forget(target_id)
        self._transports.close()
        self._engines.close()

    # --- sessions ----------------------------------------------------------------------

    async def session(self, target: TargetSpec, opts: Settings) -> Session:
        """The target's session for these settings (kept and reused; the huawei-olt
        driver walks an OLT's XPON tables through it too)."""
        creds = target.credentials
        version = str(creds.get("version") or ("2c" if "community" in creds else ""))
        digest = hashlib.sha256(repr(sorted(creds.items())).encode()).hexdigest()
        where = (target.address, target.port, version, digest)
        key = (*where, opts.timeout, opts.retries)
        sessions = self._sessions.setdefault(target.id, {})
        session = sessions.get(key)
        if session is not None:
            return session
        # Groups with their own timeout or retries get sessions of their own, side by
        # side; sessions for another address or other credentials (an edited target) go.
        for old_key in [k for k in sessions if k[:4] != where]:
            sessions.pop(old_key).close()
        host = await _resolve(target.address, target.port)
        address = (host, target.port)
        if version == "2c":
            community = creds.get("community")
            if not isinstance(community, str):
                raise PollError("SNMPv2c credentials need a community", code="bad_credentials")
            session = V2cSession(
                self._transports.for_host(host), address, community, opts.timeout, opts.retries
            )
        elif version == "3":
            session = V3Session(
                self._engines,
                address,
                creds,
                timeout=opts.timeout,
                retries=opts.retries,
            )
        else:
            raise PollError(
                "SNMP credentials must be v2c (community) or v3 (user, keys)",
                code="bad_credentials",
            )
        sessions[key] = session
        return session

    def _drop_session(self, target_id: int, session: Session) -> None:
        sessions = self._sessions.get(target_id, {})
        for key, value in list(sessions.items()):
            if value is session:
                del sessions[key]
                session.close()

    # --- groups ------------------------------------------------------------------------

    async def _poll_system(
        self, session: Session, target: TargetSpec, group: GroupPlan, opts: Settings, now_ms: int
    ) -> PollResult:
        uptime = await _uptime(session)
        if uptime is None:
            raise SnmpProtocolError(f"{session.description} has no sysUpTime.0")
        return PollResult([Sample(target.id, "sys_uptime_s", {}, now_ms, uptime / 100)])

    async def _poll_if(
        self, session: Session, target: TargetSpec, group: GroupPlan, opts: Settings, now_ms: int
    ) -> PollResult:
        uptime = await _uptime(session)
        result = await walk(
            session, list(IF_COLUMNS.values()), opts.max_repetitions, opts.max_varbinds
        )
        memory_key = (target.id, group.name)
        samples, events, memory = if_samples(
            target.id, result.columns, uptime, now_ms, self._memory.get(memory_key)
        )
        self._memory[memory_key] = memory
        return PollResult(samples, [*events, *_walk_events(target.id, group.name, result, now_ms)])

    async def _poll_table(
        self, session: Session, target: TargetSpec, group: GroupPlan, opts: Settings, now_ms: int
    ) -> PollResult:
        spec = table_spec(group.name, group.options)
        uptime = await _uptime(session) if spec.rate else None
        result = await walk(session, spec.walk_roots, opts.max_repetitions, opts.max_varbinds)
        memory_key = (target.id, group.name)
        samples, events, memory = table_samples(
            target.id,
            group.name,
            spec,
            result.columns,
            uptime=uptime,
            now_ms=now_ms,
            memory=self._memory.get(memory_key),
        )
        if memory is not None:
            self._memory[memory_key] = memory
        return PollResult(samples, [*events, *_walk_events(target.id, group.name, result, now_ms)])


_POLLERS: dict[str, GroupPoller] = {
    "system": SnmpDriver._poll_system,
    "if": SnmpDriver._poll_if,
}


async def _uptime(session: Session) -> int | None:
    """sysUpTime.0 in hundredths of a second, or None when the agent lacks it."""
    ((_, tag, value),) = await session.get([SYS_UPTIME])
    if tag != TIMETICKS or not isinstance(value, int):
        return None
    return value


def _walk_events(target: int, group: str, result: Walk, now_ms: int) -> list[Event]:
    return [
        Event(target, "walk_stopped", now_ms, {"group": group, **problem.detail()})
        for problem in result.problems
    ]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _resolve(host: str, port: int) -> str:
    """An IP address for `host` (itself when it already is one)."""
    if _is_ip(host):
        return str(ipaddress.ip_address(host))
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise SnmpError(f"cannot resolve {host}: {exc.strerror or exc}") from None
    if not infos:
        raise SnmpError(f"cannot resolve {host}")
    # IPv4 first: management networks of ISPs are IPv4, and agents often listen on an
    # IPv4 address only while the name (localhost, for one) also has an IPv6 one.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return str(infos[0][4][0])
