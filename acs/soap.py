"""The CWMP SOAP codec: bytes <-> `acs.messages`, with no sockets and no database.

Tolerant in what it reads, strict in what it writes. Reading matches elements by local
name whatever their prefix or namespace (CPEs get both wrong), trims the whitespace CPEs
wrap around names and numbers, accepts bytes that are not valid UTF-8, and never loads a
DTD, an entity or anything from the network: a document type declaration is refused
outright, as SOAP 1.1 section 3 forbids one. Writing always uses the literal `cwmp:`
prefix for the header ID (some CPEs match on it) and the CPE's own CWMP namespace.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from acs import messages as m
from acs.values import format_datetime, normalize_type, parse_datetime

SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ENC_NS = "http://schemas.xmlsoap.org/soap/encoding/"


class SoapError(Exception):
    """Bytes that are not a usable CWMP envelope; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what the decoder accepts from a peer."""

    max_body_bytes: int = 8 * 1024 * 1024
    max_depth: int = 24
    max_elements: int = 500_000


DEFAULT_LIMITS = Limits()

# --- reading -----------------------------------------------------------------------

_DTD_RE = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_DECL_ENCODING_RE = re.compile(rb"^<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
# Characters XML 1.0 does not allow anywhere, even escaped (section 2.2).
_ILLEGAL_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_PARSER_OPTIONS = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
    "collect_ids": False,
}
_PARSER = etree.XMLParser(**_PARSER_OPTIONS)
_UTF8_PARSER = etree.XMLParser(encoding="utf-8", **_PARSER_OPTIONS)


def _latin1_fallback(error: UnicodeError) -> tuple[str, int]:
    """Decode a byte that is not UTF-8 as Latin-1: what such CPEs almost always mean."""
    assert isinstance(error, UnicodeDecodeError)
    bad = error.object[error.start : error.end]
    return bad.decode("latin-1"), error.end


codecs.register_error("cwmp-latin1-fallback", _latin1_fallback)


def _repair(data: bytes) -> bytes | None:
    """Bytes a CPE meant as UTF-8 but got wrong, made parseable; None if nothing to fix."""
    declared = _DECL_ENCODING_RE.match(data)
    if declared and declared.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
        return None
    text = data.decode("utf-8", "cwmp-latin1-fallback")
    text = _ILLEGAL_XML_CHARS.sub("\ufffd", text)
    fixed = text.encode("utf-8")
    return None if fixed == data else fixed


class _LocalNames(dict[object, str]):
    """Local names by tag ("{ns}Name" -> "Name"), remembered: CWMP reuses few tags."""

    def __missing__(self, tag: object) -> str:
        name = tag[tag.rfind("}") + 1 :] if isinstance(tag, str) else ""
        if len(self) < 4096:  # a peer must not grow it without bound
            self[tag] = name
        return name


_local = _LocalNames().__getitem__


def _children(el: etree._Element) -> dict[str, etree._Element]:
    """Element children by local name; the first of each name wins."""
    out: dict[str, etree._Element] = {}
    for child in el:
        name = _local(child.tag)
        if name and name not in out:
            out[name] = child
    return out


def _elements(el: etree._Element | None) -> Iterable[etree._Element]:
    if el is None:
        return ()
    return (c for c in el if isinstance(c.tag, str))


def _text(el: etree._Element | None) -> str:
    if el is None or el.text is None:
        return ""
    return el.text


def _name(el: etree._Element | None) -> str:
    """Parameter names lose surrounding whitespace (CPEs wrap them in newlines)."""
    return _text(el).strip()


def _int(el: etree._Element | None, default: int = 0) -> int:
    text = _text(el).strip()
    try:
        return int(text)
    except ValueError:
        return default


def _bool(el: etree._Element | None) -> bool:
    return _text(el).strip().lower() in ("1", "true")


def _time(el: etree._Element | None) -> datetime | None:
    return parse_datetime(_text(el)) if el is not None else None


_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


def _type_attr(el: etree._Element) -> str | None:
    found = el.get(_XSI_TYPE)  # the common case, looked up in C
    if found is not None:
        return found
    for key, value in el.attrib.items():
        if key == "type" or key.endswith("}type"):
            return value
    return None


def _name_value(struct: etree._Element) -> tuple[etree._Element | None, etree._Element | None]:
    """A struct's Name and Value elements; the usual exact shape is taken without a dict."""
    if len(struct) == 2:
        first, second = struct[0], struct[1]
        if _local(first.tag) == "Name" and _local(second.tag) == "Value":
            return first, second
    fields = _children(struct)
    return fields.get("Name"), fields.get("Value")


def _parameter_values(el: etree._Element | None) -> tuple[m.ParameterValue, ...]:
    out = []
    for struct in _elements(el):
        name_el, value_el = _name_value(struct)
        name = _name(name_el)
        if value_el is None:
            out.append(m.ParameterValue(name, "", "xsd:string"))
            continue
        type_ = normalize_type(_type_attr(value_el))
        text = _text(value_el)
        out.append(m.ParameterValue(name, text.strip() if "\n" in text else text, type_))
    return tuple(out)


def _strings(el: etree._Element | None) -> tuple[str, ...]:
    return tuple(_name(c) for c in _elements(el))


def _fault_struct(el: etree._Element | None) -> m.FaultStruct:
    if el is None:
        return m.FaultStruct()
    fields = _children(el)
    return m.FaultStruct(_int(fields.get("FaultCode")), _text(fields.get("FaultString")).strip())


def _dec_inform(f: dict[str, etree._Element]) -> m.Inform:
    dev = _children(f["DeviceId"]) if "DeviceId" in f else {}
    events = []
    for struct in _elements(f.get("Event")):
        ef = _children(struct)
        code = _name(ef.get("EventCode"))
        if code:  # an EventStruct without EventCode says nothing we can act on
            events.append(m.EventStruct(code, _text(ef.get("CommandKey")).strip()))
    return m.Inform(
        device_id=m.DeviceIdStruct(
            manufacturer=_name(dev.get("Manufacturer")),
            oui=_name(dev.get("OUI")),
            product_class=_name(dev.get("ProductClass")),
            serial_number=_name(dev.get("SerialNumber")),
        ),
        events=tuple(events),
        max_envelopes=_int(f.get("MaxEnvelopes"), 1),
        current_time=_time(f.get("CurrentTime")),
        retry_count=_int(f.get("RetryCount")),
        parameters=_parameter_values(f.get("ParameterList")),
    )


def _dec_transfer_complete(f: dict[str, etree._Element]) -> m.TransferComplete:
    return m.TransferComplete(
        command_key=_text(f.get("CommandKey")).strip(),
        fault=_fault_struct(f.get("FaultStruct")),
        start_time=_time(f.get("StartTime")),
        complete_time=_time(f.get("CompleteTime")),
    )


def _dec_autonomous_transfer_complete(
    f: dict[str, etree._Element],
) -> m.AutonomousTransferComplete:
    return m.AutonomousTransferComplete(
        announce_url=_name(f.get("AnnounceURL")),
        transfer_url=_name(f.get("TransferURL")),
        is_download=_bool(f.get("IsDownload")),
        file_type=_name(f.get("FileType")),
        file_size=_int(f.get("FileSize")),
        target_file_name=_name(f.get("TargetFileName")),
        fault=_fault_struct(f.get("FaultStruct")),
        start_time=_time(f.get("StartTime")),
        complete_time=_time(f.get("CompleteTime")),
    )


def _dec_request_download(f: dict[str, etree._Element]) -> m.RequestDownload:
    args = []
    for struct in _elements(f.get("FileTypeArg")):
        af = _children(struct)
        args.append((_name(af.get("Name")), _text(af.get("Value"))))
    return m.RequestDownload(_name(f.get("FileType")), tuple(args))


def _dec_kicked(f: dict[str, etree._Element]) -> m.Kicked:
    return m.Kicked(
        command=_name(f.get("Command")),
        referer=_name(f.get("Referer")),
        arg=_text(f.get("Arg")),
        next=_name(f.get("Next")),
    )


def _dec_gpn_response(f: dict[str, etree._Element]) -> m.GetParameterNamesResponse:
    out = []
    for struct in _elements(f.get("ParameterList")):
        sf = _children(struct)
        out.append(m.ParameterInfo(_name(sf.get("Name")), _bool(sf.get("Writable"))))
    return m.GetParameterNamesResponse(tuple(out))


def _dec_gpa_response(f: dict[str, etree._Element]) -> m.GetParameterAttributesResponse:
    out = []
    for struct in _elements(f.get("ParameterList")):
        sf = _children(struct)
        out.append(
            m.ParameterAttribute(
                _name(sf.get("Name")),
                _int(sf.get("Notification")),
                _strings(sf.get("AccessList")),
            )
        )
    return m.GetParameterAttributesResponse(tuple(out))


def _dec_spa(f: dict[str, etree._Element]) -> m.SetParameterAttributes:
    out = []
    for struct in _elements(f.get("ParameterList")):
        sf = _children(struct)
        out.append(
            m.SetParameterAttribute(
                name=_name(sf.get("Name")),
                notification_change=_bool(sf.get("NotificationChange")),
                notification=_int(sf.get("Notification")),
                access_list_change=_bool(sf.get("AccessListChange")),
                access_list=_strings(sf.get("AccessList")),
            )
        )
    return m.SetParameterAttributes(tuple(out))


def _dec_download(f: dict[str, etree._Element]) -> m.Download:
    return m.Download(
        command_key=_text(f.get("CommandKey")).strip(),
        file_type=_name(f.get("FileType")),
        url=_name(f.get("URL")),
        username=_text(f.get("Username")),
        password=_text(f.get("Password")),
        file_size=_int(f.get("FileSize")),
        target_file_name=_name(f.get("TargetFileName")),
        delay_seconds=_int(f.get("DelaySeconds")),
        success_url=_name(f.get("SuccessURL")),
        failure_url=_name(f.get("FailureURL")),
    )


def _dec_upload(f: dict[str, etree._Element]) -> m.Upload:
    return m.Upload(
        command_key=_text(f.get("CommandKey")).strip(),
        file_type=_name(f.get("FileType")),
        url=_name(f.get("URL")),
        username=_text(f.get("Username")),
        password=_text(f.get("Password")),
        delay_seconds=_int(f.get("DelaySeconds")),
    )


def _dec_fault(f: dict[str, etree._Element]) -> m.Fault:
    soap_faultcode = _name(f.get("faultcode")).rpartition(":")[2] or "Client"
    detail = f.get("detail")
    cwmp_fault = _children(detail).get("Fault") if detail is not None else None
    if cwmp_fault is None:
        # A bare SOAP Fault: keep its text, call it an internal error of the sender.
        return m.Fault(9002, _text(f.get("faultstring")).strip(), (), soap_faultcode)
    ff = _children(cwmp_fault)
    parameter_faults = []
    for child in _elements(cwmp_fault):
        if _local(child.tag) == "SetParameterValuesFault":
            pf = _children(child)
            parameter_faults.append(
                m.ParameterFault(
                    _name(pf.get("ParameterName")),
                    _int(pf.get("FaultCode")),
                    _text(pf.get("FaultString")).strip(),
                )
            )
    return m.Fault(
        _int(ff.get("FaultCode"), 9002),
        _text(ff.get("FaultString")).strip(),
        tuple(parameter_faults),
        soap_faultcode,
    )


_DECODERS: dict[str, Callable[[dict[str, etree._Element]], m.Message]] = {
    "Inform": _dec_inform,
    "InformResponse": lambda f: m.InformResponse(_int(f.get("MaxEnvelopes"), 1)),
    "TransferComplete": _dec_transfer_complete,
    "TransferCompleteResponse": lambda f: m.TransferCompleteResponse(),
    "AutonomousTransferComplete": _dec_autonomous_transfer_complete,
    "AutonomousTransferCompleteResponse": lambda f: m.AutonomousTransferCompleteResponse(),
    "RequestDownload": _dec_request_download,
    "RequestDownloadResponse": lambda f: m.RequestDownloadResponse(),
    "Kicked": _dec_kicked,
    "KickedResponse": lambda f: m.KickedResponse(_name(f.get("NextURL"))),
    "GetRPCMethods": lambda f: m.GetRPCMethods(),
    "GetRPCMethodsResponse": lambda f: m.GetRPCMethodsResponse(_strings(f.get("MethodList"))),
    "GetParameterNames": lambda f: m.GetParameterNames(
        _name(f.get("ParameterPath")), _bool(f.get("NextLevel"))
    ),
    "GetParameterNamesResponse": _dec_gpn_response,
    "GetParameterValues": lambda f: m.GetParameterValues(_strings(f.get("ParameterNames"))),
    "GetParameterValuesResponse": lambda f: m.GetParameterValuesResponse(
        _parameter_values(f.get("ParameterList"))
    ),
    "SetParameterValues": lambda f: m.SetParameterValues(
        _parameter_values(f.get("ParameterList")), _text(f.get("ParameterKey")).strip()
    ),
    "SetParameterValuesResponse": lambda f: m.SetParameterValuesResponse(_int(f.get("Status"))),
    "GetParameterAttributes": lambda f: m.GetParameterAttributes(_strings(f.get("ParameterNames"))),
    "GetParameterAttributesResponse": _dec_gpa_response,
    "SetParameterAttributes": _dec_spa,
    "SetParameterAttributesResponse": lambda f: m.SetParameterAttributesResponse(),
    "AddObject": lambda f: m.AddObject(
        _name(f.get("ObjectName")), _text(f.get("ParameterKey")).strip()
    ),
    "AddObjectResponse": lambda f: m.AddObjectResponse(
        _int(f.get("InstanceNumber")), _int(f.get("Status"))
    ),
    "DeleteObject": lambda f: m.DeleteObject(
        _name(f.get("ObjectName")), _text(f.get("ParameterKey")).strip()
    ),
    "DeleteObjectResponse": lambda f: m.DeleteObjectResponse(_int(f.get("Status"))),
    "Reboot": lambda f: m.Reboot(_text(f.get("CommandKey")).strip()),
    "RebootResponse": lambda f: m.RebootResponse(),
    "FactoryReset": lambda f: m.FactoryReset(),
    "FactoryResetResponse": lambda f: m.FactoryResetResponse(),
    "Download": _dec_download,
    "DownloadResponse": lambda f: m.DownloadResponse(
        _int(f.get("Status")), _time(f.get("StartTime")), _time(f.get("CompleteTime"))
    ),
    "Upload": _dec_upload,
    "UploadResponse": lambda f: m.UploadResponse(
        _int(f.get("Status")), _time(f.get("StartTime")), _time(f.get("CompleteTime"))
    ),
    "ScheduleInform": lambda f: m.ScheduleInform(
        _int(f.get("DelaySeconds")), _text(f.get("CommandKey")).strip()
    ),
    "ScheduleInformResponse": lambda f: m.ScheduleInformResponse(),
    "Fault": _dec_fault,
}


def _parse(data: bytes, limits: Limits) -> etree._Element:
    try:
        return etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as first:
        repaired = _repair(data)
        if repaired is None:
            raise SoapError(f"malformed XML: {first}") from None
        try:
            return etree.fromstring(repaired, _UTF8_PARSER)
        except etree.XMLSyntaxError as second:
            raise SoapError(f"malformed XML: {second}") from None


def _check_shape(root: etree._Element, limits: Limits) -> None:
    depth = 0
    count = 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        if event == "start":
            depth += 1
            count += 1
            if depth > limits.max_depth:
                raise SoapError(f"envelope nested deeper than {limits.max_depth} elements")
            if count > limits.max_elements:
                raise SoapError(f"envelope has more than {limits.max_elements} elements", 413)
        else:
            depth -= 1


def _cwmp_namespace(method: etree._Element, header: etree._Element | None) -> str:
    candidates = [method.tag]
    if header is not None:
        candidates.extend(c.tag for c in _elements(header))
    for tag in candidates:
        if isinstance(tag, str) and tag.startswith("{urn:dslforum-org:cwmp-"):
            ns = tag[1 : tag.index("}")]
            if ns in m.CWMP_NAMESPACES:
                return ns
    for ns in method.nsmap.values():
        if ns in m.CWMP_NAMESPACES:
            return ns
    return m.DEFAULT_CWMP_NAMESPACE


def _decode_header(header: etree._Element | None) -> m.Header:
    if header is None:
        return m.Header()
    fields = _children(header)
    id_el = fields.get("ID")
    ident = _text(id_el).strip() if id_el is not None else None
    timeout_el = fields.get("SessionTimeout")
    # cwmp-1-0 spelled it HoldRequests; a few CPEs write HoldRequest.
    hold_el = fields.get("HoldRequests", fields.get("HoldRequest"))
    more_el = fields.get("NoMoreRequests")
    return m.Header(
        id=ident or None,
        hold_requests=_bool(hold_el) if hold_el is not None else None,
        no_more_requests=_bool(more_el) if more_el is not None else None,
        session_timeout=_int(timeout_el) or None if timeout_el is not None else None,
    )


def decode(data: bytes, limits: Limits = DEFAULT_LIMITS) -> m.Envelope | None:
    """Decode one HTTP body: None for an empty POST, else the envelope.

    Raises `SoapError` (status 400, or 413 when too large) for anything that is not a
    usable CWMP envelope; the error text says what was wrong, for the reply and the log.
    """
    if len(data) > limits.max_body_bytes:
        raise SoapError(f"body of {len(data)} bytes exceeds {limits.max_body_bytes}", 413)
    data = data.strip(b" \t\r\n\x00")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:].lstrip()
    if not data:
        return None
    if _DTD_RE.search(data):
        raise SoapError("document type declarations are not allowed in SOAP messages")
    root = _parse(data, limits)
    _check_shape(root, limits)
    if _local(root.tag) != "Envelope":
        raise SoapError(f"root element is {_local(root.tag) or '?'!r}, not a SOAP Envelope")
    parts = _children(root)
    body = parts.get("Body")
    if body is None:
        raise SoapError("SOAP Envelope has no Body")
    method = next(iter(_elements(body)), None)
    header = parts.get("Header")
    if method is None:
        return None  # an empty Body is what some CPEs send instead of an empty POST
    name = _local(method.tag)
    decoder = _DECODERS.get(name)
    if decoder is None:
        raise UnknownMethod(name, _decode_header(header), _cwmp_namespace(method, header))
    try:
        message = decoder(_children(method))
    except (KeyError, ValueError) as exc:
        raise SoapError(f"{name} is missing or has a malformed element: {exc}") from None
    return m.Envelope(_decode_header(header), message, _cwmp_namespace(method, header))


class UnknownMethod(SoapError):
    """A well-formed envelope whose method we do not know: answer with fault 8000."""

    def __init__(self, name: str, header: m.Header, cwmp_ns: str) -> None:
        super().__init__(f"unknown CWMP method {name!r}")
        self.method = name
        self.header = header
        self.cwmp_ns = cwmp_ns


# --- writing -----------------------------------------------------------------------

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#13;"})


def esc(text: str) -> str:
    """Escape text for element content or a double-quoted attribute."""
    if _ILLEGAL_XML_CHARS.search(text):
        raise ValueError("text holds characters XML 1.0 cannot carry")
    return text.translate(_ESCAPES)


def _el(name: str, text: str) -> str:
    return f"<{name}>{esc(text)}</{name}>"


def _bool_text(value: bool) -> str:
    return "1" if value else "0"


def _time_text(value: datetime | None) -> str:
    return format_datetime(value) if value is not None else "0001-01-01T00:00:00Z"


def _array(name: str, item_type: str, items: list[str]) -> str:
    return f'<{name} soap-enc:arrayType="{item_type}[{len(items)}]">{"".join(items)}</{name}>'


def _pvs(params: tuple[m.ParameterValue, ...]) -> str:
    return _array(
        "ParameterList",
        "cwmp:ParameterValueStruct",
        [
            f"<ParameterValueStruct>{_el('Name', p.name)}"
            f'<Value xsi:type="{p.type}">{esc(p.value)}</Value></ParameterValueStruct>'
            for p in params
        ],
    )


def _names(tag: str, names: tuple[str, ...]) -> str:
    return _array(tag, "xsd:string", [_el("string", n) for n in names])


def _fault_struct_xml(fault: m.FaultStruct) -> str:
    return (
        f"<FaultStruct>{_el('FaultCode', str(fault.code))}"
        f"{_el('FaultString', fault.string)}</FaultStruct>"
    )


def _enc_inform(x: m.Inform) -> str:
    d = x.device_id
    events = [
        f"<EventStruct>{_el('EventCode', e.event_code)}{_el('CommandKey', e.command_key)}"
        "</EventStruct>"
        for e in x.events
    ]
    return (
        "<cwmp:Inform><DeviceId>"
        f"{_el('Manufacturer', d.manufacturer)}{_el('OUI', d.oui)}"
        f"{_el('ProductClass', d.product_class)}{_el('SerialNumber', d.serial_number)}"
        f"</DeviceId>{_array('Event', 'cwmp:EventStruct', events)}"
        f"{_el('MaxEnvelopes', str(x.max_envelopes))}"
        f"{_el('CurrentTime', _time_text(x.current_time))}"
        f"{_el('RetryCount', str(x.retry_count))}{_pvs(x.parameters)}</cwmp:Inform>"
    )


def _enc_transfer_complete(x: m.TransferComplete) -> str:
    return (
        f"<cwmp:TransferComplete>{_el('CommandKey', x.command_key)}"
        f"{_fault_struct_xml(x.fault)}{_el('StartTime', _time_text(x.start_time))}"
        f"{_el('CompleteTime', _time_text(x.complete_time))}</cwmp:TransferComplete>"
    )


def _enc_autonomous_transfer_complete(x: m.AutonomousTransferComplete) -> str:
    return (
        "<cwmp:AutonomousTransferComplete>"
        f"{_el('AnnounceURL', x.announce_url)}{_el('TransferURL', x.transfer_url)}"
        f"{_el('IsDownload', _bool_text(x.is_download))}{_el('FileType', x.file_type)}"
        f"{_el('FileSize', str(x.file_size))}{_el('TargetFileName', x.target_file_name)}"
        f"{_fault_struct_xml(x.fault)}{_el('StartTime', _time_text(x.start_time))}"
        f"{_el('CompleteTime', _time_text(x.complete_time))}"
        "</cwmp:AutonomousTransferComplete>"
    )


def _enc_request_download(x: m.RequestDownload) -> str:
    args = [
        f"<ArgStruct>{_el('Name', k)}{_el('Value', v)}</ArgStruct>" for k, v in x.file_type_args
    ]
    return (
        f"<cwmp:RequestDownload>{_el('FileType', x.file_type)}"
        f"{_array('FileTypeArg', 'cwmp:ArgStruct', args)}</cwmp:RequestDownload>"
    )


def _enc_kicked(x: m.Kicked) -> str:
    return (
        f"<cwmp:Kicked>{_el('Command', x.command)}{_el('Referer', x.referer)}"
        f"{_el('Arg', x.arg)}{_el('Next', x.next)}</cwmp:Kicked>"
    )


def _enc_gpn_response(x: m.GetParameterNamesResponse) -> str:
    items = [
        f"<ParameterInfoStruct>{_el('Name', p.name)}"
        f"{_el('Writable', _bool_text(p.writable))}</ParameterInfoStruct>"
        for p in x.parameters
    ]
    return (
        "<cwmp:GetParameterNamesResponse>"
        f"{_array('ParameterList', 'cwmp:ParameterInfoStruct', items)}"
        "</cwmp:GetParameterNamesResponse>"
    )


def _enc_gpa_response(x: m.GetParameterAttributesResponse) -> str:
    items = [
        f"<ParameterAttributeStruct>{_el('Name', p.name)}"
        f"{_el('Notification', str(p.notification))}{_names('AccessList', p.access_list)}"
        "</ParameterAttributeStruct>"
        for p in x.parameters
    ]
    return (
        "<cwmp:GetParameterAttributesResponse>"
        f"{_array('ParameterList', 'cwmp:ParameterAttributeStruct', items)}"
        "</cwmp:GetParameterAttributesResponse>"
    )


def _enc_spa(x: m.SetParameterAttributes) -> str:
    items = [
        f"<SetParameterAttributesStruct>{_el('Name', p.name)}"
        f"{_el('NotificationChange', _bool_text(p.notification_change))}"
        f"{_el('Notification', str(p.notification))}"
        f"{_el('AccessListChange', _bool_text(p.access_list_change))}"
        f"{_names('AccessList', p.access_list)}</SetParameterAttributesStruct>"
        for p in x.parameters
    ]
    return (
        "<cwmp:SetParameterAttributes>"
        f"{_array('ParameterList', 'cwmp:SetParameterAttributesStruct', items)}"
        "</cwmp:SetParameterAttributes>"
    )


def _enc_download(x: m.Download) -> str:
    return (
        f"<cwmp:Download>{_el('CommandKey', x.command_key)}{_el('FileType', x.file_type)}"
        f"{_el('URL', x.url)}{_el('Username', x.username)}{_el('Password', x.password)}"
        f"{_el('FileSize', str(x.file_size))}{_el('TargetFileName', x.target_file_name)}"
        f"{_el('DelaySeconds', str(x.delay_seconds))}{_el('SuccessURL', x.success_url)}"
        f"{_el('FailureURL', x.failure_url)}</cwmp:Download>"
    )


def _enc_download_response(x: m.DownloadResponse) -> str:
    return (
        f"<cwmp:DownloadResponse>{_el('Status', str(x.status))}"
        f"{_el('StartTime', _time_text(x.start_time))}"
        f"{_el('CompleteTime', _time_text(x.complete_time))}</cwmp:DownloadResponse>"
    )


def _enc_upload(x: m.Upload) -> str:
    return (
        f"<cwmp:Upload>{_el('CommandKey', x.command_key)}{_el('FileType', x.file_type)}"
        f"{_el('URL', x.url)}{_el('Username', x.username)}{_el('Password', x.password)}"
        f"{_el('DelaySeconds', str(x.delay_seconds))}</cwmp:Upload>"
    )


def _enc_upload_response(x: m.UploadResponse) -> str:
    return (
        f"<cwmp:UploadResponse>{_el('Status', str(x.status))}"
        f"{_el('StartTime', _time_text(x.start_time))}"
        f"{_el('CompleteTime', _time_text(x.complete_time))}</cwmp:UploadResponse>"
    )


def _enc_fault(x: m.Fault) -> str:
    spv = "".join(
        f"<SetParameterValuesFault>{_el('ParameterName', p.name)}"
        f"{_el('FaultCode', str(p.code))}{_el('FaultString', p.string)}"
        "</SetParameterValuesFault>"
        for p in x.parameter_faults
    )
    return (
        f"<soap-env:Fault>{_el('faultcode', x.soap_faultcode)}"
        "<faultstring>CWMP fault</faultstring><detail><cwmp:Fault>"
        f"{_el('FaultCode', str(x.code))}{_el('FaultString', x.string)}{spv}"
        "</cwmp:Fault></detail></soap-env:Fault>"
    )


def _empty(name: str) -> Callable[[object], str]:
    return lambda _: f"<cwmp:{name}/>"


_ENCODERS: dict[type, Callable[[m.Message], str]] = {  # type: ignore[dict-item]
    m.Inform: _enc_inform,
    m.InformResponse: lambda x: (
        f"<cwmp:InformResponse>{_el('MaxEnvelopes', str(x.max_envelopes))}</cwmp:InformResponse>"
    ),
    m.TransferComplete: _enc_transfer_complete,
    m.TransferCompleteResponse: _empty("TransferCompleteResponse"),
    m.AutonomousTransferComplete: _enc_autonomous_transfer_complete,
    m.AutonomousTransferCompleteResponse: _empty("AutonomousTransferCompleteResponse"),
    m.RequestDownload: _enc_request_download,
    m.RequestDownloadResponse: _empty("RequestDownloadResponse"),
    m.Kicked: _enc_kicked,
    m.KickedResponse: lambda x: (
        f"<cwmp:KickedResponse>{_el('NextURL', x.next_url)}</cwmp:KickedResponse>"
    ),
    m.GetRPCMethods: _empty("GetRPCMethods"),
    m.GetRPCMethodsResponse: lambda x: (
        f"<cwmp:GetRPCMethodsResponse>{_names('MethodList', x.methods)}"
        "</cwmp:GetRPCMethodsResponse>"
    ),
    m.GetParameterNames: lambda x: (
        f"<cwmp:GetParameterNames>{_el('ParameterPath', x.parameter_path)}"
        f"{_el('NextLevel', _bool_text(x.next_level))}</cwmp:GetParameterNames>"
    ),
    m.GetParameterNamesResponse: _enc_gpn_response,
    m.GetParameterValues: lambda x: (
        f"<cwmp:GetParameterValues>{_names('ParameterNames', x.names)}</cwmp:GetParameterValues>"
    ),
    m.GetParameterValuesResponse: lambda x: (
        f"<cwmp:GetParameterValuesResponse>{_pvs(x.parameters)}</cwmp:GetParameterValuesResponse>"
    ),
    m.SetParameterValues: lambda x: (
        f"<cwmp:SetParameterValues>{_pvs(x.parameters)}"
        f"{_el('ParameterKey', x.parameter_key)}</cwmp:SetParameterValues>"
    ),
    m.SetParameterValuesResponse: lambda x: (
        f"<cwmp:SetParameterValuesResponse>{_el('Status', str(x.status))}"
        "</cwmp:SetParameterValuesResponse>"
    ),
    m.GetParameterAttributes: lambda x: (
        f"<cwmp:GetParameterAttributes>{_names('ParameterNames', x.names)}"
        "</cwmp:GetParameterAttributes>"
    ),
    m.GetParameterAttributesResponse: _enc_gpa_response,
    m.SetParameterAttributes: _enc_spa,
    m.SetParameterAttributesResponse: _empty("SetParameterAttributesResponse"),
    m.AddObject: lambda x: (
        f"<cwmp:AddObject>{_el('ObjectName', x.object_name)}"
        f"{_el('ParameterKey', x.parameter_key)}</cwmp:AddObject>"
    ),
    m.AddObjectResponse: lambda x: (
        f"<cwmp:AddObjectResponse>{_el('InstanceNumber', str(x.instance_number))}"
        f"{_el('Status', str(x.status))}</cwmp:AddObjectResponse>"
    ),
    m.DeleteObject: lambda x: (
        f"<cwmp:DeleteObject>{_el('ObjectName', x.object_name)}"
        f"{_el('ParameterKey', x.parameter_key)}</cwmp:DeleteObject>"
    ),
    m.DeleteObjectResponse: lambda x: (
        f"<cwmp:DeleteObjectResponse>{_el('Status', str(x.status))}</cwmp:DeleteObjectResponse>"
    ),
    m.Reboot: lambda x: f"<cwmp:Reboot>{_el('CommandKey', x.command_key)}</cwmp:Reboot>",
    m.RebootResponse: _empty("RebootResponse"),
    m.FactoryReset: _empty("FactoryReset"),
    m.FactoryResetResponse: _empty("FactoryResetResponse"),
    m.Download: _enc_download,
    m.DownloadResponse: _enc_download_response,
    m.Upload: _enc_upload,
    m.UploadResponse: _enc_upload_response,
    m.ScheduleInform: lambda x: (
        f"<cwmp:ScheduleInform>{_el('DelaySeconds', str(x.delay_seconds))}"
        f"{_el('CommandKey', x.command_key)}</cwmp:ScheduleInform>"
    ),
    m.ScheduleInformResponse: _empty("ScheduleInformResponse"),
    m.Fault: _enc_fault,
}

_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def encode(
    message: m.Message,
    *,
    id: str,
    cwmp_ns: str = m.DEFAULT_CWMP_NAMESPACE,
    hold_requests: bool | None = None,
    session_timeout: int | None = None,
    xml_declaration: bool = True,
) -> bytes:
    """One envelope as UTF-8 bytes; the header always carries `cwmp:ID`."""
    header = f'<cwmp:ID soap-env:mustUnderstand="1">{esc(id)}</cwmp:ID>'
    if hold_requests is not None:
        header += (
            '<cwmp:HoldRequests soap-env:mustUnderstand="1">'
            f"{_bool_text(hold_requests)}</cwmp:HoldRequests>"
        )
    if session_timeout is not None:
        header += (
            '<cwmp:SessionTimeout soap-env:mustUnderstand="0">'
            f"{session_timeout}</cwmp:SessionTimeout>"
        )
    body = _ENCODERS[type(message)](message)
    text = (
        (_XML_DECLARATION if xml_declaration else "")
        + f'<soap-env:Envelope xmlns:soap-env="{SOAP_ENV_NS}" xmlns:soap-enc="{SOAP_ENC_NS}"'
        ' xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        f' xmlns:cwmp="{cwmp_ns}"><soap-env:Header>{header}</soap-env:Header>'
        f"<soap-env:Body>{body}</soap-env:Body></soap-env:Envelope>"
    )
    return text.encode("utf-8")
