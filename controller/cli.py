"""The `chronos` command: where each role is put together and started.

chronos up           everything on one machine, on an embedded PostgreSQL
chronos acs          the CWMP server alone (DATABASE_URL)
chronos controller   the operator API, the agent stream and fleet leadership (DATABASE_URL)
chronos agent        a polling agent, connected to a controller
chronos migrate      apply database migrations and exit
chronos token ...    create, list or revoke API tokens
chronos campaign ... firmware campaigns and bulk operations, over the API
chronos targets ...  import and list polled equipment, over the API
chronos sim cpe ...  simulated CPEs against an ACS
chronos sim snmp ... simulated SNMP devices (communities dev1..devN)
chronos sim olt ...  a simulated Huawei MA5800 OLT (SSH CLI, XPON SNMP)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web
from prometheus_client import disable_created_metrics

from agents.process import run_until
from controller import logs
from controller.auth import (
    FIND_TOKEN,
    LIST_TOKENS,
    REVOKE_TOKEN,
    ROLES,
    create_token,
    hash_token,
)
from controller.database import create_pool, migrate
from controller.embedded import EmbeddedPostgres
from controller.settings import ConfigError, load_config
from schemas.config import Config
from schemas.sealing import Sealer, SealingError, generate_key

if TYPE_CHECKING:
    from acs.files import FileUrls
    from agents.agent import Agent

log = logging.getLogger("chronos")


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


@dataclass
class Database:
    pool: asyncpg.Pool
    dsn: str


# --- shared start-up ------------------------------------------------------------------


def _secret_key(config: Config, *, create: bool) -> Sealer:
    """The sealing key: from configuration, else (for `up`) kept under data_dir."""
    if config.secret_key is not None:
        key = config.secret_key.get_secret_value()
    else:
        path = config.data_dir / "secret.key"
        if path.exists():
            key = path.read_text().strip()
        elif create:
            config.data_dir.mkdir(parents=True, exist_ok=True)
            key = generate_key()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(key + "\n")
        else:
            raise CliError(
                "no secret key: set CHRONOS_SECRET_KEY (generate one with"
                " `chronos secret-key`), or run `chronos up` for a local setup"
            )
    try:
        return Sealer(key)
    except SealingError as exc:
        raise CliError(f"secret key: {exc}") from None


@contextlib.asynccontextmanager
async def _database(config: Config, *, embedded_allowed: bool) -> AsyncIterator[Database]:
    """A migrated pool: the configured PostgreSQL, or (for `up`) an embedded one."""
    server: EmbeddedPostgres | None = None
    if config.database.url is not None:
        dsn = config.database.url.get_secret_value()
    elif embedded_allowed:
        server = EmbeddedPostgres(config.data_dir / "pgdata")
        print(f"starting embedded PostgreSQL in {server.pgdata} ...", flush=True)
        await server.astart()
        dsn = await server.ensure_database("chronos")
    else:
        raise CliError("set DATABASE_URL (or database.url in the configuration file)")
    try:
        pool = await create_pool(
            dsn,
            min_size=config.database.pool_min,
            max_size=config.database.pool_max,
            command_timeout=config.database.command_timeout,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        if server is not None:
            await server.astop()
        raise CliError(f"cannot connect to PostgreSQL: {exc}") from None
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        yield Database(pool, dsn)
    finally:
        await asyncio.wait_for(pool.close(), 10)
        if server is not None:
            print("stopping embedded PostgreSQL ...", flush=True)
            await server.astop()


async def _serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return runner


def _stop_event() -> asyncio.Event:
    """Set by SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _until_stopped() -> None:
    await _stop_event().wait()


def _acs_app(db: Database, config: Config, sealer: Sealer) -> web.Application:
    from acs import server

    return server.create_app(
        db.pool,
        config.acs,
        sealer,
        db.dsn,
        file_urls=_file_urls(config, sealer),
        link_seconds=config.files.link_seconds,
    )


def _api_app(db: Database, config: Config, sealer: Sealer) -> web.Application:
    from controller import app

    return app.create_app(db.pool, db.dsn, config, sealer)


def _file_urls(config: Config, sealer: Sealer) -> FileUrls:
    """Links for CPE downloads and uploads, signed with a key derived from the secret key,
    so a link any ACS process issues is good at every file server."""
    from acs.files import LINK_PURPOSE, FileUrls

    return FileUrls(sealer.subkey(LINK_PURPOSE), config.files.base_url())


def _files_app(db: Database, config: Config, sealer: Sealer) -> web.Application:
    from acs import fileserver
    from acs.files import UPLOAD_SEAL_PURPOSE, ChunkCipher

    cipher = ChunkCipher(sealer.subkey(UPLOAD_SEAL_PURPOSE))
    return fileserver.create_app(db.pool, config, _file_urls(config, sealer), cipher)


async def _kept_token(config: Config, pool: asyncpg.Pool, role: str) -> str:
    """A token `up` keeps in data_dir (`admin-token`, `agent-token`): made on first start."""
    path = config.data_dir / f"{role}-token"
    if path.exists():
        token = path.read_text().strip()
        if await pool.fetchrow(FIND_TOKEN, hash_token(token)):
            return token
    token = await create_token(pool, f"{role} (chronos up)", role)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def _local_agent(config: Config, token: str) -> Agent:
    """The agent `up` runs in zone `local`, streaming to this process's controller."""
    from agents.agent import AgentSettings
    from agents.process import build

    settings = AgentSettings(
        controller=_url(config.api.host, config.api.port),
        token=token,
        agent_id="local",
        labels={"zone": "local"},
        capacity=100,
        spool_dir=config.data_dir / "spool",
    )
    return build(settings)


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}"


# --- commands -------------------------------------------------------------------------


async def cmd_up(config: Config, args: argparse.Namespace) -> int:
    sealer = _secret_key(config, create=True)
    async with _database(config, embedded_allowed=True) as db:
        token = await _kept_token(config, db.pool, "admin")
        agent = _local_agent(config, await _kept_token(config, db.pool, "agent"))
        runners = [
            await _serve(_acs_app(db, config, sealer), config.acs.host, config.acs.port),
            await _serve(_api_app(db, config, sealer), config.api.host, config.api.port),
            await _serve(_files_app(db, config, sealer), config.files.host, config.files.port),
        ]
        hint = "" if config.files.public_url else " (set files.public_url for remote CPEs)"
        try:
            print(
                "\nChronosConnect is up.\n"
                f"  CWMP (point CPEs here):  {_url(config.acs.host, config.acs.port)}/\n"
                f"  file server (CPEs):      {config.files.base_url()}/{hint}\n"
                f"  API (GenieACS NBI):      {_url(config.api.host, config.api.port)}/devices/\n"
                f"  admin API token:         {token}\n"
                f"  agent 'local' (zone local) polls targets:  chronos targets import FILE\n"
                f"  try: curl -H 'Authorization: Bearer {token}'"
                f" {_url(config.api.host, config.api.port)}/devices/\n"
                "Ctrl-C stops everything.\n",
                flush=True,
            )
            stop = _stop_event()
            await run_until(agent, stop)
            print("stopping ...", flush=True)
        finally:
            for runner in reversed(runners):
                await runner.cleanup()
    return 0


AppBuilder = Callable[[Database, Config, Sealer], web.Application]


async def _run_role(
    config: Config,
    name: str,
    build: AppBuilder,
    host: str,
    port: int,
    *,
    also: tuple[tuple[str, AppBuilder, str, int], ...] = (),
) -> int:
    """One role alone against the configured PostgreSQL, until SIGINT or SIGTERM; `also`
    names more servers of the role (name, builder, host, port)."""
    sealer = _secret_key(config, create=False)
    async with _database(config, embedded_allowed=False) as db:
        runners = []
        try:
            for label, builder, at, number in ((name, build, host, port), *also):
                runners.append(await _serve(builder(db, config, sealer), at, number))
                log.info(f"{label} listening", extra={"url": _url(at, number)})
            await _until_stopped()
        finally:
            for runner in reversed(runners):
                await runner.cleanup()
    return 0


async def cmd_acs(config: Config, args: argparse.Namespace) -> int:
    files = ("file server", _files_app, config.files.host, config.files.port)
    return await _run_role(config, "acs", _acs_app, config.acs.host, config.acs.port, also=(files,))


async def cmd_controller(config: Config, args: argparse.Namespace) -> int:
    return await _run_role(config, "api", _api_app, config.api.host, config.api.port)


async def cmd_agent(config: Config, args: argparse.Namespace) -> int:
    from agents.agent import AgentSettings
    from agents.process import build, status_app

    token = args.token or os.environ.get("CHRONOS_AGENT_TOKEN")
    if not token:
        raise CliError("no agent token: give --token or set CHRONOS_AGENT_TOKEN")
    labels = {}
    for item in filter(None, (args.labels or "").split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"labels are key=value pairs separated by commas, not {item!r}")
        labels[key.strip()] = value.strip()
    settings = AgentSettings(
        controller=args.controller,
        token=token,
        agent_id=args.id or os.environ.get("HOSTNAME") or socket.gethostname(),
        labels=labels,
        capacity=args.capacity,
        spool_dir=args.spool_dir,
        max_in_flight=args.max_in_flight,
    )
    agent = build(settings)
    host, _, port = args.http.rpartition(":")
    runner = await _serve(status_app(agent), host or "0.0.0.0", int(port))
    log.info(
        "agent starting",
        extra={"agent_id": settings.agent_id, "controller": settings.controller, "labels": labels},
    )
    try:
        await run_until(agent, _stop_event())
    finally:
        await runner.cleanup()
    return 0


async def cmd_targets(config: Config, args: argparse.Namespace) -> int:
    from controller import targets_cli

    return await targets_cli.run(config, args)


async def cmd_migrate(config: Config, args: argparse.Namespace) -> int:
    async with _database(config, embedded_allowed=True):
        print("migrations applied")
    return 0


async def cmd_token(config: Config, args: argparse.Namespace) -> int:
    async with _database(config, embedded_allowed=True) as db:
        if args.token_command == "create":
            print(await create_token(db.pool, args.name, args.role))
        elif args.token_command == "revoke":
            result = await db.pool.execute(REVOKE_TOKEN, args.name)
            if result.endswith(" 0"):
                raise CliError(f"no active token named {args.name!r}")
            print(f"revoked {args.name}")
        else:
            for row in await db.pool.fetch(LIST_TOKENS):
                state = "revoked" if row["revoked"] else "active"
                used = row["last_used"].isoformat(timespec="seconds") if row["last_used"] else "-"
                print(
                    f"{row['id']:>4}  {row['role']:<8} {state:<8} last used {used}  {row['name']}"
                )
    return 0


async def cmd_secret_key(config: Config, args: argparse.Namespace) -> int:
    print(generate_key())
    return 0


async def cmd_campaign(config: Config, args: argparse.Namespace) -> int:
    from controller import campaign_cli

    return await campaign_cli.run(config, args)


async def cmd_sim(config: Config, args: argparse.Namespace) -> int:
    from tools.sim import cpe, olt, snmp

    if args.sim_command == "snmp":
        return await snmp.run(args)
    if args.sim_command == "olt":
        return await olt.run(args)
    return await cpe.run(args)


# --- entry point ----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chronos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="run everything locally on an embedded PostgreSQL")
    sub.add_parser("acs", help="run the CWMP server (needs DATABASE_URL)")
    sub.add_parser("controller", help="run the API, agent stream and leader (DATABASE_URL)")
    sub.add_parser("migrate", help="apply database migrations")
    sub.add_parser("secret-key", help="print a new secret key for CHRONOS_SECRET_KEY")
    token = sub.add_parser("token", help="API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="create a token and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--role", choices=ROLES, default="operator")
    revoke = token_sub.add_parser("revoke", help="revoke the token with this name")
    revoke.add_argument("--name", required=True)
    token_sub.add_parser("list", help="list tokens (never their values)")
    agent = sub.add_parser("agent", help="run a polling agent (connects to a controller)")
    agent.add_argument("--controller", required=True, help="controller URL, e.g. http://ctl:7557")
    agent.add_argument("--token", help="agent token (default: $CHRONOS_AGENT_TOKEN)")
    agent.add_argument("--id", help="agent id (default: $HOSTNAME, the pod name)")
    agent.add_argument("--labels", default="", help="e.g. zone=pop1,site=north")
    agent.add_argument("--capacity", type=int, default=100, help="relative share of targets")
    agent.add_argument("--spool-dir", type=Path, help="keep undelivered reports on disk here")
    agent.add_argument("--max-in-flight", type=int, default=256, help="polls at once, at most")
    agent.add_argument("--http", default="0.0.0.0:7577", help="/health, /ready, /metrics")
    from controller import campaign_cli, targets_cli

    targets_cli.add_arguments(sub.add_parser("targets", help="polled equipment (via the API)"))
    campaign_cli.add_arguments(sub.add_parser("campaign", help="firmware campaigns (via the API)"))
    sim = sub.add_parser("sim", help="simulators")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True)
    from tools.sim import cpe

    cpe.add_arguments(sim_sub.add_parser("cpe", help="simulated CPEs against an ACS"))
    from tools.sim import snmp

    snmp.add_arguments(sim_sub.add_parser("snmp", help="simulated SNMP devices on 127.0.0.1"))
    from tools.sim import olt

    olt.add_arguments(sim_sub.add_parser("olt", help="a simulated Huawei MA5800 on 127.0.0.1"))
    return parser


COMMANDS: dict[str, Callable[[Config, argparse.Namespace], Awaitable[int]]] = {
    "up": cmd_up,
    "acs": cmd_acs,
    "controller": cmd_controller,
    "migrate": cmd_migrate,
    "token": cmd_token,
    "secret-key": cmd_secret_key,
    "campaign": cmd_campaign,
    "targets": cmd_targets,
    "agent": cmd_agent,
    "sim": cmd_sim,
}


def _run(coro: Awaitable[int]) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover  (uvloop is a dependency where it builds)
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"chronos: {exc}", file=sys.stderr)
        return 2
    fmt = config.log.format
    if args.command == "up" and "format" not in config.log.model_fields_set:
        fmt = "text"  # a person is watching this one
    logs.setup(config.log.level, fmt)
    disable_created_metrics()
    try:
        return _run(COMMANDS[args.command](config, args))
    except CliError as exc:
        print(f"chronos: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `chronos targets list | head`: the reader is done
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
