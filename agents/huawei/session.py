"""SSH sessions to Huawei OLTs: one CLI session (`CliSession`) and the pool (`OltSessions`).

Thin I/O around `agents.huawei.cli`: the Screen decides, this module reads and writes.
Foreign errors (asyncssh, OSError, timeouts) are mapped here, once, to `PollError`
codes: auth_failed, unreachable, timeout, disconnected; device errors become `CliError`
(cli_error, busy, console_timeout, failure); the pool adds circuit_open. Messages never
hold the password or the key.

OLTs allow few VTY sessions, so the pool keeps at most one session per OLT, serializes
its commands, reuses it while it is idle for less than `idle_close` seconds, drops it
when it broke, retries "System is busy" a few times, and stops trying an OLT that failed
`failures_to_open` times in a row for `cooldown` seconds (then one trial connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from agents.driver import PollError
from agents.huawei import cli

log = logging.getLogger("chronos.agent.huawei")

TERM_SIZE = (256, 200)  # columns, rows: wide, so long commands do not wrap their echo
# Codes of failures that say the OLT or the path to it is unwell (they count towards the
# circuit breaker); a wrong password counts too, so that an account is not locked out.
TRANSPORT_CODES = frozenset({"unreachable", "timeout", "disconnected", "auth_failed"})


class CliError(PollError):
    """The OLT answered a command with an error (its message is the device's line)."""

    def __init__(self, message: str, *, code: str, output: str = "") -> None:
        super().__init__(message, code=code)
        self.output = output


class CliSession:
    """One interactive SSH shell on one OLT, logged in and set up for scripting."""

    def __init__(
        self,
        target_id: int,
        host: str,
        port: int,
        credentials: Mapping[str, Any],
        *,
        connect_timeout: float = 10.0,
        login_timeout: float = 20.0,
        busy_retries: int = 0,
        busy_backoff: float = 0.5,
    ) -> None:
        self.target_id, self.host, self.port = target_id, host, port
        self._credentials = dict(credentials)
        self.connect_timeout, self.login_timeout = connect_timeout, login_timeout
        self.busy_retries, self.busy_backoff = busy_retries, busy_backoff
        self.screen = cli.Screen()
        self.broken = False
        self.closed = False
        self._conn: asyncssh.SSHClientConnection | None = None
        self._process: asyncssh.SSHClientProcess[str] | None = None

    def same_login(self, host: str, port: int, credentials: Mapping[str, Any]) -> bool:
        return (host, port, dict(credentials)) == (self.host, self.port, self._credentials)

    @property
    def open(self) -> bool:
        return self._conn is not None and not self.closed

    async def connect(self) -> None:
        """Connect, log in and set the terminal up; PollError when that fails."""
        creds = self._credentials
        options: dict[str, Any] = {
            "username": creds.get("username") or None,
            # The OLT's host key when the target pins one (credentials.host_key, an
            # OpenSSH public key line); otherwise the inventory the operator controls is
            # trusted and the key is not checked.
            "known_hosts": _pinned(creds.get("host_key")),
            "config": None,  # no ~/.ssh/config, agent or default keys: only what is given
            "agent_path": None,
            "connect_timeout": self.connect_timeout,
            "login_timeout": self.login_timeout,
        }
        if creds.get("private_key"):
            try:
                key = asyncssh.import_private_key(creds["private_key"])
            except (asyncssh.KeyImportError, ValueError):
                raise PollError("the private key cannot be read", code="auth_failed") from None
            options["client_keys"] = [key]
        else:
            options["client_keys"] = None
        if creds.get("password"):
            options["password"] = creds["password"]
        where = f"{self.host}:{self.port}"
        try:
            async with asyncio.timeout(self.connect_timeout + self.login_timeout):
                self._conn = await asyncssh.connect(self.host, self.port, **options)
                self._process = await self._conn.create_process(
                    term_type="vt100", term_size=TERM_SIZE, encoding="utf-8", errors="replace"
                )
                banner = await self._read_until_done(None)
                if isinstance(banner, cli.Error):
                    raise PollError(f"{where}: {banner.message}", code="disconnected")
        except asyncssh.PermissionDenied:
            await self._abort()
            raise PollError(f"{where} refused the credentials", code="auth_failed") from None
        except asyncssh.HostKeyNotVerifiable:
            await self._abort()
            raise PollError(
                f"{where} showed a host key other than the one pinned", code="host_key_mismatch"
            ) from None
        except TimeoutError:
            code = "unreachable" if self._process is None else "timeout"
            await self._abort()
            raise PollError(f"{where} did not let us log in in time", code=code) from None
        except (OSError, asyncssh.Error) as exc:
            code = "unreachable" if self._process is None else "disconnected"
            await self._abort()
            raise PollError(f"{where}: {_reason(exc)}", code=code) from None
        except PollError:
            await self._abort()
            raise
        log.info(
            "olt session opened",
            extra={"target_id": self.target_id, "host": self.host, "mode": str(self.screen.mode)},
        )
        await self._setup()

    async def _setup(self) -> None:
        """enable, undo smart, scroll (512, else plain), infoswitch cli OFF."""
        await self.run("undo smart", timeout=self.login_timeout, tolerate=True)
        for command in ("scroll 512", "scroll"):
            try:
                await self.run(command, timeout=self.login_timeout)
                break
            except CliError:
                continue  # an OLT that pages: the screen answers the pager
        await self.run("infoswitch cli OFF", timeout=self.login_timeout, tolerate=True)

    async def run(
        self,
        command: str,
        *,
        mode: str = "enable",
        interface: str | None = None,
        timeout: float = 30.0,  # noqa: ASYNC109 - an overrun also breaks the session
        confirm: bool = False,
        tolerate: bool = False,
    ) -> str:
        """Run `command` in `mode` (enable | config | interface, with interface "gpon F/S");
        its cleaned output. CliError for a device error (unless `tolerate`: then the
        output anyway), PollError when the session broke (it is closed then)."""
        if self.broken or self._process is None:
            raise PollError("the session is closed", code="disconnected")
        target = cli.mode_for(mode, interface)
        attempt = 0
        while True:
            try:
                for step in cli.steps(self.screen.mode or cli.Mode(cli.USER), target):
                    await self._exchange(step, limit=timeout, confirm=False)
                return await self._exchange(command, limit=timeout, confirm=confirm)
            except CliError as exc:
                if tolerate:
                    return exc.output
                if exc.code != "busy" or attempt >= self.busy_retries:
                    raise
                attempt += 1
                log.info(
                    "olt busy, retrying",
                    extra={"target_id": self.target_id, "attempt": attempt, "command": command},
                )
                await asyncio.sleep(self.busy_backoff * attempt)

    async def _exchange(self, command: str, *, limit: float, confirm: bool) -> str:
        send = self.screen.command(command, confirm=confirm)
        try:
            async with asyncio.timeout(limit):
                self._write(send.text)
                action = await self._read_until_done(command)
        except TimeoutError:
            await self._break("timeout")
            raise PollError(
                f"{self.host}:{self.port} gave no prompt within {limit:g} s after {command!r}",
                code="timeout",
            ) from None
        except (OSError, asyncssh.Error) as exc:
            await self._break("disconnected")
            raise PollError(
                f"{self.host}:{self.port} connection lost during {command!r}: {_reason(exc)}",
                code="disconnected",
            ) from None
        except asyncio.CancelledError:
            # Cut short mid-exchange (a job's timeout, fencing): what the OLT still sends
            # belongs to this command, so the session cannot serve another one. Dropped
            # at once, without awaiting anything more.
            self.broken = True
            if self._conn is not None:
                self._conn.abort()  # the next user awaits its end in close()
            raise
        if isinstance(action, cli.Error):
            if action.code == "console_timeout":
                await self._break(action.code)
            raise CliError(action.message, code=action.code, output=action.output)
        return action.output

    async def _read_until_done(self, command: str | None) -> cli.Done | cli.Error:
        """Feed the screen until the prompt comes back; answer what it asks meanwhile."""
        assert self._process is not None
        while True:
            chunk = await self._process.stdout.read(65536)
            if not chunk:
                ended = self.screen.eof()
                if ended is not None:
                    return ended
                await self._break("disconnected")
                what = f"during {command!r}" if command else "at login"
                raise PollError(
                    f"{self.host}:{self.port} closed the session {what}", code="disconnected"
                )
            for action in self.screen.feed(chunk):
                if isinstance(action, cli.Send):
                    self._write(action.text)
                else:
                    return action

    def _write(self, text: str) -> None:
        assert self._process is not None
        self._process.stdin.write(text)

    async def _break(self, why: str) -> None:
        if not self.broken:
            log.warning("olt session broken", extra={"target_id": self.target_id, "reason": why})
        self.broken = True
        await self._abort()

    async def _abort(self) -> None:
        conn, self._conn, self._process = self._conn, None, None
        self.closed = True
        if conn is not None:
            conn.abort()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await conn.wait_closed()

    async def close(self, within: float = 3.0) -> None:
        """Log out (`quit`, confirmed) and close; bounded by `within` s, never raises."""
        if self._process is None or self.broken:
            await self._abort()
            return
        with contextlib.suppress(PollError, TimeoutError, OSError, asyncssh.Error):
            async with asyncio.timeout(within):
                mode = self.screen.mode or cli.Mode(cli.USER)
                if mode.level in (cli.CONFIG, cli.INTERFACE):
                    await self._exchange("return", limit=within, confirm=False)
                # The OLT asks "Are you sure to log out? (y/n)[n]:" and closes after "y".
                self._write(self.screen.command("quit", confirm=True).text)
                while True:
                    chunk = await self._process.stdout.read(65536)
                    if not chunk:
                        break
                    for action in self.screen.feed(chunk):
                        if isinstance(action, cli.Send):
                            self._write(action.text)
        await self._abort()
        log.info("olt session closed", extra={"target_id": self.target_id})


def _pinned(host_key: object) -> tuple[list[asyncssh.SSHKey], list, list] | None:
    """known_hosts for asyncssh: only this key is trusted (None: no check)."""
    if not host_key:
        return None
    try:
        key = asyncssh.import_public_key(str(host_key))
    except (asyncssh.KeyImportError, ValueError):
        raise PollError("the pinned host key cannot be read", code="bad_credentials") from None
    return [key], [], []


def _reason(exc: BaseException) -> str:
    """A foreign error as a short safe text (asyncssh reasons hold no secrets)."""
    if isinstance(exc, asyncssh.Error):
        return exc.reason or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


@dataclass(eq=False)
class _Olt:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session: CliSession | None = None
    last_used: float = 0.0
    failures: int = 0
    opened_at: float | None = None  # when the circuit opened
    logged_in: float = 0.0  # when the current session logged in


class OltSessions:
    """The agent's SSH sessions to OLTs: one per OLT, serialized, reused, guarded."""

    def __init__(
        self,
        *,
        idle_close: float = 120.0,
        max_age: float = 1800.0,
        failures_to_open: int = 3,
        cooldown: float = 60.0,
        busy_retries: int = 3,
        busy_backoff: float = 0.5,
        connect_timeout: float = 10.0,
        login_timeout: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age = max_age
        self.idle_close, self.failures_to_open, self.cooldown = (
            idle_close,
            failures_to_open,
            cooldown,
        )
        self.busy_retries, self.busy_backoff = busy_retries, busy_backoff
        self.connect_timeout, self.login_timeout = connect_timeout, login_timeout
        self.clock = clock
        self._olts: dict[int, _Olt] = {}
        self._closing: dict[int, asyncio.Task[None]] = {}  # forgotten, still logging out
        self._reaper: asyncio.Task[None] | None = None

    def open_count(self, target_id: int) -> int:
        """Sessions open to this OLT now (0 or 1)."""
        olt = self._olts.get(target_id)
        return int(olt is not None and olt.session is not None and olt.session.open)

    @contextlib.asynccontextmanager
    async def session(
        self, target_id: int, host: str, port: int, credentials: Mapping[str, Any]
    ) -> AsyncIterator[CliSession]:
        """The OLT's one session, for this caller alone until the block ends."""
        closing = self._closing.get(target_id)
        if closing is not None:  # a forgotten session still logging out: still one at most
            await asyncio.wait([closing])
        olt = self._olts.setdefault(target_id, _Olt())
        self._check_circuit(target_id, olt)
        self._start_reaper()
        async with olt.lock:
            self._check_circuit(target_id, olt)
            session = olt.session
            # Idle too long, or in use too long: a session is reused for a bounded time
            # (a fresh login now and then also picks up changed OLT-side settings).
            now = self.clock()
            stale = now - olt.last_used >= self.idle_close or now - olt.logged_in >= self.max_age
            if session is not None and (
                session.broken
                or not session.open
                or stale
                or not session.same_login(host, port, credentials)
            ):
                olt.session = None
                await session.close()
            if olt.session is None:
                olt.session = await self._connect(target_id, olt, host, port, credentials)
                olt.logged_in = self.clock()
            session = olt.session
            try:
                yield session
            finally:
                olt.last_used = self.clock()
                if session.broken:
                    # Kept until the next use or the reaper closes it (awaiting the
                    # connection's end), so a new login never overlaps the old one.
                    self._failed(target_id, olt, "broken")
                else:
                    olt.failures, olt.opened_at = 0, None

    async def _connect(
        self, target_id: int, olt: _Olt, host: str, port: int, credentials: Mapping[str, Any]
    ) -> CliSession:
        session = CliSession(
            target_id,
            host,
            port,
            credentials,
            connect_timeout=self.connect_timeout,
            login_timeout=self.login_timeout,
            busy_retries=self.busy_retries,
            busy_backoff=self.busy_backoff,
        )
        try:
            await session.connect()
        except PollError as exc:
            if exc.code in TRANSPORT_CODES:
                self._failed(target_id, olt, exc.code)
            log.warning(
                "olt connect failed",
                extra={"target_id": target_id, "code": exc.code, "reason": str(exc)},
            )
            raise
        return session

    def _check_circuit(self, target_id: int, olt: _Olt) -> None:
        if olt.opened_at is None:
            return
        left = olt.opened_at + self.cooldown - self.clock()
        if left > 0:
            raise PollError(
                f"target {target_id}: {olt.failures} failures in a row; next try in {left:.0f} s",
                code="circuit_open",
            )
        # Cooldown over: this caller (the lock admits one) makes the trial connection.

    def _failed(self, target_id: int, olt: _Olt, why: str) -> None:
        olt.failures += 1
        if olt.failures >= self.failures_to_open:
            if olt.opened_at is None or self.clock() - olt.opened_at >= self.cooldown:
                log.warning(
                    "olt circuit open",
                    extra={"target_id": target_id, "failures": olt.failures, "reason": why},
                )
            olt.opened_at = self.clock()

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        """Close sessions idle for `idle_close` seconds (checked every idle_close / 4)."""
        while True:
            await asyncio.sleep(max(self.idle_close / 4, 0.01))
            for target_id, olt in list(self._olts.items()):
                if olt.session is None or olt.lock.locked():
                    continue
                if self.clock() - olt.last_used < self.idle_close:
                    continue
                async with olt.lock:
                    session, olt.session = olt.session, None
                    if session is not None:
                        log.info("olt session idle", extra={"target_id": target_id})
                        await session.close()

    def forget(self, target_id: int) -> None:
        """Close this OLT's session (in the background) and drop its state."""
        olt = self._olts.pop(target_id, None)
        if olt is None:
            return
        task = asyncio.get_running_loop().create_task(self._close_olt(olt))
        self._closing[target_id] = task
        task.add_done_callback(lambda _: self._closing.pop(target_id, None))

    async def release(self, target_id: int) -> None:
        """Close this OLT's session and drop its state; returns once logged out (after
        the caller holding the session, a running job, let go of it)."""
        self.forget(target_id)
        closing = self._closing.get(target_id)
        if closing is not None:
            await asyncio.wait([closing])

    async def _close_olt(self, olt: _Olt) -> None:
        async with olt.lock:
            session, olt.session = olt.session, None
            if session is not None:
                await session.close()

    async def close(self) -> None:
        """Close every session (logging out) and stop the reaper."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        olts, self._olts = list(self._olts.values()), {}
        async with asyncio.TaskGroup() as group:
            for olt in olts:
                group.create_task(self._close_olt(olt))
        if self._closing:
            await asyncio.gather(*self._closing.values(), return_exceptions=True)
