"""The `huawei-olt` driver: inventory and autofind over the SSH CLI, optical levels over
SNMP (HUAWEI-XPON-MIB), and the OLT jobs (`agents.huawei.jobs`).

Groups and their default classes:
- `inventory` (hourly): version, boards, PON ports and every ONT with its states,
  description, distance and last up/down, reported as one `olt.inventory` event;
- `autofind` (every minute): the ONTs the OLT sees but has not registered, as an
  `ont.autofind` event;
- `optical` (every 5 minutes, only with SNMP credentials): per-ONT Rx/Tx, the OLT's Rx
  of each ONT, temperature, bias, voltage and whether it is up, as samples labelled
  `{"ont": "F/S/P/ID"}`.

Every CLI exchange with one OLT goes through its one session (`OltSessions`), so polls
and jobs of an OLT take turns and the OLT never sees two of our logins at once.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from agents.driver import Driver, GroupPlan, PollError, PollResult, Progress, register
from agents.huawei import jobs, parsers
from agents.huawei.optical import PROFILE_ROOTS, WALK_ROOTS, optical_samples, profile_names
from agents.huawei.session import CliSession, OltSessions
from agents.snmp.driver import SnmpDriver
from agents.snmp.groups import settings
from agents.snmp.session import Walk, walk
from schemas import olt
from schemas.frames import Event, TargetSpec

log = logging.getLogger(__name__)

GROUPS = {"inventory": "inventory", "autofind": "critical", "optical": "normal"}
# PON ports per GPON board where the board's name does not say (most have 16).
PORTS_PER_BOARD = {"H802GPBD": 8, "H805GPBD": 8, "H806GPBD": 8, "H800GPBD": 8}
DEFAULT_PORTS = 16
NO_AUTOFIND = "automatically found onts do not exist"  # compared in lower case


@register("huawei-olt")
class HuaweiOltDriver(Driver):
    kind: ClassVar[str] = "huawei-olt"
    default_groups: ClassVar[dict[str, str]] = GROUPS
    group_classes: ClassVar[dict[str, str]] = GROUPS

    def __init__(self, sessions: OltSessions | None = None) -> None:
        self.sessions = sessions or OltSessions()
        self._snmp = SnmpDriver()

    # --- Driver ------------------------------------------------------------------------

    def plan(self, target: TargetSpec) -> list[GroupPlan]:
        plans = super().plan(target)
        if target.profile or _snmp_credentials(target) is not None:
            return plans
        # No SNMP access configured: optical levels are not polled by default.
        return [p for p in plans if p.name != "optical"]

    def check_group(self, name: str, options: dict[str, Any]) -> None:
        if name not in GROUPS:
            raise PollError(
                f"unknown huawei-olt group {name!r} (known: {', '.join(GROUPS)})",
                code="unknown_group",
            )
        allowed = {"timeout", "retries", "max_repetitions"} if name == "optical" else set()
        unknown = set(options) - allowed
        if unknown:
            raise PollError(
                f"group {name} takes no option {', '.join(sorted(unknown))}", code="bad_options"
            )

    async def poll(self, target: TargetSpec, group: GroupPlan, now_ms: int) -> PollResult:
        if group.name == "optical":
            return await self._optical(target, group, now_ms)
        try:
            async with self._cli(target) as cli:
                if group.name == "inventory":
                    found = await inventory(cli)
                    detail = (await self._with_profiles(target, found)).model_dump(mode="json")
                    return PollResult(events=[Event(target.id, olt.INVENTORY, now_ms, detail)])
                found = olt.Autofind(entries=await autofind(cli)).model_dump(mode="json")
                return PollResult(events=[Event(target.id, olt.AUTOFIND, now_ms, found)])
        except parsers.ParseError as exc:
            raise bad_output(exc) from None

    async def run_job(
        self, target: TargetSpec, kind: str, params: dict[str, Any], progress: Progress
    ) -> dict[str, Any]:
        try:
            checked = olt.job_params(kind, params)
        except ValueError as exc:  # pydantic's ValidationError is one
            raise PollError(f"bad {kind} parameters: {exc}", code="bad_params") from None
        try:
            async with self._cli(target) as cli:
                return await jobs.run(cli, kind, checked, progress)
        except parsers.ParseError as exc:
            raise bad_output(exc) from None

    def forget(self, target_id: int) -> None:
        self._snmp.forget(target_id)
        self.sessions.forget(target_id)

    async def release(self, target_id: int) -> None:
        self._snmp.forget(target_id)
        await self.sessions.release(target_id)

    async def close(self) -> None:
        await self.sessions.close()
        await self._snmp.close()

    # --- groups ------------------------------------------------------------------------

    def _cli(self, target: TargetSpec):  # type: ignore[no-untyped-def]
        return self.sessions.session(target.id, target.address, target.port, target.credentials)

    async def _optical(self, target: TargetSpec, group: GroupPlan, now_ms: int) -> PollResult:
        result = await self._walk(target, group.options, WALK_ROOTS)
        return PollResult(samples=optical_samples(target.id, result.columns, now_ms))

    async def _with_profiles(self, target: TargetSpec, found: olt.Inventory) -> olt.Inventory:
        """The inventory with each ONT's line and service profile names, which the CLI
        shows only one ONT at a time, from SNMP when the OLT's SNMP access is known."""
        if _snmp_credentials(target) is None or not found.onts:
            return found
        try:
            names = profile_names((await self._walk(target, {}, PROFILE_ROOTS)).columns)
        except PollError as exc:
            log.warning(
                "profile names not read over SNMP",
                extra={"target_id": target.id, "code": exc.code, "error": str(exc)},
            )
            return found
        onts = []
        for ont in found.onts:
            line, service = names.get(f"{ont.frame}/{ont.slot}/{ont.port}/{ont.ont_id}", ("", ""))
            onts.append(ont.model_copy(update={"line_profile": line, "service_profile": service}))
        return found.model_copy(update={"onts": onts})

    async def _walk(self, target: TargetSpec, options: dict[str, Any], roots: list) -> Walk:
        creds = _snmp_credentials(target)
        if creds is None:
            raise PollError(
                "the optical group needs SNMP credentials (credentials.snmp)",
                code="bad_credentials",
            )
        spec = TargetSpec(
            id=target.id,
            kind="snmp",
            address=target.address,
            port=int(target.credentials.get("snmp_port") or 161),
            credentials=creds,
            labels=target.labels,
            profile={},
            epoch=target.epoch,
        )
        opts = settings(options, creds)
        session = await self._snmp.session(spec, opts)
        return await walk(session, roots, opts.max_repetitions, opts.max_varbinds)


def _snmp_credentials(target: TargetSpec) -> dict[str, Any] | None:
    creds = target.credentials.get("snmp")
    return creds if isinstance(creds, dict) and creds else None


# --- what a poll asks the CLI -----------------------------------------------------------


def gpon_slots(boards: list[olt.Board]) -> list[tuple[olt.Board, int]]:
    """The GPON service boards in service, with their number of PON ports."""
    out = []
    for board in boards:
        name = board.board.upper()
        if "GP" not in name[4:] or "normal" not in board.status.lower():
            continue
        out.append((board, PORTS_PER_BOARD.get(name, DEFAULT_PORTS)))
    return out


async def inventory(cli: CliSession) -> olt.Inventory:
    """Version, boards, PON ports and ONTs of one OLT."""
    version = parsers.parse_version(await cli.run("display version"))
    boards = parsers.parse_board(await cli.run("display board 0"))
    ports: list[olt.PortState] = []
    onts: list[olt.Ont] = []
    for board, count in gpon_slots(boards):
        for port in range(count):
            ports.append(olt.PortState(frame=board.frame, slot=board.slot, port=port))
            fsp = f"{board.frame} {board.slot} {port}"
            listed = await jobs.onts_of(cli, f"display ont info {fsp}")
            if not listed:
                continue
            # The summary adds distance and last up/down with its cause to the table.
            summary = await cli.run(f"display ont info summary {fsp.replace(' ', '/')}")
            onts += merge_summary(
                listed, parsers.parse_ont_summary(summary, board.frame, board.slot, port)
            )
    return olt.Inventory(version=version, boards=boards, ports=ports, onts=onts)


def merge_summary(listed: list[olt.Ont], summary: list[olt.Ont]) -> list[olt.Ont]:
    """The ONT table's rows completed with what the summary adds (distance, last up and
    down, the cause): the table is the authority on which ONTs exist."""
    extra = {o.ont_id: o for o in summary}
    out = []
    for ont in listed:
        more = extra.get(ont.ont_id)
        if more is None:
            out.append(ont)
            continue
        update = {
            k: v
            for k in ("distance_m", "last_up", "last_down", "last_down_cause", "description")
            if (v := getattr(more, k)) not in (None, "") and getattr(ont, k) in (None, "")
        }
        out.append(ont.model_copy(update=update))
    return out


async def autofind(cli: CliSession) -> list[olt.AutofindEntry]:
    """ONTs waiting for authorisation (the OLT answers a Failure when there are none)."""
    try:
        return parsers.parse_autofind(await cli.run("display ont autofind all"))
    except PollError as exc:
        if exc.code == "failure" and NO_AUTOFIND in str(exc).lower():
            return []
        raise


def bad_output(exc: parsers.ParseError) -> PollError:
    """An answer our parsers do not understand: named, with its context, never guessed."""
    return PollError(f"unexpected OLT output: {exc}", code="bad_output")
