"""OLT jobs as CLI steps: provision, delete and reboot an ONT, enable or disable a PON
port, run an allowed `display` command.

A job runs on the OLT's one session (the driver holds it for the whole job, so no poll
or other job interleaves). Each step is reported as progress once the OLT accepted it.
A provisioning that fails after `ont add` undoes what it did (service ports, then the
ONT) before it raises, so the ONT goes back to the autofind list and can be tried
again. Jobs that change a port read the port back, and the result carries it under
`ont.port`: the controller updates its inventory from that at once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from agents.driver import PollError, Progress
from agents.huawei import parsers
from agents.huawei.session import CliError, CliSession
from schemas import olt

log = logging.getLogger(__name__)

Step = Callable[[CliSession, Any, Progress], Awaitable[dict[str, Any]]]


async def run(cli: CliSession, kind: str, params: Any, progress: Progress) -> dict[str, Any]:
    """Run job `kind` with its validated parameters; its result, or PollError."""
    return await STEPS[kind](cli, params, progress)


# How OLTs answer a `display ont info` of a port or slot without ONTs.
NO_ONTS = ("there is no ont", "ont does not exist", "no ont available")


async def onts_of(cli: CliSession, command: str) -> list[olt.Ont]:
    """The ONTs a `display ont info` lists (none when the OLT says there are none)."""
    try:
        return parsers.parse_ont_info(await cli.run(command))
    except PollError as exc:
        if exc.code == "failure" and any(s in str(exc).lower() for s in NO_ONTS):
            return []
        raise


def _interface(ref: olt.PortRef) -> str:
    return f"gpon {ref.frame}/{ref.slot}"


async def read_port(cli: CliSession, ref: olt.PortRef, enabled: bool | None = None) -> dict:
    """The port's ONTs as the OLT lists them now, as an `ont.port` detail."""
    listed = await onts_of(cli, f"display ont info {ref.frame} {ref.slot} {ref.port}")
    onts = [o for o in listed if (o.frame, o.slot, o.port) == (ref.frame, ref.slot, ref.port)]
    port = olt.PortOnts(frame=ref.frame, slot=ref.slot, port=ref.port, onts=onts, enabled=enabled)
    return port.model_dump(mode="json")


async def _service_ports(cli: CliSession, ref: olt.OntRef) -> list[parsers.ServicePort]:
    """The service ports of one ONT."""
    rows = parsers.parse_service_ports(await cli.run("display service-port all"))
    where = (ref.frame, ref.slot, ref.port, ref.ont_id)
    return [r for r in rows if (r.frame, r.slot, r.port, r.ont_id) == where]


async def remove_service_ports(
    cli: CliSession,
    ref: olt.OntRef,
    progress: Progress,
    only: set[tuple[int, int, str]] | None = None,
) -> None:
    """Remove the ONT's service ports (`only` those with these keys, when given)."""
    for row in await _service_ports(cli, ref):
        if only is None or _sp_key(row.vlan, row.gemport, row.flow_para) in only:
            await cli.run(f"undo service-port {row.index}", mode="config")
            await progress("service_port_removed", {"index": row.index})


async def remove_ont(cli: CliSession, ref: olt.OntRef, progress: Progress) -> None:
    """Service ports first (the OLT refuses to delete an ONT that has some), then the ONT."""
    await remove_service_ports(cli, ref, progress)
    await cli.run(
        f"ont delete {ref.port} {ref.ont_id}",
        mode="interface",
        interface=_interface(ref),
        confirm=True,
    )
    await progress("ont_deleted", {"ont_id": ref.ont_id})


def _quoted(text: str) -> str:
    return '"' + text + '"'  # the parameters' model refuses quotes and control characters


def _sp_key(vlan: int, gemport: int | None, user_vlan: int | str) -> tuple[int, int, str]:
    return vlan, gemport if gemport is not None else -1, str(user_vlan)


async def registered(cli: CliSession, serial: str) -> olt.Ont | None:
    """The ONT registered with this serial, if any."""
    try:
        found = parsers.parse_ont_info(await cli.run(f"display ont info by-sn {serial}"))
    except CliError as exc:
        if exc.code == "failure" and any(s in str(exc).lower() for s in NO_ONTS):
            return None
        raise
    return found[0] if found else None


async def provision(cli: CliSession, p: olt.OntProvision, progress: Progress) -> dict[str, Any]:
    """Register the ONT and its service ports. Run again after an interruption (an agent
    lost mid-job), it takes up what is there: an ONT already registered on this port with
    this serial is kept, and only the service ports it lacks are added."""
    existing = await registered(cli, p.serial)
    if existing is None:
        ont_id = await _ont_add(cli, p)
        await progress("ont_added", {"fsp": p.fsp, "ont_id": ont_id})
        have: set[tuple[int, int, str]] = set()
    else:
        at = (existing.frame, existing.slot, existing.port)
        if at != (p.frame, p.slot, p.port) or p.ont_id not in (None, existing.ont_id):
            raise PollError(
                f"serial {p.serial} is already registered as ONT {existing.fsp}/{existing.ont_id}",
                code="failure",
            )
        ont_id = existing.ont_id
        await progress("ont_exists", {"fsp": p.fsp, "ont_id": ont_id})
        rows = await _service_ports(cli, existing)
        have = {_sp_key(r.vlan, r.gemport, r.flow_para) for r in rows}
    ref = olt.OntRef(frame=p.frame, slot=p.slot, port=p.port, ont_id=ont_id)
    added: set[tuple[int, int, str]] = set()
    try:
        for spec in p.service_ports:
            key = _sp_key(spec.vlan, spec.gemport, spec.user_vlan)
            if key in have:
                continue
            await cli.run(
                f"service-port vlan {spec.vlan} gpon {p.fsp} ont {ont_id} gemport {spec.gemport}"
                f" multi-service user-vlan {spec.user_vlan} tag-transform translate",
                mode="config",
            )
            added.add(key)
            await progress("service_port_added", {"vlan": spec.vlan, "gemport": spec.gemport})
    except Exception as failure:
        # An ONT that was there before this job stays: only what the job added goes.
        await _undo(cli, ref, failure, progress, None if existing is None else added)
        raise
    port_onts = await read_port(cli, p)
    # The port table lacks profile names: the new ONT's detail has them.
    detail = parsers.parse_ont_info(
        await cli.run(f"display ont info {p.frame} {p.slot} {p.port} {ont_id}")
    )
    for listed in port_onts["onts"]:
        if listed["ont_id"] == ont_id and detail:
            listed["line_profile"] = detail[0].line_profile
            listed["service_profile"] = detail[0].service_profile
    return {"fsp": p.fsp, "ont_id": ont_id, olt.PORT_ONTS: [port_onts]}


async def _ont_add(cli: CliSession, p: olt.OntProvision) -> int:
    command = " ".join(
        [
            f"ont add {p.port}",
            *([str(p.ont_id)] if p.ont_id is not None else []),
            f"sn-auth {p.serial} omci",
            f"ont-lineprofile-id {p.line_profile_id}",
            f"ont-srvprofile-id {p.service_profile_id}",
            *([f"desc {_quoted(p.description)}"] if p.description else []),
        ]
    )
    answer = await cli.run(command, mode="interface", interface=_interface(p))
    port, ont_id = parsers.parse_ont_add(answer)
    if port != p.port:
        raise PollError(f"the OLT added the ONT on port {port}, not {p.port}", code="bad_output")
    return ont_id


async def _undo(
    cli: CliSession,
    ref: olt.OntRef,
    failure: BaseException,
    progress: Progress,
    added: set[tuple[int, int, str]] | None,
) -> None:
    """Remove the half-provisioned ONT (`added` None), or only the service ports the job
    added; a failing undo is told along with the failure."""
    log.warning(
        "provisioning failed: undoing",
        extra={"ont": f"{ref.fsp}/{ref.ont_id}", "error": str(failure)[:300]},
    )
    try:
        if added is None:
            await remove_ont(cli, ref, progress)
        else:
            await remove_service_ports(cli, ref, progress, only=added)
        await progress("rolled_back", {"ont_id": ref.ont_id})
    except Exception as exc:
        raise PollError(
            f"{failure}; undoing it failed too ({exc}): ONT {ref.fsp}/{ref.ont_id} is left"
            " half provisioned",
            code=getattr(failure, "code", "failure"),
        ) from None


async def delete(cli: CliSession, ref: olt.OntRef, progress: Progress) -> dict[str, Any]:
    await remove_ont(cli, ref, progress)
    return {"fsp": ref.fsp, "ont_id": ref.ont_id, olt.PORT_ONTS: [await read_port(cli, ref)]}


async def reboot(cli: CliSession, ref: olt.OntRef, progress: Progress) -> dict[str, Any]:
    await cli.run(
        f"ont reset {ref.port} {ref.ont_id}",
        mode="interface",
        interface=_interface(ref),
        confirm=True,
    )
    await progress("ont_reset", {"ont_id": ref.ont_id})
    return {"fsp": ref.fsp, "ont_id": ref.ont_id}


def _port_job(enable: bool) -> Step:
    async def step(cli: CliSession, ref: olt.PortRef, progress: Progress) -> dict[str, Any]:
        verb = "undo shutdown" if enable else "shutdown"
        await cli.run(f"{verb} {ref.port}", mode="interface", interface=_interface(ref))
        await progress("port_enabled" if enable else "port_disabled", {"fsp": ref.fsp})
        return {
            "fsp": ref.fsp,
            "enabled": enable,
            olt.PORT_ONTS: [await read_port(cli, ref, enable)],
        }

    return step


_OUTPUT_LIMIT = 256 * 1024


async def display(cli: CliSession, p: olt.Display, progress: Progress) -> dict[str, Any]:
    mode = "enable" if p.interface is None else "interface"
    interface = None if p.interface is None else f"gpon {p.interface}"
    try:
        output = await cli.run(p.command, mode=mode, interface=interface)
    except CliError as exc:
        if exc.code != "failure":
            raise
        # "Failure: The ONT does not exist" and the like answer the question asked.
        output = exc.output or str(exc)
    output = re.sub(r"[^\S\n]+\n", "\n", output)
    truncated = len(output) > _OUTPUT_LIMIT
    return {"command": p.command, "output": output[:_OUTPUT_LIMIT], "truncated": truncated}


STEPS: dict[str, Step] = {
    "ont.provision": provision,
    "ont.delete": delete,
    "ont.reboot": reboot,
    "port.enable": _port_job(True),
    "port.disable": _port_job(False),
    "display": display,
}
