"""Simulated SNMP v2c devices: many behind one UDP port on 127.0.0.1, told apart by community.

Device N answers to the community `dev<N>` (or any community in `communities`) with a
small, live MIB (`DeviceMib`): system group (sysUpTime ticking from the simulator's
start), and an ifTable/ifXTable of `interfaces` rows whose octet counters grow at
`octets_per_s`. Another MIB plugs in as `mib` (any `Mib`: sorted OIDs and a value
per device), as the simulated OLT's XPON view does (`tools.sim.olt.XponMib`).
GET, GETNEXT and GETBULK are answered; the BER codec is the agent's own.

Every request is logged per device with its time and source address, so tests can ask
who polled a device and when (`requests_for`); `silent` devices never answer (a dead
target), `latency` delays every answer.

Command line: `chronos sim snmp --port 16100 --devices 1000` (or `python -m tools.sim.snmp`).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from agents.snmp import ber

log = logging.getLogger("chronos.sim.snmp")

SYS = (1, 3, 6, 1, 2, 1, 1)
IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IFX_ENTRY = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
MAX_RESPONSE_VARBINDS = 200


@dataclass(frozen=True, slots=True)
class Request:
    at: float  # time.monotonic()
    source: tuple[str, int]


class Mib(Protocol):
    """What a simulator serves: its OIDs in order, and the value of one for a device."""

    def oids(self) -> list[ber.Oid]:
        """Every OID served, sorted (the same list while nothing changed)."""
        ...

    def value(self, device: int, oid: ber.Oid) -> tuple[int, ber.Value] | None:
        """(tag, value) of `oid` for device number `device`; None: no such object."""
        ...


class DeviceMib:
    """The default MIB: system group and an ifTable/ifXTable with growing counters."""

    def __init__(self, interfaces: int, octets_per_s: int, started: float) -> None:
        self.interfaces, self.octets_per_s, self.started = interfaces, octets_per_s, started
        self._static = self._static_oids()
        self._oids = sorted(self._static)

    def _static_oids(self) -> dict[ber.Oid, tuple[int, object]]:
        mib: dict[ber.Oid, tuple[int, object]] = {
            (*SYS, 1, 0): (ber.OCTET_STRING, b"ChronosConnect simulated device"),
            (*SYS, 2, 0): (ber.OBJECT_IDENTIFIER, (1, 3, 6, 1, 4, 1, 99999, 1)),
            (*SYS, 3, 0): (ber.TIMETICKS, "uptime"),
            (*SYS, 5, 0): (ber.OCTET_STRING, "name"),
        }
        for i in range(1, self.interfaces + 1):
            mib[(*IF_ENTRY, 1, i)] = (ber.INTEGER, i)
            mib[(*IF_ENTRY, 2, i)] = (ber.OCTET_STRING, f"eth{i}".encode())
            mib[(*IF_ENTRY, 5, i)] = (ber.GAUGE32, 1_000_000_000)
            mib[(*IF_ENTRY, 8, i)] = (ber.INTEGER, 1)
            mib[(*IF_ENTRY, 10, i)] = (ber.COUNTER32, "in32")
            mib[(*IF_ENTRY, 16, i)] = (ber.COUNTER32, "out32")
            mib[(*IFX_ENTRY, 1, i)] = (ber.OCTET_STRING, f"eth{i}".encode())
            mib[(*IFX_ENTRY, 6, i)] = (ber.COUNTER64, "in64")
            mib[(*IFX_ENTRY, 10, i)] = (ber.COUNTER64, "out64")
            mib[(*IFX_ENTRY, 15, i)] = (ber.GAUGE32, 1000)
        return mib

    def oids(self) -> list[ber.Oid]:
        return self._oids

    def value(self, device: int, oid: ber.Oid) -> tuple[int, ber.Value] | None:
        entry = self._static.get(oid)
        if entry is None:
            return None
        tag, value = entry
        if not isinstance(value, str):
            return tag, value  # type: ignore[return-value]
        elapsed = time.monotonic() - self.started
        if value == "uptime":
            return tag, int(elapsed * 100) % 2**32
        if value == "name":
            return tag, f"dev{device}".encode()
        octets = int(elapsed * self.octets_per_s * (1 + oid[-1] % 3)) + device * 1000
        return tag, octets % (2**32 if tag == ber.COUNTER32 else 2**64)


@dataclass
class SnmpSimulator(asyncio.DatagramProtocol):
    devices: int = 10
    interfaces: int = 4
    octets_per_s: int = 125_000  # 1 Mbit/s per interface
    latency: float = 0.0
    silent: set[int] = field(default_factory=set)
    started: float = field(default_factory=time.monotonic)
    log: dict[int, list[Request]] = field(default_factory=lambda: defaultdict(list))
    transport: asyncio.DatagramTransport | None = None
    answered: int = 0
    mib: Mib | None = None  # None: DeviceMib(interfaces, octets_per_s)
    communities: dict[str, int] = field(default_factory=dict)  # besides dev<N>

    def __post_init__(self) -> None:
        if self.mib is None:
            self.mib = DeviceMib(self.interfaces, self.octets_per_s, self.started)

    # --- the MIB ---

    def _get(self, device: int, oid: ber.Oid) -> ber.VarBind:
        found = self.mib.value(device, oid)  # type: ignore[union-attr]
        if found is None:
            return (oid, ber.NO_SUCH_OBJECT, None)
        return (oid, *found)

    def _next(self, device: int, oid: ber.Oid) -> ber.VarBind:
        oids = self.mib.oids()  # type: ignore[union-attr]
        at = bisect.bisect_right(oids, oid)
        while at < len(oids):
            found = self.mib.value(device, oids[at])  # type: ignore[union-attr]
            if found is not None:
                return (oids[at], *found)
            at += 1
        return (oid, ber.END_OF_MIB_VIEW, None)

    def answer(self, device: int, pdu: ber.Pdu) -> list[ber.VarBind]:
        oids = [vb[0] for vb in pdu.varbinds]
        if pdu.type == ber.GET:
            return [self._get(device, o) for o in oids]
        if pdu.type == ber.GET_NEXT:
            return [self._next(device, o) for o in oids]
        non_repeaters, repetitions = pdu.error_status, max(pdu.error_index, 1)
        out = [self._next(device, o) for o in oids[:non_repeaters]]
        cursors = oids[non_repeaters:]
        for _ in range(repetitions):
            if not cursors or len(out) >= MAX_RESPONSE_VARBINDS:
                break
            row = [self._next(device, o) for o in cursors]
            out.extend(row)
            cursors = [vb[0] for vb in row]
        return out

    # --- UDP ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = ber.decode_message(data)
        except ber.BerError:
            return  # a real agent drops what it cannot parse
        device = self.communities.get(message.community.decode("latin-1"))
        device = device or _device(message.community)
        if device is None or device > self.devices:
            return  # wrong community: silence, as real agents answer
        self.log[device].append(Request(time.monotonic(), addr))
        if device in self.silent:
            return
        reply = ber.Message(
            message.version,
            message.community,
            ber.Pdu(ber.RESPONSE, message.pdu.request_id, 0, 0, self.answer(device, message.pdu)),
        )
        data = ber.encode_message(reply)
        if self.latency:
            asyncio.get_running_loop().call_later(self.latency, self._send, data, addr)
        else:
            self._send(data, addr)

    def _send(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)
            self.answered += 1

    # --- for tests ---

    def requests_for(self, device: int) -> list[Request]:
        return list(self.log.get(device, ()))

    def sources(self, device: int) -> list[tuple[str, int]]:
        """Who polled `device`, in order of first request."""
        seen: dict[tuple[str, int], None] = {}
        for request in self.log.get(device, ()):
            seen.setdefault(request.source)
        return list(seen)


def _device(community: bytes) -> int | None:
    if community.startswith(b"dev") and community[3:].isdigit():
        return int(community[3:])
    return None


def community(device: int) -> str:
    return f"dev{device}"


@contextlib.asynccontextmanager
async def running(simulator: SnmpSimulator, port: int = 0):  # type: ignore[no-untyped-def]
    """Serve `simulator` on 127.0.0.1:`port` (0: a free one); yields the port."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: simulator, local_addr=("127.0.0.1", port)
    )
    try:
        yield transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


def targets(port: int, devices: Iterable[int], zone: str = "local", interval: int = 60) -> list:
    """Target documents (as the API takes them) for simulated devices."""
    return [
        {
            "name": f"sim-dev{n}",
            "kind": "snmp",
            "address": "127.0.0.1",
            "port": port,
            "credentials": {"version": "2c", "community": community(n)},
            "labels": {"zone": zone},
            "profile": {"system": {"interval": interval}},
        }
        for n in devices
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=16100)
    parser.add_argument("--devices", type=int, default=100, help="communities dev1..devN")
    parser.add_argument("--interfaces", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before answering")


async def run(args: argparse.Namespace) -> int:
    simulator = SnmpSimulator(args.devices, args.interfaces, latency=args.latency)
    async with running(simulator, args.port) as port:
        print(
            f"{args.devices} simulated SNMP devices on udp://127.0.0.1:{port}"
            f" (communities dev1..dev{args.devices}); Ctrl-C stops",
            flush=True,
        )
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tools.sim.snmp")
    add_arguments(parser)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(parser.parse_args()))
