"""The declarations a simulated CPE data model is instantiated from.

A template describes a device's tree before any device exists: every parameter's type,
default value, access (TR-106 "readOnly"/"readWrite"), value constraints and
notification policy, every object's children, and for multi-instance objects (tables)
how many instances a factory-fresh device has, whether the ACS may add and delete them
and which NumberOfEntries parameter counts them.

Templates are shared by every simulated device of a family, so they hold no per-device
state: a default that differs per device (a MAC address, a serial number, a counter that
grows with uptime) is a function of a `Ctx`, which names the device, the parameter's
path and the moment of reading. The same device, path and moment always give the same
value, which keeps runs reproducible and costs no memory per device until the ACS
changes something. `tools.sim.datamodel` walks templates; nothing here does I/O.
"""

from __future__ import annotations

import enum
import math
import random
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from acs.values import BOOLEAN, DATETIME, STRING, format_datetime

UNSIGNED_INT = "xsd:unsignedInt"
INT = "xsd:int"
UNSIGNED_LONG = "xsd:unsignedLong"
HEX_BINARY = "xsd:hexBinary"
BASE64 = "xsd:base64"

# TR-106 3.2.1: the dateTime a CPE reports when it does not know the time.
UNKNOWN_TIME = "0001-01-01T00:00:00Z"


class Notify(enum.Enum):
    """How a parameter's Notification attribute may be set (TR-106 "activeNotify")."""

    NORMAL = "normal"
    # The CPE may refuse active notification (fast-changing values: UpTime, counters).
    CAN_DENY = "canDeny"
    # Active notification is always on and cannot be turned off.
    FORCED = "forceEnabled"


@dataclass(frozen=True, slots=True)
class Family:
    """A product line: what every device of one model has in common."""

    name: str
    manufacturer: str
    oui: str
    product_class: str
    model_name: str
    description: str
    hardware_versions: tuple[str, ...]
    software_versions: tuple[str, ...]
    serial_prefix: str
    # TR-106 3.3: vendor extensions are named X_<OUI>_ or X_<domain>_.
    vendor_prefix: str
    # Variations a template honours, e.g. "dhcp-wan" instead of PPPoE.
    traits: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """Who a device is: the Inform DeviceId plus the versions it reports."""

    manufacturer: str
    oui: str
    product_class: str
    serial_number: str
    model_name: str
    description: str
    hardware_version: str
    software_version: str
    family: Family

    @property
    def device_id(self) -> str:
        """The ACS's identifier: `OUI-ProductClass-SerialNumber`, GenieACS-escaped.

        Each part keeps ASCII letters, digits and '_'; anything else becomes %XX of its
        UTF-8 bytes, so the dashes between parts stay unambiguous.
        """
        return "-".join(
            _escape_id_part(p) for p in (self.oui, self.product_class, self.serial_number)
        )


def _escape_id_part(part: str) -> str:
    return "".join(
        ch
        if ch.isascii() and (ch.isalnum() or ch == "_")
        else "".join(f"%{b:02X}" for b in ch.encode())
        for ch in part
    )


@dataclass(slots=True)
class Settings:
    """Factory configuration: what a factory reset returns the device to.

    Mutable because the simulator learns some of it after the device is created (the
    connection request URL is known only once the listener has a port).
    """

    acs_url: str
    acs_username: str = ""
    acs_password: str = field(default="", repr=False)
    connection_request_url: str = ""
    connection_request_username: str = ""
    connection_request_password: str = field(default="", repr=False)
    periodic_inform_enable: bool = True
    periodic_inform_interval: int = 300


@dataclass(frozen=True, slots=True)
class Device:
    """What a template default may depend on: the device, never the ACS's changes."""

    identity: DeviceIdentity
    settings: Settings
    seed: int


@dataclass(frozen=True, slots=True)
class Ctx:
    """The moment a default is read: which device, which parameter, what time."""

    device: Device
    path: str
    now: float
    uptime: float

    def rng(self, salt: str = "") -> random.Random:
        """A generator seeded by the device and the path: same inputs, same values."""
        return random.Random(stable_hash(f"{self.device.seed}|{self.path}|{salt}"))

    def instance(self, depth: int = -1) -> int:
        """The `depth`-th instance number in the path (-1: the innermost one)."""
        numbers = [int(p) for p in self.path.split(".") if p.isdigit()]
        return numbers[depth] if numbers else 0

    def unit(self) -> float:
        """A stable number in [0.5, 1.5) for this device and path, to vary rates."""
        return 0.5 + (stable_hash(f"{self.device.seed}|{self.path}") % 10_000) / 10_000


ValueFn = Callable[[Ctx], str]


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: its xsd type, default, access and constraints."""

    type: str = STRING
    default: str | ValueFn = ""
    writable: bool = False
    # A secret (passwords, keys): GetParameterValues returns "" (TR-069 A.3.2.1).
    hidden: bool = False
    enum: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None
    max_length: int | None = None
    min_length: int | None = None
    notify: Notify = Notify.NORMAL
    # For a NumberOfEntries parameter: the sibling table it counts.
    counts: str | None = None


@dataclass(frozen=True, slots=True)
class Obj:
    """A single-instance object: named children in the order a CPE lists them."""

    children: Mapping[str, Param | Obj | Table]


@dataclass(frozen=True, slots=True)
class Table:
    """A multi-instance object: `entry` is the template of each instance."""

    entry: Obj
    count: int | Callable[[Device], int] = 1
    # AddObject and DeleteObject allowed (TR-106 access "readWrite" on the table).
    writable: bool = False
    # Template for instances the ACS adds; by default the same as factory instances.
    added: Obj | None = None
    max_entries: int | None = None

    def instances(self, device: Device) -> int:
        """How many instances a factory-fresh `device` has."""
        return self.count(device) if callable(self.count) else self.count


class Reader(Protocol):
    """Read access to a live data model, for rules that depend on its current state."""

    def read(self, name: str) -> str | None:
        """A parameter's current value (secrets included), None if it does not exist."""
        ...

    def instance_numbers(self, table: str) -> list[int]:
        """The instance numbers of the table `table` (a path ending in '.')."""
        ...


@dataclass(frozen=True, slots=True)
class Profile:
    """A root data model (TR-098 or TR-181): its families, tree and Inform rules."""

    name: str
    root: str
    families: tuple[Family, ...]
    schema: Callable[[Family], Obj]
    # The parameters every Inform carries (TR-069 3.7.1.5 Forced Inform parameters,
    # plus the address of the default WAN connection), given the model's state.
    inform_names: Callable[[Reader], list[str]]
    default_cwmp_version: int = 0


def stable_hash(text: str) -> int:
    """A hash that is the same in every process (`hash()` is salted per process)."""
    return zlib.crc32(text.encode())


# --- parameter constructors: keep the templates short and readable ------------------


def string(
    default: str | ValueFn = "",
    *,
    w: bool = False,
    enum: tuple[str, ...] = (),
    max_length: int | None = 256,
    min_length: int | None = None,
    hidden: bool = False,
    notify: Notify = Notify.NORMAL,
) -> Param:
    """An xsd:string parameter (TR-106 default maximum length 256 unless stated)."""
    return Param(
        STRING,
        default,
        w,
        hidden=hidden,
        enum=enum,
        max_length=max_length,
        min_length=min_length,
        notify=notify,
    )


def unsigned(
    default: int | str | ValueFn = 0,
    *,
    w: bool = False,
    low: int | None = None,
    high: int | None = None,
    notify: Notify = Notify.NORMAL,
) -> Param:
    """An xsd:unsignedInt parameter."""
    return Param(UNSIGNED_INT, _text(default), w, low=low, high=high, notify=notify)


def integer(
    default: int | str | ValueFn = 0,
    *,
    w: bool = False,
    low: int | None = None,
    high: int | None = None,
    notify: Notify = Notify.NORMAL,
) -> Param:
    """An xsd:int parameter."""
    return Param(INT, _text(default), w, low=low, high=high, notify=notify)


def unsigned_long(default: int | ValueFn = 0, *, notify: Notify = Notify.NORMAL) -> Param:
    """An xsd:unsignedLong parameter (read-only: 64-bit statistics counters)."""
    return Param(UNSIGNED_LONG, _text(default), notify=notify)


def boolean(default: bool | ValueFn = False, *, w: bool = False) -> Param:
    """An xsd:boolean parameter, stored as "true"/"false"."""
    return Param(BOOLEAN, _text(default), w)


def timestamp(default: str | ValueFn = UNKNOWN_TIME, *, w: bool = False) -> Param:
    """An xsd:dateTime parameter."""
    return Param(DATETIME, default, w)


def hex_binary(
    default: str | ValueFn = "", *, w: bool = False, max_length: int | None = None
) -> Param:
    """An xsd:hexBinary parameter; `max_length` counts hex digits."""
    return Param(HEX_BINARY, default, w, hidden=True, max_length=max_length)


def entries(table: str) -> Param:
    """The NumberOfEntries parameter counting the sibling table `table`."""
    return Param(UNSIGNED_INT, "0", notify=Notify.CAN_DENY, counts=table)


def _text(value: object) -> str | ValueFn:
    if callable(value):
        return value  # type: ignore[return-value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- defaults that depend on the device or on time ----------------------------------


def uptime(offset: int = 0) -> ValueFn:
    """Seconds since boot, less `offset` (a link that came up after the boot)."""
    return lambda ctx: str(max(0, int(ctx.uptime) - offset))


def traffic(rate: float, bits: int = 32) -> ValueFn:
    """A counter growing at about `rate` per second since boot, wrapping at 2**bits.

    Each device and path gets its own rate (50-150 % of `rate`), so counters differ
    between devices and interfaces but never go backwards between two readings.
    """
    modulus = 2**bits

    def value(ctx: Ctx) -> str:
        return str(int(ctx.uptime * rate * ctx.unit()) % modulus)

    return value


def _level(ctx: Ctx, base: float, amplitude: float, period: float, key: str | None) -> float:
    # The phase depends on the device and `key`, so two parameters reporting the same
    # physical quantity (a standard one and a vendor one) share a `key` and agree.
    phase = (stable_hash(f"{ctx.device.seed}|{key or ctx.path}") % 1000) / 1000 * 2 * math.pi
    return base + amplitude * math.sin(2 * math.pi * ctx.now / period + phase)


def wave(
    base: float, amplitude: float, period: float, scale: int = 1, key: str | None = None
) -> ValueFn:
    """A level drifting around `base` (optical power, temperature), as an integer.

    `scale` multiplies the level before rounding: dBm/1000 units use scale 1000.
    """
    return lambda ctx: str(round(_level(ctx, base, amplitude, period, key) * scale))


def decimal_wave(
    base: float, amplitude: float, period: float, digits: int = 2, key: str | None = None
) -> ValueFn:
    """Like `wave`, as decimal text with `digits` decimals (a vendor's "-18.52" dBm)."""
    return lambda ctx: f"{_level(ctx, base, amplitude, period, key):.{digits}f}"


def local_time(ctx: Ctx) -> str:
    """The device clock: the simulation's `now`."""
    return format_datetime(datetime.fromtimestamp(int(ctx.now), UTC))


def boot_time(ctx: Ctx) -> str:
    """When the device last booted."""
    return format_datetime(datetime.fromtimestamp(int(ctx.now - ctx.uptime), UTC))


def mac(salt: str = "") -> ValueFn:
    """A MAC address in the device's OUI, stable per device and path."""

    def value(ctx: Ctx) -> str:
        oui = ctx.device.identity.oui
        tail = ctx.rng(salt).getrandbits(24)
        octets = [oui[0:2], oui[2:4], oui[4:6], f"{tail >> 16:02X}"]
        octets += [f"{(tail >> 8) & 0xFF:02X}", f"{tail & 0xFF:02X}"]
        return ":".join(octets)

    return value


def private_ip(prefix: str, low: int = 2, high: int = 250) -> ValueFn:
    """An address `prefix`.N, N stable per device and path (LAN hosts)."""
    return lambda ctx: f"{prefix}.{ctx.rng().randint(low, high)}"


def public_ip(ctx: Ctx) -> str:
    """A WAN address from the documentation ranges (RFC 5737), stable per device."""
    rng = ctx.rng("wan")
    net = rng.choice(("198.51.100", "203.0.113"))
    return f"{net}.{rng.randint(1, 254)}"


def secret(length: int = 12, alphabet: str = "abcdefghjkmnpqrstuvwxyz23456789") -> ValueFn:
    """A per-device secret (Wi-Fi passphrase, PPP password)."""
    return lambda ctx: "".join(ctx.rng("secret").choice(alphabet) for _ in range(length))


def identity_field(name: str) -> ValueFn:
    """One field of the device identity (Manufacturer, SerialNumber, ...)."""
    return lambda ctx: str(getattr(ctx.device.identity, name))


def setting(name: str) -> ValueFn:
    """One factory setting (ACS URL, connection request credentials, ...)."""

    def value(ctx: Ctx) -> str:
        raw = getattr(ctx.device.settings, name)
        if isinstance(raw, bool):
            return "true" if raw else "false"
        return str(raw)

    return value
