"""`chronos campaign`: campaigns from a terminal, over the operator API.

    chronos campaign list [--state STATE]
    chronos campaign show ID [--watch] [--every S]
    chronos campaign create --file spec.json [--dry-run]
    chronos campaign pause|cancel ID
    chronos campaign resume ID [--max-failure-ratio R] [--min-finished N] [--max-failures N]

The API's URL and token come from --api-url/--token, else CHRONOS_API_URL and
CHRONOS_API_TOKEN, else http://127.0.0.1:7557 and the admin token `chronos up` keeps in
its data directory. `show --watch` redraws one progress bar per wave in place on a
terminal, and writes a line every few seconds otherwise; it ends when the campaign has
settled (exit status 0 when it completed, 1 when it halted or was cancelled).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from controller import api_client
from controller.api_client import ApiClient
from controller.api_client import ClientError as CampaignCliError
from schemas.campaigns import CAMPAIGN_STATES
from schemas.config import Config

BAR_WIDTH = 32
FAILED_SHOWN = 10
# What a bar shows, in order: finished first, then what is moving, then what waits.
_BAR = (("succeeded", "#"), ("failed", "x"), ("skipped", "-"), ("running", ">"), ("queued", ">"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `chronos campaign`."""
    api_client.add_arguments(parser)
    sub = parser.add_subparsers(dest="campaign_command", required=True)
    listing = sub.add_parser("list", help="campaigns, newest first")
    listing.add_argument("--state", choices=CAMPAIGN_STATES)
    show = sub.add_parser("show", help="a campaign's progress and failures")
    show.add_argument("id", type=int)
    show.add_argument("--watch", action="store_true", help="follow it until it settles")
    show.add_argument("--every", type=float, metavar="S", help="refresh interval")
    create = sub.add_parser("create", help="create a campaign from a JSON file")
    create.add_argument("--file", required=True, help="the campaign as JSON ('-': stdin)")
    create.add_argument("--dry-run", action="store_true", help="count devices, create nothing")
    for name, text in (("pause", "pause"), ("resume", "resume"), ("cancel", "cancel")):
        action = sub.add_parser(name, help=f"{text} a campaign")
        action.add_argument("id", type=int)
        if name == "resume":
            action.add_argument("--max-failure-ratio", type=float, metavar="R")
            action.add_argument("--min-finished", type=int, metavar="N")
            action.add_argument("--max-failures", type=int, metavar="N")


# --- rendering (pure) --------------------------------------------------------------------------


def bar(counts: Mapping[str, int], size: int, width: int = BAR_WIDTH) -> str:
    """`[###x>>......]`: each state's share of the wave, at least one cell if present."""
    if size <= 0:
        return "[" + "." * width + "]"
    cells: list[str] = []
    for state, mark in _BAR:
        n = counts.get(state, 0)
        if n:
            cells.extend(mark * max(1, round(n * width / size)))
    cells = cells[:width]
    return "[" + "".join(cells) + "." * (width - len(cells)) + "]"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _when(iso: str | None) -> str:
    return "-" if iso is None else iso.replace("T", " ").replace(".000Z", "Z")


def headline(doc: Mapping[str, Any]) -> str:
    """`campaign 7 "firmware 2.0"  halted: reason`"""
    state = doc["state"]
    if doc.get("stateReason"):
        state += f": {doc['stateReason']}"
    return f'campaign {doc["id"]} "{doc["name"]}"  {state}'


def summary_line(doc: Mapping[str, Any]) -> str:
    """One line of progress, for logs and pipes."""
    d = doc["devices"]
    finished = d["succeeded"] + d["failed"]
    wave = f" wave {doc['currentWave']}/{doc['waveCount']}" if doc.get("waveCount") else ""
    return (
        f"campaign {doc['id']} {doc['state']}{wave}: {finished}/{d['total']} finished"
        f" ({d['succeeded']} ok, {d['failed']} failed), {d['queued'] + d['running']} in flight,"
        f" {d['waiting']} waiting, failure ratio {_percent(doc.get('failureRatio'))}"
    )


def render(doc: Mapping[str, Any]) -> list[str]:
    """A campaign as `show` prints it: state, counts, a bar per wave, recent failures."""
    d = doc["devices"]
    finished = d["succeeded"] + d["failed"]
    lines = [
        headline(doc),
        f"created   {_when(doc['created'])} by {doc['createdBy']}; started"
        f" {_when(doc['started'])}; finished {_when(doc['finished'])}",
        f"devices   {d['total']}: {d['succeeded']} succeeded, {d['failed']} failed,"
        f" {d['running']} running, {d['queued']} queued, {d['waiting']} waiting,"
        f" {d['skipped']} skipped",
        f"failures  {_percent(doc.get('failureRatio'))} of {finished} finished (halts above"
        f" {_percent(doc.get('maxFailureRatio'))} once {doc.get('minFinished')} have finished)",
    ]
    waves = doc.get("waves") or []
    for wave in waves:
        done = wave["succeeded"] + wave["failed"] + wave["skipped"]
        marker = "*" if wave["wave"] == doc.get("currentWave") else " "
        tail = f"{wave['succeeded']} ok"
        if wave["failed"]:
            tail += f", {wave['failed']} failed"
        if wave["queued"] + wave["running"]:
            tail += f", {wave['queued'] + wave['running']} in flight"
        if wave["skipped"]:
            tail += f", {wave['skipped']} skipped"
        lines.append(
            f"{marker}wave {wave['wave']}/{len(waves)} {bar(wave, wave['size'])}"
            f" {done:>{len(str(wave['size']))}}/{wave['size']}  {tail}"
        )
    outcomes = doc.get("outcomes") or {}
    failed = [o for o in outcomes.get("items", []) if o["state"] == "failed"]
    if failed:
        lines.append(f"failed devices ({len(failed)} of {d['failed']} shown):")
        for item in failed:
            detail = item.get("detail") or {}
            lines.append(f"  {item['device']}  {detail.get('message', detail.get('reason', ''))}")
    return lines


def table(items: Sequence[Mapping[str, Any]]) -> list[str]:
    """`list`: one row per campaign."""
    rows = [("ID", "STATE", "WAVE", "FINISHED", "FAILED", "RATIO", "NAME")]
    for c in items:
        d = c["devices"]
        wave = f"{c['currentWave']}/{c['waveCount']}" if c.get("waveCount") else "-"
        rows.append(
            (
                str(c["id"]),
                c["state"],
                wave,
                f"{d['succeeded'] + d['failed']}/{d['total']}",
                str(d["failed"]),
                _percent(c.get("failureRatio")),
                c["name"],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in rows
    ]


def is_settled(doc: Mapping[str, Any]) -> bool:
    """Nothing will change without an operator: completed, or halted/cancelled with no
    device in flight."""
    return doc["state"] in ("completed", "halted", "cancelled") and doc.get("finished") is not None


# --- talking to the API -----------------------------------------------------------------------


def _read_spec(name: str) -> Any:
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
    except OSError as exc:
        raise CampaignCliError(f"cannot read {name}: {exc.strerror or exc}", status=2) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CampaignCliError(f"{name} is not valid JSON: {exc}", status=2) from None


async def watch(client: ApiClient, campaign_id: int, out: TextIO, every: float | None) -> int:
    """Follow a campaign until it settles: redrawn in place on a terminal, a line at a
    time otherwise."""
    tty = out.isatty()
    every = every if every is not None else (1.0 if tty else 5.0)
    drawn = 0
    while True:
        doc = await client.call(
            "GET", f"/api/v1/campaigns/{campaign_id}?deviceState=failed&limit={FAILED_SHOWN}"
        )
        if tty:
            lines = render(doc)
            if drawn:
                out.write(f"\x1b[{drawn}F")  # back to the first line drawn
            out.write("".join(f"\x1b[2K{line}\n" for line in lines) + "\x1b[J")
            drawn = len(lines)
        else:
            out.write(summary_line(doc) + "\n")
        out.flush()
        if is_settled(doc):
            return 0 if doc["state"] == "completed" else 1
        await asyncio.sleep(every)


async def _command(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    command = args.campaign_command
    if command == "list":
        query = f"?state={args.state}" if args.state else ""
        for line in table(await client.call("GET", f"/api/v1/campaigns{query}")):
            out.write(line + "\n")
        return 0
    if command == "show":
        if args.watch:
            return await watch(client, args.id, out, args.every)
        doc = await client.call(
            "GET", f"/api/v1/campaigns/{args.id}?deviceState=failed&limit={FAILED_SHOWN}"
        )
        out.write("\n".join(render(doc)) + "\n")
        return 0
    if command == "create":
        spec = _read_spec(args.file)
        if args.dry_run:
            answer = await client.call("POST", "/api/v1/campaigns?dryRun=1", spec)
            waves = ", ".join(str(n) for n in answer["waves"]) or "none"
            out.write(f"would run on {answer['devices']} devices in waves of {waves}\n")
            return 0
        doc = await client.call("POST", "/api/v1/campaigns", spec)
        out.write(f"created campaign {doc['id']}\n")
        return 0
    body = None
    if command == "resume":
        changes = {
            "maxFailureRatio": args.max_failure_ratio,
            "minFinished": args.min_finished,
            "maxFailures": args.max_failures,
        }
        body = {k: v for k, v in changes.items() if v is not None} or None
    doc = await client.call("POST", f"/api/v1/campaigns/{args.id}/{command}", body)
    out.write(headline(doc) + "\n")
    return 0


async def run(config: Config, args: argparse.Namespace, stream: TextIO | None = None) -> int:
    """`chronos campaign ...`; the exit status."""
    out = stream or sys.stdout
    try:
        url, token = api_client.connection(config, args)
        client = ApiClient(url, token)
        try:
            return await _command(client, args, out)
        finally:
            await client.close()
    except CampaignCliError as exc:
        print(f"chronos campaign: {exc}", file=sys.stderr)
        return exc.status
