"""SNMPv2c over UDP with our own BER codec: the agent's fast path.

pysnmp's codec decodes about 15k varbinds per second per core; an agent walking big
OLT and switch tables needs an order of magnitude more. v2c needs no security
processing, so its messages are encoded and decoded by `agents.snmp.ber` and carried by
one UDP socket per address family, shared by every v2c target of the driver:

- each request gets a request-id unique among those in flight; a response is matched by
  request-id, and must come from the address the request went to and carry the same
  community, or it is dropped (a stray or late datagram cannot answer another request);
- a retry resends the same bytes with the same request-id, so a slow answer to the
  first try still counts;
- a datagram that does not decode is dropped and counted, or, when its header names a
  request in flight, fails that request with a clear `SnmpProtocolError`: it never
  raises out of the protocol callback, which would not crash anything but would lose
  the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import socket
from collections.abc import Callable, Sequence
from typing import Any

from agents.snmp import ber
from agents.snmp.ber import GET, GET_BULK, RESPONSE, BerError, Message, Oid, VarBind
from agents.snmp.session import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    Session,
    SnmpError,
    SnmpProtocolError,
    SnmpTimeout,
    agent_error,
)

log = logging.getLogger(__name__)

Address = tuple[str, int]
# Varbinds per GET request: an agent answers a GET in one datagram, so keep it small.
GET_BATCH = 40
# Ask the kernel for a large receive buffer: many targets answering at once must not
# overflow it (the kernel caps the request at net.core.rmem_max; that is fine).
RECEIVE_BUFFER = 4 * 1024 * 1024


class _Pending:
    """One request in flight: its bytes (for retries), where it went, its future."""

    __slots__ = ("address", "community", "data", "future", "timer", "tries_left")

    def __init__(
        self,
        address: Address,
        community: bytes,
        data: bytes,
        future: asyncio.Future[Message],
        tries_left: int,
    ) -> None:
        self.address = address
        self.community = community
        self.data = data
        self.future = future
        self.tries_left = tries_left
        self.timer: asyncio.TimerHandle | None = None


class UdpTransport(asyncio.DatagramProtocol):
    """One UDP socket for many targets, responses routed by request-id."""

    def __init__(self, family: int = socket.AF_INET) -> None:
        self.family = family
        self._transport: asyncio.DatagramTransport | None = None
        self._opening: asyncio.Lock = asyncio.Lock()
        self._pending: dict[int, _Pending] = {}
        self._next_id = 1 + secrets.randbelow(2**31 - 2)
        self.dropped = 0  # datagrams that matched nothing or did not decode

    async def _open(self) -> asyncio.DatagramTransport:
        async with self._opening:
            if self._transport is None or self._transport.is_closing():
                loop = asyncio.get_running_loop()
                local = ("::", 0) if self.family == socket.AF_INET6 else ("0.0.0.0", 0)
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: self, local_addr=local, family=self.family
                )
                sock = transport.get_extra_info("socket")
                # Platforms that refuse keep their default buffer; that is fine.
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
                self._transport = transport
            return self._transport

    def _request_id(self) -> int:
        # Sequential from a random start, skipping ids in flight: unique among pending
        # requests, and a restarted agent does not reuse the ids of the one before, whose
        # late answers may still be on their way.
        while True:
            rid = self._next_id
            self._next_id = rid + 1 if rid < 2**31 - 1 else 1
            if rid not in self._pending:
                return rid

    async def exchange(
        self,
        address: Address,
        community: bytes,
        encode: Callable[[int], bytes],
        per_try: float,
        retries: int,
    ) -> Message:
        """Send the request `encode(request_id)` and return the matching response.

        Each try waits `per_try` seconds (asyncio.timeout cannot express resends that
        keep one request-id), `retries` more tries follow the first."""
        transport = self._transport
        if transport is None or transport.is_closing():
            transport = await self._open()
        loop = asyncio.get_running_loop()
        rid = self._request_id()
        data = encode(rid)
        pending = _Pending(address, community, data, loop.create_future(), retries)
        self._pending[rid] = pending
        try:
            transport.sendto(data, address)
            pending.timer = loop.call_later(per_try, self._expire, rid, per_try)
            return await pending.future
        finally:
            # Answered, timed out, or the caller was cancelled: nothing stays behind.
            if pending.timer is not None:
                pending.timer.cancel()
            if self._pending.get(rid) is pending:
                del self._pending[rid]

    def _expire(self, rid: int, per_try: float) -> None:
        pending = self._pending.get(rid)
        if pending is None or pending.future.done():
            return
        if pending.tries_left > 0 and self._transport is not None:
            pending.tries_left -= 1
            self._transport.sendto(pending.data, pending.address)
            pending.timer = asyncio.get_running_loop().call_later(
                per_try, self._expire, rid, per_try
            )
            return
        pending.future.set_exception(
            SnmpTimeout(
                f"no answer from {_where(pending.address)}"
                " (unreachable, or it does not accept the community)"
            )
        )

    # --- asyncio.DatagramProtocol ---------------------------------------------------

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            header = ber.decode_header(data)
        except BerError:
            self.dropped += 1
            return
        _, community, pdu_type, rid, _ = header
        pending = self._pending.get(rid)
        if (
            pending is None
            or pending.future.done()
            or (addr[0], addr[1]) != pending.address
            or community != pending.community
        ):
            self.dropped += 1
            return
        if pdu_type != RESPONSE:
            pending.future.set_exception(
                SnmpProtocolError(f"{_where(pending.address)} answered with PDU 0x{pdu_type:02x}")
            )
            return
        try:
            message = ber.decode_body(data, header)
        except BerError as exc:
            pending.future.set_exception(
                SnmpProtocolError(f"malformed response from {_where(pending.address)}: {exc}")
            )
            return
        pending.future.set_result(message)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors on an unconnected socket name no request: the request times out.
        log.debug("snmp udp socket error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(SnmpError("the SNMP socket closed"))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


def _where(address: Address) -> str:
    return f"{address[0]}:{address[1]}"


class UdpTransports:
    """The driver's shared sockets: one per address family, opened on first use."""

    def __init__(self) -> None:
        self._by_family: dict[int, UdpTransport] = {}

    def for_host(self, host: str) -> UdpTransport:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        transport = self._by_family.get(family)
        if transport is None:
            transport = self._by_family[family] = UdpTransport(family)
        return transport

    def close(self) -> None:
        for transport in self._by_family.values():
            transport.close()
        self._by_family.clear()


class V2cSession(Session):
    """GET and GETBULK with a community, through a shared `UdpTransport`."""

    def __init__(
        self,
        transport: UdpTransport,
        address: Address,
        community: str | bytes,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        self.transport = transport
        self.address = address
        self.community = community.encode() if isinstance(community, str) else community
        self.timeout = timeout
        self.retries = retries
        self.description = f"v2c {_where(address)}"

    async def _exchange(self, encode: Callable[[int], bytes], oids: Sequence[Oid]) -> Message:
        message = await self.transport.exchange(
            self.address, self.community, encode, self.timeout, self.retries
        )
        if message.pdu.error_status:
            raise agent_error(message.pdu.error_status, message.pdu.error_index, oids)
        return message

    async def get(self, oids: Sequence[Oid]) -> list[VarBind]:
        out: list[VarBind] = []
        community = self.community
        for start in range(0, len(oids), GET_BATCH):
            batch = list(oids[start : start + GET_BATCH])
            message = await self._exchange(
                lambda rid, b=batch: ber.encode_request(ber.V2C, community, GET, rid, b), batch
            )
            varbinds = message.pdu.varbinds
            if [vb[0] for vb in varbinds] != batch:
                raise SnmpProtocolError(
                    f"{self.description} answered a GET with other OIDs than asked"
                )
            out.extend(varbinds)
        return out

    async def get_bulk(
        self, oids: Sequence[Oid], non_repeaters: int, max_repetitions: int
    ) -> list[VarBind]:
        community = self.community
        request = list(oids)

        def encode(rid: int) -> bytes:
            return ber.encode_request(
                ber.V2C,
                community,
                GET_BULK,
                rid,
                request,
                non_repeaters=non_repeaters,
                max_repetitions=max_repetitions,
            )

        # Straight to the transport, not through _exchange: a walk awaits this once per
        # response, and every coroutine level costs on each resume.
        message = await self.transport.exchange(
            self.address, community, encode, self.timeout, self.retries
        )
        if message.pdu.error_status:
            raise agent_error(message.pdu.error_status, message.pdu.error_index, request)
        return message.pdu.varbinds
