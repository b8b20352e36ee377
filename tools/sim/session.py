"""The CPE side of one CWMP session (TR-069 section 3.7), with no sockets.

The rules, in one place:

    start()                        -> Inform                      AWAIT_INFORM_RESPONSE
    AWAIT_INFORM_RESPONSE  --InformResponse-->  a CPE request      AWAIT_RESPONSE
                                                or an empty POST   AWAIT_ACS
    AWAIT_RESPONSE  --its response-->           the next request   AWAIT_RESPONSE
                                                or an empty POST   AWAIT_ACS
    AWAIT_RESPONSE  --Fault-->                  an empty POST      AWAIT_ACS (retry later)
    AWAIT_ACS  --an ACS request-->              its response       AWAIT_ACS
    AWAIT_ACS  --empty body / 204-->            a held request     AWAIT_RESPONSE
                                                or nothing         DONE
    anything else (a non-200/204 status, garbage, the wrong reply) FAILED

The CPE sends its own requests (TransferComplete) only when the ACS's last envelope did
not set HoldRequests (3.7.2.4); an empty HTTP response carries no header, so held
requests go out once the ACS has nothing more to ask. Every ACS request is answered;
an unknown one with fault 9000. What the ACS asked for that happens after the session
(reboot, factory reset, scheduled informs, downloads) is collected in `actions` for the
caller to carry out once the session has ended well.
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from acs import messages as m
from acs import soap
from acs.faults import REGISTRY, CpeMethodNotSupported, CwmpFault, InvalidArguments
from acs.values import BOOLEAN
from tools.sim.datamodel import DataModel

# What GetRPCMethods answers: the CPE methods this simulator implements (A.3.1).
CPE_METHODS: tuple[str, ...] = (
    "GetRPCMethods",
    "GetParameterNames",
    "GetParameterValues",
    "SetParameterValues",
    "GetParameterAttributes",
    "SetParameterAttributes",
    "AddObject",
    "DeleteObject",
    "Reboot",
    "FactoryReset",
    "Download",
    "Upload",
    "ScheduleInform",
)
# Download FileTypes accepted (A.3.2.8); vendor types start with "X ".
FILE_TYPES = ("1 Firmware Upgrade Image", "2 Web Content", "3 Vendor Configuration File")
# Upload FileTypes (A.4.1.5): this CPE has one configuration file and one log (<i> = 1).
UPLOAD_FILE_TYPES = (
    "1 Vendor Configuration File",
    "2 Vendor Log File",
    "3 Vendor Configuration File 1",
    "4 Vendor Log File 1",
)

_HEADER_RE = re.compile(rb"<soap-env:Header>.*?</soap-env:Header>", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Quirks:
    """How this CPE bends the protocol, to test the ACS's tolerance (all off: strict)."""

    cookies: bool = True  # False: ignore Set-Cookie; the session is the TCP connection
    soap_header: bool = True  # False: no SOAP Header, so no cwmp:ID either
    empty_post_envelope: bool = False  # an empty Envelope instead of a 0-byte POST
    cwmp_version: int | None = None  # 0-4 for cwmp-1-0..cwmp-1-4; None: the model's
    xml_declaration: bool = True
    cookie_attributes: bool = False  # RFC 2109 `$Version="1"; n=v; $Path=...` cookies
    boolean_digits: bool = False  # booleans as 1/0 rather than true/false
    basic_auth: bool = False  # connection requests may use HTTP Basic
    upload_post: bool = False  # uploads as a multipart/form-data POST rather than a PUT

    def namespace(self, default_version: int) -> str:
        """The CWMP namespace this CPE writes."""
        version = default_version if self.cwmp_version is None else self.cwmp_version
        return m.CWMP_NAMESPACES[version]

    @classmethod
    def variety(cls, index: int) -> Quirks:
        """The `index`-th of a fixed cycle of quirk sets; index 0 (and every 8th) is strict."""
        return _VARIETY[index % len(_VARIETY)]


_VARIETY = (
    Quirks(),
    Quirks(cookies=False),
    Quirks(soap_header=False),
    Quirks(empty_post_envelope=True, cwmp_version=1),
    Quirks(xml_declaration=False, cwmp_version=2),
    Quirks(cookie_attributes=True, cwmp_version=3),
    Quirks(boolean_digits=True, cwmp_version=4),
    Quirks(basic_auth=True, empty_post_envelope=True, xml_declaration=False, boolean_digits=True),
)


@dataclass(slots=True)
class Actions:
    """What the ACS asked for that the CPE carries out after the session."""

    reboot: str | None = None  # the Reboot CommandKey
    factory_reset: bool = False
    schedule_informs: list[tuple[int, str]] = field(default_factory=list)
    downloads: list[m.Download] = field(default_factory=list)
    uploads: list[m.Upload] = field(default_factory=list)


class SessionFailed(Exception):
    """The session cannot go on; the message says why (for stats and logs)."""


class State(enum.Enum):
    NEW = "new"
    AWAIT_INFORM_RESPONSE = "await InformResponse"
    AWAIT_RESPONSE = "await response to a CPE request"
    AWAIT_ACS = "await ACS request"
    DONE = "done"
    FAILED = "failed"


# The response each CPE request expects.
_EXPECTED: dict[type, type] = {
    m.TransferComplete: m.TransferCompleteResponse,
    m.AutonomousTransferComplete: m.AutonomousTransferCompleteResponse,
    m.GetRPCMethods: m.GetRPCMethodsResponse,
    m.RequestDownload: m.RequestDownloadResponse,
}


class CpeSession:
    """One session: `start()` gives the Inform, `receive()` each next POST body.

    `receive` returns None when the session has ended well and raises `SessionFailed`
    when it cannot go on. `events` are the Inform's EventStructs; `requests` the CPE's
    own pending requests (TransferComplete), sent in order.
    """

    def __init__(
        self,
        model: DataModel,
        events: Sequence[m.EventStruct],
        requests: Sequence[m.Message] = (),
        *,
        quirks: Quirks | None = None,
        retry_count: int = 0,
        id_base: int = 1,
        refuse_downloads: bool = False,
    ) -> None:
        self.model = model
        # A broken CPE: every Download is answered with fault 9010 (for campaign tests).
        self.refuse_downloads = refuse_downloads
        self.events = list(events)
        self.quirks = quirks = quirks or Quirks()
        self.state = State.NEW
        self.actions = Actions()
        self.rpcs: Counter[str] = Counter()
        self.faults: Counter[int] = Counter()
        self.inform_delivered = False
        self.delivered: list[m.Message] = []  # CPE requests the ACS acknowledged
        self.next_id = id_base  # the cwmp:ID of the CPE's next request
        self._pending = list(requests)
        self._in_flight: m.Message | None = None
        self._refused = False  # the ACS faulted a CPE request: retry in a later session
        self._retry_count = retry_count
        self._reported: list[str] = []
        self._ns = quirks.namespace(model.profile.default_cwmp_version)

    # --- the two calls ---------------------------------------------------------------

    def start(self) -> bytes:
        """The Inform that opens the session."""
        if self.state is not State.NEW:
            raise RuntimeError("the session has already started")
        changes = self.model.value_changes()
        if changes and not any(e.event_code == "4 VALUE CHANGE" for e in self.events):
            self.events.append(m.EventStruct("4 VALUE CHANGE"))
        parameters = self.model.inform_parameters()
        informed = {p.name for p in parameters}
        parameters += [p for p in changes if p.name not in informed]
        self._reported = [p.name for p in changes]
        identity = self.model.identity
        inform = m.Inform(
            device_id=m.DeviceIdStruct(
                identity.manufacturer,
                identity.oui,
                identity.product_class,
                identity.serial_number,
            ),
            events=tuple(self.events),
            max_envelopes=1,
            current_time=datetime.fromtimestamp(int(self.model.now()), UTC),
            retry_count=self._retry_count,
            parameters=tuple(self._styled(parameters)),
        )
        self.state = State.AWAIT_INFORM_RESPONSE
        return self._request(inform)

    def receive(self, status: int, body: bytes) -> bytes | None:
        """Feed the ACS's HTTP answer; get the next POST body, or None at the end."""
        if self.state in (State.NEW, State.DONE, State.FAILED):
            raise RuntimeError(f"receive() in state {self.state.value}")
        try:
            return self._receive(status, body)
        except SessionFailed:
            self.state = State.FAILED
            raise

    # --- the state machine -------------------------------------------------------------

    def _receive(self, status: int, body: bytes) -> bytes | None:
        if status not in (200, 204):
            raise SessionFailed(f"ACS answered HTTP {status} in state {self.state.value}")
        envelope: m.Envelope | None = None
        if status == 200:
            try:
                envelope = soap.decode(body)
            except soap.UnknownMethod as unknown:
                return self._answer_unknown(unknown)
            except soap.SoapError as error:
                raise SessionFailed(f"ACS sent an unusable envelope: {error}") from None
        if envelope is None:
            return self._empty_answer()
        message = envelope.body
        if self.state is State.AWAIT_INFORM_RESPONSE:
            if not isinstance(message, m.InformResponse):
                raise SessionFailed(f"expected InformResponse, got {_name(message)}")
            self.inform_delivered = True
            self.model.clear_value_changes(self._reported)
            return self._after_response(envelope.header)
        if self.state is State.AWAIT_RESPONSE:
            return self._request_answered(envelope)
        return self._acs_request(envelope)

    def _empty_answer(self) -> bytes | None:
        if self.state is not State.AWAIT_ACS:
            raise SessionFailed(f"ACS sent an empty body in state {self.state.value}")
        if self._pending and not self._refused:
            return self._send_pending()
        self.state = State.DONE
        return None

    def _after_response(self, header: m.Header) -> bytes:
        if self._pending and not self._refused and not header.hold_requests:
            return self._send_pending()
        self.state = State.AWAIT_ACS
        return self._empty_post()

    def _send_pending(self) -> bytes:
        self._in_flight = self._pending[0]
        self.state = State.AWAIT_RESPONSE
        return self._request(self._in_flight)

    def _request_answered(self, envelope: m.Envelope) -> bytes:
        request = self._in_flight
        assert request is not None
        message = envelope.body
        if isinstance(message, m.Fault):
            # 8005 Retry request and friends: keep the request for a later session.
            self._refused = True
        elif isinstance(message, _EXPECTED[type(request)]):
            self._pending.pop(0)
            self.delivered.append(request)
        else:
            raise SessionFailed(f"expected a response to {_name(request)}, got {_name(message)}")
        self._in_flight = None
        return self._after_response(envelope.header)

    def _acs_request(self, envelope: m.Envelope) -> bytes:
        message = envelope.body
        if isinstance(message, m.Fault):
            raise SessionFailed(f"ACS sent fault {message.code} when no request was pending")
        name = _name(message)
        self.rpcs[name] += 1
        handler = _HANDLERS.get(type(message))
        try:
            if handler is None:
                raise CpeMethodNotSupported(f"{name} is not a request a CPE answers")
            answer = handler(self, message)
        except CwmpFault as fault:
            self.faults[fault.fault_code] += 1
            answer = fault.to_message()
        return self._respond(answer, envelope.header)

    def _answer_unknown(self, unknown: soap.UnknownMethod) -> bytes:
        if self.state is not State.AWAIT_ACS:
            raise SessionFailed(f"ACS sent unknown method {unknown.method}") from None
        self.rpcs[unknown.method] += 1
        self.faults[9000] += 1
        fault = CpeMethodNotSupported(f"{unknown.method} is not supported")
        return self._respond(fault.to_message(), unknown.header)

    # --- ACS requests --------------------------------------------------------------------

    def _gpn(self, r: m.GetParameterNames) -> m.Message:
        names = self.model.get_parameter_names(r.parameter_path, r.next_level)
        return m.GetParameterNamesResponse(tuple(names))

    def _gpv(self, r: m.GetParameterValues) -> m.Message:
        values = self.model.get_parameter_values(r.names)
        return m.GetParameterValuesResponse(tuple(self._styled(values)))

    def _spv(self, r: m.SetParameterValues) -> m.Message:
        return m.SetParameterValuesResponse(
            self.model.set_parameter_values(r.parameters, r.parameter_key)
        )

    def _gpa(self, r: m.GetParameterAttributes) -> m.Message:
        return m.GetParameterAttributesResponse(tuple(self.model.get_parameter_attributes(r.names)))

    def _spa(self, r: m.SetParameterAttributes) -> m.Message:
        self.model.set_parameter_attributes(r.parameters)
        return m.SetParameterAttributesResponse()

    def _add(self, r: m.AddObject) -> m.Message:
        return m.AddObjectResponse(self.model.add_object(r.object_name, r.parameter_key), 0)

    def _delete(self, r: m.DeleteObject) -> m.Message:
        return m.DeleteObjectResponse(self.model.delete_object(r.object_name, r.parameter_key))

    def _reboot(self, r: m.Reboot) -> m.Message:
        self.actions.reboot = r.command_key
        return m.RebootResponse()

    def _factory_reset(self, r: m.FactoryReset) -> m.Message:
        self.actions.factory_reset = True
        return m.FactoryResetResponse()

    def _schedule_inform(self, r: m.ScheduleInform) -> m.Message:
        if r.delay_seconds < 1:  # cwmp XSD: DelaySeconds is unsignedInt, at least 1
            raise InvalidArguments("DelaySeconds must be at least 1")
        self.actions.schedule_informs.append((r.delay_seconds, r.command_key))
        return m.ScheduleInformResponse()

    def _download(self, r: m.Download) -> m.Message:
        if r.file_type not in FILE_TYPES and not r.file_type.startswith("X "):
            raise InvalidArguments(f"FileType {r.file_type!r} is not supported")
        if not r.url or len(r.url) > 256:
            raise InvalidArguments("URL must be 1-256 characters")
        if self.refuse_downloads:
            raise REGISTRY[9010]("Download failure: simulated refusal")
        self.actions.downloads.append(r)
        # Status 1: the download has not completed; TransferComplete will follow.
        return m.DownloadResponse(1)

    def _upload(self, r: m.Upload) -> m.Message:
        if r.file_type not in UPLOAD_FILE_TYPES:
            raise InvalidArguments(f"FileType {r.file_type!r} is not supported")
        if not r.url or len(r.url) > 256:
            raise InvalidArguments("URL must be 1-256 characters")
        self.actions.uploads.append(r)
        # Status 1: the upload has not completed; TransferComplete will follow.
        return m.UploadResponse(1)

    # --- writing ---------------------------------------------------------------------

    def _request(self, message: m.Message) -> bytes:
        ident = str(self.next_id)
        self.next_id += 1
        return self._render(message, ident)

    def _respond(self, message: m.Message, header: m.Header) -> bytes:
        self.state = State.AWAIT_ACS
        return self._render(message, header.id or "")

    def _render(self, message: m.Message, ident: str) -> bytes:
        data = soap.encode(
            message, id=ident, cwmp_ns=self._ns, xml_declaration=self.quirks.xml_declaration
        )
        if not self.quirks.soap_header:
            data = _HEADER_RE.sub(b"", data, count=1)
        return data

    def _empty_post(self) -> bytes:
        if not self.quirks.empty_post_envelope:
            return b""
        declaration = '<?xml version="1.0" encoding="UTF-8"?>\n'
        text = (
            (declaration if self.quirks.xml_declaration else "")
            + f'<soap-env:Envelope xmlns:soap-env="{soap.SOAP_ENV_NS}"'
            f' xmlns:cwmp="{self._ns}"><soap-env:Body/></soap-env:Envelope>'
        )
        return text.encode()

    def _styled(self, values: Sequence[m.ParameterValue]) -> list[m.ParameterValue]:
        if not self.quirks.boolean_digits:
            return list(values)
        return [
            m.ParameterValue(v.name, "1" if v.value == "true" else "0", v.type)
            if v.type == BOOLEAN and v.value in ("true", "false")
            else v
            for v in values
        ]


def _name(message: object) -> str:
    return type(message).__name__


_HANDLERS: dict[type, Callable[[CpeSession, Any], m.Message]] = {
    m.GetRPCMethods: lambda s, r: m.GetRPCMethodsResponse(CPE_METHODS),
    m.GetParameterNames: CpeSession._gpn,
    m.GetParameterValues: CpeSession._gpv,
    m.SetParameterValues: CpeSession._spv,
    m.GetParameterAttributes: CpeSession._gpa,
    m.SetParameterAttributes: CpeSession._spa,
    m.AddObject: CpeSession._add,
    m.DeleteObject: CpeSession._delete,
    m.Reboot: CpeSession._reboot,
    m.FactoryReset: CpeSession._factory_reset,
    m.ScheduleInform: CpeSession._schedule_inform,
    m.Download: CpeSession._download,
    m.Upload: CpeSession._upload,
}
