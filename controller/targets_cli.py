"""`chronos targets`: the polled inventory from a terminal, over the operator API.

    chronos targets import FILE     CSV (header line), YAML or JSON; all or nothing
    chronos targets list [--zone Z] [--kind K]

CSV columns: name, kind, address, port, zone, vendor, tenant, labels ("k=v;k=v"),
community, or snmp_user/auth_protocol/auth_key/priv_protocol/priv_key, or
username/password, profile (JSON), enabled. A name already present is updated in place.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from controller import api_client
from controller.api_client import ApiClient, ClientError

CONTENT_TYPES = {".csv": "text/csv", ".yaml": "application/yaml", ".yml": "application/yaml"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    api_client.add_arguments(parser)
    sub = parser.add_subparsers(dest="targets_command", required=True)
    imp = sub.add_parser("import", help="create or update targets from a CSV, YAML or JSON file")
    imp.add_argument("file", type=Path)
    listing = sub.add_parser("list", help="targets and the agent polling each")
    listing.add_argument("--zone")
    listing.add_argument("--kind")


def _row(target: dict[str, Any]) -> str:
    owner = target.get("assignment") or {}
    zone = target["labels"].get("zone", "-")
    where = f"{target['address']}:{target['port']}"
    agent = owner.get("agent", "(unassigned)")
    kind = target["kind"]
    return f"{target['id']:>6}  {kind:<10} {zone:<10} {where:<24} {agent:<20} {target['name']}"


async def _command(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    if args.targets_command == "import":
        try:
            text = args.file.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ClientError(f"cannot read {args.file}: {exc}", status=2) from None
        kind = CONTENT_TYPES.get(args.file.suffix.lower(), "application/json")
        result = await client.call("POST", "/api/v1/targets/import", text=text, content_type=kind)
        out.write(
            f"imported {args.file}: {result['created']} created, {result['updated']} updated\n"
        )
        return 0
    query = "&".join(f"{k}={v}" for k in ("zone", "kind") if (v := getattr(args, k)))
    targets = await client.call("GET", "/api/v1/targets" + (f"?{query}" if query else ""))
    for target in targets:
        out.write(_row(target) + "\n")
    return 0


async def run(config: Any, args: argparse.Namespace, stream: TextIO | None = None) -> int:
    """`chronos targets ...`; the exit status."""
    out = stream or sys.stdout
    try:
        url, token = api_client.connection(config, args)
        client = ApiClient(url, token)
        try:
            return await _command(client, args, out)
        finally:
            await client.close()
    except ClientError as exc:
        print(f"chronos targets: {exc}", file=sys.stderr)
        return exc.status
