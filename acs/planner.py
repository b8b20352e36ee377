"""The provisioning planner: from declarations and what we know of a device, the next RPC.

Pure code. `TreeState` is the part of a device's tree a session loaded, with timestamps
(value read, children listed, subtree listed). A `Declaration` says what must be true
(a value, a freshness, a number of instances). `Planner.next()` works out what is
missing and answers the one RPC that helps most, in this order:

1. GetParameterNames, only for objects whose instances must be known and are not
   (NextLevel true), or whose whole subtree must be refreshed (NextLevel false);
2. GetParameterValues, batched, for values that must be read: to compare before writing,
   to resolve `[Key:Value]` aliases, to honour a refresh age, to evaluate an expression;
3. DeleteObject and AddObject, so the number of matching instances is right (new
   instances then get their alias keys set like any declared value);
4. SetParameterValues, batched per channel, for values that differ from the declared.

Each response updates the state and the planner is asked again; it converges when
nothing is missing. Faults are kept per channel: a fault in one channel drops that
channel's declarations for the session and leaves the others going.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from acs import expr, paths, tree
from acs import messages as m
from acs import values as v
from acs.faults import CwmpFault, InvalidParameterName
from acs.paths import Alias, Wildcard
from acs.provisions import Declare

NEVER = 0.0
SEALED = "sealed:"


@dataclass(slots=True)
class Node:
    value: str | None = None
    type: str | None = None
    value_ts: float = NEVER
    writable: bool | None = None
    object: bool | None = None
    children_ts: float = NEVER
    subtree_ts: float = NEVER


def _instance_key(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (2**62, name)


class TreeState:
    """The loaded part of one device's tree; paths are stored without trailing dots."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self._kids: dict[str, set[str]] = {}

    # --- reading ---

    def get(self, path: str) -> Node | None:
        return self.nodes.get(path)

    def node(self, path: str) -> Node:
        found = self.nodes.get(path)
        if found is None:
            found = self.nodes[path] = Node()
            self._link(path)
        return found

    def children(self, path: str) -> list[str]:
        return sorted(self._kids.get(path, ()), key=_instance_key)

    def leaves_under(self, path: str) -> list[str]:
        """Known parameters (not objects) below an object, in path order."""
        start = path + "." if path else ""
        return sorted(
            p
            for p, n in self.nodes.items()
            if p.startswith(start) and p != path and n.object is not True and p
        )

    def known(self, path: str) -> bool:
        node = self.nodes.get(path)
        return node is not None and node.value_ts > NEVER

    # --- writing ---

    def _link(self, path: str) -> None:
        while path:
            parent = paths.parent(path)
            kids = self._kids.setdefault(parent, set())
            name = paths.child_name(path)
            if name in kids:
                return
            kids.add(name)
            if parent in self.nodes:
                return
            self.nodes.setdefault(parent, Node(object=True))
            path = parent

    def delete(self, path: str) -> None:
        prefix = path + "."
        for p in [p for p in self.nodes if p == path or p.startswith(prefix)]:
            del self.nodes[p]
            self._kids.pop(p, None)
        if path:
            self._kids.get(paths.parent(path), set()).discard(paths.child_name(path))

    def load(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Rows of device_params (times as epoch seconds, or datetimes)."""
        for row in rows:
            node = self.node(row["path"])
            node.object = row.get("object")
            node.writable = row.get("writable")
            node.value = row.get("value")
            node.type = row.get("value_type")
            node.value_ts = _epoch(row.get("value_ts"))
            node.children_ts = _epoch(row.get("children_ts"))
            node.subtree_ts = _epoch(row.get("subtree_ts"))

    def apply(self, update: tree.TreeUpdate, at: float) -> None:
        """What an RPC exchange taught us, as the store records it too."""
        for path in update.deletes:
            self.delete(path)
        for prune in update.prunes:
            start = prune.root + "." if prune.root else ""
            if prune.next_level:
                kept = {p[len(start) :].split(".", 1)[0] for p in prune.keep if p.startswith(start)}
                for name in list(self._kids.get(prune.root, ())):
                    if name not in kept:
                        self.delete(paths.join(prune.root, name))
            else:
                for p in [p for p in self.nodes if p.startswith(start) and p != prune.root]:
                    if p not in prune.keep and p in self.nodes:
                        self.delete(p)
        for info in update.nodes:
            node = self.node(info.path)
            node.object = info.object
            node.writable = info.writable
        for param in update.values:
            if not param.name or param.name.endswith("."):
                continue
            value, type_ = v.canonical(param.type, param.value)
            node = self.node(param.name)
            node.object = False
            node.value_ts = at
            node.type = type_
            if value or not (node.value or "").startswith(SEALED):
                node.value = value  # a CPE reads a credential back as "": keep ours
        for enumerated in update.enumerated:
            node = self.node(enumerated.path)
            node.object = True
            node.children_ts = at
            if enumerated.deep:
                node.subtree_ts = at


def _epoch(value: Any) -> float:
    if value is None:
        return NEVER
    if isinstance(value, int | float):
        return float(value)
    return value.timestamp()


# --- declarations ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Declaration:
    """A declare step as one channel asks for it, with what its templates may read."""

    step: Declare
    channel: str
    origin: str  # "preset x, provision y, step 3": for faults
    variables: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChannelFault:
    channel: str
    code: str
    message: str
    origin: str
    detail: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Planned:
    """The RPC to send next, the channels that asked for it, and (for AddObject) the
    declaration the new instance is for."""

    message: m.Message
    channels: frozenset[str]
    declaration: int | None = None


@dataclass
class _Needs:
    deep: dict[str, set[str]] = field(default_factory=dict)  # object -> channels
    shallow: dict[str, set[str]] = field(default_factory=dict)
    read: dict[str, set[str]] = field(default_factory=dict)  # path -> channels (ordered)
    delete: dict[str, str] = field(default_factory=dict)  # instance path -> channel
    add: dict[str, tuple[int, str]] = field(default_factory=dict)  # object -> (decl, channel)
    write: dict[str, dict[str, tuple[str, str]]] = field(
        default_factory=dict
    )  # ch -> path -> (value, type)
    faults: list[ChannelFault] = field(default_factory=list)

    def want(self, table: dict[str, set[str]], path: str, channel: str) -> None:
        table.setdefault(path, set()).add(channel)


@dataclass(frozen=True, slots=True)
class PlanContext:
    started: float  # session start: "age 0" means read in this session
    root: str = "InternetGatewayDevice"  # the data model root, from the Inform
    gpv_batch: int = 100
    spv_batch: int = 100
    skip_root_gpn: bool = False
    unseal: Callable[[str], str] = str
    secret: Callable[[str], str] = lambda purpose: ""
    first_limit: int = 64
    boolean_style: str = "word"  # device class quirks for the values we send
    datetime_ms: bool = False


class Planner:
    """Plans one session's provisioning; call next() until it returns None."""

    def __init__(
        self, state: TreeState, declarations: Sequence[Declaration], ctx: PlanContext
    ) -> None:
        self.state = state
        self.declarations = list(declarations)
        self.ctx = ctx
        self.failed: dict[str, ChannelFault] = {}
        self.claimed: dict[int, dict[str, set[str]]] = {}  # decl index -> object -> instances
        self.absent: set[str] = set()
        self.split: list[str] = []  # GetParameterValues names being retried one by one

    # --- the plan ---

    def next(self) -> Planned | None:
        """The next RPC, or None when every live channel has what it declared."""
        needs = _Needs()
        for index, decl in enumerate(self.declarations):
            if decl.channel not in self.failed:
                self._declaration(index, decl, needs)
        for fault in needs.faults:
            self.failed.setdefault(fault.channel, fault)
        live = lambda chs: {c for c in chs if c not in self.failed}  # noqa: E731
        for table, deep in ((needs.deep, True), (needs.shallow, False)):
            for path, chs in table.items():
                if live(chs):
                    return Planned(
                        m.GetParameterNames(self._gpn_path(path), not deep), frozenset(live(chs))
                    )
        if self.split:
            name = self.split[0]
            return Planned(
                m.GetParameterValues((name,)), frozenset(live(needs.read.get(name, set())))
            )
        reads = [(p, live(chs)) for p, chs in needs.read.items() if live(chs)]
        if reads:
            batch = reads[: self.ctx.gpv_batch]
            channels = frozenset().union(*(chs for _, chs in batch))
            return Planned(m.GetParameterValues(tuple(p for p, _ in batch)), channels)
        for path, channel in needs.delete.items():
            if channel not in self.failed:
                return Planned(m.DeleteObject(path + ".", ""), frozenset((channel,)))
        for path, (index, channel) in needs.add.items():
            if channel not in self.failed:
                return Planned(m.AddObject(path + ".", ""), frozenset((channel,)), index)
        for channel, writes in needs.write.items():
            if channel not in self.failed and writes:
                items = list(writes.items())[: self.ctx.spv_batch]
                params = tuple(
                    m.ParameterValue(
                        p,
                        v.for_cpe(
                            t,
                            self.ctx.unseal(val),
                            boolean_style=self.ctx.boolean_style,
                            datetime_ms=self.ctx.datetime_ms,
                        ),
                        t,
                    )
                    for p, (val, t) in items
                )
                return Planned(m.SetParameterValues(params, ""), frozenset((channel,)))
        return None

    def _gpn_path(self, path: str) -> str:
        if path == "" and self.ctx.skip_root_gpn:
            return self.ctx.root + "."
        return path + "." if path else ""

    def _threshold(self, age: int | None) -> float:
        """The oldest timestamp that satisfies an age (None: known at all)."""
        if age is None:
            return NEVER
        return self.ctx.started - age

    # --- resolving one declaration ---

    def _declaration(self, index: int, decl: Declaration, needs: _Needs) -> None:
        step = decl.step
        segments = step.pattern.segments
        counted = step.instances is not None
        prefixes = self._resolve(index, decl, segments[:-1] if counted else segments, needs)
        if prefixes is None:
            return
        if counted:
            self._instances(index, decl, prefixes, segments[-1], needs)
            return
        if step.pattern.object:
            for path in prefixes:
                self._subtree(decl, path, needs)
            return
        for path in prefixes:
            self._leaf(decl, path, needs)

    def _resolve(
        self, index: int, decl: Declaration, segments: Sequence[paths.Segment], needs: _Needs
    ) -> list[str] | None:
        """The concrete paths the segments stand for; None while something must be read."""
        prefixes = [""]
        complete = True
        for segment in segments:
            if isinstance(segment, str):
                prefixes = [paths.join(p, segment) for p in prefixes]
                continue
            found = []
            for prefix in prefixes:
                matches = self._matches(index, decl, prefix, segment, needs)
                if matches is None:
                    complete = False
                else:
                    found.extend(matches)
            prefixes = found
        return prefixes if complete else None

    def _matches(
        self, index: int, decl: Declaration, prefix: str, segment: Wildcard | Alias, needs: _Needs
    ) -> list[str] | None:
        """The instances of `prefix` the segment matches; None while some must be read."""
        if prefix in self.absent:
            return []
        node = self.state.get(prefix)
        listed = node.children_ts if node else NEVER
        if listed <= NEVER or listed < self._threshold(decl.step.path_age):
            needs.want(needs.shallow, prefix, decl.channel)
            return None
        claimed = self.claimed.get(index, {}).get(prefix, set())
        out = []
        complete = True
        for name in self.state.children(prefix):
            instance = paths.join(prefix, name)
            if isinstance(segment, Wildcard) or name in claimed:
                out.append(instance)
                continue
            verdict = self._alias_matches(decl, instance, segment, needs)
            if verdict is None:
                complete = False
            elif verdict:
                out.append(instance)
        return out if complete else None

    def _alias_matches(
        self, decl: Declaration, instance: str, alias: Alias, needs: _Needs
    ) -> bool | None:
        threshold = self._threshold(decl.step.value_age)
        verdict: bool | None = True
        for key, wanted in alias.keys:
            path = f"{instance}.{key}"
            if path in self.absent:
                return False
            node = self.state.get(path)
            if node is None or node.value_ts <= NEVER or node.value_ts < threshold:
                needs.want(needs.read, path, decl.channel)
                verdict = None
                continue
            if verdict and not _same_text(node.value or "", wanted, node.type):
                verdict = False
        return verdict

    def _instances(
        self,
        index: int,
        decl: Declaration,
        parents: list[str],
        segment: paths.Segment,
        needs: _Needs,
    ) -> None:
        assert decl.step.instances is not None
        low, high = decl.step.instances
        for parent in parents:
            if isinstance(segment, str):
                continue
            matches = self._matches(index, decl, parent, segment, needs)
            if matches is None:
                continue
            claimed = self.claimed.get(index, {}).get(parent, set())
            if len(matches) < low:
                needs.add.setdefault(parent, (index, decl.channel))
            elif len(matches) > high:
                extras = [p for p in matches if paths.child_name(p) not in claimed]
                extras.sort(key=lambda p: _instance_key(paths.child_name(p)), reverse=True)
                if extras:  # the newest instance goes first
                    needs.delete.setdefault(extras[0], decl.channel)
            if isinstance(segment, Alias):
                for name in claimed:
                    instance = paths.join(parent, name)
                    for key, wanted in segment.keys:
                        self._want_value(decl, f"{instance}.{key}", wanted, None, needs)

    def _subtree(self, decl: Declaration, path: str, needs: _Needs) -> None:
        if path in self.absent:
            return
        node = self.state.get(path)
        threshold = self._threshold(decl.step.path_age)
        if node is None or node.subtree_ts <= NEVER or node.subtree_ts < threshold:
            needs.want(needs.deep, path, decl.channel)
            return
        value_threshold = self._threshold(decl.step.value_age)
        for leaf in self.state.leaves_under(path):
            leaf_node = self.state.nodes[leaf]
            fresh = NEVER < leaf_node.value_ts >= value_threshold
            if not fresh and leaf not in self.absent:
                needs.want(needs.read, leaf, decl.channel)

    def _leaf(self, decl: Declaration, path: str, needs: _Needs) -> None:
        step = decl.step
        if path in self.absent:
            if step.value is not None or step.value_age is not None:
                needs.faults.append(
                    ChannelFault(decl.channel, "cwmp.9005", f"{path} does not exist", decl.origin)
                )
            return
        node = self.state.get(path)
        threshold = self._threshold(step.value_age)
        stale = node is None or node.value_ts <= NEVER or node.value_ts < threshold
        if step.value_age is not None and stale:
            needs.want(needs.read, path, decl.channel)
            return
        if step.value is None:
            return
        try:
            desired = step.value.render(self._scope(decl))
        except expr.Unknown as unknown:
            for p in unknown.paths:
                needs.want(needs.read, p, decl.channel)
            return
        except expr.ExprError as exc:
            needs.faults.append(
                ChannelFault(decl.channel, "provision.expression", str(exc), decl.origin)
            )
            return
        self._want_value(decl, path, desired, step.type, needs)

    def _want_value(
        self, decl: Declaration, path: str, desired: Any, declared: str | None, needs: _Needs
    ) -> None:
        node = self.state.get(path)
        if node is None or node.value_ts <= NEVER:
            needs.want(needs.read, path, decl.channel)  # read before writing
            return
        type_hint = declared or node.type
        text, type_ = v.from_json(desired, type_hint)
        if type_hint and type_ != v.normalize_type(type_hint):
            needs.faults.append(
                ChannelFault(
                    decl.channel,
                    "provision.value",
                    f"{path}: {desired!r} is not a valid {v.normalize_type(type_hint)}",
                    decl.origin,
                )
            )
            return
        current = node.value or ""
        if current.startswith(SEALED):
            current = self.ctx.unseal(current)
        if _same_text(current, text, type_):
            return
        if node.writable is False:
            needs.faults.append(
                ChannelFault(
                    decl.channel, "provision.not_writable", f"{path} is not writable", decl.origin
                )
            )
            return
        needs.write.setdefault(decl.channel, {})[path] = (text, type_)

    def _scope(self, decl: Declaration) -> expr.Scope:
        return expr.Scope(
            variables=decl.variables,
            param=self.param,
            first=self.first,
            secret=self.ctx.secret,
        )

    def param(self, path: str) -> expr.Value:
        """A known value, typed; Unknown when it was never read."""
        node = self.state.get(path)
        if path in self.absent:
            return None
        if node is None or node.value_ts <= NEVER:
            raise expr.Unknown([path])
        value = node.value or ""
        if value.startswith(SEALED):
            value = self.ctx.unseal(value)
        return value_of(value, node.type)

    def first(self, patterns: Sequence[str]) -> expr.Value:
        """The first non-empty value among the (known) paths the patterns match."""
        for text in patterns:
            for path in self.expand(text):
                node = self.state.get(path)
                if node is not None and node.value not in (None, ""):
                    return value_of(node.value, node.type)
        return None

    def expand(self, text: str) -> list[str]:
        """Concrete known paths for a pattern, wildcards and aliases matched on known
        values only (no reads are planned for them)."""
        try:
            pattern = paths.parse(text)
        except paths.PathError:
            return []
        prefixes = [""]
        for segment in pattern.segments:
            nxt = []
            for prefix in prefixes:
                if isinstance(segment, str):
                    nxt.append(paths.join(prefix, segment))
                    continue
                for name in self.state.children(prefix):
                    instance = paths.join(prefix, name)
                    if isinstance(segment, Wildcard) or all(
                        _same_text(
                            (self.state.get(f"{instance}.{k}") or Node()).value or "", val, None
                        )
                        for k, val in segment.keys
                    ):
                        nxt.append(instance)
            prefixes = nxt[: self.ctx.first_limit]
        return prefixes

    # --- responses ---

    def apply(self, planned: Planned, response: m.Message, at: float) -> tree.TreeUpdate:
        """Fold a response into the state; returns the update to store."""
        request = planned.message
        update = tree.EMPTY
        if isinstance(request, m.GetParameterNames):
            assert isinstance(response, m.GetParameterNamesResponse)
            update = tree.from_names(request, response)
            if request.parameter_path == self.ctx.root + "." and self.ctx.skip_root_gpn:
                update = update.merge(
                    tree.TreeUpdate(enumerated=(tree.Enumerated("", not request.next_level),))
                )
        elif isinstance(request, m.GetParameterValues):
            assert isinstance(response, m.GetParameterValuesResponse)
            update = tree.from_values(response.parameters)
            if self.split and request.names == (self.split[0],):
                self.split.pop(0)
        elif isinstance(request, m.SetParameterValues):
            update = tree.from_values(request.parameters)
        elif isinstance(request, m.AddObject):
            assert isinstance(response, m.AddObjectResponse)
            update = tree.from_add_object(request, response)
            if planned.declaration is not None:
                parent = tree.node_path(request.object_name)
                self.claimed.setdefault(planned.declaration, {}).setdefault(parent, set()).add(
                    str(response.instance_number)
                )
        elif isinstance(request, m.DeleteObject):
            update = tree.from_delete_object(request)
        self.state.apply(update, at)
        return update

    def origin(self, channel: str) -> str:
        return next((d.origin for d in self.declarations if d.channel == channel), channel)

    def fault(self, planned: Planned, fault: CwmpFault) -> tree.TreeUpdate:
        """A CPE fault for a planned RPC: what it proves is recorded, the channels that
        cannot go on are failed."""
        request = planned.message
        code = fault.fault_code
        if code == InvalidParameterName.code:
            if isinstance(request, m.GetParameterNames):
                gone = tree.node_path(request.parameter_path)
                self.absent.add(gone)
                update = tree.TreeUpdate(deletes=(gone,)) if gone else tree.EMPTY
                self.state.apply(update, 0.0)
                return update
            if isinstance(request, m.GetParameterValues):
                if len(request.names) > 1:
                    self.split = list(request.names)  # find which name it was, one by one
                    return tree.EMPTY
                if self.split and request.names == (self.split[0],):
                    self.split.pop(0)
                self.absent.add(request.names[0])
                update = tree.TreeUpdate(deletes=(request.names[0],))
                self.state.apply(update, 0.0)
                return update
        for channel in planned.channels:
            self.failed.setdefault(
                channel,
                ChannelFault(
                    channel,
                    f"cwmp.{code}",
                    fault.fault_string,
                    self.origin(channel),
                    fault.as_dict(),
                ),
            )
        return tree.EMPTY


def _same_text(current: str, wanted: str, type_: str | None) -> bool:
    if type_ in (None, v.STRING):
        return current == wanted
    a = v.canonical(type_, current)
    b = v.canonical(type_, wanted)
    return a == b


def value_of(text: str, type_: str | None) -> expr.Value:
    """A stored value as expressions see it: numbers and booleans typed."""
    if type_ in v.INTEGER_TYPES:
        try:
            return int(text)
        except ValueError:
            return text
    if type_ == v.BOOLEAN:
        return text == "true"
    return text
