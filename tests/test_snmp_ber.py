"""The v2c BER codec: what it writes reads back, it agrees byte for byte with pysnmp's
pyasn1 codec and with what net-snmp's tools send, and garbage is a BerError, never a
crash."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder as asn1_decoder
from pyasn1.codec.ber import encoder as asn1_encoder
from pysnmp.proto import api

from agents.snmp import ber

V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]

# --- strategies ------------------------------------------------------------------------

arcs = st.integers(0, 2**32 - 1)
oids = st.one_of(
    st.tuples(st.integers(0, 1), st.integers(0, 39)),
    st.tuples(st.just(2), st.integers(0, 2**20)),
).flatmap(lambda head: st.lists(arcs, max_size=20).map(lambda rest: (*head, *rest)))
values = st.one_of(
    st.tuples(st.just(ber.INTEGER), st.integers(-(2**31), 2**31 - 1)),
    st.tuples(
        st.sampled_from([ber.COUNTER32, ber.GAUGE32, ber.TIMETICKS]), st.integers(0, 2**32 - 1)
    ),
    st.tuples(st.just(ber.COUNTER64), st.integers(0, 2**64 - 1)),
    st.tuples(st.sampled_from([ber.OCTET_STRING, ber.OPAQUE]), st.binary(max_size=300)),
    st.tuples(st.just(ber.IP_ADDRESS), st.binary(min_size=4, max_size=4)),
    st.tuples(st.just(ber.OBJECT_IDENTIFIER), oids),
    st.tuples(st.sampled_from([ber.NULL, *ber.EXCEPTION_TAGS]), st.none()),
)
varbinds = st.lists(st.tuples(oids, values).map(lambda p: (p[0], *p[1])), max_size=30)
messages = st.builds(
    ber.Message,
    st.sampled_from([ber.V1, ber.V2C]),
    st.binary(max_size=64),
    st.builds(
        ber.Pdu,
        st.sampled_from(sorted(ber.PDU_TYPES)),
        st.integers(-(2**31), 2**31 - 1),
        st.integers(0, 18),
        st.integers(0, 1000),
        varbinds,
    ),
)


@given(messages)
@settings(max_examples=400, deadline=None)
def test_every_message_we_encode_decodes_to_itself(message: ber.Message) -> None:
    assert ber.decode_message(ber.encode_message(message)) == message


@given(
    st.sampled_from([ber.GET, ber.GET_NEXT, ber.GET_BULK]),
    st.integers(-(2**31), 2**31 - 1),
    st.lists(oids, max_size=40),
    st.integers(0, 5),
    st.integers(0, 200),
)
def test_the_request_shortcut_writes_the_same_bytes_as_the_general_encoder(
    pdu_type: int, request_id: int, names: list[ber.Oid], non_repeaters: int, repetitions: int
) -> None:
    fast = ber.encode_request(
        ber.V2C,
        b"public",
        pdu_type,
        request_id,
        names,
        non_repeaters=non_repeaters,
        max_repetitions=repetitions,
    )
    varbinds = [(oid, ber.NULL, None) for oid in names]
    pdu = ber.Pdu(pdu_type, request_id, non_repeaters, repetitions, varbinds)
    assert fast == ber.encode_message(ber.Message(ber.V2C, b"public", pdu))


@given(oids)
def test_oid_content_round_trips(oid: ber.Oid) -> None:
    assert ber.decode_oid(ber.encode_oid(oid)) == oid


@given(messages)
@settings(max_examples=200, deadline=None)
def test_pyasn1_decodes_what_we_encode_to_the_same_varbinds(message: ber.Message) -> None:
    if message.pdu.type not in (ber.GET, ber.GET_NEXT, ber.RESPONSE, ber.SET):
        return  # pysnmp's v2c message model has no decoder switch for every PDU here
    decoded, rest = asn1_decoder.decode(ber.encode_message(message), asn1Spec=V2C.Message())
    assert rest == b""
    assert int(V2C.apiMessage.get_version(decoded)) == message.version
    assert bytes(V2C.apiMessage.get_community(decoded)) == message.community
    pdu = V2C.apiMessage.get_pdu(decoded)
    assert int(V2C.apiPDU.get_request_id(pdu)) == message.pdu.request_id
    theirs = [(tuple(name), value) for name, value in V2C.apiPDU.get_varbinds(pdu)]
    assert [oid for oid, _ in theirs] == [vb[0] for vb in message.pdu.varbinds]
    for (_, value), (_, tag, ours) in zip(theirs, message.pdu.varbinds, strict=True):
        if tag in ber.BYTES_TAGS:
            assert value.asOctets() == ours
        elif tag == ber.OBJECT_IDENTIFIER:
            assert tuple(value) == ours
        elif ours is not None:
            assert int(value) == ours


def pyasn1_response(varbinds: list[tuple[ber.Oid, object]], request_id: int = 77) -> bytes:
    msg = V2C.Message()
    V2C.apiMessage.set_defaults(msg)
    V2C.apiMessage.set_community(msg, "public")
    pdu = V2C.ResponsePDU()
    V2C.apiPDU.set_defaults(pdu)
    V2C.apiPDU.set_request_id(pdu, request_id)
    V2C.apiPDU.set_varbinds(pdu, varbinds)
    V2C.apiMessage.set_pdu(msg, pdu)
    return bytes(asn1_encoder.encode(msg))


def test_a_response_pyasn1_encodes_decodes_and_reencodes_byte_for_byte() -> None:
    data = pyasn1_response(
        [
            ((1, 3, 6, 1, 2, 1, 2, 2, 1, 10, 1000), V2C.Counter32(2**32 - 1)),
            ((1, 3, 6, 1, 2, 1, 1, 1, 0), V2C.OctetString(b"S5720-36C-EI-AC")),
            (
                (1, 3, 6, 1, 2, 1, 1, 2, 0),
                V2C.ObjectIdentifier((1, 3, 6, 1, 4, 1, 2011, 2, 23, 276)),
            ),
            ((1, 3, 6, 1, 2, 1, 4, 20, 1, 1, 10, 0, 0, 1), V2C.IpAddress("10.0.0.1")),
            ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 5), V2C.Counter64(2**64 - 1)),
            ((1, 3, 6, 1, 2, 1, 1, 3, 0), V2C.TimeTicks(1747082970)),
            ((1, 3, 6, 1, 2, 1, 2, 2, 1, 7, 1), V2C.Integer(-5)),
            ((1, 3, 6, 1, 2, 1, 1, 9, 0), V2C.NoSuchObject("")),
            ((1, 3, 6, 1, 2, 1, 1, 10, 0), V2C.EndOfMibView("")),
        ]
    )
    message = ber.decode_message(data)
    assert message.pdu.varbinds == [
        ((1, 3, 6, 1, 2, 1, 2, 2, 1, 10, 1000), ber.COUNTER32, 2**32 - 1),
        ((1, 3, 6, 1, 2, 1, 1, 1, 0), ber.OCTET_STRING, b"S5720-36C-EI-AC"),
        ((1, 3, 6, 1, 2, 1, 1, 2, 0), ber.OBJECT_IDENTIFIER, (1, 3, 6, 1, 4, 1, 2011, 2, 23, 276)),
        ((1, 3, 6, 1, 2, 1, 4, 20, 1, 1, 10, 0, 0, 1), ber.IP_ADDRESS, b"\n\x00\x00\x01"),
        ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 5), ber.COUNTER64, 2**64 - 1),
        ((1, 3, 6, 1, 2, 1, 1, 3, 0), ber.TIMETICKS, 1747082970),
        ((1, 3, 6, 1, 2, 1, 2, 2, 1, 7, 1), ber.INTEGER, -5),
        ((1, 3, 6, 1, 2, 1, 1, 9, 0), ber.NO_SUCH_OBJECT, None),
        ((1, 3, 6, 1, 2, 1, 1, 10, 0), ber.END_OF_MIB_VIEW, None),
    ]
    assert ber.encode_message(message) == data


def tlv(tag: int, content: bytes) -> bytes:
    """A TLV written by hand (not by the codec under test), X.690 definite length."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content


def response_with_value(value_tlv: bytes) -> bytes:
    varbind = tlv(
        0x30, tlv(0x06, bytes.fromhex("2b06010201020201 0a01".replace(" ", ""))) + value_tlv
    )
    pdu = tlv(
        0xA2, tlv(0x02, b"\x01") + tlv(0x02, b"\x00") + tlv(0x02, b"\x00") + tlv(0x30, varbind)
    )
    return tlv(0x30, tlv(0x02, b"\x01") + tlv(0x04, b"public") + pdu)


def test_a_counter32_sent_without_its_leading_zero_reads_as_unsigned() -> None:
    # Some agents send 4294967295 as ff ff ff ff (no 00 in front): they mean unsigned.
    message = ber.decode_message(response_with_value(bytes.fromhex("4104ffffffff")))
    assert message.pdu.varbinds == [((1, 3, 6, 1, 2, 1, 2, 2, 1, 10, 1), ber.COUNTER32, 2**32 - 1)]


def test_a_null_with_content_is_refused() -> None:
    with pytest.raises(ber.BerError, match="with content"):
        ber.decode_message(response_with_value(bytes.fromhex("820100")))


# --- bytes net-snmp writes ---------------------------------------------------------------


@pytest.mark.skipif(shutil.which("snmpbulkget") is None, reason="net-snmp tools (apt snmp) missing")
def test_requests_net_snmp_sends_decode_and_reencode_byte_for_byte() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(5)
        port = listener.getsockname()[1]
        tool = subprocess.Popen(
            [
                "snmpbulkget",
                "-v2c",
                "-c",
                "net-snmp-community",
                "-Cn1",
                "-Cr17",
                "-r0",
                "-t1",
                f"127.0.0.1:{port}",
                "1.3.6.1.2.1.1.3.0",
                "1.3.6.1.2.1.2.2.1.10.1000",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            data, _ = listener.recvfrom(65535)
        finally:
            tool.kill()
            tool.wait()
    message = ber.decode_message(data)
    assert message.version == ber.V2C and message.community == b"net-snmp-community"
    assert message.pdu.type == ber.GET_BULK
    assert (message.pdu.error_status, message.pdu.error_index) == (1, 17)
    assert message.pdu.varbinds == [
        ((1, 3, 6, 1, 2, 1, 1, 3, 0), ber.NULL, None),
        ((1, 3, 6, 1, 2, 1, 2, 2, 1, 10, 1000), ber.NULL, None),
    ]
    assert ber.encode_message(message) == data


# --- garbage -----------------------------------------------------------------------------

SAMPLE = ber.encode_message(
    ber.Message(
        1,
        b"public",
        ber.Pdu(
            ber.RESPONSE,
            4242,
            0,
            0,
            [
                ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 300), ber.COUNTER64, 123456789012),
                (
                    (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1, 300),
                    ber.OCTET_STRING,
                    b"GigabitEthernet0/0/1",
                ),
                ((1, 3, 6, 1, 2, 1, 1, 2, 0), ber.OBJECT_IDENTIFIER, (1, 3, 6, 1, 4, 1, 2011)),
            ],
        ),
    )
)


def test_every_truncation_of_a_response_is_a_clear_error() -> None:
    for cut in range(len(SAMPLE)):
        with pytest.raises(ber.BerError):
            ber.decode_message(SAMPLE[:cut])


def test_trailing_bytes_after_a_message_are_refused() -> None:
    with pytest.raises(ber.BerError, match="after the message"):
        ber.decode_message(SAMPLE + b"\x00")


@pytest.mark.parametrize(
    ("mutation", "reason"),
    [
        (lambda d: b"\x31" + d[1:], "expected message"),
        (lambda d: d[:1] + b"\x80" + d[2:], "length form"),
        (lambda d: d[:1] + b"\x85\xff\xff\xff\xff\xff" + d[2:], "length form"),
        (lambda d: d.replace(b"\x46\x05", b"\x49\x05", 1), "unknown value tag"),
    ],
)
def test_malformed_messages_name_what_is_wrong(
    mutation: Callable[[bytes], bytes], reason: str
) -> None:
    data = mutation(SAMPLE)
    assert data != SAMPLE
    with pytest.raises(ber.BerError, match=reason):
        ber.decode_message(data)


def test_an_oversized_integer_is_refused_rather_than_built() -> None:
    pdu = tlv(0xA2, tlv(0x02, b"\x7f" * 4096) + tlv(0x02, b"\x00") * 2 + tlv(0x30, b""))
    data = tlv(0x30, tlv(0x02, b"\x01") + tlv(0x04, b"public") + pdu)
    with pytest.raises(ber.BerError, match="INTEGER of 4096 bytes"):
        ber.decode_message(data)


@given(st.binary(max_size=200))
@settings(max_examples=1000)
def test_random_bytes_decode_or_raise_ber_error(data: bytes) -> None:
    with contextlib.suppress(ber.BerError):
        ber.decode_message(data)


@given(st.integers(0, len(SAMPLE) - 1), st.integers(0, 255))
@settings(max_examples=1000)
def test_a_response_with_any_byte_changed_decodes_or_raises_ber_error(at: int, byte: int) -> None:
    data = SAMPLE[:at] + bytes((byte,)) + SAMPLE[at + 1 :]
    with contextlib.suppress(ber.BerError):
        ber.decode_message(data)


def test_numeric_oids_parse_and_names_are_refused() -> None:
    assert ber.parse_oid(".1.3.6.1.2.1.1.3.0") == (1, 3, 6, 1, 2, 1, 1, 3, 0)
    for bad in ("IF-MIB::ifInOctets", "1", "1.40.1", "3.1", "1.3.-6", ""):
        with pytest.raises(ValueError):
            ber.parse_oid(bad)
