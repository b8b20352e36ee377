"""SNMP v1/v2c messages as BER bytes and back: the codec of the agent's fast path.

Pure code, no I/O. Facts from RFC 3416 (PDUs), RFC 2578 (SMIv2 types) and X.690 (BER):

    Message  ::= SEQUENCE { version INTEGER, community OCTET STRING, data PDU }
    PDU      ::= [context n] IMPLICIT SEQUENCE { request-id, error-status, error-index,
                                               variable-bindings SEQUENCE OF VarBind }
    VarBind  ::= SEQUENCE { name OBJECT IDENTIFIER, value }

A GetBulkRequest carries non-repeaters and max-repetitions where other PDUs carry
error-status and error-index (same wire positions), so one `Pdu` shape serves all.

A varbind is the tuple `(oid, tag, value)`: tuples because a walk of a big table creates
one per row and column, and a tuple is the cheapest object CPython builds. The value is an
int for INTEGER and the unsigned application types, bytes for OCTET STRING, IpAddress,
Opaque and NsapAddress, a tuple for OBJECT IDENTIFIER, None for NULL and the three
exception values (noSuchObject, noSuchInstance, endOfMibView: the tag says which).

`decode_message` is written for speed (a walk decodes every varbind of every response):
one loop with the common cases inline, no per-varbind function calls. Anything that does
not parse raises `BerError`, never another exception, so a hostile datagram cannot crash
the transport that feeds it here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, TypeAlias

Oid: TypeAlias = tuple[int, ...]
Value: TypeAlias = int | bytes | Oid | None
VarBind: TypeAlias = tuple[Oid, int, Value]

# Universal and SMIv2 application tags (RFC 2578 section 7.1, RFC 3416 section 3).
INTEGER: Final = 0x02
OCTET_STRING: Final = 0x04
NULL: Final = 0x05
OBJECT_IDENTIFIER: Final = 0x06
SEQUENCE: Final = 0x30
IP_ADDRESS: Final = 0x40
COUNTER32: Final = 0x41
GAUGE32: Final = 0x42
TIMETICKS: Final = 0x43
OPAQUE: Final = 0x44
NSAP_ADDRESS: Final = 0x45
COUNTER64: Final = 0x46
UINTEGER32: Final = 0x47  # obsolete (RFC 1442) but still sent by old agents
NO_SUCH_OBJECT: Final = 0x80
NO_SUCH_INSTANCE: Final = 0x81
END_OF_MIB_VIEW: Final = 0x82

# PDU tags (context-specific, constructed).
GET: Final = 0xA0
GET_NEXT: Final = 0xA1
RESPONSE: Final = 0xA2
SET: Final = 0xA3
GET_BULK: Final = 0xA5
INFORM: Final = 0xA6
TRAP_V2: Final = 0xA7
REPORT: Final = 0xA8
PDU_TYPES: Final = frozenset({GET, GET_NEXT, RESPONSE, SET, GET_BULK, INFORM, TRAP_V2, REPORT})

V1: Final = 0
V2C: Final = 1

UNSIGNED_TAGS: Final = frozenset({COUNTER32, GAUGE32, TIMETICKS, COUNTER64, UINTEGER32})
BYTES_TAGS: Final = frozenset({OCTET_STRING, IP_ADDRESS, OPAQUE, NSAP_ADDRESS})
EXCEPTION_TAGS: Final = frozenset({NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW})
_EMPTY_TAGS: Final = EXCEPTION_TAGS | {NULL}
# Largest value each unsigned type holds (RFC 2578): the encoder refuses more.
UNSIGNED_MAX: Final = {
    COUNTER32: 2**32 - 1,
    GAUGE32: 2**32 - 1,
    TIMETICKS: 2**32 - 1,
    UINTEGER32: 2**32 - 1,
    COUNTER64: 2**64 - 1,
}
# An INTEGER content longer than this is garbage in SNMP: Counter64 needs 9 bytes at most
# (8 plus a leading zero); refusing more keeps a hostile length from building huge ints.
MAX_INT_BYTES: Final = 9


_HIGH_OCTET: Final = re.compile(rb"[\x80-\xff]")


class BerError(ValueError):
    """Bytes that are not an SNMP message this codec understands (with the reason)."""


@dataclass(frozen=True, slots=True)
class Pdu:
    type: int
    request_id: int
    error_status: int = 0  # non-repeaters in a GetBulkRequest
    error_index: int = 0  # max-repetitions in a GetBulkRequest
    varbinds: list[VarBind] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Message:
    version: int  # 0 = SNMPv1, 1 = SNMPv2c
    community: bytes
    pdu: Pdu


# --- encoding ---------------------------------------------------------------------------


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _length(len(content)) + content


def encode_int(value: int) -> bytes:
    """The content octets of an INTEGER: minimal two's complement (X.690 8.3.2)."""
    return value.to_bytes(
        (value if value >= 0 else ~value).bit_length() // 8 + 1, "big", signed=True
    )


def encode_unsigned(value: int) -> bytes:
    """Unsigned application types travel as INTEGER content: a leading zero keeps the
    top bit from reading as a sign."""
    return value.to_bytes(value.bit_length() // 8 + 1, "big")


def encode_oid(oid: Oid) -> bytes:
    """The content octets of an OBJECT IDENTIFIER (X.690 8.19): base 128, high bit set on
    every octet but the last of each sub-identifier; the first two arcs share one."""
    if len(oid) < 2 or oid[0] > 2 or (oid[0] < 2 and oid[1] >= 40):
        raise BerError(f"not an encodable OID: {oid!r}")
    if len(oid) > 2 and oid[1] < 40:
        # Every walk request carries the last OID seen: encode the usual shapes (all
        # arcs below 128, or all but a last one below 16384) without a Python loop.
        body = oid[2:-1]
        last = oid[-1]
        if not body or (min(body) >= 0 and max(body) < 0x80):
            if 0 <= last < 0x80:
                return bytes((oid[0] * 40 + oid[1], *body, last))
            if 0x80 <= last < 0x4000:
                return bytes((oid[0] * 40 + oid[1], *body, 0x80 | (last >> 7), last & 0x7F))
    out = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):
        if arc < 0:
            raise BerError(f"negative sub-identifier in {oid!r}")
        if arc < 0x80:
            out.append(arc)
            continue
        chunk = bytearray()
        rest = arc
        while rest:
            chunk.append((rest & 0x7F) | 0x80)
            rest >>= 7
        chunk[0] &= 0x7F
        chunk.reverse()
        out += chunk
    return bytes(out)


def encode_value(tag: int, value: Value) -> bytes:
    """One value as a TLV; ValueError (BerError) for a value its type cannot hold."""
    if tag == INTEGER:
        if not isinstance(value, int) or not -(2**31) <= value < 2**31:
            raise BerError(f"INTEGER out of range: {value!r}")
        return _tlv(tag, encode_int(value))
    if tag in UNSIGNED_TAGS:
        if not isinstance(value, int) or not 0 <= value <= UNSIGNED_MAX[tag]:
            raise BerError(f"value out of range for tag 0x{tag:02x}: {value!r}")
        return _tlv(tag, encode_unsigned(value))
    if tag in BYTES_TAGS:
        if not isinstance(value, bytes) or (tag == IP_ADDRESS and len(value) != 4):
            raise BerError(f"tag 0x{tag:02x} takes bytes (IpAddress: 4 of them)")
        return _tlv(tag, value)
    if tag == OBJECT_IDENTIFIER:
        if not isinstance(value, tuple):
            raise BerError("an OBJECT IDENTIFIER value is a tuple of ints")
        return _tlv(tag, encode_oid(value))
    if tag == NULL or tag in EXCEPTION_TAGS:
        return bytes((tag, 0))
    raise BerError(f"unknown value tag 0x{tag:02x}")


def encode_message(message: Message) -> bytes:
    """A whole SNMPv1/v2c message, ready for one UDP datagram."""
    pdu = message.pdu
    if pdu.type not in PDU_TYPES:
        raise BerError(f"unknown PDU type 0x{pdu.type:02x}")
    vbs = b"".join(
        _tlv(SEQUENCE, _tlv(OBJECT_IDENTIFIER, encode_oid(oid)) + encode_value(tag, value))
        for oid, tag, value in pdu.varbinds
    )
    body = (
        _tlv(INTEGER, encode_int(pdu.request_id))
        + _tlv(INTEGER, encode_int(pdu.error_status))
        + _tlv(INTEGER, encode_int(pdu.error_index))
        + _tlv(SEQUENCE, vbs)
    )
    return _tlv(
        SEQUENCE,
        _tlv(INTEGER, encode_int(message.version))
        + _tlv(OCTET_STRING, message.community)
        + _tlv(pdu.type, body),
    )


def encode_request(
    version: int,
    community: bytes,
    pdu_type: int,
    request_id: int,
    oids: list[Oid] | tuple[Oid, ...],
    *,
    non_repeaters: int = 0,
    max_repetitions: int = 0,
) -> bytes:
    """A request whose varbinds carry NULL values (Get, GetNext, GetBulk).

    The same bytes as `encode_message` of that request (the tests hold it to that),
    built with fewer intermediate objects: a walk sends one per response."""
    if pdu_type not in PDU_TYPES:
        raise BerError(f"unknown PDU type 0x{pdu_type:02x}")
    tlv = _tlv
    vbs = b"".join([tlv(SEQUENCE, tlv(OBJECT_IDENTIFIER, encode_oid(o)) + _NULL) for o in oids])
    body = b"".join(
        [
            tlv(INTEGER, encode_int(request_id)),
            _int_tlv(non_repeaters),
            _int_tlv(max_repetitions),
            tlv(SEQUENCE, vbs),
        ]
    )
    return tlv(SEQUENCE, _int_tlv(version) + tlv(OCTET_STRING, community) + tlv(pdu_type, body))


def _int_tlv(value: int) -> bytes:
    return _SMALL_INTS[value] if 0 <= value < 0x80 else _tlv(INTEGER, encode_int(value))


# INTEGER TLVs of 0..127 ready made: versions, non-repeaters and max-repetitions are.
_SMALL_INTS: Final = tuple(bytes((INTEGER, 1, n)) for n in range(0x80))
_NULL: Final = bytes((NULL, 0))


# --- decoding ---------------------------------------------------------------------------


def decode_oid(content: bytes) -> Oid:
    """An OBJECT IDENTIFIER from its content octets."""
    if not content:
        raise BerError("empty OBJECT IDENTIFIER")
    first = content[0]
    if first & 0x80:
        return _decode_oid_slow(content)
    head = (0, first) if first < 40 else (1, first - 40) if first < 80 else (2, first - 80)
    if content.isascii():
        # Every sub-identifier below 128: one octet each.
        return head + tuple(content[1:])
    if content[-1] < 0x80 and content[-2] > 0x80 and content[:-2].isascii():
        # One index of 128..16383 ends the OID (an ifIndex, an ONU id): no loop at all.
        return (*head, *content[1:-2], ((content[-2] & 0x7F) << 7) | content[-1])
    # Indexes sit at the end of an OID whose prefix is one octet per arc: take the prefix
    # in one C call and decode only the tail octet by octet.
    high = _HIGH_OCTET.search(content)
    assert high is not None  # not isascii()
    split = high.start()
    arcs = list(content[1:split])
    arc = 0
    for octet in content[split:]:
        if arc == 0 and octet == 0x80:
            raise BerError("OBJECT IDENTIFIER sub-identifier with a leading 0x80 octet")
        arc = (arc << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(arc)
            arc = 0
    if content[-1] & 0x80:
        raise BerError("OBJECT IDENTIFIER ends inside a sub-identifier")
    return head + tuple(arcs)


def _decode_oid_slow(content: bytes) -> Oid:
    # The first sub-identifier itself spans octets: only OIDs under 2.x with x >= 48.
    arcs: list[int] = []
    arc = 0
    for octet in content:
        if arc == 0 and octet == 0x80:
            raise BerError("OBJECT IDENTIFIER sub-identifier with a leading 0x80 octet")
        arc = (arc << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(arc)
            arc = 0
    if content[-1] & 0x80:
        raise BerError("OBJECT IDENTIFIER ends inside a sub-identifier")
    return (2, arcs[0] - 80, *arcs[1:])


def _header(data: bytes, pos: int, tag: int, what: str) -> tuple[int, int]:
    """(start of content, end of content) of the TLV at `pos`, which must have `tag`."""
    if pos + 2 > len(data):
        raise BerError(f"truncated before {what}")
    if data[pos] != tag:
        raise BerError(f"expected {what} (tag 0x{tag:02x}), found tag 0x{data[pos]:02x}")
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        count = n & 0x7F
        if count == 0 or count > 4:
            raise BerError(f"unsupported length form in {what}")
        if pos + count > len(data):
            raise BerError(f"truncated length of {what}")
        n = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + n
    if end > len(data):
        raise BerError(f"{what} is longer ({n} bytes) than the data left")
    return pos, end


def _int_at(data: bytes, pos: int, what: str) -> tuple[int, int]:
    start, end = _header(data, pos, INTEGER, what)
    if not 0 < end - start <= MAX_INT_BYTES:
        raise BerError(f"{what}: INTEGER of {end - start} bytes")
    return int.from_bytes(data[start:end], "big", signed=True), end


Header: TypeAlias = tuple[int, bytes, int, int, int]


def decode_header(data: bytes) -> Header:
    """(version, community, pdu type, request id, offset of error-status) of a message:
    enough to route a response to its request before decoding its varbinds."""
    try:
        start, end = _header(data, 0, SEQUENCE, "message")
        if end != len(data):
            raise BerError(f"{len(data) - end} bytes after the message")
        version, pos = _int_at(data, start, "version")
        cstart, pos = _header(data, pos, OCTET_STRING, "community")
        community = data[cstart:pos]
        if pos >= len(data) or data[pos] not in PDU_TYPES:
            raise BerError("missing or unsupported PDU")
        pdu_type = data[pos]
        pstart, pend = _header(data, pos, pdu_type, "PDU")
        if pend != end:
            raise BerError("PDU does not end with the message")
        request_id, pos = _int_at(data, pstart, "request-id")
    except IndexError:
        raise BerError("truncated message") from None
    return version, community, pdu_type, request_id, pos


def decode_message(data: bytes) -> Message:
    """A whole SNMPv1/v2c message; BerError for anything else."""
    return decode_body(data, decode_header(data))


def decode_body(data: bytes, header: Header) -> Message:
    """The message whose `decode_header` is `header` (a transport that routed a datagram
    by its header does not parse the header twice)."""
    version, community, pdu_type, request_id, pos = header
    try:
        error_status, pos = _int_at(data, pos, "error-status")
        error_index, pos = _int_at(data, pos, "error-index")
        start, end = _header(data, pos, SEQUENCE, "variable-bindings")
        if end != len(data):
            raise BerError("bytes after the variable-bindings")
        varbinds = _varbinds(data, start, end)
    except (IndexError, ValueError) as exc:
        if isinstance(exc, BerError):
            raise
        raise BerError(f"malformed variable-bindings: {exc}") from None
    return Message(
        version, community, Pdu(pdu_type, request_id, error_status, error_index, varbinds)
    )


def _varbinds(data: bytes, pos: int, end: int) -> list[VarBind]:
    # The hot loop of every walk (a CPU profile of the benchmark is mostly this): tags
    # are literals (0x30 SEQUENCE, 0x06 OBJECT IDENTIFIER, 0x02 INTEGER) because a
    # constant is cheaper to load than a global; lengths are read inline, short form
    # first as agents send them; values are decoded by an if-chain ordered by how often
    # tables hold them. A dispatch table of functions would cost a call per varbind.
    out: list[VarBind] = []
    append = out.append
    from_bytes = int.from_bytes
    unsigned = UNSIGNED_TAGS
    as_bytes = BYTES_TAGS
    empty = _EMPTY_TAGS
    while pos < end:
        if data[pos] != 0x30:
            raise BerError(f"varbind at offset {pos} is not a SEQUENCE")
        n = data[pos + 1]
        if n < 0x80:
            pos += 2
        else:
            count = n & 0x7F
            if not 0 < count <= 4:
                raise BerError("unsupported length form in a varbind")
            n = from_bytes(data[pos + 2 : pos + 2 + count], "big")
            pos += 2 + count
        vb_end = pos + n
        if vb_end > end:
            raise BerError("varbind runs past the variable-bindings")
        if data[pos] != 0x06:
            raise BerError(f"varbind name at offset {pos} is not an OBJECT IDENTIFIER")
        n = data[pos + 1]
        if n >= 0x80:
            raise BerError("OBJECT IDENTIFIER longer than 127 bytes")
        start = pos + 2
        pos = start + n
        # 1.3 (first octet 43) starts every OID agents serve in practice; its common
        # shapes (every arc one octet; or all but a last index of two) decode inline.
        if n and data[start] == 43:
            tail = data[start + 1 : pos]
            if tail.isascii():
                oid: Oid = (1, 3, *tail)
            elif n > 2 and data[pos - 2] > 0x80 and data[pos - 1] < 0x80 and tail[:-2].isascii():
                oid = (1, 3, *tail[:-2], ((data[pos - 2] & 0x7F) << 7) | data[pos - 1])
            else:
                oid = decode_oid(data[start:pos])
        else:
            oid = decode_oid(data[start:pos])
        tag = data[pos]
        n = data[pos + 1]
        if n < 0x80:
            pos += 2
        else:
            count = n & 0x7F
            if not 0 < count <= 4:
                raise BerError("unsupported length form in a value")
            n = from_bytes(data[pos + 2 : pos + 2 + count], "big")
            pos += 2 + count
        if pos + n != vb_end:
            raise BerError(f"value of {_dotted(oid)} does not fill its varbind")
        value: Value
        if tag in unsigned:
            # Unsigned even without the leading zero: agents that send a Counter32 of
            # 2**31 or more as four bytes mean the unsigned number.
            if n == 1:
                value = data[pos]
            elif 0 < n <= MAX_INT_BYTES:
                value = from_bytes(data[pos:vb_end], "big")
            else:
                raise BerError(f"{_dotted(oid)}: unsigned value of {n} bytes")
        elif tag in as_bytes:
            value = data[pos:vb_end]
        elif tag == 0x02:
            if n == 1:
                value = data[pos]
                if value > 0x7F:
                    value -= 0x100
            elif 0 < n <= MAX_INT_BYTES:
                value = from_bytes(data[pos:vb_end], "big", signed=True)
            else:
                raise BerError(f"{_dotted(oid)}: INTEGER of {n} bytes")
        elif tag == 0x06:
            value = decode_oid(data[pos:vb_end])
        elif tag in empty:
            if n:
                raise BerError(f"{_dotted(oid)}: tag 0x{tag:02x} with content")
            value = None
        else:
            raise BerError(f"{_dotted(oid)}: unknown value tag 0x{tag:02x}")
        append((oid, tag, value))
        pos = vb_end
    if pos != end:
        raise BerError("variable-bindings end inside a varbind")
    return out


def _dotted(oid: Oid) -> str:
    return ".".join(map(str, oid))


def dotted(oid: Oid) -> str:
    """`1.3.6.1.2.1.1.3.0` for (1, 3, 6, 1, 2, 1, 1, 3, 0)."""
    return _dotted(oid)


def parse_oid(text: str) -> Oid:
    """(1, 3, 6, ...) from "1.3.6..." or ".1.3.6..."; ValueError for anything else:
    the driver takes numeric OIDs only (no MIB lookup)."""
    parts = text.strip().lstrip(".").split(".")
    try:
        oid = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"not a numeric OID: {text!r}") from None
    if len(oid) < 2 or any(arc < 0 or arc >= 2**32 for arc in oid) or oid[0] > 2:
        raise ValueError(f"not a valid OID: {text!r}")
    if oid[0] < 2 and oid[1] >= 40:
        raise ValueError(f"not a valid OID: {text!r}")
    return oid
