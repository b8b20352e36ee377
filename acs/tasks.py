"""Task runners: how each task becomes RPCs, and what each answer means. Pure code.

A runner is a generator. It yields `Rpc` (a request to send, plus what the previous
answer taught us, to be stored before the request goes out), is sent the CPE's response,
has a CPE fault thrown into it, and returns an `Outcome`. Runners re-start from the
`progress` they saved, so a task interrupted by an ACS crash resumes instead of
repeating itself.

Exactly-once across crashes uses CWMP's own keys: every state-changing RPC carries a
ParameterKey or CommandKey naming the task (`task_key`). If the ACS dies after a CPE
applied an RPC but before the answer was stored, the next Inform shows the key (the
ParameterKey parameter, an "M Reboot" event, a TransferComplete) and the runner finishes
the task without sending the RPC again.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from acs import messages as m
from acs import tree
from acs.faults import CwmpFault, InvalidParameterName
from acs.files import FileUrls
from acs.values import for_cpe


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """An open task as the store hands it to a session."""

    id: int
    name: str
    args: dict[str, Any]
    progress: dict[str, Any] = field(default_factory=dict)
    retries: int = 0


@dataclass(frozen=True, slots=True)
class InformFacts:
    """What the session's Inform said that can prove an earlier RPC was applied."""

    events: tuple[m.EventStruct, ...] = ()
    parameter_key: str | None = None

    def has_event(self, code: str, command_key: str | None = None) -> bool:
        return any(
            e.event_code == code and (command_key is None or e.command_key == command_key)
            for e in self.events
        )


@dataclass(frozen=True, slots=True)
class RunContext:
    facts: InformFacts = InformFacts()
    boolean_style: str = "word"
    datetime_ms: bool = False  # send dateTimes with milliseconds (a device class quirk)
    gpv_batch: int = 100
    unseal: Callable[[str], str] = str
    device_id: str = ""  # the device in session: links are made for it alone
    now: float = 0.0  # the session's clock (epoch seconds), for link expiry and timeouts
    file_urls: FileUrls | None = None  # the file server's links; None: no file server
    link_seconds: int = 3600


@dataclass(frozen=True, slots=True)
class Rpc:
    message: m.Message
    update: tree.TreeUpdate = tree.EMPTY
    progress: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a task ended in this session: `done`, or `waiting` (for a TransferComplete)."""

    status: str = "done"
    update: tree.TreeUpdate = tree.EMPTY
    result: dict[str, Any] | None = None
    progress: dict[str, Any] | None = None


class TaskError(Exception):
    """A task that cannot go on for a reason of ours, not the CPE's; `code` names it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


Runner = Generator[Rpc, m.Message, Outcome]

_KEY_RE = re.compile(r"cc-(\d+)(?:-\d+)?")


def task_key(task_id: int, step: int = 0) -> str:
    """The ParameterKey/CommandKey naming a task's step (at most 32 characters)."""
    return f"cc-{task_id}" if step == 0 else f"cc-{task_id}-{step}"


def task_id_from_key(key: str) -> int | None:
    """The task a CommandKey names, for TransferComplete; None for foreign keys."""
    match = _KEY_RE.fullmatch(key.strip())
    return int(match.group(1)) if match else None


def _chunks(items: Sequence[str], size: int) -> list[tuple[str, ...]]:
    return [tuple(items[i : i + size]) for i in range(0, len(items), size)]


def _values(
    rows: Sequence[Sequence[str]], ctx: RunContext, prefix: str = ""
) -> tuple[m.ParameterValue, ...]:
    return tuple(
        m.ParameterValue(
            prefix + name,
            for_cpe(
                type_,
                ctx.unseal(value),
                boolean_style=ctx.boolean_style,
                datetime_ms=ctx.datetime_ms,
            ),
            type_,
        )
        for name, value, type_ in rows
    )


def _stored(rows: Sequence[Sequence[str]]) -> tuple[m.ParameterValue, ...]:
    """The values as we store them (canonical booleans), whatever form the CPE was sent."""
    return tuple(m.ParameterValue(n, v, t) for n, v, t in rows)


def _refresh(
    path: str,
    ctx: RunContext,
    pending: tree.TreeUpdate = tree.EMPTY,
    progress: dict[str, Any] | None = None,
) -> Generator[Rpc, m.Message, tree.TreeUpdate]:
    """Discover `path` (an object, a parameter, or "" for everything) and read its values.

    Yields the RPCs, the first carrying `pending`/`progress` to store; returns the update
    still to be stored. An object the CPE no longer has is deleted from the tree rather
    than reported as a fault: that is what its absence means.
    """
    name = path if path == "" or path.endswith(".") else path + "."
    request = m.GetParameterNames(name, False)
    try:
        listing = yield Rpc(request, update=pending, progress=progress)
    except CwmpFault as fault:
        if fault.fault_code != InvalidParameterName.code:
            raise
        if path and not path.endswith("."):
            try:
                values = yield Rpc(m.GetParameterValues((path,)))
            except CwmpFault as again:
                if again.fault_code != InvalidParameterName.code:
                    raise
                return tree.TreeUpdate(deletes=(path,))
            assert isinstance(values, m.GetParameterValuesResponse)
            return tree.from_values(values.parameters)
        return tree.TreeUpdate(deletes=(tree.node_path(path),))
    assert isinstance(listing, m.GetParameterNamesResponse)
    pending = tree.from_names(request, listing)
    leaves = [p.name for p in listing.parameters if p.name and not p.name.endswith(".")]
    for batch in _chunks(leaves, ctx.gpv_batch):
        values = yield Rpc(m.GetParameterValues(batch), update=pending)
        assert isinstance(values, m.GetParameterValuesResponse)
        pending = tree.from_values(values.parameters)
    return pending


def run_get_parameter_values(task: TaskRecord, ctx: RunContext) -> Runner:
    names = tuple(task.args["names"])
    update = tree.EMPTY
    count = 0
    for batch in _chunks(names, ctx.gpv_batch):
        response = yield Rpc(m.GetParameterValues(batch), update=update)
        assert isinstance(response, m.GetParameterValuesResponse)
        update = tree.from_values(response.parameters)
        count += len(response.parameters)
    return Outcome(update=update, result={"parameters": count})


def run_set_parameter_values(task: TaskRecord, ctx: RunContext) -> Runner:
    rows = task.args["values"]
    key = task_key(task.id)
    stored = _stored(rows)
    if ctx.facts.parameter_key == key:
        return Outcome(update=tree.from_values(stored), result={"reconciled": "ParameterKey"})
    response = yield Rpc(m.SetParameterValues(_values(rows, ctx), key))
    assert isinstance(response, m.SetParameterValuesResponse)
    return Outcome(update=tree.from_values(stored), result={"status": response.status})


def run_refresh_object(task: TaskRecord, ctx: RunContext) -> Runner:
    update = yield from _refresh(task.args["path"], ctx)
    return Outcome(update=update)


def run_add_object(task: TaskRecord, ctx: RunContext) -> Runner:
    """List instances, add one, set its values, read it back.

    The listing before the AddObject is saved, so after a crash that hid the new
    instance number, the instance that appeared since can be told apart.
    """
    obj = task.args["object"]
    rows = task.args.get("values") or []
    add_key, set_key = task_key(task.id, 1), task_key(task.id, 2)
    progress = task.progress
    instance: int | None = progress.get("instance")
    update = tree.EMPTY
    if instance is None:
        listing_request = m.GetParameterNames(obj, True)
        listing = yield Rpc(listing_request)
        assert isinstance(listing, m.GetParameterNamesResponse)
        update = tree.from_names(listing_request, listing)
        current = _instances(obj, listing)
        before = progress.get("before")
        if before is not None and ctx.facts.parameter_key == add_key:
            appeared = sorted(current - set(before))
            if len(appeared) != 1:
                raise TaskError(
                    "task.instance_unknown",
                    f"AddObject was applied but the new instance of {obj} is ambiguous"
                    f" ({len(appeared)} candidates)",
                )
            instance = appeared[0]
        else:
            request = m.AddObject(obj, add_key)
            added = yield Rpc(request, update=update, progress={"before": sorted(current)})
            assert isinstance(added, m.AddObjectResponse)
            update = tree.from_add_object(request, added)
            instance = added.instance_number
        progress = {"instance": instance}
    prefix = f"{obj}{instance}."
    if rows and ctx.facts.parameter_key != set_key:
        response = yield Rpc(
            m.SetParameterValues(_values(rows, ctx, prefix), set_key),
            update=update,
            progress=progress,
        )
        assert isinstance(response, m.SetParameterValuesResponse)
        update = tree.EMPTY
        progress = {}
    refreshed = yield from _refresh(prefix, ctx, update, progress)
    return Outcome(update=refreshed, result={"instance": instance})


def _instances(obj: str, listing: m.GetParameterNamesResponse) -> set[int]:
    out = set()
    for p in listing.parameters:
        rest = p.name[len(obj) :] if p.name.startswith(obj) else ""
        number = rest.rstrip(".")
        if number.isdigit() and "." not in number:
            out.add(int(number))
    return out


def run_delete_object(task: TaskRecord, ctx: RunContext) -> Runner:
    request = m.DeleteObject(task.args["object"], task_key(task.id))
    if ctx.facts.parameter_key == request.parameter_key:
        return Outcome(
            update=tree.from_delete_object(request), result={"reconciled": "ParameterKey"}
        )
    response = yield Rpc(request)
    assert isinstance(response, m.DeleteObjectResponse)
    return Outcome(update=tree.from_delete_object(request), result={"status": response.status})


def run_reboot(task: TaskRecord, ctx: RunContext) -> Runner:
    key = task_key(task.id)
    if ctx.facts.has_event("M Reboot", key):
        return Outcome(result={"reconciled": "M Reboot"})
    yield Rpc(m.Reboot(key))
    return Outcome()


def run_factory_reset(task: TaskRecord, ctx: RunContext) -> Runner:
    # FactoryReset carries no key; a device that bootstraps after the task was queued
    # is at its factory state, which is what the task asked for.
    if ctx.facts.has_event("0 BOOTSTRAP"):
        return Outcome(result={"reconciled": "0 BOOTSTRAP"})
    yield Rpc(m.FactoryReset())
    return Outcome()


def _file_server(ctx: RunContext) -> FileUrls:
    if ctx.file_urls is None:
        raise TaskError(
            "task.no_file_server", "this ACS has no file server to serve stored files from"
        )
    return ctx.file_urls


def _link_expiry(ctx: RunContext, delay_seconds: int) -> int:
    """A link lives link_seconds from when the CPE may start, after its DelaySeconds."""
    return int(ctx.now) + delay_seconds + ctx.link_seconds


def _transferring(
    response: m.DownloadResponse | m.UploadResponse, key: str, ctx: RunContext
) -> Outcome:
    """Status 1: the transfer goes on after the session, and its TransferComplete (or the
    transfer-timeout sweep, counting from `sentAt`) settles the task."""
    if response.status == 1:
        return Outcome(status="waiting", progress={"commandKey": key, "sentAt": ctx.now})
    return Outcome(result={"status": response.status})


def run_download(task: TaskRecord, ctx: RunContext) -> Runner:
    """A Download by URL, or of a stored file (`file`) through a link for this device."""
    a = task.args
    key = task_key(task.id)
    delay = a.get("delaySeconds", 0)
    if a.get("file"):
        expires = _link_expiry(ctx, delay)
        url = _file_server(ctx).download_url(a["file"], ctx.device_id, task.id, expires)
    else:
        url = a["url"]
    request = m.Download(
        command_key=key,
        file_type=a["fileType"],
        url=url,
        username=a.get("username", ""),
        password=ctx.unseal(a.get("password", "")),
        file_size=a.get("fileSize", 0),
        target_file_name=a.get("targetFileName", ""),
        delay_seconds=delay,
        success_url=a.get("successUrl", ""),
        failure_url=a.get("failureUrl", ""),
    )
    response = yield Rpc(request)
    assert isinstance(response, m.DownloadResponse)
    return _transferring(response, key, ctx)


def run_upload(task: TaskRecord, ctx: RunContext) -> Runner:
    """An Upload (A.4.1.5) to the file server's link for this device, or to `url`."""
    a = task.args
    key = task_key(task.id)
    delay = a.get("delaySeconds", 0)
    url = a.get("url") or _file_server(ctx).upload_url(
        ctx.device_id, task.id, a["fileType"], _link_expiry(ctx, delay)
    )
    request = m.Upload(
        command_key=key,
        file_type=a["fileType"],
        url=url,
        username=a.get("username", ""),
        password=ctx.unseal(a.get("password", "")),
        delay_seconds=delay,
    )
    response = yield Rpc(request)
    assert isinstance(response, m.UploadResponse)
    return _transferring(response, key, ctx)


def run_schedule_inform(task: TaskRecord, ctx: RunContext) -> Runner:
    key = task.args.get("commandKey") or task_key(task.id)
    if ctx.facts.has_event("M ScheduleInform", key):
        return Outcome(result={"reconciled": "M ScheduleInform"})
    yield Rpc(m.ScheduleInform(task.args["delaySeconds"], key))
    return Outcome()


def run_get_parameter_names(task: TaskRecord, ctx: RunContext) -> Runner:
    request = m.GetParameterNames(task.args["path"], task.args["nextLevel"])
    response = yield Rpc(request)
    assert isinstance(response, m.GetParameterNamesResponse)
    return Outcome(
        update=tree.from_names(request, response), result={"parameters": len(response.parameters)}
    )


def run_get_parameter_attributes(task: TaskRecord, ctx: RunContext) -> Runner:
    response = yield Rpc(m.GetParameterAttributes(tuple(task.args["names"])))
    assert isinstance(response, m.GetParameterAttributesResponse)
    return Outcome(update=tree.from_attributes(response.parameters))


def run_set_parameter_attributes(task: TaskRecord, ctx: RunContext) -> Runner:
    request = m.SetParameterAttributes(
        tuple(
            m.SetParameterAttribute(
                name=name,
                notification_change=notification is not None,
                notification=notification or 0,
                access_list_change=access is not None,
                access_list=tuple(access or ()),
            )
            for name, notification, access in task.args["attributes"]
        )
    )
    yield Rpc(request)
    return Outcome(update=tree.from_set_attributes(request))


def run_get_rpc_methods(task: TaskRecord, ctx: RunContext) -> Runner:
    response = yield Rpc(m.GetRPCMethods())
    assert isinstance(response, m.GetRPCMethodsResponse)
    return Outcome(result={"methods": list(response.methods)})


RUNNERS: dict[str, Callable[[TaskRecord, RunContext], Runner]] = {
    "getParameterValues": run_get_parameter_values,
    "setParameterValues": run_set_parameter_values,
    "refreshObject": run_refresh_object,
    "addObject": run_add_object,
    "deleteObject": run_delete_object,
    "reboot": run_reboot,
    "factoryReset": run_factory_reset,
    "download": run_download,
    "upload": run_upload,
    "scheduleInform": run_schedule_inform,
    "getParameterNames": run_get_parameter_names,
    "getParameterAttributes": run_get_parameter_attributes,
    "setParameterAttributes": run_set_parameter_attributes,
    "getRPCMethods": run_get_rpc_methods,
}


def start(task: TaskRecord, ctx: RunContext) -> Runner:
    """The runner for a task; unknown names fail as a TaskError when first advanced."""
    runner = RUNNERS.get(task.name)
    if runner is None:
        return _unknown(task.name)
    return runner(task, ctx)


def _unknown(name: str) -> Runner:
    raise TaskError("task.unknown", f"no runner for task {name!r}")
    yield  # pragma: no cover  (makes this a generator)
