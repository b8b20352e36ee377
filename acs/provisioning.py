"""Provisioning in a session: which presets apply, their declarations, the planner loop,
then tags, reboots, file transfers and virtual parameters. Pure code.

The session asks for the data this needs (`LoadSpec`), gets a `DeviceSnapshot`, and runs
`run(...)`, a generator of RPCs like a task runner: it yields `Rpc`s with what each
answer taught (stored before the next RPC goes out) and returns an `Outcome` listing
per-channel results and what else to store.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from acs import expr, paths, tree
from acs import messages as m
from acs import planner as pl
from acs import query as q
from acs.faults import CwmpFault
from acs.provisions import (
    VIRTUAL_ROOT,
    Declare,
    DownloadStep,
    FactoryReset,
    Preset,
    Reboot,
    Step,
    Tag,
    UploadStep,
    VirtualParameter,
)
from acs.tasks import Rpc

# The cap on provisioning RPCs in one session: beyond it, the channels still not
# converged are faulted rather than looping.
MAX_RPCS = 200
SKEW = 1.0  # seconds of clock difference tolerated between the ACS and PostgreSQL


@dataclass(frozen=True, slots=True)
class Catalog:
    """Presets, provisions and virtual parameters as one ACS process knows them now."""

    presets: tuple[Preset, ...] = ()
    provisions: Mapping[str, tuple[Step, ...]] = field(default_factory=dict)
    virtual: tuple[VirtualParameter, ...] = ()
    classes: Mapping[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)

    def class_options(self, oui: str, product_class: str) -> dict[str, Any]:
        """Quirks of a device model: the OUI-wide entry, then the product class's."""
        out = dict(self.classes.get((oui, ""), {}))
        out.update(self.classes.get((oui, product_class), {}))
        return out


def candidates(catalog: Catalog, events: Iterable[str], now: float) -> list[Preset]:
    codes = frozenset(events)
    return [
        p
        for p in catalog.presets
        if p.events_match(codes) and (p.schedule is None or p.schedule.active(now))
    ]


# --- what to load -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """Parameters a session's provisioning reads: exact paths, and whole subtrees."""

    exact: frozenset[str]
    subtrees: frozenset[str]
    channels: frozenset[str]


def _query_paths(query: q.Expr) -> set[str]:
    out: set[str] = set()
    stack: list[Any] = [query]
    while stack:
        node = stack.pop()
        if isinstance(node, q.And | q.Or):
            stack.extend(node.items)
        elif isinstance(node, q.Not):
            stack.append(node.item)
        elif isinstance(getattr(node, "field", None), q.ParamAttr):
            out.add(node.field.path)
    return out


def _pattern_spec(pattern: paths.Pattern, exact: set[str], subtrees: set[str]) -> None:
    if pattern.literal and not pattern.object:
        exact.add(str(pattern))
    else:
        subtrees.add(pattern.literal_prefix())


def load_spec(
    presets: Sequence[Preset],
    catalog: Catalog,
    root: str,
    extra: Sequence[tuple[str, tuple[Any, ...]]] = (),
) -> LoadSpec:
    exact: set[str] = set()
    subtrees: set[str] = set()
    for preset in presets:
        exact |= _query_paths(preset.precondition)
    for step in _all_steps(presets, catalog, root, extra):
        if isinstance(step, Declare):
            _pattern_spec(step.pattern, exact, subtrees)
            for key_path in _alias_key_paths(step.pattern):
                subtrees.add(key_path)
            if step.value is not None:
                for path in step.value.paths():
                    _pattern_spec(paths.parse(path), exact, subtrees)
    for vparam in catalog.virtual:
        exact.add(vparam.path)
        for path in vparam.inputs:
            _pattern_spec(paths.parse(path), exact, subtrees)
    # A subtree covers the exact paths inside it.
    if "" in subtrees:
        subtrees = {""}
    exact = {p for p in exact if not any(p == s or p.startswith(s + ".") for s in subtrees)}
    return LoadSpec(frozenset(exact), frozenset(subtrees), frozenset(p.channel for p in presets))


def _alias_key_paths(pattern: paths.Pattern) -> list[str]:
    out = []
    for i, segment in enumerate(pattern.segments):
        if isinstance(segment, paths.Alias):
            out.append(paths.Pattern(pattern.segments[:i]).literal_prefix())
    return out


def _all_steps(
    presets: Sequence[Preset],
    catalog: Catalog,
    root: str,
    extra: Sequence[tuple[str, tuple[Any, ...]]],
) -> Iterable[Step]:
    for preset in presets:
        yield from preset.steps
        for name, _ in preset.provisions:
            yield from provision_steps(name, catalog, root)
    for name, _ in extra:
        yield from provision_steps(name, catalog, root)


# --- built-in provisions --------------------------------------------------------------------


def provision_steps(name: str, catalog: Catalog, root: str) -> tuple[Step, ...]:
    """A provision's steps: a built-in, or one from the catalog (unknown: none)."""
    if name == "bootstrap":
        # Discover the whole tree, every value read in this session.
        return (Declare(pattern=paths.Pattern((), True), value_age=0, path_age=0),)
    if name == "inform":
        # Connection-request credentials the ACS knows: the device's id and a secret
        # derived from the deployment key (a CPE never reads a password back).
        base = f"{root}.ManagementServer"
        return (
            Declare(paths.parse(f"{base}.ConnectionRequestUsername"), expr.template("${id}")),
            Declare(
                paths.parse(f"{base}.ConnectionRequestPassword"),
                expr.template("${secret('connection-request')}"),
            ),
        )
    return catalog.provisions.get(name, ())


def device_secret(key: bytes, device_id: str, purpose: str) -> str:
    """A per-device secret for `purpose`: stable, and useless without the key."""
    digest = hmac.new(key, f"{device_id}\x00{purpose}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:15]).decode("ascii").lower()


# --- the device -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceSnapshot:
    """What the store loaded for a session's provisioning."""

    id: str
    oui: str
    product_class: str
    serial_number: str
    manufacturer: str
    tags: tuple[str, ...]
    registered: datetime | None
    last_inform: datetime | None
    last_boot: datetime | None
    last_bootstrap: datetime | None
    params: tuple[Mapping[str, Any], ...]
    faults: Mapping[str, tuple[int, datetime]]  # channel -> (retries, when)
    done_files: frozenset[tuple[str, str]] = frozenset()  # (file type, file name) downloaded
    uploads: Mapping[str, datetime] = field(default_factory=dict)  # file type -> last upload


def view(snapshot: DeviceSnapshot, state: pl.TreeState) -> q.DeviceView:
    """The device as the query evaluator sees it, for preconditions."""
    params = {
        p: q.ParamView(
            value=n.value,
            type=n.type,
            value_ts=datetime.fromtimestamp(n.value_ts).astimezone() if n.value_ts else None,
            writable=n.writable,
            object=n.object,
        )
        for p, n in state.nodes.items()
        if p
    }
    return q.DeviceView(
        id=snapshot.id,
        tags=snapshot.tags,
        registered=snapshot.registered,
        last_inform=snapshot.last_inform,
        last_boot=snapshot.last_boot,
        last_bootstrap=snapshot.last_bootstrap,
        manufacturer=snapshot.manufacturer,
        oui=snapshot.oui,
        product_class=snapshot.product_class,
        serial_number=snapshot.serial_number,
        params=params,
    )


# --- outcome ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueuedTask:
    """A task provisioning asks for (file transfers), deduplicated by its key."""

    name: str
    body: dict[str, Any]
    unique_key: str


@dataclass(frozen=True, slots=True)
class Outcome:
    succeeded: frozenset[str]
    faults: tuple[pl.ChannelFault, ...]
    tags_added: tuple[str, ...] = ()
    tags_removed: tuple[str, ...] = ()
    tasks: tuple[QueuedTask, ...] = ()
    virtual: tuple[m.ParameterValue, ...] = ()
    update: tree.TreeUpdate = tree.EMPTY


@dataclass(frozen=True, slots=True)
class Settings:
    retry_delay: int = 300
    gpv_batch: int = 100
    skip_root_gpn: bool = False
    unseal: Callable[[str], str] = str
    secret_key: bytes = b""
    boolean_style: str = "word"
    datetime_ms: bool = False


def _variables(snapshot: DeviceSnapshot, args: tuple[Any, ...], now: float) -> dict[str, Any]:
    return {
        "id": snapshot.id,
        "serial": snapshot.serial_number,
        "oui": snapshot.oui,
        "productClass": snapshot.product_class,
        "manufacturer": snapshot.manufacturer,
        "tags": list(snapshot.tags),
        "args": list(args),
        "now": int(now * 1000),
    }


def _in_backoff(snapshot: DeviceSnapshot, channel: str, settings: Settings, now: float) -> bool:
    fault = snapshot.faults.get(channel)
    if fault is None:
        return False
    retries, when = fault
    return now < when.timestamp() + settings.retry_delay * 2 ** min(retries, 20)


def run(
    presets: Sequence[Preset],
    catalog: Catalog,
    snapshot: DeviceSnapshot,
    *,
    root: str,
    started: float,
    clock: Callable[[], float],
    settings: Settings,
    extra: Sequence[tuple[str, tuple[Any, ...]]] = (),
    extra_channel: str = "",
) -> Generator[Rpc, m.Message, Outcome]:
    """Bring the device to what the matching presets (and `extra` provisions, in channel
    `extra_channel`) declare."""
    state = pl.TreeState()
    state.load(snapshot.params)
    device = view(snapshot, state)
    chosen = [
        p
        for p in sorted(presets, key=lambda p: (p.weight, p.name))
        if q.evaluate(p.precondition, device)
        and not _in_backoff(snapshot, p.channel, settings, started)
    ]
    declarations: list[pl.Declaration] = []
    others: list[tuple[Step, str, str, dict[str, Any]]] = []
    secret = lambda purpose: device_secret(settings.secret_key, snapshot.id, purpose)  # noqa: E731
    jobs = [(p.channel, p.name, list(p.provisions), p.steps) for p in chosen]
    if extra:
        jobs.append((extra_channel, extra_channel, list(extra), ()))
    for channel, source, provisions, inline in jobs:
        items = [(None, (), s) for s in inline] + [
            (name, args, s)
            for name, args in provisions
            for s in provision_steps(name, catalog, root)
        ]
        for number, (name, args, step) in enumerate(items, 1):
            origin = f"{source}, provision {name or '(inline)'}, step {number}"
            variables = _variables(snapshot, tuple(args), started)
            if isinstance(step, Declare):
                declarations.append(pl.Declaration(step, channel, origin, variables))
            else:
                others.append((step, channel, origin, variables))
    ctx = pl.PlanContext(
        started=started - SKEW,
        root=root,
        gpv_batch=settings.gpv_batch,
        skip_root_gpn=settings.skip_root_gpn,
        unseal=settings.unseal,
        secret=secret,
        boolean_style=settings.boolean_style,
        datetime_ms=settings.datetime_ms,
    )
    planner = pl.Planner(state, declarations, ctx)
    channels = {d.channel for d in declarations} | {c for _, c, _, _ in others}
    sent = 0
    pending = tree.EMPTY
    while True:
        planned = planner.next()
        if planned is None:
            break
        if sent >= MAX_RPCS:
            for channel in channels - set(planner.failed):
                planner.failed[channel] = pl.ChannelFault(
                    channel,
                    "provision.no_convergence",
                    f"not converged after {MAX_RPCS} RPCs",
                    planner.origin(channel),
                )
            break
        sent += 1
        try:
            response = yield Rpc(planned.message, update=pending)
        except CwmpFault as fault:
            pending = planner.fault(planned, fault)
            continue
        pending = planner.apply(planned, response, clock())
    # What is left once the declarations hold: tags, reboots, transfers.
    added, removed, queued = [], [], []
    reboot: tuple[str, m.Message] | None = None
    now = clock()
    for step, channel, origin, variables in others:
        if channel in planner.failed:
            continue
        scope = expr.Scope(
            variables=variables, param=planner.param, first=planner.first, secret=secret
        )
        try:
            match step:
                case Tag(name, add):
                    text = expr.text_of(name.render(scope))
                    (added if add else removed).append(text)
                case Reboot(within) if reboot is None:
                    if _older_than(snapshot.last_boot, now - within):
                        reboot = (channel, m.Reboot(f"prov-{channel}"[:32]))
                case FactoryReset(within) if reboot is None:
                    if _older_than(snapshot.last_bootstrap, now - within):
                        reboot = (channel, m.FactoryReset())
                case DownloadStep(file_type, file_name, target):
                    name = expr.text_of(file_name.render(scope))
                    if (file_type, name) not in snapshot.done_files:
                        body = {
                            "name": "download",
                            "fileType": file_type,
                            "file": name,
                            "targetFileName": expr.text_of(target.render(scope)),
                        }
                        queued.append(
                            QueuedTask(
                                "download", body, f"provision:{channel}:download:{file_type}"
                            )
                        )
                case UploadStep(file_type, every):
                    last = snapshot.uploads.get(file_type)
                    if _older_than(last, now - every):
                        body = {"name": "upload", "fileType": file_type}
                        queued.append(
                            QueuedTask("upload", body, f"provision:{channel}:upload:{file_type}")
                        )
        except (expr.ExprError, expr.Unknown) as exc:
            planner.failed.setdefault(
                channel, pl.ChannelFault(channel, "provision.expression", str(exc), origin)
            )
    if reboot is not None and reboot[0] not in planner.failed:
        try:
            yield Rpc(reboot[1], update=pending)
            pending = tree.EMPTY
        except CwmpFault as fault:
            planner.failed[reboot[0]] = pl.ChannelFault(
                reboot[0], f"cwmp.{fault.fault_code}", fault.fault_string, planner.origin(reboot[0])
            )
    virtual = compute_virtual(catalog.virtual, planner, snapshot)
    return Outcome(
        succeeded=frozenset(channels - set(planner.failed)),
        faults=tuple(planner.failed.values()),
        tags_added=tuple(t for t in added if t and t not in snapshot.tags),
        tags_removed=tuple(t for t in removed if t in snapshot.tags),
        tasks=tuple(queued),
        virtual=virtual,
        update=pending,
    )


def _older_than(when: datetime | None, threshold: float) -> bool:
    return when is None or when.timestamp() < threshold


def compute_virtual(
    vparams: Sequence[VirtualParameter], planner: pl.Planner, snapshot: DeviceSnapshot
) -> tuple[m.ParameterValue, ...]:
    """Virtual parameter values from what is known, in dependency order; those whose
    inputs are unknown keep their stored value."""
    out = []
    variables = _variables(snapshot, (), planner.ctx.started)
    remaining = list(vparams)
    for _ in range(len(remaining) + 1):  # definitions are acyclic (checked at upload)
        progress = False
        for vparam in list(remaining):
            scope = expr.Scope(variables=variables, param=planner.param, first=planner.first)
            try:
                value = vparam.value.render(scope)
            except expr.Unknown as unknown:
                if any(p.startswith(VIRTUAL_ROOT + ".") for p in unknown.paths):
                    continue  # waits for another virtual parameter
                remaining.remove(vparam)
                continue
            except expr.ExprError:
                remaining.remove(vparam)
                continue
            remaining.remove(vparam)
            progress = True
            text = "" if value is None else expr.text_of(value)
            node = planner.state.get(vparam.path)
            if node is None or node.value != text or node.type != vparam.type:
                out.append(m.ParameterValue(vparam.path, text, vparam.type))
            computed = m.ParameterValue(vparam.path, text, vparam.type)
            planner.state.apply(tree.from_values((computed,)), planner.ctx.started + SKEW)
        if not progress:
            break
    return tuple(out)
