"""OLT vocabulary shared by agents and controllers: job kinds and their parameters, and
the inventory an agent reports (as events of the kinds below, in report frames).

Inventory travels as events because it is what a poll saw; the controller applies it to
its inventory tables instead of storing it as events (a full OLT inventory is large):
- `olt.inventory`: everything the agent knows after a full inventory poll (replaces);
- `ont.autofind`: the ONTs an OLT sees but has not registered (replaces the list);
- `ont.port`: the ONTs of one PON port, after a job changed them (replaces that port).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

INVENTORY = "olt.inventory"
AUTOFIND = "ont.autofind"
PORT_ONTS = "ont.port"
INVENTORY_EVENTS = frozenset({INVENTORY, AUTOFIND, PORT_ONTS})

Frame = Annotated[int, Field(ge=0, le=31)]
Slot = Annotated[int, Field(ge=0, le=63)]
Port = Annotated[int, Field(ge=0, le=127)]
OntId = Annotated[int, Field(ge=0, le=255)]
Vlan = Annotated[int, Field(ge=1, le=4094)]
Text = Annotated[str, StringConstraints(max_length=256)]
_DESCRIPTION = re.compile(r"^[ !#->@-~]*$")


def _description(value: str) -> str:
    # It goes into a CLI command line, quoted: printable ASCII without `"` (it would end
    # the quoted text) and `?` (the Huawei CLI answers it with help as it is typed).
    if not _DESCRIPTION.fullmatch(value):
        raise ValueError('printable ASCII only, without " or ? (what the OLT CLI takes)')
    return value


Description = Annotated[str, StringConstraints(max_length=64), AfterValidator(_description)]
_HEX_SERIAL = re.compile(r"^[0-9A-F]{16}$")
_VENDOR_SERIAL = re.compile(r"^([A-Z0-9]{4})-?([0-9A-F]{8})$")


def serial_forms(text: str) -> tuple[str, str]:
    """(16-hex form, vendor form without dash) of an ONT serial given in either form:
    `48575443A1B2C3D4` <-> `HWTCA1B2C3D4` (the vendor id is the first 4 bytes as ASCII)."""
    value = text.strip().upper()
    if _HEX_SERIAL.fullmatch(value):
        vendor = bytes.fromhex(value[:8])
        if not all(0x20 < b < 0x7F for b in vendor):
            raise ValueError(f"serial {text!r}: its vendor id is not printable")
        return value, vendor.decode() + value[8:]
    match = _VENDOR_SERIAL.fullmatch(value)
    if match is None:
        raise ValueError(f"{text!r} is not an ONT serial (16 hex digits, or VVVV-XXXXXXXX)")
    return match[1].encode().hex().upper() + match[2], match[1] + match[2]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PortRef(_Model):
    frame: Frame = 0
    slot: Slot
    port: Port

    @property
    def fsp(self) -> str:
        return f"{self.frame}/{self.slot}/{self.port}"


class OntRef(PortRef):
    ont_id: OntId


class ServicePortSpec(_Model):
    vlan: Vlan
    gemport: int = Field(1, ge=0, le=1023)
    user_vlan: Vlan


class OntProvision(PortRef):
    serial: str
    ont_id: OntId | None = None  # None: the OLT picks the first free id
    line_profile_id: int = Field(ge=0, le=8192)
    service_profile_id: int = Field(ge=0, le=8192)
    description: Description = ""
    service_ports: list[ServicePortSpec] = Field(default_factory=list, max_length=8)

    @field_validator("serial")
    @classmethod
    def _serial(cls, value: str) -> str:
        return serial_forms(value)[0]


# Read-only commands an operator may run on an OLT through the API.
DISPLAY_ALLOWED = (
    "display board",
    "display version",
    "display ont info",
    "display ont autofind",
    "display ont optical-info",
    "display service-port",
    "display sysuptime",
    "display temperature",
    "display port state",
)


class Display(_Model):
    command: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    interface: Annotated[str, StringConstraints(pattern=r"^\d{1,2}/\d{1,2}$")] | None = None

    @field_validator("command")
    @classmethod
    def _allowed(cls, value: str) -> str:
        command = " ".join(value.split())
        if not re.fullmatch(r"[A-Za-z0-9 /_.:-]+", command):
            raise ValueError("only letters, digits, spaces and / _ . : - are allowed")
        if not command.lower().startswith(DISPLAY_ALLOWED):
            raise ValueError(f"only these read-only commands: {', '.join(DISPLAY_ALLOWED)}")
        return command


JOB_PARAMS: dict[str, type[_Model]] = {
    "ont.provision": OntProvision,
    "ont.delete": OntRef,
    "ont.reboot": OntRef,
    "port.enable": PortRef,
    "port.disable": PortRef,
    "display": Display,
}
JobKind = Literal[
    "ont.provision", "ont.delete", "ont.reboot", "port.enable", "port.disable", "display"
]


def job_params(kind: str, raw: Any) -> _Model:
    """The validated parameters of a job (pydantic's ValidationError otherwise)."""
    model = JOB_PARAMS.get(kind)
    if model is None:
        raise ValueError(f"unknown job kind {kind!r}")
    return model.model_validate(raw)


# --- inventory as reported --------------------------------------------------------------


class Board(_Model):
    frame: Frame = 0
    slot: Slot
    board: Text = ""
    status: Text = ""
    subtypes: list[Text] = Field(default_factory=list, max_length=4)
    online: Text = ""


class PortState(PortRef):
    enabled: bool | None = None


class Ont(OntRef):
    serial: str
    serial_vendor: str = ""
    control_flag: Text = ""
    run_state: Text = ""
    config_state: Text = ""
    match_state: Text = ""
    description: Text = ""
    distance_m: int | None = None
    line_profile: Text = ""
    service_profile: Text = ""
    last_up: Text = ""
    last_down: Text = ""
    last_down_cause: Text = ""


class AutofindEntry(PortRef):
    serial: str
    serial_vendor: str = ""
    password: Text = ""
    loid: Text = ""
    vendor_id: Text = ""
    version: Text = ""
    software_version: Text = ""
    equipment_id: Text = ""
    found_at: Text = ""


class Inventory(_Model):
    version: dict[str, Text] = Field(default_factory=dict)
    boards: list[Board] = Field(default_factory=list, max_length=64)
    ports: list[PortState] = Field(default_factory=list, max_length=2048)
    onts: list[Ont] = Field(default_factory=list, max_length=65536)


class Autofind(_Model):
    entries: list[AutofindEntry] = Field(default_factory=list, max_length=65536)


class PortOnts(PortRef):
    onts: list[Ont] = Field(default_factory=list, max_length=256)
    enabled: bool | None = None  # known after a port was enabled or disabled
