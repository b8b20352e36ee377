"""Typed CWMP messages: what the SOAP codec turns bytes into, and back.

Every message is a small frozen dataclass named after its SOAP body element. Values stay
in their lexical form (`value` strings with an `xsd:` type name): converting them to
Python values is `acs.values`' job, so nothing here can lose a CPE's exact bytes.
References are to TR-069 Amendment 6 (CWMP 1.4), Annex A.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

CWMP_NAMESPACES: tuple[str, ...] = tuple(f"urn:dslforum-org:cwmp-1-{n}" for n in range(5))
DEFAULT_CWMP_NAMESPACE = CWMP_NAMESPACES[0]


# --- shared structures -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceIdStruct:
    """A.3.3.1 DeviceIdStruct."""

    manufacturer: str
    oui: str
    product_class: str
    serial_number: str


@dataclass(frozen=True, slots=True)
class EventStruct:
    """A.3.3.1 EventStruct: `event_code` such as "1 BOOT" or "M Download"."""

    event_code: str
    command_key: str = ""


@dataclass(frozen=True, slots=True)
class ParameterValue:
    """A.3.2.1 ParameterValueStruct; `type` is normalised to an `xsd:` name."""

    name: str
    value: str
    type: str = "xsd:string"


@dataclass(frozen=True, slots=True)
class ParameterInfo:
    """A.3.2.3 ParameterInfoStruct: a name from GetParameterNames (objects end in '.')."""

    name: str
    writable: bool


@dataclass(frozen=True, slots=True)
class ParameterAttribute:
    """A.3.2.5 ParameterAttributeStruct."""

    name: str
    notification: int
    access_list: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SetParameterAttribute:
    """A.3.2.4 SetParameterAttributesStruct."""

    name: str
    notification_change: bool
    notification: int
    access_list_change: bool
    access_list: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FaultStruct:
    """A.3.3.2 FaultStruct inside TransferComplete; code 0 means success."""

    code: int = 0
    string: str = ""


@dataclass(frozen=True, slots=True)
class ParameterFault:
    """One SetParameterValuesFault entry of a 9003 fault (A.5.1)."""

    name: str
    code: int
    string: str = ""


# --- the envelope ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Header:
    """SOAP header elements of section 3.4.7 (ID, HoldRequests, SessionTimeout, ...)."""

    id: str | None = None
    hold_requests: bool | None = None
    no_more_requests: bool | None = None
    session_timeout: int | None = None


@dataclass(frozen=True, slots=True)
class Envelope:
    """One decoded SOAP envelope: its header, its body message, the CWMP namespace used."""

    header: Header
    body: Message
    cwmp_ns: str = DEFAULT_CWMP_NAMESPACE


# --- CPE -> ACS requests (A.3.3) and the ACS's responses -----------------------------


@dataclass(frozen=True, slots=True)
class Inform:
    device_id: DeviceIdStruct
    events: tuple[EventStruct, ...]
    max_envelopes: int
    current_time: datetime | None
    retry_count: int
    parameters: tuple[ParameterValue, ...]


@dataclass(frozen=True, slots=True)
class InformResponse:
    max_envelopes: int = 1


@dataclass(frozen=True, slots=True)
class TransferComplete:
    command_key: str
    fault: FaultStruct
    start_time: datetime | None
    complete_time: datetime | None


@dataclass(frozen=True, slots=True)
class TransferCompleteResponse:
    pass


@dataclass(frozen=True, slots=True)
class AutonomousTransferComplete:
    announce_url: str
    transfer_url: str
    is_download: bool
    file_type: str
    file_size: int
    target_file_name: str
    fault: FaultStruct
    start_time: datetime | None
    complete_time: datetime | None


@dataclass(frozen=True, slots=True)
class AutonomousTransferCompleteResponse:
    pass


@dataclass(frozen=True, slots=True)
class RequestDownload:
    file_type: str
    file_type_args: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class RequestDownloadResponse:
    pass


@dataclass(frozen=True, slots=True)
class Kicked:
    command: str
    referer: str
    arg: str
    next: str


@dataclass(frozen=True, slots=True)
class KickedResponse:
    next_url: str


# GetRPCMethods goes both ways; so does its response.
@dataclass(frozen=True, slots=True)
class GetRPCMethods:
    pass


@dataclass(frozen=True, slots=True)
class GetRPCMethodsResponse:
    methods: tuple[str, ...]


# --- ACS -> CPE requests (A.3.2, A.4.1) and the CPE's responses ----------------------


@dataclass(frozen=True, slots=True)
class GetParameterNames:
    parameter_path: str
    next_level: bool


@dataclass(frozen=True, slots=True)
class GetParameterNamesResponse:
    parameters: tuple[ParameterInfo, ...]


@dataclass(frozen=True, slots=True)
class GetParameterValues:
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GetParameterValuesResponse:
    parameters: tuple[ParameterValue, ...]


@dataclass(frozen=True, slots=True)
class SetParameterValues:
    parameters: tuple[ParameterValue, ...]
    parameter_key: str = ""


@dataclass(frozen=True, slots=True)
class SetParameterValuesResponse:
    status: int


@dataclass(frozen=True, slots=True)
class GetParameterAttributes:
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GetParameterAttributesResponse:
    parameters: tuple[ParameterAttribute, ...]


@dataclass(frozen=True, slots=True)
class SetParameterAttributes:
    parameters: tuple[SetParameterAttribute, ...]


@dataclass(frozen=True, slots=True)
class SetParameterAttributesResponse:
    pass


@dataclass(frozen=True, slots=True)
class AddObject:
    object_name: str
    parameter_key: str = ""


@dataclass(frozen=True, slots=True)
class AddObjectResponse:
    instance_number: int
    status: int


@dataclass(frozen=True, slots=True)
class DeleteObject:
    object_name: str
    parameter_key: str = ""


@dataclass(frozen=True, slots=True)
class DeleteObjectResponse:
    status: int


@dataclass(frozen=True, slots=True)
class Reboot:
    command_key: str = ""


@dataclass(frozen=True, slots=True)
class RebootResponse:
    pass


@dataclass(frozen=True, slots=True)
class FactoryReset:
    pass


@dataclass(frozen=True, slots=True)
class FactoryResetResponse:
    pass


@dataclass(frozen=True, slots=True)
class Download:
    command_key: str
    file_type: str
    url: str
    username: str = ""
    password: str = field(default="", repr=False)
    file_size: int = 0
    target_file_name: str = ""
    delay_seconds: int = 0
    success_url: str = ""
    failure_url: str = ""


@dataclass(frozen=True, slots=True)
class DownloadResponse:
    status: int
    start_time: datetime | None = None
    complete_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Upload:
    """A.4.1.5 Upload: the CPE sends a file (FileType "1 Vendor Configuration File",
    "2 Vendor Log File", "3 Vendor Configuration File <i>", "4 Vendor Log File <i>" or
    "X <OUI> <name>") to URL, then reports with TransferComplete."""

    command_key: str
    file_type: str
    url: str
    username: str = ""
    password: str = field(default="", repr=False)
    delay_seconds: int = 0


@dataclass(frozen=True, slots=True)
class UploadResponse:
    """Status 0: the upload has completed; 1: not yet, a TransferComplete will follow."""

    status: int
    start_time: datetime | None = None
    complete_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class ScheduleInform:
    delay_seconds: int
    command_key: str = ""


@dataclass(frozen=True, slots=True)
class ScheduleInformResponse:
    pass


@dataclass(frozen=True, slots=True)
class Fault:
    """A SOAP Fault carrying a cwmp:Fault (A.5): sent by either side."""

    code: int
    string: str
    parameter_faults: tuple[ParameterFault, ...] = ()
    soap_faultcode: str = "Client"


Message = (
    Inform
    | InformResponse
    | TransferComplete
    | TransferCompleteResponse
    | AutonomousTransferComplete
    | AutonomousTransferCompleteResponse
    | RequestDownload
    | RequestDownloadResponse
    | Kicked
    | KickedResponse
    | GetRPCMethods
    | GetRPCMethodsResponse
    | GetParameterNames
    | GetParameterNamesResponse
    | GetParameterValues
    | GetParameterValuesResponse
    | SetParameterValues
    | SetParameterValuesResponse
    | GetParameterAttributes
    | GetParameterAttributesResponse
    | SetParameterAttributes
    | SetParameterAttributesResponse
    | AddObject
    | AddObjectResponse
    | DeleteObject
    | DeleteObjectResponse
    | Reboot
    | RebootResponse
    | FactoryReset
    | FactoryResetResponse
    | Download
    | DownloadResponse
    | Upload
    | UploadResponse
    | ScheduleInform
    | ScheduleInformResponse
    | Fault
)

# Requests a CPE may send to the ACS (A.3.3 and A.4.2).
CPE_REQUESTS: tuple[type, ...] = (
    Inform,
    TransferComplete,
    AutonomousTransferComplete,
    GetRPCMethods,
    RequestDownload,
    Kicked,
)

# What the ACS advertises in GetRPCMethodsResponse.
ACS_METHODS: tuple[str, ...] = (
    "Inform",
    "GetRPCMethods",
    "TransferComplete",
    "AutonomousTransferComplete",
    "RequestDownload",
    "Kicked",
)

# ACS request -> the CPE response that answers it.
RESPONSE_FOR: dict[type, type] = {
    GetRPCMethods: GetRPCMethodsResponse,
    GetParameterNames: GetParameterNamesResponse,
    GetParameterValues: GetParameterValuesResponse,
    SetParameterValues: SetParameterValuesResponse,
    GetParameterAttributes: GetParameterAttributesResponse,
    SetParameterAttributes: SetParameterAttributesResponse,
    AddObject: AddObjectResponse,
    DeleteObject: DeleteObjectResponse,
    Reboot: RebootResponse,
    FactoryReset: FactoryResetResponse,
    Download: DownloadResponse,
    Upload: UploadResponse,
    ScheduleInform: ScheduleInformResponse,
}
