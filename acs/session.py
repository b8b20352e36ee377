"""The CWMP session state machine (TR-069 section 3.7.1), with no sockets and no database.

The rules, in one place:

    AWAIT_INFORM  --Inform-->                   CPE_REQUESTS   (answer InformResponse)
    CPE_REQUESTS  --TransferComplete etc.-->    CPE_REQUESTS   (answer each request)
    CPE_REQUESTS  --empty POST-->               ACS_REQUESTS
    ACS_REQUESTS  --response or Fault-->        ACS_REQUESTS   (feed the task's runner)
    ACS_REQUESTS  --CPE request-->              ACS_REQUESTS   (answered; our RPC stays due)
    ACS_REQUESTS  --no task left-->             ENDED          (answer 204)
    any live state --Inform-->                  unchanged      (fault 8001: not in a session)

The caller feeds decoded envelopes to `receive`, persists what `take_records` returns,
and asks `next_reply` what to answer. When the session runs out of tasks it answers
`FetchTasks`: the caller loads the device's open tasks (releasing the device's session
lease if there are none) and hands them to `load_tasks`.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from acs import messages as m
from acs import provisioning as prov
from acs import tasks as t
from acs import tree
from acs.faults import (
    AcsInvalidArguments,
    CwmpFault,
    MethodNotSupported,
    RequestDenied,
    fault_from_message,
)
from acs.files import FileUrls

# --- identity ----------------------------------------------------------------------


def _escape_part(part: str) -> str:
    """GenieACS's id escaping: anything but [A-Za-z0-9_] becomes %XX of its UTF-8."""
    out = []
    for ch in part:
        if ch.isascii() and (ch.isalnum() or ch == "_"):
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


def device_id(oui: str, product_class: str, serial_number: str) -> str:
    """`OUI-ProductClass-SerialNumber` (or `OUI-SerialNumber`), escaped as GenieACS does."""
    parts = [oui, product_class, serial_number] if product_class else [oui, serial_number]
    return "-".join(_escape_part(p) for p in parts)


# --- what the session asks the caller to store ---------------------------------------


@dataclass(frozen=True, slots=True)
class InformRecord:
    device_id: str
    inform: m.Inform
    cwmp_ns: str


@dataclass(frozen=True, slots=True)
class TransferRecord:
    """A TransferComplete: completes or faults the download task its CommandKey names."""

    message: m.TransferComplete


@dataclass(frozen=True, slots=True)
class DeviceEventRecord:
    kind: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TaskStep:
    task_id: int
    update: tree.TreeUpdate
    progress: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class TaskFinished:
    task_id: int
    status: str  # done | waiting
    update: tree.TreeUpdate
    result: dict[str, Any] | None
    progress: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class TaskFailed:
    task_id: int
    code: str  # "cwmp.9005", "task.instance_unknown", ...
    message: str
    detail: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ProvisionStep:
    """Tree changes provisioning learned or made (not tied to a task)."""

    update: tree.TreeUpdate


@dataclass(frozen=True, slots=True)
class ChannelResult:
    """A provisioning channel converged (fault None: clear its fault) or faulted."""

    channel: str
    fault: prov.pl.ChannelFault | None


@dataclass(frozen=True, slots=True)
class TagsChanged:
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QueueTasks:
    tasks: tuple[prov.QueuedTask, ...]


@dataclass(frozen=True, slots=True)
class SessionFault:
    """A fault of the session itself (the 'default' channel), not of one task."""

    code: str
    message: str


Record = (
    InformRecord
    | TransferRecord
    | DeviceEventRecord
    | TaskStep
    | TaskFinished
    | TaskFailed
    | SessionFault
    | ProvisionStep
    | ChannelResult
    | TagsChanged
    | QueueTasks
)

# --- what to answer ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    message: m.Message


@dataclass(frozen=True, slots=True)
class End:
    """Answer 204 No Content: the session is over."""


@dataclass(frozen=True, slots=True)
class FetchTasks:
    """Load the device's open tasks (none left: release its lease) and call load_tasks."""


@dataclass(frozen=True, slots=True)
class LoadDevice:
    """Load what provisioning reads (`spec`) and call device_loaded with it."""

    spec: prov.LoadSpec


Reply = Send | End | FetchTasks | LoadDevice


class ProtocolError(Exception):
    """A message the session cannot accept. Answer `fault` as a SOAP Fault if given,
    else HTTP `status`; the session itself is unchanged."""

    def __init__(self, message: str, *, status: int = 400, fault: CwmpFault | None = None):
        super().__init__(message)
        self.status = status
        self.fault = fault


class State(enum.Enum):
    AWAIT_INFORM = "await_inform"
    CPE_REQUESTS = "cpe_requests"
    ACS_REQUESTS = "acs_requests"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class SessionConfig:
    timeout: int = 30
    max_rpcs: int = 255
    gpv_batch: int = 100
    unseal: Callable[[str], str] = str  # identity on text unless a sealer is given
    file_urls: FileUrls | None = None  # signs the links of downloads and uploads
    link_seconds: int = 3600  # how long such a link is valid after its RPC
    catalog: Callable[[], prov.Catalog] = prov.Catalog  # presets etc., as of now
    retry_delay: int = 300
    secret_key: bytes = b""
    clock: Callable[[], float] = time.time


# Informs whose content the CPE repeats at its next Inform: no virtual parameter can
# have changed that the next eventful session will not see.
_SOFT_EVENTS = frozenset({"2 PERIODIC", "6 CONNECTION REQUEST"})


@dataclass(frozen=True, slots=True)
class _Load:
    """Provisioning waiting for its device snapshot."""

    spec: prov.LoadSpec
    presets: tuple[prov.Preset, ...]
    extra: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    task: t.TaskRecord | None = None


@dataclass(slots=True)
class _Running:
    task: t.TaskRecord | None  # None: preset provisioning
    runner: t.Runner | Any
    request: m.Message | None = None  # the RPC sent and not yet answered
    provisioning: bool = False


@dataclass(slots=True)
class Session:
    """One CWMP session with one CPE."""

    id: str
    config: SessionConfig = SessionConfig()
    state: State = State.AWAIT_INFORM
    device_id: str | None = None
    cwmp_ns: str = m.DEFAULT_CWMP_NAMESPACE
    timeout: int = 30
    options: dict[str, Any] = field(default_factory=dict)
    rpcs_sent: int = 0
    attempted: set[int] = field(default_factory=set)
    _facts: t.InformFacts = field(default_factory=t.InformFacts)
    _records: list[Record] = field(default_factory=list)
    _replies: deque[m.Message] = field(default_factory=deque)
    _queue: deque[t.TaskRecord] = field(default_factory=deque)
    _fresh: bool = False
    _running: _Running | None = None
    _to_send: m.Message | None = None
    root: str = "InternetGatewayDevice"
    started: float = 0.0
    identity: m.DeviceIdStruct | None = None
    _catalog: prov.Catalog | None = None
    _presets: tuple[prov.Preset, ...] | None = None  # provisioning still to run
    _load: _Load | None = None

    # --- input ---

    def receive(self, envelope: m.Envelope | None) -> None:
        """Take one message from the CPE (None: an empty POST)."""
        if self.state is State.ENDED:
            raise ProtocolError("session has ended")
        if envelope is None:
            self._empty_post()
            return
        body = envelope.body
        if isinstance(body, m.Inform):
            self._inform(envelope, body)
        elif self.state is State.AWAIT_INFORM:
            raise ProtocolError("a CWMP session starts with an Inform")
        elif isinstance(body, m.CPE_REQUESTS):
            self._cpe_request(body)
        else:
            self._response(body)

    def load_tasks(self, tasks: list[t.TaskRecord]) -> None:
        """The device's open tasks, as the store has them now."""
        self._queue = deque(task for task in tasks if task.id not in self.attempted)
        self._fresh = True

    def set_options(self, options: dict[str, Any]) -> None:
        """Per-device quirk settings, known once the Inform is stored; they override the
        settings of the device's class."""
        merged: dict[str, Any] = {}
        if self._catalog is not None and self.identity is not None:
            merged = self._catalog.class_options(self.identity.oui, self.identity.product_class)
        merged.update(options or {})
        self.options = merged

    def device_loaded(self, snapshot: prov.DeviceSnapshot) -> None:
        """The data a LoadDevice asked for: provisioning can start."""
        load, self._load = self._load, None
        assert load is not None and self._catalog is not None
        settings = prov.Settings(
            retry_delay=self.config.retry_delay,
            gpv_batch=int(self.options.get("gpv_batch", self.config.gpv_batch)),
            skip_root_gpn=bool(self.options.get("skip_root_gpn", False)),
            unseal=self.config.unseal,
            secret_key=self.config.secret_key,
            boolean_style=self.options.get("boolean_style", "word"),
            datetime_ms=bool(self.options.get("datetime_ms", False)),
        )
        channel = f"task_{load.task.id:024x}" if load.task is not None else ""
        runner = prov.run(
            load.presets,
            self._catalog,
            snapshot,
            root=self.root,
            started=self.started,
            clock=self.config.clock,
            settings=settings,
            extra=load.extra,
            extra_channel=channel,
        )
        self._running = _Running(load.task, runner, provisioning=True)
        self._step(None)

    # --- output ---

    def take_records(self) -> list[Record]:
        records, self._records = self._records, []
        return records

    def next_reply(self) -> Reply:
        """What to answer the message just received."""
        if self._replies:
            return Send(self._replies.popleft())
        if self.state is not State.ACS_REQUESTS:
            raise ProtocolError("nothing to answer: the CPE has not sent a message")
        while self._to_send is None:
            if self._running is not None:
                raise ProtocolError("a response to the outstanding RPC is due first")
            if self._load is not None:
                return LoadDevice(self._load.spec)
            if self._presets is not None and self._catalog is not None:
                presets, self._presets = self._presets, None
                spec = prov.load_spec(presets, self._catalog, self.root)
                self._load = _Load(spec, presets)
                continue
            if self._queue:
                task = self._queue.popleft()
                self.attempted.add(task.id)
                if task.name == "provisions" and self._catalog is not None:
                    extra = tuple((str(p[0]), tuple(p[1:])) for p in task.args["provisions"])
                    spec = prov.load_spec((), self._catalog, self.root, extra)
                    self._load = _Load(spec, (), extra, task)
                    continue
                self._running = _Running(task, t.start(task, self._run_context()))
                self._step(None)
            elif self._fresh:
                self.state = State.ENDED
                return End()
            else:
                return FetchTasks()
        if self.rpcs_sent >= self.config.max_rpcs:
            self._records.append(
                SessionFault("too_many_rpcs", f"more than {self.config.max_rpcs} RPCs")
            )
            self._finish()
            self.state = State.ENDED
            return End()
        message, self._to_send = self._to_send, None
        self.rpcs_sent += 1
        return Send(message)

    # --- internals ---

    def _run_context(self) -> t.RunContext:
        return t.RunContext(
            facts=self._facts,
            boolean_style=self.options.get("boolean_style", "word"),
            datetime_ms=bool(self.options.get("datetime_ms", False)),
            gpv_batch=int(self.options.get("gpv_batch", self.config.gpv_batch)),
            unseal=self.config.unseal,
            device_id=self.device_id or "",
            now=self.config.clock(),
            file_urls=self.config.file_urls,
            link_seconds=self.config.link_seconds,
        )

    def _inform(self, envelope: m.Envelope, inform: m.Inform) -> None:
        if self.state is not State.AWAIT_INFORM:
            raise ProtocolError(
                "Inform inside a session",
                fault=RequestDenied("Inform received inside an open session"),
            )
        ident = inform.device_id
        if not ident.oui or not ident.serial_number:
            raise ProtocolError(
                "Inform without OUI or SerialNumber",
                fault=AcsInvalidArguments("DeviceId needs an OUI and a SerialNumber"),
            )
        self.device_id = device_id(ident.oui, ident.product_class, ident.serial_number)
        self.cwmp_ns = envelope.cwmp_ns
        if envelope.header.session_timeout:
            self.timeout = max(5, min(3600, envelope.header.session_timeout))
        else:
            self.timeout = self.config.timeout
        parameter_key = next(
            (
                p.value
                for p in inform.parameters
                if p.name.endswith(".ManagementServer.ParameterKey")
            ),
            None,
        )
        self._facts = t.InformFacts(inform.events, parameter_key)
        self.identity = ident
        self.started = self.config.clock()
        if inform.parameters:
            self.root = inform.parameters[0].name.split(".", 1)[0] or self.root
        self._catalog = catalog = self.config.catalog()
        codes = [e.event_code for e in inform.events]
        presets = prov.candidates(catalog, codes, self.started)
        if presets or (catalog.virtual and not _SOFT_EVENTS.issuperset(codes)):
            self._presets = tuple(presets)
        self._records.append(InformRecord(self.device_id, inform, self.cwmp_ns))
        self._replies.append(m.InformResponse(1))
        self.state = State.CPE_REQUESTS

    def _cpe_request(self, body: m.Message) -> None:
        handler = _CPE_REQUEST_HANDLERS.get(type(body))
        if handler is None:  # pragma: no cover  (CPE_REQUESTS and the table agree)
            raise ProtocolError("unsupported request", fault=MethodNotSupported())
        record, reply = handler(body)
        if record is not None:
            self._records.append(record)
        self._replies.append(reply)

    def _empty_post(self) -> None:
        if self.state is State.AWAIT_INFORM:
            raise ProtocolError("a CWMP session starts with an Inform")
        if self.state is State.CPE_REQUESTS:
            self.state = State.ACS_REQUESTS
            return
        running = self._running
        if running is not None and running.request is not None:
            # The CPE sent nothing back for our RPC: it could not take it.
            self._fail(
                running.task,
                "cwmp.no_response",
                f"CPE answered {type(running.request).__name__} with an empty message",
                None,
            )

    def _response(self, body: m.Message) -> None:
        running = self._running
        if self.state is not State.ACS_REQUESTS or running is None or running.request is None:
            raise ProtocolError(f"unexpected {type(body).__name__}: no request is outstanding")
        expected = m.RESPONSE_FOR[type(running.request)]
        if isinstance(body, m.Fault):
            self._step(fault_from_message(body))
        elif not isinstance(body, expected):
            self._step(
                t.TaskError(
                    "cwmp.unexpected_response",
                    f"expected {expected.__name__}, got {type(body).__name__}",
                )
            )
        else:
            self._step(body)

    def _step(self, answer: m.Message | BaseException | None) -> None:
        """Drive the running task one step: to its next RPC, or to its end."""
        running = self._running
        assert running is not None
        task = running.task
        try:
            if answer is None:
                rpc = next(running.runner)
            elif isinstance(answer, BaseException):
                rpc = running.runner.throw(answer)
            else:
                rpc = running.runner.send(answer)
        except StopIteration as stop:
            if running.provisioning:
                self._provisioned(running.task, stop.value)
                return
            outcome: t.Outcome = stop.value
            assert task is not None
            self._records.append(
                TaskFinished(
                    task.id, outcome.status, outcome.update, outcome.result, outcome.progress
                )
            )
            self._finish()
            return
        except CwmpFault as fault:
            self._fail(task, f"cwmp.{fault.fault_code}", fault.fault_string, fault.as_dict())
            return
        except t.TaskError as error:
            self._fail(task, error.code, str(error), None)
            return
        if running.provisioning:
            if rpc.update:
                self._records.append(ProvisionStep(rpc.update))
        elif rpc.update or rpc.progress is not None:
            assert task is not None
            self._records.append(TaskStep(task.id, rpc.update, rpc.progress))
        running.request = rpc.message
        self._to_send = rpc.message

    def _provisioned(self, task: t.TaskRecord | None, outcome: prov.Outcome) -> None:
        """Records for a finished provisioning run (presets, or a provisions task)."""
        update = outcome.update
        if outcome.virtual:
            update = update.merge(tree.from_values(outcome.virtual))
        if update:
            self._records.append(ProvisionStep(update))
        if outcome.tags_added or outcome.tags_removed:
            self._records.append(TagsChanged(outcome.tags_added, outcome.tags_removed))
        if task is None:
            for channel in sorted(outcome.succeeded):
                self._records.append(ChannelResult(channel, None))
            for fault in outcome.faults:
                self._records.append(ChannelResult(fault.channel, fault))
        elif outcome.faults:
            fault = outcome.faults[0]
            detail = {"origin": fault.origin, **(fault.detail or {})}
            self._records.append(TaskFailed(task.id, fault.code, fault.message, detail))
        else:
            self._records.append(TaskFinished(task.id, "done", tree.EMPTY, None, None))
        if outcome.tasks:  # after the results: a file that is missing faults its channel
            self._records.append(QueueTasks(outcome.tasks))
        self._finish()

    def _fail(
        self, task: t.TaskRecord | None, code: str, message: str, detail: dict | None
    ) -> None:
        """A task (or, task None, preset provisioning) that cannot go on."""
        if task is None:
            self._records.append(SessionFault(code, message))
        else:
            self._records.append(TaskFailed(task.id, code, message, detail))
        self._finish()

    def _finish(self) -> None:
        if self._running is not None:
            self._running.runner.close()
        self._running = None
        self._to_send = None
        self._fresh = False  # look for tasks queued meanwhile before ending


def _transfer_complete(body: m.TransferComplete) -> tuple[Record | None, m.Message]:
    return TransferRecord(body), m.TransferCompleteResponse()


def _autonomous(body: m.AutonomousTransferComplete) -> tuple[Record | None, m.Message]:
    detail = {
        "announceUrl": body.announce_url,
        "transferUrl": body.transfer_url,
        "isDownload": body.is_download,
        "fileType": body.file_type,
        "fileSize": body.file_size,
        "targetFileName": body.target_file_name,
        "faultCode": body.fault.code,
        "faultString": body.fault.string,
    }
    return DeviceEventRecord("AutonomousTransferComplete", detail), (
        m.AutonomousTransferCompleteResponse()
    )


def _request_download(body: m.RequestDownload) -> tuple[Record | None, m.Message]:
    detail = {"fileType": body.file_type, "args": dict(body.file_type_args)}
    return DeviceEventRecord("RequestDownload", detail), m.RequestDownloadResponse()


def _kicked(body: m.Kicked) -> tuple[Record | None, m.Message]:
    detail = {"command": body.command, "referer": body.referer, "arg": body.arg}
    return DeviceEventRecord("Kicked", detail), m.KickedResponse(body.next)


_CPE_REQUEST_HANDLERS: dict[type, Callable[[Any], tuple[Record | None, m.Message]]] = {
    m.TransferComplete: _transfer_complete,
    m.AutonomousTransferComplete: _autonomous,
    m.GetRPCMethods: lambda _: (None, m.GetRPCMethodsResponse(m.ACS_METHODS)),
    m.RequestDownload: _request_download,
    m.Kicked: _kicked,
}
