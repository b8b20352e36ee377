"""Targets: the equipment agents poll, as the API accepts and shows them.

Credentials are write-only: accepted here, sealed at rest by the controller, handed to
the owning agent over its stream, and never returned (the API shows which kind of
credentials a target has, not their values).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Kind = Literal["snmp", "huawei-olt", "padtec"]
DEFAULT_PORTS: dict[str, int] = {"snmp": 161, "huawei-olt": 22, "padtec": 8181}
# Poll classes and their default intervals (seconds): critical optical measurements,
# normal counters, slow-changing inventory.
CLASS_INTERVALS: dict[str, int] = {"critical": 60, "normal": 300, "inventory": 3600}

Name = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")]
LabelKey = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
]
LabelValue = Annotated[str, StringConstraints(max_length=256, pattern=r"^[^\x00-\x1f]*$")]
Secret = Annotated[str, StringConstraints(max_length=512)]
_ADDRESS = re.compile(r"^[A-Za-z0-9.:_-]{1,253}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SnmpV2c(_Model):
    version: Literal["2c"] = "2c"
    community: Secret


class SnmpV3(_Model):
    version: Literal["3"]
    user: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    auth_protocol: Literal["MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"] = "SHA256"
    auth_key: Secret
    priv_protocol: Literal["DES", "AES", "AES192", "AES256"] = "AES"
    priv_key: Secret
    context: Annotated[str, StringConstraints(max_length=64)] = ""


class Login(_Model):
    """SSH (OLTs) or HTTP API (Padtec NMS) credentials; an OLT's SNMP access beside them
    (its optical levels come over SNMP)."""

    username: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    password: Secret = ""
    private_key: Annotated[str, StringConstraints(max_length=16384)] = ""
    client_id: Annotated[str, StringConstraints(max_length=128)] = ""
    snmp: SnmpV2c | SnmpV3 | None = None
    snmp_port: int = Field(161, ge=1, le=65535)
    # The OLT's SSH host key ("ssh-ed25519 AAAA..."): when set, no other is accepted.
    host_key: Annotated[str, StringConstraints(max_length=16384)] = ""


Credentials = SnmpV2c | SnmpV3 | Login


class PollGroup(_Model):
    interval: float | None = Field(None, ge=5, le=86400)
    poll_class: Literal["critical", "normal", "inventory"] | None = Field(None, alias="class")
    enabled: bool = True
    options: dict[str, Any] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TargetIn(_Model):
    """A target as created or replaced through the API or an import file."""

    name: Name
    kind: Kind
    address: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    port: int | None = Field(None, ge=1, le=65535)
    credentials: Credentials | None = None
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=64)
    profile: dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], PollGroup] = (
        Field(default_factory=dict, max_length=64)
    )
    enabled: bool = True

    @model_validator(mode="after")
    def _check(self) -> TargetIn:
        if not _ADDRESS.fullmatch(self.address):
            raise ValueError("address must be a host name or an IP address")
        creds = self.credentials
        if self.kind == "snmp" and creds is not None and isinstance(creds, Login):
            raise ValueError("an snmp target takes SNMP credentials (community, or a v3 user)")
        if self.kind != "snmp" and isinstance(creds, SnmpV2c | SnmpV3):
            raise ValueError(f"a {self.kind} target takes a login (username, password)")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.kind]


def credential_summary(credentials: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the API shows of credentials: their kind, never a secret."""
    if not credentials:
        return None
    if "community" in credentials:
        return {"version": "2c", "community": "********"}
    if credentials.get("version") == "3":
        return {
            "version": "3",
            "user": credentials.get("user"),
            "auth_protocol": credentials.get("auth_protocol"),
            "priv_protocol": credentials.get("priv_protocol"),
        }
    out: dict[str, Any] = {"username": credentials.get("username"), "password": "********"}
    if credentials.get("host_key"):
        out["host_key"] = credentials["host_key"]  # a public key: nothing secret
    if isinstance(credentials.get("snmp"), dict):
        out["snmp"] = credential_summary(credentials["snmp"])
        out["snmp_port"] = credentials.get("snmp_port", 161)
    return out
