"""A simulated CPE's data model and the TR-069 Annex A operations on it.

Pure: no sockets, no asyncio, and time comes from the `clock` you pass in, so UpTime,
traffic counters and optical levels move deterministically with it. A `DataModel`
instantiates a shared template (`tools.sim.tr098` or `tools.sim.tr181`) and keeps only
what the ACS or the simulator changed: overridden values, attributes, and the instance
lists of tables that gained or lost instances. Thousands of devices fit in one process.

Operations follow TR-069 Amendment 6, Annex A (A.3.2): GetParameterNames (A.3.2.3),
GetParameterValues (A.3.2.2), SetParameterValues (A.3.2.1, all or nothing, a 9003 fault
listing each failing parameter), Get/SetParameterAttributes (A.3.2.4-5), AddObject and
DeleteObject (A.3.2.6-7). Faults are raised as `acs.faults` classes. Hidden values
(passwords, keys) read back as "" as A.3.2.2 requires.
"""

from __future__ import annotations

import base64
import binascii
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from acs import faults
from acs.messages import (
    ParameterAttribute,
    ParameterFault,
    ParameterInfo,
    ParameterValue,
    SetParameterAttribute,
)
from acs.values import BOOLEAN, DATETIME, INTEGER_TYPES, STRING, parse_datetime
from tools.sim import tr098, tr181
from tools.sim.template import (
    BASE64,
    HEX_BINARY,
    Ctx,
    Device,
    DeviceIdentity,
    Notify,
    Obj,
    Param,
    Profile,
    Settings,
    Table,
    stable_hash,
)

PROFILES: dict[str, Profile] = {"tr098": tr098.PROFILE, "tr181": tr181.PROFILE}

_INT_RANGES = {
    "xsd:int": (-(2**31), 2**31 - 1),
    "xsd:unsignedInt": (0, 2**32 - 1),
    "xsd:long": (-(2**63), 2**63 - 1),
    "xsd:unsignedLong": (0, 2**64 - 1),
}
_BOOLEAN_WORDS = {"1": "true", "true": "true", "0": "false", "false": "false"}

# What a resolved path is.
PARAM = "parameter"
OBJECT = "object"
TABLE = "table"  # a multi-instance object itself: "...WANPPPConnection."
INSTANCE = "instance"  # one of its instances: "...WANPPPConnection.1."


@dataclass(frozen=True, slots=True)
class _Node:
    path: str
    spec: Param | Obj | Table
    kind: str
    table: Table | None = None  # for TABLE: itself; for INSTANCE: the table it is in


def make_identity(
    model: str = "tr098",
    seed: int = 0,
    *,
    family: str | None = None,
    serial_number: str | None = None,
) -> DeviceIdentity:
    """A device identity derived from `seed`: distinct seeds give distinct serials."""
    profile = PROFILES[model]
    families = {f.name: f for f in profile.families}
    chosen = families[family] if family else profile.families[seed % len(profile.families)]
    rng = random.Random(stable_hash(f"identity|{model}|{seed}"))
    # Multiplying by an odd constant is a bijection modulo 2**32: serials never collide.
    mixed = (seed * 0x9E3779B1 + 0x7F4A7C15) % 2**32
    return DeviceIdentity(
        manufacturer=chosen.manufacturer,
        oui=chosen.oui,
        product_class=chosen.product_class,
        serial_number=serial_number or f"{chosen.serial_prefix}{mixed:08X}",
        model_name=chosen.model_name,
        description=chosen.description,
        hardware_version=rng.choice(chosen.hardware_versions),
        software_version=rng.choice(chosen.software_versions),
        family=chosen,
    )


class DataModel:
    """One device's parameter tree and the Annex A operations on it."""

    def __init__(
        self,
        identity: DeviceIdentity,
        settings: Settings,
        *,
        model: str = "tr098",
        seed: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.profile = PROFILES[model]
        self.root = self.profile.root
        self.device = Device(identity, settings, seed)
        self._schema = self.profile.schema(identity.family)
        self._clock = clock
        self._boot = clock()
        self._values: dict[str, str] = {}
        self._attrs: dict[str, tuple[int, tuple[str, ...]]] = {}
        self._instances: dict[str, list[int]] = {}
        self._next: dict[str, int] = {}
        self._added: set[str] = set()
        self._changes: dict[str, None] = {}  # ordered set of changed notified names

    @classmethod
    def generate(
        cls,
        model: str = "tr098",
        seed: int = 0,
        *,
        acs_url: str = "http://127.0.0.1:7547/",
        family: str | None = None,
        serial_number: str | None = None,
        clock: Callable[[], float] = time.time,
        **settings: object,
    ) -> DataModel:
        """A fresh device of `model` ("tr098" or "tr181") from `seed`."""
        identity = make_identity(model, seed, family=family, serial_number=serial_number)
        return cls(identity, Settings(acs_url, **settings), model=model, seed=seed, clock=clock)  # type: ignore[arg-type]

    # --- identity and time -----------------------------------------------------------

    @property
    def identity(self) -> DeviceIdentity:
        """Who the device is (changes when firmware is installed)."""
        return self.device.identity

    @property
    def settings(self) -> Settings:
        """The factory settings (ACS URL, connection request credentials, ...)."""
        return self.device.settings

    @property
    def uptime(self) -> float:
        """Seconds since the last (simulated) boot."""
        return max(0.0, self._clock() - self._boot)

    def now(self) -> float:
        """The device clock, in seconds since the epoch."""
        return self._clock()

    def reboot(self) -> None:
        """Boot again: UpTime and traffic counters restart from zero."""
        self._boot = self._clock()
        self._changes.clear()  # pending value changes are discarded on boot

    def factory_reset(self) -> None:
        """Forget everything the ACS configured, then boot."""
        self._values.clear()
        self._attrs.clear()
        self._instances.clear()
        self._next.clear()
        self._added.clear()
        self.reboot()

    def install_firmware(self, version: str) -> None:
        """Report `version` as SoftwareVersion from now on (survives factory reset)."""
        identity = replace(self.identity, software_version=version)
        self.device = replace(self.device, identity=identity)
        self._values.pop(f"{self.root}.DeviceInfo.SoftwareVersion", None)

    # --- reading -------------------------------------------------------------------

    def read(self, name: str) -> str | None:
        """A parameter's current value, secrets included; None if there is no such one."""
        node = self._resolve(name)
        if node is None or node.kind != PARAM:
            return None
        return self._value(node)

    def __getitem__(self, name: str) -> str:
        value = self.read(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._resolve(name) is not None

    def instance_numbers(self, table: str) -> list[int]:
        """The instance numbers of the table at `table` (ends in '.'); [] if none."""
        node = self._resolve(table)
        if node is None or node.kind != TABLE:
            return []
        return list(self._instance_list(node))

    def parameter_names(self) -> list[str]:
        """Every parameter's full name, in tree order."""
        return [n.path for n in self._walk(self._root()) if n.kind == PARAM]

    def spec(self, name: str) -> Param:
        """The declaration of the parameter `name`: type, access, constraints."""
        node = self._resolve(name)
        if node is None or not isinstance(node.spec, Param):
            raise KeyError(name)
        return node.spec

    def inform_parameters(self) -> list[ParameterValue]:
        """The parameters every Inform carries (Forced Inform and default WAN address)."""
        out = []
        for name in self.profile.inform_names(self):
            node = self._resolve(name)
            if node is not None and node.kind == PARAM:
                out.append(self._parameter_value(node))
        return out

    # --- GetParameterNames (A.3.2.3) -------------------------------------------------

    def get_parameter_names(self, path: str, next_level: bool) -> list[ParameterInfo]:
        """Names under `path` ("" is the root); objects end with '.'."""
        if path == "":
            root = self._root()
            if next_level:
                return [self._info(root)]
            return [self._info(n) for n in self._walk(root)]
        node = self._resolve(path)
        if node is None:
            raise faults.InvalidParameterName(f"no parameter or object named {path}")
        if node.kind == PARAM:
            if next_level:
                # NextLevel true asks for the children of an object; a parameter has none.
                raise faults.InvalidArguments(f"NextLevel is true but {path} is a parameter")
            return [self._info(node)]
        if next_level:
            return [self._info(n) for n in self._children(node)]
        return [self._info(n) for n in self._walk(node)]

    # --- GetParameterValues (A.3.2.2) ------------------------------------------------

    def get_parameter_values(self, names: Sequence[str]) -> list[ParameterValue]:
        """Values of full names and of every parameter under partial paths."""
        out: list[ParameterValue] = []
        for name in names:
            out.extend(self._parameter_value(n) for n in self._parameters_under(name))
        return out

    # --- SetParameterValues (A.3.2.1) ------------------------------------------------

    def set_parameter_values(
        self, parameters: Sequence[ParameterValue], parameter_key: str = ""
    ) -> int:
        """Apply every value or none; returns Status 0 (applied)."""
        seen: set[str] = set()
        for p in parameters:
            if p.name in seen:
                raise faults.InvalidArguments(f"{p.name} appears more than once")
            seen.add(p.name)
        problems: list[ParameterFault] = []
        updates: list[tuple[str, str]] = []
        for p in parameters:
            node = self._resolve(p.name)
            if node is None or not isinstance(node.spec, Param):
                problems.append(_fault(p.name, 9005, "no such parameter"))
                continue
            spec = node.spec
            if not spec.writable or spec.counts:
                problems.append(_fault(p.name, 9008, "parameter is read-only"))
            elif p.type != spec.type:
                problems.append(_fault(p.name, 9006, f"expected {spec.type}, got {p.type}"))
            else:
                value, problem = check_value(spec, p.value)
                if problem:
                    problems.append(_fault(p.name, 9007, problem))
                else:
                    updates.append((node.path, value))
        if problems:
            raise faults.InvalidArguments("Invalid arguments", tuple(problems))
        for path, value in updates:
            self._values[path] = value
        self._set_parameter_key(parameter_key)
        return 0

    # --- Get/SetParameterAttributes (A.3.2.4, A.3.2.5) --------------------------------

    def get_parameter_attributes(self, names: Sequence[str]) -> list[ParameterAttribute]:
        """Notification and access list of full names and of parameters under paths."""
        out = []
        for name in names:
            for node in self._parameters_under(name):
                notification, access = self._attributes(node)
                out.append(ParameterAttribute(node.path, notification, access))
        return out

    def set_parameter_attributes(self, items: Sequence[SetParameterAttribute]) -> None:
        """Apply every change or none.

        Active notification on a parameter that refuses it (UpTime, counters), or turning
        off a forced one, is fault 9009 when named in full; under a partial path such
        parameters are skipped, so "set everything under X. to passive" works.
        """
        plan: list[tuple[_Node, int | None, tuple[str, ...] | None]] = []
        for item in items:
            nodes = self._parameters_under(item.name)
            partial = item.name == "" or item.name.endswith(".")
            if item.notification_change and not 0 <= item.notification <= 6:
                raise faults.InvalidArguments(f"Notification {item.notification} is undefined")
            for node in nodes:
                notification = item.notification if item.notification_change else None
                if notification is not None and _refuses(node.spec, notification):
                    if partial:
                        notification = None
                    else:
                        raise faults.REGISTRY[9009](
                            f"notification {item.notification} refused for {node.path}"
                        )
                access = tuple(item.access_list) if item.access_list_change else None
                plan.append((node, notification, access))
        for node, notification, access in plan:
            old_notification, old_access = self._attributes(node)
            self._attrs[node.path] = (
                old_notification if notification is None else notification,
                old_access if access is None else access,
            )

    # --- AddObject / DeleteObject (A.3.2.6, A.3.2.7) ----------------------------------

    def add_object(self, name: str, parameter_key: str = "") -> int:
        """Create an instance of the table `name` (ends in '.'); returns its number."""
        node = self._resolve(name) if name.endswith(".") else None
        if node is None or node.kind != TABLE or node.table is None or not node.table.writable:
            raise faults.InvalidParameterName(f"{name} is not a multi-instance object")
        instances = self._materialize(node)
        limit = node.table.max_entries
        if limit is not None and len(instances) >= limit:
            raise faults.REGISTRY[9004](f"{name} already has {limit} instances")
        number = self._next[node.path]
        self._next[node.path] = number + 1
        instances.append(number)
        self._added.add(f"{node.path}{number}.")
        self._set_parameter_key(parameter_key)
        return number

    def delete_object(self, name: str, parameter_key: str = "") -> int:
        """Delete the instance `name` (such as "...Forwarding.2."); returns Status 0."""
        node = self._resolve(name) if name.endswith(".") else None
        if node is None or node.kind != INSTANCE or node.table is None or not node.table.writable:
            raise faults.InvalidParameterName(f"{name} is not an instance that can be deleted")
        table_path = node.path[: node.path.rstrip(".").rfind(".") + 1]
        table = self._resolve(table_path)
        assert table is not None
        instances = self._materialize(table)
        instances.remove(int(node.path.rstrip(".").rsplit(".", 1)[1]))
        self._purge(node.path)
        self._set_parameter_key(parameter_key)
        return 0

    # --- changes made by the device itself ------------------------------------------

    def set_value(self, name: str, value: str, *, notify: bool = True) -> None:
        """The device changes a value itself (a new WAN address, a firmware version).

        Unlike SetParameterValues this ignores writability, and a change to a parameter
        with notification on is remembered for the next Inform ("4 VALUE CHANGE").
        """
        node = self._resolve(name)
        if node is None or node.kind != PARAM:
            raise KeyError(name)
        if self._value(node) == value:
            return
        self._values[node.path] = value
        if notify and self._attributes(node)[0] != 0:
            self._changes[node.path] = None

    def value_changes(self) -> list[ParameterValue]:
        """Changed parameters with notification on, not yet reported to the ACS."""
        out = []
        for name in self._changes:
            node = self._resolve(name)
            if node is not None:
                out.append(self._parameter_value(node))
        return out

    def has_active_change(self) -> bool:
        """Whether a pending change is on a parameter with active notification (2)."""
        for name in self._changes:
            node = self._resolve(name)
            if node is not None and self._attributes(node)[0] == 2:
                return True
        return False

    def clear_value_changes(self, names: Sequence[str]) -> None:
        """Forget changes that an Inform has delivered."""
        for name in names:
            self._changes.pop(name, None)

    # --- internals -------------------------------------------------------------------

    def _root(self) -> _Node:
        return _Node(f"{self.root}.", self._schema, OBJECT)

    def _resolve(self, name: str) -> _Node | None:
        is_object = name.endswith(".")
        parts = (name[:-1] if is_object else name).split(".")
        if parts[0] != self.root or "" in parts:
            return None
        node = self._root()
        for part in parts[1:]:
            if node.kind == PARAM:
                return None
            if node.kind == TABLE:
                # Instance numbers are plain decimals: "01" does not name instance 1.
                if not part.isdigit() or part != str(int(part)):
                    return None
                if int(part) not in self._instance_list(node):
                    return None
                node = self._instance(node, int(part))
                continue
            assert isinstance(node.spec, Obj)
            child = node.spec.children.get(part)
            if child is None:
                return None
            node = _child(node.path, part, child)
        if is_object == (node.kind == PARAM):
            return None
        return node

    def _instance(self, table: _Node, number: int) -> _Node:
        assert table.table is not None
        path = f"{table.path}{number}."
        entry = table.table.entry
        if table.table.added is not None and path in self._added:
            entry = table.table.added
        return _Node(path, entry, INSTANCE, table.table)

    def _instance_list(self, table: _Node) -> list[int]:
        numbers = self._instances.get(table.path)
        if numbers is not None:
            return numbers
        assert table.table is not None
        return list(range(1, table.table.instances(self.device) + 1))

    def _materialize(self, table: _Node) -> list[int]:
        """The table's instance list, stored so that it can change."""
        numbers = self._instances.get(table.path)
        if numbers is None:
            numbers = self._instances[table.path] = self._instance_list(table)
        self._next.setdefault(table.path, max(numbers, default=0) + 1)
        return numbers

    def _purge(self, prefix: str) -> None:
        for store in (self._values, self._attrs, self._instances, self._next, self._changes):
            for key in [k for k in store if k.startswith(prefix)]:
                del store[key]  # type: ignore[attr-defined]
        self._added = {k for k in self._added if not k.startswith(prefix)}

    def _children(self, node: _Node) -> Iterator[_Node]:
        if node.kind == TABLE:
            for number in self._instance_list(node):
                yield self._instance(node, number)
        elif isinstance(node.spec, Obj):
            for name, child in node.spec.children.items():
                yield _child(node.path, name, child)

    def _walk(self, node: _Node) -> Iterator[_Node]:
        yield node
        for child in self._children(node):
            yield from self._walk(child)

    def _parameters_under(self, name: str) -> list[_Node]:
        if name == "":
            start: _Node | None = self._root()
        else:
            start = self._resolve(name)
        if start is None:
            raise faults.InvalidParameterName(f"no parameter or object named {name}")
        return [n for n in self._walk(start) if n.kind == PARAM]

    def _value(self, node: _Node) -> str:
        spec = node.spec
        assert isinstance(spec, Param)
        if spec.counts:
            parent = node.path[: node.path.rfind(".") + 1]
            table = self._resolve(f"{parent}{spec.counts}.")
            return str(len(self._instance_list(table))) if table is not None else "0"
        override = self._values.get(node.path)
        if override is not None:
            return override
        if callable(spec.default):
            now = self._clock()
            return spec.default(Ctx(self.device, node.path, now, max(0.0, now - self._boot)))
        return spec.default

    def _parameter_value(self, node: _Node) -> ParameterValue:
        spec = node.spec
        assert isinstance(spec, Param)
        return ParameterValue(node.path, "" if spec.hidden else self._value(node), spec.type)

    def _info(self, node: _Node) -> ParameterInfo:
        if isinstance(node.spec, Param):
            return ParameterInfo(node.path, node.spec.writable and not node.spec.counts)
        # For objects Writable says whether AddObject (a table) or DeleteObject (an
        # instance) may be used on it (A.3.2.3).
        return ParameterInfo(node.path, node.table is not None and node.table.writable)

    def _attributes(self, node: _Node) -> tuple[int, tuple[str, ...]]:
        stored = self._attrs.get(node.path)
        if stored is not None:
            return stored
        assert isinstance(node.spec, Param)
        return (2 if node.spec.notify is Notify.FORCED else 0), ()

    def _set_parameter_key(self, key: str) -> None:
        self._values[f"{self.root}.ManagementServer.ParameterKey"] = key


def _child(parent: str, name: str, spec: Param | Obj | Table) -> _Node:
    if isinstance(spec, Param):
        return _Node(f"{parent}{name}", spec, PARAM)
    if isinstance(spec, Table):
        return _Node(f"{parent}{name}.", spec, TABLE, spec)
    return _Node(f"{parent}{name}.", spec, OBJECT)


def _fault(name: str, code: int, why: str) -> ParameterFault:
    return ParameterFault(name, code, f"{faults.REGISTRY[code].title}: {why}")


def _refuses(spec: Param | Obj | Table, notification: int) -> bool:
    assert isinstance(spec, Param)
    if notification > 2:
        return True  # lightweight notification (3-6) is not supported
    if spec.notify is Notify.CAN_DENY:
        return notification == 2
    if spec.notify is Notify.FORCED:
        return notification != 2
    return False


def check_value(spec: Param, text: str) -> tuple[str, str | None]:
    """(value to store, None) when `text` is valid for `spec`, else ("", the problem)."""
    if spec.type in INTEGER_TYPES:
        try:
            number = int(text.strip())
        except ValueError:
            return "", f"{text!r} is not an integer"
        low, high = _INT_RANGES[spec.type]
        low = low if spec.low is None else max(low, spec.low)
        high = high if spec.high is None else min(high, spec.high)
        if not low <= number <= high:
            return "", f"{number} is outside {low}..{high}"
        return str(number), None
    if spec.type == BOOLEAN:
        word = _BOOLEAN_WORDS.get(text.strip())
        return (word, None) if word else ("", f"{text!r} is not a boolean")
    if spec.type == DATETIME:
        ok = parse_datetime(text) is not None
        return (text.strip(), None) if ok else ("", f"{text!r} is not a dateTime")
    if spec.type == HEX_BINARY:
        try:
            binascii.unhexlify(text)
        except (binascii.Error, ValueError):
            return "", "not hexBinary"
    elif spec.type == BASE64:
        try:
            base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return "", "not base64"
    if spec.type in (STRING, HEX_BINARY):
        if spec.max_length is not None and len(text) > spec.max_length:
            return "", f"longer than {spec.max_length} characters"
        if spec.min_length is not None and len(text) < spec.min_length:
            return "", f"shorter than {spec.min_length} characters"
        if spec.enum and text not in spec.enum:
            return "", f"{text!r} is not one of {', '.join(spec.enum)}"
    return text, None
