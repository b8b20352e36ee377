"""The SOAP codec: every captured CPE message decodes; each quirk class CPEs show in the
field is tolerated; hostile input is refused with a clear error; what we write reads back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acs import messages as m
from acs import soap
from tests.conftest import SOAP_DATA

CAPTURES = sorted(SOAP_DATA.glob("*.xml"))


def envelope(
    body: str,
    header: str = "<cwmp:ID soap:mustUnderstand='1'>42</cwmp:ID>",
    ns: str = "urn:dslforum-org:cwmp-1-0",
) -> bytes:
    head = f"<soap:Header>{header}</soap:Header>" if header is not None else ""
    return (
        "<soap:Envelope xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'"
        " xmlns:xsd='http://www.w3.org/2001/XMLSchema'"
        " xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance'"
        f" xmlns:cwmp='{ns}'>{head}<soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


INFORM_BODY = (
    "<cwmp:Inform><DeviceId><Manufacturer>Acme</Manufacturer><OUI>00AA11</OUI>"
    "<ProductClass>Box</ProductClass><SerialNumber>SN1</SerialNumber></DeviceId>"
    "<Event><EventStruct><EventCode>2 PERIODIC</EventCode><CommandKey/></EventStruct></Event>"
    "<MaxEnvelopes>1</MaxEnvelopes><CurrentTime>2024-05-01T10:00:00Z</CurrentTime>"
    "<RetryCount>0</RetryCount><ParameterList>{params}</ParameterList></cwmp:Inform>"
)


def inform(params: str = "") -> str:
    return INFORM_BODY.format(params=params)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_every_captured_message_decodes_and_reencodes_to_the_same_message(path: Path) -> None:
    decoded = soap.decode(path.read_bytes())
    assert decoded is not None
    again = soap.decode(soap.encode(decoded.body, id="1", cwmp_ns=decoded.cwmp_ns))
    assert again is not None and again.body == decoded.body
    assert again.cwmp_ns == decoded.cwmp_ns


def test_thomson_inform_keeps_identity_events_and_leading_zero_retry_count() -> None:
    env = soap.decode((SOAP_DATA / "thomson-speedtouch780-Inform-cwmp10.xml").read_bytes())
    assert env is not None and isinstance(env.body, m.Inform)
    body = env.body
    assert body.device_id == m.DeviceIdStruct("THOMSON", "00147F", "SpeedTouch 780", "CP0611JTLNW")
    assert [e.event_code for e in body.events] == [
        "0 BOOTSTRAP",
        "1 BOOT",
        "2 PERIODIC",
        "4 VALUE CHANGE",
    ]
    assert body.retry_count == 5 and body.max_envelopes == 2
    assert env.header.id == "0_THOM_TR69_ID"
    summary = body.parameters[0]
    assert summary.value.startswith("InternetGatewayDevice:1.1[]")  # indentation trimmed


def test_freeacs_inform_name_with_newline_and_duplicate_parameter() -> None:
    env = soap.decode((SOAP_DATA / "freeacs-anonymized-Inform-whitespace-in-Name.xml").read_bytes())
    assert env is not None and isinstance(env.body, m.Inform)
    names = [p.name for p in env.body.parameters]
    assert (
        "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.2.ExternalIPAddress"
        in names
    )
    assert names.count("InternetGatewayDevice.ManagementServer.ConnectionRequestURL") == 2
    assert env.body.current_time == datetime(1970, 1, 2, 0, 8, 34, tzinfo=UTC)  # no zone: UTC


def test_spv_fault_names_each_failing_parameter() -> None:
    env = soap.decode((SOAP_DATA / "thomson-speedtouch780-Fault-SPV-9003.xml").read_bytes())
    assert env is not None and isinstance(env.body, m.Fault)
    assert env.body.code == 9003
    assert [p.name.rsplit(".", 1)[1] for p in env.body.parameter_faults] == ["Password", "Username"]
    assert {p.code for p in env.body.parameter_faults} == {9003}


def test_hold_requests_header_and_cwmp_1_1_namespace() -> None:
    env = soap.decode((SOAP_DATA / "clj-tr069-Inform-cwmp11-HoldRequest-header.xml").read_bytes())
    assert env is not None
    assert env.header.hold_requests is True
    assert env.cwmp_ns == "urn:dslforum-org:cwmp-1-1"


def test_large_gpn_response_lists_all_1384_names() -> None:
    env = soap.decode((SOAP_DATA / "zte-igd-GetParameterNamesResponse-1384params.xml").read_bytes())
    assert env is not None and isinstance(env.body, m.GetParameterNamesResponse)
    assert len(env.body.parameters) == 1384
    assert env.body.parameters[0] == m.ParameterInfo("InternetGatewayDevice.", False)


# --- quirk classes -----------------------------------------------------------------------


def test_no_soap_header_at_all() -> None:
    env = soap.decode(envelope(inform(), header=None))
    assert env is not None and env.header.id is None and isinstance(env.body, m.Inform)


def test_single_quoted_attributes_and_any_prefix() -> None:
    data = (
        b"<E:Envelope xmlns:E='http://schemas.xmlsoap.org/soap/envelope/' xmlns:c='urn:dslforum-org:cwmp-1-2'>"
        b"<E:Header><c:ID E:mustUnderstand='1'>x</c:ID></E:Header>"
        b"<E:Body><c:GetParameterValuesResponse><ParameterList><ParameterValueStruct>"
        b"<Name>A.B</Name><Value xmlns:q='http://www.w3.org/2001/XMLSchema' "
        b"xmlns:i='http://www.w3.org/2001/XMLSchema-instance' i:type='q:int'>7</Value>"
        b"</ParameterValueStruct></ParameterList></c:GetParameterValuesResponse></E:Body></E:Envelope>"
    )
    env = soap.decode(data)
    assert env is not None and env.cwmp_ns == "urn:dslforum-org:cwmp-1-2"
    assert env.body == m.GetParameterValuesResponse((m.ParameterValue("A.B", "7", "xsd:int"),))


@pytest.mark.parametrize("header", ["<cwmp:ID></cwmp:ID>", "<cwmp:ID>  </cwmp:ID>", ""])
def test_empty_or_missing_id(header: str) -> None:
    env = soap.decode(envelope(inform(), header=header))
    assert env is not None and env.header.id is None


def test_whitespace_and_newlines_around_names_and_numbers() -> None:
    params = (
        "<ParameterValueStruct><Name>\n   A.B.C  \n</Name>"
        "<Value xsi:type='xsd:unsignedInt'> 5 </Value></ParameterValueStruct>"
    )
    env = soap.decode(envelope(inform(params).replace("<RetryCount>0", "<RetryCount>\n 3 ")))
    assert env is not None and isinstance(env.body, m.Inform)
    assert env.body.parameters[0].name == "A.B.C"
    assert env.body.retry_count == 3


def test_parameter_value_struct_without_value_and_event_without_code() -> None:
    params = "<ParameterValueStruct><Name>A.B</Name></ParameterValueStruct>"
    body = inform(params).replace(
        "</Event>", "<EventStruct><CommandKey>k</CommandKey></EventStruct></Event>"
    )
    env = soap.decode(envelope(body))
    assert env is not None and isinstance(env.body, m.Inform)
    assert env.body.parameters == (m.ParameterValue("A.B", "", "xsd:string"),)
    assert [e.event_code for e in env.body.events] == ["2 PERIODIC"]


def test_extra_unknown_elements_are_ignored() -> None:
    body = inform().replace("<MaxEnvelopes>", "<X_Vendor><Deep>1</Deep></X_Vendor><MaxEnvelopes>")
    env = soap.decode(envelope(body, header="<cwmp:ID>1</cwmp:ID><v:Thing xmlns:v='urn:v'/>"))
    assert env is not None and isinstance(env.body, m.Inform)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("xsd:string(256)", "xsd:string"),
        ("xs:unsignedInt", "xsd:unsignedInt"),
        ("boolean", "xsd:boolean"),
        ("xsd:DATETIME", "xsd:dateTime"),
        ("SOAP-ENC:base64", "xsd:base64"),
        ("xsd:IPAddress", "xsd:string"),
    ],
)
def test_vendor_type_names_are_normalised(raw: str, normalised: str) -> None:
    params = f"<ParameterValueStruct><Name>A</Name><Value xsi:type='{raw}'>1</Value></ParameterValueStruct>"
    env = soap.decode(envelope(inform(params)))
    assert env is not None and isinstance(env.body, m.Inform)
    assert env.body.parameters[0].type == normalised


def test_old_1999_xml_schema_namespaces() -> None:
    data = envelope(
        inform(
            "<ParameterValueStruct><Name>A</Name><Value xmlns:x9='http://www.w3.org/1999/XMLSchema-instance'"
            " xmlns:s9='http://www.w3.org/1999/XMLSchema' x9:type='s9:boolean'>1</Value>"
            "</ParameterValueStruct>"
        )
    )
    env = soap.decode(data)
    assert env is not None and isinstance(env.body, m.Inform)
    assert env.body.parameters[0] == m.ParameterValue("A", "1", "xsd:boolean")


def test_bytes_that_are_not_utf8_are_read_as_latin1() -> None:
    params = "<ParameterValueStruct><Name>SSID</Name><Value>Caf\xe9</Value></ParameterValueStruct>"
    data = envelope(inform("PLACEHOLDER")).replace(b"PLACEHOLDER", params.encode("latin-1"))
    env = soap.decode(b'<?xml version="1.0" encoding="UTF-8"?>' + data)
    assert env is not None and isinstance(env.body, m.Inform)
    assert env.body.parameters[0].value == "Café"


def test_control_characters_in_values_are_replaced_not_fatal() -> None:
    params = "<ParameterValueStruct><Name>A</Name><Value>a\x01b</Value></ParameterValueStruct>"
    env = soap.decode(envelope(inform(params)))
    assert env is not None and isinstance(env.body, m.Inform)
    assert env.body.parameters[0].value == "a\ufffdb"


def test_datetime_without_timezone_is_utc() -> None:
    env = soap.decode(envelope(inform().replace("2024-05-01T10:00:00Z", "2024-05-01T10:00:00")))
    assert env is not None and isinstance(env.body, m.Inform)
    assert env.body.current_time == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_wrong_or_missing_method_namespace_still_decodes() -> None:
    data = envelope(inform().replace("cwmp:Inform", "Inform"))
    env = soap.decode(data)
    assert env is not None and isinstance(env.body, m.Inform)
    assert env.cwmp_ns == "urn:dslforum-org:cwmp-1-0"  # taken from the header ID


@pytest.mark.parametrize("version", range(5))
def test_each_cwmp_namespace_version_is_recognised(version: int) -> None:
    ns = f"urn:dslforum-org:cwmp-1-{version}"
    env = soap.decode(envelope(inform(), ns=ns))
    assert env is not None and env.cwmp_ns == ns


def test_empty_body_and_empty_envelope_mean_no_message() -> None:
    assert soap.decode(b"") is None
    assert soap.decode(b" \r\n\x00") is None
    assert soap.decode(envelope("")) is None


def test_session_timeout_and_no_more_requests_headers() -> None:
    header = (
        "<cwmp:ID>1</cwmp:ID><cwmp:SessionTimeout>60</cwmp:SessionTimeout>"
        "<cwmp:NoMoreRequests>1</cwmp:NoMoreRequests>"
    )
    env = soap.decode(envelope(inform(), header=header))
    assert env is not None
    assert env.header.session_timeout == 60 and env.header.no_more_requests is True


# --- hostile and broken input --------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "status", "fragment"),
    [
        (b"<soap:Envelope", 400, "malformed XML"),
        (b"not xml at all", 400, "malformed XML"),
        (envelope(inform()) + b"<garbage/>", 400, "malformed XML"),
        (b"<root/>", 400, "not a SOAP Envelope"),
        (
            b"<soap:Envelope xmlns:soap='http://schemas.xmlsoap.org/soap/envelope/'/>",
            400,
            "no Body",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 '
            b'"&lol;&lol;&lol;&lol;">]><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
            b"<soap:Body>&lol2;</soap:Body></soap:Envelope>",
            400,
            "document type declarations",
        ),
        (
            b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
            400,
            "document type declarations",
        ),
    ],
)
def test_bad_input_is_refused_with_a_reason(data: bytes, status: int, fragment: str) -> None:
    with pytest.raises(soap.SoapError) as err:
        soap.decode(data)
    assert err.value.status == status
    assert fragment in str(err.value)


def test_oversize_body_is_413() -> None:
    with pytest.raises(soap.SoapError) as err:
        soap.decode(b" " * 2048, soap.Limits(max_body_bytes=1024))
    assert err.value.status == 413


def test_nesting_beyond_the_depth_limit_is_refused() -> None:
    deep = "<a>" * 40 + "</a>" * 40
    with pytest.raises(soap.SoapError, match="nested deeper"):
        soap.decode(envelope(f"<cwmp:Inform>{deep}</cwmp:Inform>"))


def test_unknown_method_is_reported_as_such() -> None:
    with pytest.raises(soap.UnknownMethod) as err:
        soap.decode(envelope("<cwmp:X_Vendor_Ping/>"))
    assert err.value.method == "X_Vendor_Ping" and err.value.header.id == "42"


# --- writing ----------------------------------------------------------------------------------


def test_written_envelopes_use_the_literal_cwmp_prefix_and_the_cpes_namespace() -> None:
    out = soap.encode(m.InformResponse(1), id="abc", cwmp_ns="urn:dslforum-org:cwmp-1-2")
    assert b'<cwmp:ID soap-env:mustUnderstand="1">abc</cwmp:ID>' in out
    assert b'xmlns:cwmp="urn:dslforum-org:cwmp-1-2"' in out
    assert out.startswith(b"<?xml")
    assert not soap.encode(m.InformResponse(1), id="a", xml_declaration=False).startswith(b"<?xml")


def test_values_are_escaped_and_illegal_characters_refused() -> None:
    spv = m.SetParameterValues((m.ParameterValue("A", "<&>\"'", "xsd:string"),), "k")
    env = soap.decode(soap.encode(spv, id="1"))
    assert env is not None and env.body == spv
    with pytest.raises(ValueError, match=r"XML 1\.0"):
        soap.encode(m.SetParameterValues((m.ParameterValue("A", "\x00"),)), id="1")


_names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}(\.[A-Za-z0-9_]{1,8}){0,4}", fullmatch=True)
_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff"),
    max_size=40,
).map(lambda t: "".join(c for c in t if c >= " " or c in "\t\n").strip())
_types = st.sampled_from(["xsd:string", "xsd:int", "xsd:boolean", "xsd:dateTime"])
_params = st.lists(st.builds(m.ParameterValue, _names, _text, _types), max_size=8)
_messages = st.one_of(
    st.builds(lambda p: m.GetParameterValuesResponse(tuple(p)), _params),
    st.builds(lambda p, k: m.SetParameterValues(tuple(p), k), _params, _text),
    st.builds(m.GetParameterNames, _names.map(lambda n: n + "."), st.booleans()),
    st.builds(lambda n: m.GetParameterValues(tuple(n)), st.lists(_names, max_size=6)),
    st.builds(m.AddObject, _names.map(lambda n: n + "."), _text),
    st.builds(m.AddObjectResponse, st.integers(0, 2**31), st.integers(0, 1)),
    st.builds(m.Reboot, _text),
    st.builds(m.ScheduleInform, st.integers(0, 2**31), _text),
    st.builds(
        lambda c, s, p: m.Fault(c, s, tuple(p)),
        st.integers(9000, 9032),
        _text,
        st.lists(st.builds(m.ParameterFault, _names, st.integers(9000, 9019), _text), max_size=3),
    ),
)


@settings(max_examples=200, deadline=None)
@given(_messages, st.sampled_from(m.CWMP_NAMESPACES), _text.filter(bool))
def test_whatever_we_write_reads_back_identically(message: m.Message, ns: str, ident: str) -> None:
    env = soap.decode(soap.encode(message, id=ident, cwmp_ns=ns))
    assert env is not None
    assert env.body == message
    assert env.cwmp_ns == ns
    assert env.header.id == ident


# --- Upload (A.4.1.5) ---------------------------------------------------------------------


UPLOAD_FILE_TYPES = (
    "1 Vendor Configuration File",
    "2 Vendor Log File",
    "3 Vendor Configuration File 2",
    "4 Vendor Log File 1",
    "X 00D09E Crash Dump",
)


@pytest.mark.parametrize("file_type", UPLOAD_FILE_TYPES)
def test_upload_round_trips_with_every_argument(file_type: str) -> None:
    upload = m.Upload(
        command_key="cc-17",
        file_type=file_type,
        url="http://files.example.net:7567/uploads/17?d=00AA11-Box-SN1&e=1&s=abc",
        username="cpe",
        password="s3cret & <more>",
        delay_seconds=30,
    )
    out = soap.encode(upload, id="9", cwmp_ns="urn:dslforum-org:cwmp-1-2")
    assert b"<cwmp:Upload><CommandKey>cc-17</CommandKey>" in out
    assert b"&amp;e=1&amp;s=abc</URL>" in out
    env = soap.decode(out)
    assert env is not None and env.body == upload and env.cwmp_ns.endswith("1-2")
    assert "s3cret" not in repr(upload)  # the password stays out of logs


def test_upload_response_as_a_cpe_writes_it_decodes_with_its_times() -> None:
    body = (
        "<cwmp:UploadResponse><Status> 1 </Status>"
        "<StartTime>0001-01-01T00:00:00Z</StartTime>"
        "<CompleteTime>0001-01-01T00:00:00Z</CompleteTime></cwmp:UploadResponse>"
    )
    env = soap.decode(envelope(body))
    assert env is not None and isinstance(env.body, m.UploadResponse)
    assert env.body.status == 1
    done = m.UploadResponse(
        0, datetime(2024, 5, 1, 10, 0, tzinfo=UTC), datetime(2024, 5, 1, 10, 1, tzinfo=UTC)
    )
    again = soap.decode(soap.encode(done, id="1"))
    assert again is not None and again.body == done


def test_upload_from_another_stack_with_missing_optional_elements() -> None:
    body = (
        "<u:Upload xmlns:u='urn:dslforum-org:cwmp-1-0'><CommandKey>k</CommandKey>"
        "<FileType>2 Vendor Log File</FileType><URL>\n http://127.0.0.1/up \n</URL></u:Upload>"
    )
    env = soap.decode(envelope(body))
    assert env is not None
    assert env.body == m.Upload("k", "2 Vendor Log File", "http://127.0.0.1/up")
    assert m.RESPONSE_FOR[m.Upload] is m.UploadResponse


@settings(max_examples=100, deadline=None)
@given(
    st.builds(
        m.Upload,
        _text,
        st.sampled_from(UPLOAD_FILE_TYPES),
        _text.filter(lambda t: t == t.strip()),
        _text,
        _text,
        st.integers(0, 2**31),
    ),
    st.sampled_from(m.CWMP_NAMESPACES),
)
def test_any_upload_reads_back_identically(upload: m.Upload, ns: str) -> None:
    env = soap.decode(soap.encode(upload, id="1", cwmp_ns=ns))
    assert env is not None and env.body == upload
