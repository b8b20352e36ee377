"""Task bodies accepted by `POST /devices/{id}/tasks`, in GenieACS's JSON shapes.

The GenieACS task set (getParameterValues, setParameterValues, refreshObject, addObject,
deleteObject, reboot, factoryReset, download) plus scheduleInform and the RPCs GenieACS
has no task for (getParameterNames, getParameterAttributes, setParameterAttributes,
getRPCMethods, upload). Unknown extra keys are kept (GenieACS clients send some) and ignored.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)

# TR-069 A.2.2.1: dot-separated names of at most 256 characters; partial paths end in ".".
_NAME_RE = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?")
_XML_SAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _parameter_name(value: str) -> str:
    if not _NAME_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a CWMP parameter name")
    return value


def _xml_text(value: str) -> str:
    if _XML_SAFE.search(value):
        raise ValueError("value holds control characters a CPE cannot receive in XML")
    return value


ParameterName = Annotated[
    str, StringConstraints(min_length=1, max_length=256), AfterValidator(_parameter_name)
]
PathOrRoot = Annotated[
    str,
    StringConstraints(max_length=256),
    AfterValidator(lambda v: v if v == "" else _parameter_name(v)),
]
Text = Annotated[str, StringConstraints(max_length=65536), AfterValidator(_xml_text)]
Scalar = bool | int | float | Text
XsdType = Annotated[str, StringConstraints(pattern=r"^(xsd?:)?[A-Za-z]+(\(\d+\))?$")]
ParameterValueItem = tuple[ParameterName, Scalar] | tuple[ParameterName, Scalar, XsdType]


class _Task(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    # GenieACS: seconds from now, or a date; an expired task is dropped unrun.
    expiry: float | datetime | None = None
    # GenieACS: a new task replaces an open one of the same device with the same key.
    uniqueKey: Annotated[str, StringConstraints(max_length=256)] | None = None


class GetParameterValuesTask(_Task):
    name: Literal["getParameterValues"]
    parameterNames: list[ParameterName] = Field(min_length=1, max_length=10000)


class SetParameterValuesTask(_Task):
    name: Literal["setParameterValues"]
    parameterValues: list[ParameterValueItem] = Field(min_length=1, max_length=10000)


class RefreshObjectTask(_Task):
    name: Literal["refreshObject"]
    objectName: PathOrRoot


class AddObjectTask(_Task):
    name: Literal["addObject"]
    objectName: ParameterName
    # Values to set on the new instance, named relative to it ("SSID", "Enable").
    parameterValues: list[ParameterValueItem] = Field(default_factory=list, max_length=1000)


class DeleteObjectTask(_Task):
    name: Literal["deleteObject"]
    objectName: ParameterName


class RebootTask(_Task):
    name: Literal["reboot"]


class FactoryResetTask(_Task):
    name: Literal["factoryReset"]


FileName = Annotated[Text, StringConstraints(min_length=1, max_length=255)]


class DownloadTask(_Task):
    name: Literal["download"]
    # What to download: a URL, or a stored file (PUT /files/{name}) by GenieACS's `file`,
    # or its `fileType` + `fileName`. A stored file's type comes from its metadata
    # unless fileType is given.
    url: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None
    file: FileName | None = None
    fileName: FileName | None = None
    fileType: Text = "1 Firmware Upgrade Image"
    fileSize: int = Field(0, ge=0)
    targetFileName: Text = ""
    username: Text = ""
    password: Text = ""
    delaySeconds: int = Field(0, ge=0, le=86400 * 30)
    successUrl: Text = ""
    failureUrl: Text = ""

    @model_validator(mode="after")
    def _one_source(self) -> DownloadTask:
        if self.url is None and self.file is None and self.fileName is None:
            raise ValueError("give a 'url', a stored 'file', or 'fileType' and 'fileName'")
        return self

    @property
    def stored_file(self) -> str | None:
        """The stored file to download, if the task names one rather than a URL."""
        return None if self.url is not None else self.file or self.fileName


# A.4.1.5: the file types an Upload may ask for; "X <OUI> <name>" are vendor types.
UPLOAD_FILE_TYPE = (
    r"^(1 Vendor Configuration File|2 Vendor Log File|3 Vendor Configuration File [1-9]\d*"
    r"|4 Vendor Log File [1-9]\d*|X [0-9A-F]{6} \S.*)$"
)


class UploadTask(_Task):
    name: Literal["upload"]
    fileType: Annotated[str, StringConstraints(max_length=64, pattern=UPLOAD_FILE_TYPE)] = (
        "1 Vendor Configuration File"
    )
    # Where the CPE sends the file; unset: the file server, which keeps it per device.
    url: Annotated[str, StringConstraints(min_length=1, max_length=1024)] | None = None
    username: Text = ""
    password: Text = ""
    delaySeconds: int = Field(0, ge=0, le=86400 * 30)


class ScheduleInformTask(_Task):
    name: Literal["scheduleInform"]
    delaySeconds: int = Field(ge=1, le=2**31 - 1)
    commandKey: Annotated[Text, StringConstraints(max_length=32)] = ""


class GetParameterNamesTask(_Task):
    name: Literal["getParameterNames"]
    parameterPath: PathOrRoot = ""
    nextLevel: bool = True


class GetParameterAttributesTask(_Task):
    name: Literal["getParameterAttributes"]
    parameterNames: list[ParameterName] = Field(min_length=1, max_length=10000)


class SetParameterAttributesTask(_Task):
    name: Literal["setParameterAttributes"]
    # [name, notification (0-6) or null to leave it, access list or null to leave it]
    parameterAttributes: list[
        tuple[ParameterName, Annotated[int, Field(ge=0, le=6)] | None, list[Text] | None]
    ] = Field(min_length=1, max_length=10000)


class GetRPCMethodsTask(_Task):
    name: Literal["getRPCMethods"]


ProvisionArgument = bool | int | float | Text | None


class ProvisionsTask(_Task):
    """GenieACS's `provisions` task: run named provisions now, [[name, args...], ...]."""

    name: Literal["provisions"]
    provisions: list[Annotated[list[ProvisionArgument], Field(min_length=1, max_length=33)]] = (
        Field(min_length=1, max_length=32)
    )


Task = Annotated[
    GetParameterValuesTask
    | SetParameterValuesTask
    | RefreshObjectTask
    | AddObjectTask
    | DeleteObjectTask
    | RebootTask
    | FactoryResetTask
    | DownloadTask
    | ScheduleInformTask
    | GetParameterNamesTask
    | GetParameterAttributesTask
    | SetParameterAttributesTask
    | GetRPCMethodsTask
    | UploadTask
    | ProvisionsTask,
    Field(discriminator="name"),
]
TASK_ADAPTER: TypeAdapter[Task] = TypeAdapter(Task)
TASK_NAMES: tuple[str, ...] = (
    "getParameterValues",
    "setParameterValues",
    "refreshObject",
    "addObject",
    "deleteObject",
    "reboot",
    "factoryReset",
    "download",
    "scheduleInform",
    "getParameterNames",
    "getParameterAttributes",
    "setParameterAttributes",
    "getRPCMethods",
    "upload",
    "provisions",
)
