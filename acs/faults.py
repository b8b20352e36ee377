"""One registry of CWMP faults: a class per fault code, like SQLSTATE exceptions.

ACS faults (8000-8005) are what the ACS answers a bad CPE request with; CPE faults
(9000-9032) are what a CPE answers an RPC with (TR-069 Amendment 6, A.5.1). Codes outside
the table still decode, into the nearest base class, so a vendor code never crashes us.
"""

from __future__ import annotations

from typing import ClassVar

from acs.messages import Fault, ParameterFault


class CwmpFault(Exception):
    """A CWMP fault with its code, string and (for SetParameterValues) per-name faults."""

    code: ClassVar[int] = 0
    title: ClassVar[str] = "Fault"

    def __init__(
        self,
        string: str | None = None,
        parameter_faults: tuple[ParameterFault, ...] = (),
        *,
        code: int | None = None,
    ) -> None:
        self.fault_code = code if code is not None else self.code
        self.fault_string = string if string is not None else self.title
        self.parameter_faults = parameter_faults
        super().__init__(f"{self.fault_code} {self.fault_string}")

    def to_message(self) -> Fault:
        """The SOAP Fault message carrying this fault."""
        faultcode = "Server" if self.fault_code in SERVER_FAULTS else "Client"
        return Fault(self.fault_code, self.fault_string, self.parameter_faults, faultcode)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view, naming the failing parameters when there are any."""
        out: dict[str, object] = {"code": self.fault_code, "string": self.fault_string}
        if self.parameter_faults:
            out["parameters"] = [
                {"name": p.name, "code": p.code, "string": p.string} for p in self.parameter_faults
            ]
        return out


class AcsFault(CwmpFault):
    """Faults the ACS sends to a CPE (8000-8999)."""

    code = 8000


class CpeFault(CwmpFault):
    """Faults a CPE sends to the ACS (9000-9999)."""

    code = 9000


REGISTRY: dict[int, type[CwmpFault]] = {}
# Faults whose SOAP faultcode is "Server" rather than "Client" (A.5.1 table).
SERVER_FAULTS: frozenset[int] = frozenset({8002, 8005, 9002, 9010, 9011, 9014, 9015, 9016})


def _define(base: type[CwmpFault], code: int, name: str, title: str) -> type[CwmpFault]:
    cls = type(name, (base,), {"code": code, "title": title, "__doc__": f"{code} {title}."})
    REGISTRY[code] = cls
    globals()[name] = cls
    return cls


_ACS_FAULTS = (
    (8000, "MethodNotSupported", "Method not supported"),
    (8001, "RequestDenied", "Request denied (no reason specified)"),
    (8002, "AcsInternalError", "Internal error"),
    (8003, "AcsInvalidArguments", "Invalid arguments"),
    (8004, "AcsResourcesExceeded", "Resources exceeded"),
    (8005, "RetryRequest", "Retry request"),
)
_CPE_FAULTS = (
    (9000, "CpeMethodNotSupported", "Method not supported"),
    (9001, "CpeRequestDenied", "Request denied (no reason specified)"),
    (9002, "CpeInternalError", "Internal error"),
    (9003, "InvalidArguments", "Invalid arguments"),
    (9004, "ResourcesExceeded", "Resources exceeded"),
    (9005, "InvalidParameterName", "Invalid parameter name"),
    (9006, "InvalidParameterType", "Invalid parameter type"),
    (9007, "InvalidParameterValue", "Invalid parameter value"),
    (9008, "NonWritableParameter", "Attempt to set a non-writable parameter"),
    (9009, "NotificationRequestRejected", "Notification request rejected"),
    (9010, "DownloadFailure", "Download failure"),
    (9011, "UploadFailure", "Upload failure"),
    (9012, "FileTransferAuthenticationFailure", "File transfer server authentication failure"),
    (9013, "UnsupportedTransferProtocol", "Unsupported protocol for file transfer"),
    (9014, "MulticastJoinFailure", "Download failure: unable to join multicast group"),
    (9015, "FileServerUnreachable", "Download failure: unable to contact file server"),
    (9016, "FileAccessFailure", "Download failure: unable to access file"),
    (9017, "DownloadIncomplete", "Download failure: unable to complete download"),
    (9018, "FileCorrupted", "Download failure: file corrupted"),
    (9019, "FileAuthenticationFailure", "Download failure: file authentication failure"),
    (9020, "DownloadWindowMissed", "Download failure: unable to complete download within window"),
    (9021, "CancelationNotPermitted", "Cancelation of file transfer not permitted"),
    (9022, "InvalidUuidFormat", "Invalid UUID format"),
    (9023, "UnknownExecutionEnvironment", "Unknown execution environment"),
    (9024, "DisabledExecutionEnvironment", "Disabled execution environment"),
    (9025, "DeploymentUnitMismatch", "Deployment unit to execution environment mismatch"),
    (9026, "DuplicateDeploymentUnit", "Duplicate deployment unit"),
    (9027, "SystemResourcesExceeded", "System resources exceeded"),
    (9028, "UnknownDeploymentUnit", "Unknown deployment unit"),
    (9029, "InvalidDeploymentUnitState", "Invalid deployment unit state"),
    (9030, "InvalidDeploymentUnitUpdateDowngrade", "Invalid deployment unit update: downgrade"),
    (9031, "InvalidDeploymentUnitUpdateVersion", "Invalid deployment unit update: version"),
    (9032, "InvalidDeploymentUnitUpdateVersionExists", "Invalid deployment unit update: exists"),
)
for _code, _name, _title in _ACS_FAULTS:
    _define(AcsFault, _code, _name, _title)
for _code, _name, _title in _CPE_FAULTS:
    _define(CpeFault, _code, _name, _title)

# Names the rest of the code uses directly (type checkers do not see _define's globals()).
MethodNotSupported: type[CwmpFault] = REGISTRY[8000]
RequestDenied: type[CwmpFault] = REGISTRY[8001]
AcsInternalError: type[CwmpFault] = REGISTRY[8002]
AcsInvalidArguments: type[CwmpFault] = REGISTRY[8003]
RetryRequest: type[CwmpFault] = REGISTRY[8005]
CpeMethodNotSupported: type[CwmpFault] = REGISTRY[9000]
InvalidArguments: type[CwmpFault] = REGISTRY[9003]
InvalidParameterName: type[CwmpFault] = REGISTRY[9005]
InvalidParameterType: type[CwmpFault] = REGISTRY[9006]
InvalidParameterValue: type[CwmpFault] = REGISTRY[9007]
NonWritableParameter: type[CwmpFault] = REGISTRY[9008]


def fault_from_message(message: Fault) -> CwmpFault:
    """The typed fault for a decoded SOAP Fault; unknown codes keep their number."""
    cls = REGISTRY.get(message.code)
    if cls is None:
        cls = AcsFault if 8000 <= message.code < 9000 else CpeFault
    return cls(message.string, message.parameter_faults, code=message.code)
