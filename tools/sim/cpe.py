"""Simulated CPEs speaking CWMP over real HTTP: one (`SimulatedCpe`) or many (`CpeFleet`).

A `SimulatedCpe` is a device's main loop: it boots, informs ("0 BOOTSTRAP" the first
time, "1 BOOT" after every boot), informs again every PeriodicInformInterval ("2
PERIODIC", with jitter), when its connection request URL is hit ("6 CONNECTION
REQUEST"), when a ScheduleInform comes due ("3 SCHEDULED" + "M ScheduleInform"), after
a Reboot ("1 BOOT" + "M Reboot") or FactoryReset ("0 BOOTSTRAP"), and when a Download
finished ("7 TRANSFER COMPLETE" + "M Download", then a TransferComplete request; an
Upload likewise, with "M Upload").
Each session is `tools.sim.session.CpeSession` fed by an aiohttp client; cookies are
echoed by hand (per CPE, since a fleet shares one ClientSession), a failed session is
retried with TR-069's backoff (3.2.1.1) and undelivered events are kept.

A `CpeFleet` runs N of them in one process with one shared ClientSession and one
connection request listener (127.0.0.1, one path per CPE, Digest-authenticated with
each CPE's own ConnectionRequestUsername/Password), and keeps `FleetStats`.

Command line: `python -m tools.sim.cpe --acs URL --count N` (or `chronos sim cpe`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import random
import secrets
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TextIO

import aiohttp
from aiohttp import web
from yarl import URL

from acs import messages as m
from acs.values import parse_datetime
from tools.sim.datamodel import PROFILES, DataModel, make_identity
from tools.sim.digest import DigestAuthority
from tools.sim.session import CpeSession, Quirks, SessionFailed, State
from tools.sim.stats import FleetStats, Progress, SessionRecord
from tools.sim.template import Settings

log = logging.getLogger("tools.sim.cpe")

MAX_BODY = 16 * 1024 * 1024
MAX_DOWNLOAD = 512 * 1024 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)
# Events a reboot discards; the rest (BOOTSTRAP, M events and their partners) survive.
_LOST_ON_BOOT = frozenset(
    {"1 BOOT", "2 PERIODIC", "4 VALUE CHANGE", "6 CONNECTION REQUEST", "8 DIAGNOSTICS COMPLETE"}
)
_FIRMWARE = "1 Firmware Upgrade Image"
_CONFIG = "3 Vendor Configuration File"
# How a CPE told to fail its downloads fails them: "fault" (the transfer fails, 9010 in
# its TransferComplete), "refuse" (the Download RPC itself is answered with 9010), or
# "no-install" (the transfer reports success but the firmware does not change).
DOWNLOAD_FAILURES = ("fault", "refuse", "no-install")


class SimulatedCpe:
    """One simulated device: its data model and its CWMP session loop."""

    def __init__(
        self,
        acs_url: str,
        *,
        model: str = "tr098",
        seed: int = 0,
        family: str | None = None,
        serial_number: str | None = None,
        quirks: Quirks | None = None,
        http: aiohttp.ClientSession | None = None,
        stats: FleetStats | None = None,
        clock: Callable[[], float] = time.time,
        periodic_interval: int = 300,
        periodic: bool = True,
        jitter: float = 0.1,
        reboot_delay: float = 1.0,
        request_timeout: float = 30.0,
        session_timeout: float = 300.0,
        bootstrapped: bool = False,
        acs_username: str = "",
        acs_password: str = "",
        connection_request_username: str | None = None,
        connection_request_password: str | None = None,
        history: int = 1000,
        download_failure: str | None = None,
    ) -> None:
        if download_failure is not None and download_failure not in DOWNLOAD_FAILURES:
            raise ValueError(f"download_failure must be one of {', '.join(DOWNLOAD_FAILURES)}")
        self.download_failure = download_failure
        identity = make_identity(model, seed, family=family, serial_number=serial_number)
        secret = hashlib.sha256(f"cr|{model}|{seed}|{identity.serial_number}".encode())
        settings = Settings(
            acs_url=acs_url,
            acs_username=acs_username,
            acs_password=acs_password,
            connection_request_username=(
                identity.serial_number
                if connection_request_username is None
                else connection_request_username
            ),
            connection_request_password=(
                secret.hexdigest()[:16]
                if connection_request_password is None
                else connection_request_password
            ),
            periodic_inform_enable=periodic,
            periodic_inform_interval=periodic_interval,
        )
        self.datamodel = DataModel(identity, settings, model=model, seed=seed, clock=clock)
        self.quirks = quirks or Quirks()
        self.stats = stats or FleetStats()
        self.reboot_delay = reboot_delay
        self.request_timeout = request_timeout
        self.session_timeout = session_timeout
        self.jitter = jitter
        self.online = False
        self.history: deque[SessionRecord] = deque(maxlen=history)
        self.session_count = 0
        self._http = http
        self._own_http = http is None
        self._bootstrapped = bootstrapped
        self._rng = random.Random(seed)
        self._events: list[m.EventStruct] = []
        self._requests: list[m.Message] = []
        self._retries = 0
        self._ids = 1
        self._last_acs_url: str | None = acs_url if bootstrapped else None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._finished = asyncio.Condition()
        self._main: asyncio.Task[None] | None = None
        self._timers: set[asyncio.Task[None]] = set()
        self._next_periodic: float | None = None
        self._periodic_basis: tuple[str | None, ...] = ()
        self._acs_auth: tuple[str, str, aiohttp.DigestAuthMiddleware] | None = None

    # --- who the device is ---------------------------------------------------------

    @property
    def device_id(self) -> str:
        """`OUI-ProductClass-SerialNumber`, escaped as GenieACS (and our ACS) does."""
        return self.datamodel.identity.device_id

    @property
    def serial_number(self) -> str:
        return self.datamodel.identity.serial_number

    @property
    def connection_request_url(self) -> str:
        return self._param("ManagementServer.ConnectionRequestURL")

    @connection_request_url.setter
    def connection_request_url(self, url: str) -> None:
        self.datamodel.settings.connection_request_url = url

    @property
    def connection_request_credentials(self) -> tuple[str, str]:
        """(username, password) the ACS must use; the ACS may change them with SPV."""
        return (
            self._param("ManagementServer.ConnectionRequestUsername"),
            self._param("ManagementServer.ConnectionRequestPassword"),
        )

    @property
    def sessions(self) -> list[SessionRecord]:
        """Finished sessions, oldest first (the last `history` of them)."""
        return list(self.history)

    @property
    def pending_events(self) -> list[m.EventStruct]:
        """Events not yet delivered to the ACS."""
        return list(self._events)

    def _param(self, relative: str) -> str:
        return self.datamodel.read(f"{self.datamodel.root}.{relative}") or ""

    # --- lifecycle -------------------------------------------------------------------

    async def start(self, delay: float = 0.0) -> None:
        """Power on after `delay` seconds and run until `stop()`."""
        if self._main is not None:
            raise RuntimeError("already started")
        if self._http is None:
            self._http = new_client_session(limit=4)
        self._main = asyncio.create_task(self._run(delay), name=f"cpe {self.serial_number}")

    async def stop(self) -> None:
        """Power off: cancel the loop and any timers, close an owned HTTP session."""
        self.online = False
        tasks = [t for t in (self._main, *self._timers) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._main = None
        self._timers.clear()
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> SimulatedCpe:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- what makes the device talk ----------------------------------------------------

    def connection_request(self) -> bool:
        """A valid connection request arrived; False if the device is down."""
        if not self.online:
            return False
        self.stats.count_connection_request()
        self.add_event("6 CONNECTION REQUEST")
        return True

    def add_event(self, code: str, command_key: str = "") -> None:
        """Queue an event for the next Inform and wake the device."""
        event = m.EventStruct(code, command_key)
        if code[0].isdigit():  # single events: one of each at most (3.7.1.5)
            self._events = [e for e in self._events if e.event_code != code]
        if event not in self._events:
            self._events.append(event)
        self._wake.set()

    def change_value(self, name: str, value: str) -> None:
        """The device changes a value itself; active notification starts a session."""
        self.datamodel.set_value(name, value)
        if self.datamodel.has_active_change():
            self._wake.set()

    async def wait_for_session(
        self,
        predicate: Callable[[SessionRecord], bool] = lambda record: True,
        *,
        after: int = 0,
    ) -> SessionRecord:
        """The first finished session numbered `after` or later that satisfies `predicate`.

        Waits as long as it takes: wrap it in `asyncio.timeout`.
        """
        async with self._finished:
            while True:
                for record in self.history:
                    if record.index >= after and predicate(record):
                        return record
                await self._finished.wait()

    # --- the device's main loop ---------------------------------------------------------

    async def _run(self, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        self.online = True
        self.datamodel.reboot()
        if not self._bootstrapped:
            self.add_event("0 BOOTSTRAP")
        self.add_event("1 BOOT")
        self._schedule_periodic()
        while True:
            if self._events or self._requests or self.datamodel.has_active_change():
                record = await self.run_session()
                if not record.ok:
                    await self._retry_wait()
                continue
            await self._sleep_until_woken()

    async def _sleep_until_woken(self) -> None:
        loop = asyncio.get_running_loop()
        timeout = None if self._next_periodic is None else self._next_periodic - loop.time()
        self._wake.clear()
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            self.add_event("2 PERIODIC")
            self._schedule_periodic(force=True)

    async def _retry_wait(self) -> None:
        """TR-069 3.2.1.1: wait m*k^(n-1) to m*k^n seconds before retry n (n capped at 10)."""
        minimum = float(self._param("ManagementServer.CWMPRetryMinimumWaitInterval") or 5)
        factor = float(self._param("ManagementServer.CWMPRetryIntervalMultiplier") or 2000)
        n = min(self._retries, 10)
        low = minimum * (factor / 1000) ** (n - 1)
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._rng.uniform(low, low * factor / 1000)):
                await self._wake.wait()  # a connection request ends the wait early

    def _schedule_periodic(self, *, force: bool = False) -> None:
        enable = self._param("ManagementServer.PeriodicInformEnable")
        interval = self._param("ManagementServer.PeriodicInformInterval")
        reference = self._param("ManagementServer.PeriodicInformTime")
        basis = (enable, interval, reference)
        if basis == self._periodic_basis and not force:
            return
        self._periodic_basis = basis
        if enable != "true" or not interval.isdigit() or int(interval) < 1:
            self._next_periodic = None
            return
        seconds = int(interval)
        delay = seconds * (1 + self._rng.uniform(-self.jitter, self.jitter))
        anchor = parse_datetime(reference)
        if anchor is not None and anchor.year > 1:
            # PeriodicInformTime fixes the phase: inform at anchor + k * interval.
            now = self.datamodel.now()
            delay = (anchor.timestamp() - now) % seconds or seconds
        self._next_periodic = asyncio.get_running_loop().time() + delay

    # --- one session ------------------------------------------------------------------------

    async def run_session(self) -> SessionRecord:
        """Hold one session with the ACS now, then carry out what the ACS asked for."""
        async with self._lock:
            url = self._param("ManagementServer.URL")
            if self._last_acs_url is not None and url != self._last_acs_url:
                self.add_event("0 BOOTSTRAP")  # a new ACS URL means a new bootstrap
            events = list(self._events)
            session = CpeSession(
                self.datamodel,
                events,
                self._requests,
                quirks=self.quirks,
                retry_count=self._retries,
                id_base=self._ids,
                refuse_downloads=self.download_failure == "refuse",
            )
            loop = asyncio.get_running_loop()
            started = loop.time()
            self.stats.session_started()
            error = ""
            try:
                async with asyncio.timeout(self.session_timeout):
                    await self._exchange(session, url)
            except asyncio.CancelledError:
                self.stats.session_aborted()
                raise
            except SessionFailed as failure:
                error = str(failure)
            except TimeoutError:
                error = "timeout: no answer in time"
            except (aiohttp.ClientError, OSError) as failure:
                error = f"{type(failure).__name__}: {failure}"
            self._ids = session.next_id
            record = self._settle(session, events, url, started, error)
            self.stats.record(record)
            if not record.ok:
                log.debug("session failed device_id=%s error=%s", self.device_id, error)
            async with self._finished:
                self.history.append(record)
                self._finished.notify_all()
            if record.ok:
                await self._carry_out(session)
            return record

    def _settle(
        self, session: CpeSession, events: list[m.EventStruct], url: str, started: float, error: str
    ) -> SessionRecord:
        ok = session.state is State.DONE and not error
        if session.inform_delivered:  # events count as delivered on InformResponse
            self._events = [e for e in self._events if e not in events]
            self._last_acs_url = url
        for request in session.delivered:
            self._requests.remove(request)
        if ok:
            self._retries = 0
        else:
            self._retries += 1
            # 6 CONNECTION REQUEST is not retried: the ACS will ask again if it cares.
            self._events = [e for e in self._events if e.event_code != "6 CONNECTION REQUEST"]
        record = SessionRecord(
            index=self.session_count,
            device_id=self.device_id,
            events=tuple(e.event_code for e in session.events),
            started=started,
            duration=asyncio.get_running_loop().time() - started,
            ok=ok,
            error=error if not ok else "",
            rpcs=session.rpcs,
            faults=session.faults,
        )
        self.session_count += 1
        return record

    async def _exchange(self, session: CpeSession, url: str) -> None:
        cookies = SessionCookies(attributes=self.quirks.cookie_attributes)
        http = self._http
        assert http is not None
        dedicated = None
        if not self.quirks.cookies:
            # No cookies: the ACS must recognise the session by its TCP connection.
            dedicated = http = new_client_session(limit=1)
        try:
            body: bytes | None = session.start()
            first = True
            while body is not None:
                status, reply, url = await self._post(http, url, body, cookies, first)
                first = False
                body = session.receive(status, reply)
        finally:
            if dedicated is not None:
                await dedicated.close()

    async def _post(
        self,
        http: aiohttp.ClientSession,
        url: str,
        body: bytes,
        cookies: SessionCookies,
        follow_redirects: bool,
    ) -> tuple[int, bytes, str]:
        basic = False
        for _ in range(6):
            headers = {"User-Agent": f"ChronosSim-CPE/{self.datamodel.profile.name}"}
            if body:
                headers["Content-Type"] = 'text/xml; charset="utf-8"'
                headers["SOAPAction"] = ""
            if self.quirks.cookies and (cookie := cookies.header()):
                headers["Cookie"] = cookie
            username, password = self._acs_credentials()
            if basic:
                headers["Authorization"] = aiohttp.encode_basic_auth(username, password)
            middlewares = (self._acs_digest(username, password),) if username and not basic else ()
            async with http.post(
                url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.request_timeout),
                middlewares=middlewares,
            ) as response:
                if self.quirks.cookies:
                    cookies.update(response.headers.getall("Set-Cookie", ()))
                location = response.headers.get("Location")
                if follow_redirects and response.status in _REDIRECTS and location:
                    # 3.4.5: follow redirects on the session's first request, then keep
                    # using the new URL for the rest of the session.
                    url = str(response.url.join(URL(location)))
                    continue
                challenge = response.headers.get("WWW-Authenticate", "")
                if (
                    response.status == 401
                    and username
                    and not basic
                    and challenge[:5].lower() == "basic"
                ):
                    basic = True
                    continue
                return response.status, await read_limited(response, MAX_BODY), url
        raise SessionFailed("too many redirects or authentication rounds")

    def _acs_credentials(self) -> tuple[str, str]:
        return self._param("ManagementServer.Username"), self._param("ManagementServer.Password")

    def _acs_digest(self, username: str, password: str) -> aiohttp.DigestAuthMiddleware:
        # One middleware per CPE: it remembers the ACS's challenge and counts nonces.
        if self._acs_auth is None or self._acs_auth[:2] != (username, password):
            middleware = aiohttp.DigestAuthMiddleware(username, password)
            self._acs_auth = (username, password, middleware)
        return self._acs_auth[2]

    # --- after the session ----------------------------------------------------------------

    async def _carry_out(self, session: CpeSession) -> None:
        actions = session.actions
        for delay, key in actions.schedule_informs:
            self._timer(self._scheduled_inform(delay, key))
        for download in actions.downloads:
            self._timer(self._download(download))
        for upload in actions.uploads:
            self._timer(self._upload(upload))
        if actions.factory_reset:
            await self._reboot(factory=True)
        elif actions.reboot is not None:
            await self._reboot(events=[("M Reboot", actions.reboot)])
        self._schedule_periodic()  # the ACS may have changed the interval

    def _timer(self, coroutine: object) -> None:
        task = asyncio.create_task(coroutine)  # type: ignore[arg-type]
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def _reboot(
        self, *, factory: bool = False, events: Iterable[tuple[str, str]] = ()
    ) -> None:
        """Go down for `reboot_delay` seconds, come back and announce the boot."""
        self.online = False
        await asyncio.sleep(self.reboot_delay)
        if factory:
            for task in list(self._timers):
                if task is not asyncio.current_task():
                    task.cancel()
            self.datamodel.factory_reset()
            self._events.clear()
            self._requests.clear()
            self._last_acs_url = None
            self.add_event("0 BOOTSTRAP")
        else:
            self.datamodel.reboot()
            self._events = [e for e in self._events if e.event_code not in _LOST_ON_BOOT]
        self.add_event("1 BOOT")
        for code, key in events:
            self.add_event(code, key)
        self.online = True
        self._schedule_periodic(force=True)

    async def _scheduled_inform(self, delay: int, command_key: str) -> None:
        await asyncio.sleep(delay)
        self.add_event("3 SCHEDULED")
        self.add_event("M ScheduleInform", command_key)

    async def _download(self, request: m.Download) -> None:
        await asyncio.sleep(request.delay_seconds)
        started = datetime.fromtimestamp(int(self.datamodel.now()), UTC)
        fault = await self._fetch(request)
        completed = datetime.fromtimestamp(int(self.datamodel.now()), UTC)
        self.stats.downloads += 1
        async with self._lock:  # never in the middle of a session
            self._requests.append(
                m.TransferComplete(request.command_key, fault, started, completed)
            )
            installs = self.download_failure != "no-install"
            if fault.code == 0 and request.file_type == _FIRMWARE and installs:
                self.datamodel.install_firmware(firmware_version(request))
            events = [("7 TRANSFER COMPLETE", ""), ("M Download", request.command_key)]
            if fault.code == 0 and request.file_type in (_FIRMWARE, _CONFIG):
                await self._reboot(events=events)
            else:
                for code, key in events:
                    self.add_event(code, key)

    async def _fetch(self, request: m.Download) -> m.FaultStruct:
        """GET the file (loopback only); the FaultStruct for TransferComplete."""
        if self.download_failure == "fault":
            return m.FaultStruct(9010, "Download failure: simulated")
        url = URL(request.url)
        if url.scheme not in ("http", "https"):
            return m.FaultStruct(9013, f"Unsupported protocol for file transfer: {url.scheme}")
        if not is_loopback(url.host or ""):
            return m.FaultStruct(
                9015, "Download failure: unable to contact file server (simulator: loopback only)"
            )
        http = self._http
        assert http is not None
        middlewares: tuple[aiohttp.DigestAuthMiddleware, ...] = ()
        headers: dict[str, str] = {}
        size = 0
        if request.username:
            middlewares = (aiohttp.DigestAuthMiddleware(request.username, request.password),)
        try:
            for attempt in range(2):
                async with http.get(
                    url,
                    headers=headers,
                    middlewares=middlewares,
                    timeout=aiohttp.ClientTimeout(total=max(self.request_timeout, 60)),
                ) as response:
                    challenge = response.headers.get("WWW-Authenticate", "")
                    if response.status == 401:
                        if attempt == 0 and request.username and challenge[:5].lower() == "basic":
                            basic = aiohttp.encode_basic_auth(request.username, request.password)
                            headers, middlewares = {"Authorization": basic}, ()
                            continue
                        return m.FaultStruct(9012, "File transfer server authentication failure")
                    if response.status >= 400:
                        return m.FaultStruct(
                            9016,
                            f"Download failure: unable to access file (HTTP {response.status})",
                        )
                    size = 0
                    async for chunk in response.content.iter_chunked(65536):
                        size += len(chunk)
                        if size > MAX_DOWNLOAD:
                            return m.FaultStruct(9017, "Download failure: file too large")
                    break
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            return m.FaultStruct(9015, f"Download failure: unable to contact file server: {error}")
        if request.file_size and size < request.file_size:
            return m.FaultStruct(9017, "Download failure: unable to complete download")
        if request.file_size and size != request.file_size:
            return m.FaultStruct(9018, "Download failure: file corrupted")
        return m.FaultStruct(0, "")

    async def _upload(self, request: m.Upload) -> None:
        await asyncio.sleep(request.delay_seconds)
        started = datetime.fromtimestamp(int(self.datamodel.now()), UTC)
        fault = await self._send(request)
        completed = datetime.fromtimestamp(int(self.datamodel.now()), UTC)
        async with self._lock:  # never in the middle of a session
            self._requests.append(
                m.TransferComplete(request.command_key, fault, started, completed)
            )
            self.add_event("7 TRANSFER COMPLETE")
            self.add_event("M Upload", request.command_key)

    def upload_content(self, file_type: str) -> tuple[bytes, str, str]:
        """What this CPE uploads for an Upload FileType: (bytes, file name, content type)."""
        if "Log File" in file_type:
            return self._log(), "device.log", "text/plain"
        return configuration_backup(self.datamodel), "config.cfg", "text/plain"

    def _log(self) -> bytes:
        lines = [f"# {self.device_id} CWMP log"]
        for record in self.history:
            outcome = "ok" if record.ok else f"failed: {record.error}"
            lines.append(f"session {record.index} events={','.join(record.events)} {outcome}")
        return ("\n".join(lines) + "\n").encode()

    async def _send(self, request: m.Upload) -> m.FaultStruct:
        """PUT the file (POST multipart with quirk `upload_post`) to a loopback URL; the
        FaultStruct for TransferComplete (A.4.1.5 and A.5.1: 9011, 9012, 9013)."""
        url = URL(request.url)
        if url.scheme not in ("http", "https"):
            return m.FaultStruct(9013, f"Unsupported protocol for file transfer: {url.scheme}")
        if not is_loopback(url.host or ""):
            return m.FaultStruct(
                9011, "Upload failure: unable to contact file server (simulator: loopback only)"
            )
        content, name, content_type = self.upload_content(request.file_type)
        http = self._http
        assert http is not None
        middlewares: tuple[aiohttp.DigestAuthMiddleware, ...] = ()
        headers: dict[str, str] = {}
        if request.username:
            middlewares = (aiohttp.DigestAuthMiddleware(request.username, request.password),)
        try:
            for attempt in range(2):
                data: aiohttp.FormData | bytes = content
                if self.quirks.upload_post:
                    data = aiohttp.FormData()
                    data.add_field("file", content, filename=name, content_type=content_type)
                else:
                    headers["Content-Type"] = content_type
                async with http.request(
                    "POST" if self.quirks.upload_post else "PUT",
                    url,
                    data=data,
                    headers=headers,
                    middlewares=middlewares,
                    timeout=aiohttp.ClientTimeout(total=max(self.request_timeout, 60)),
                ) as response:
                    challenge = response.headers.get("WWW-Authenticate", "")
                    if response.status == 401:
                        if attempt == 0 and request.username and challenge[:5].lower() == "basic":
                            basic = aiohttp.encode_basic_auth(request.username, request.password)
                            headers, middlewares = {"Authorization": basic}, ()
                            continue
                        return m.FaultStruct(9012, "File transfer server authentication failure")
                    if response.status >= 400:
                        return m.FaultStruct(
                            9011, f"Upload failure: the server answered HTTP {response.status}"
                        )
                    return m.FaultStruct(0, "")
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            return m.FaultStruct(9011, f"Upload failure: unable to contact file server: {error}")
        return m.FaultStruct(9012, "File transfer server authentication failure")


def configuration_backup(model: DataModel) -> bytes:
    """The device's configuration as its backup: a `name<TAB>type<TAB>value` line per
    parameter (backslashes and newlines in values escaped), after a header line."""
    names = [p.name for p in model.get_parameter_names("", False) if not p.name.endswith(".")]
    identity = model.identity
    lines = [f"# {identity.manufacturer} {identity.product_class} {identity.serial_number}"]
    for value in model.get_parameter_values(names):
        text = value.value.replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"{value.name}\t{value.type}\t{text}")
    return ("\n".join(lines) + "\n").encode()


class SessionCookies:
    """The cookies of one session, echoed on every request (the CPE's cookie jar)."""

    def __init__(self, *, attributes: bool = False) -> None:
        self.attributes = attributes
        self._cookies: dict[str, tuple[str, str]] = {}  # name -> (value, path)

    def update(self, set_cookie_headers: Iterable[str]) -> None:
        """Take in Set-Cookie headers; Max-Age=0 or a past Expires deletes a cookie."""
        for header in set_cookie_headers:
            first, *attributes = header.split(";")
            name, sep, value = first.partition("=")
            name = name.strip()
            if not sep or not name:
                continue
            path, expired = "/", False
            for attribute in attributes:
                key, _, argument = attribute.strip().partition("=")
                key = key.lower()
                if key == "path" and argument:
                    path = argument
                elif key == "max-age":
                    expired = argument.strip().lstrip("-").isdigit() and int(argument) <= 0
                elif key == "expires":
                    with contextlib.suppress(ValueError, TypeError, IndexError):
                        expired = parsedate_to_datetime(argument) < datetime.now(UTC)
            if expired:
                self._cookies.pop(name, None)
            else:
                self._cookies[name] = (value.strip(), path)

    def header(self) -> str | None:
        """The Cookie header to send, or None when there is no cookie."""
        if not self._cookies:
            return None
        if not self.attributes:
            return "; ".join(f"{n}={v}" for n, (v, _) in self._cookies.items())
        # RFC 2109 style, as some CPE HTTP stacks still write it.
        parts = ['$Version="1"']
        for name, (value, path) in self._cookies.items():
            parts += [f"{name}={value}", f'$Path="{path}"']
        return "; ".join(parts)


def new_client_session(limit: int) -> aiohttp.ClientSession:
    """An HTTP client as CPEs need it: no shared cookie jar, bounded connections."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, limit_per_host=0, force_close=False),
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=60),
    )


async def read_limited(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, refusing more than `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise SessionFailed(f"ACS answer larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine (the simulator never fetches from elsewhere)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def firmware_version(request: m.Download) -> str:
    """The version a firmware image installs: its file name without the extension."""
    name = request.target_file_name or URL(request.url).name
    for extension in (".bin", ".img", ".fw", ".tar", ".gz", ".zip"):
        name = name.removesuffix(extension)
    return name or "upgraded"


# --- the connection request listener ---------------------------------------------------


class ConnectionRequestServer:
    """One HTTP listener for many CPEs: GET /<token> is that CPE's connection request."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        authority: DigestAuthority | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.authority = authority or DigestAuthority()
        self._cpes: dict[str, SimulatedCpe] = {}
        self._runner: web.AppRunner | None = None
        self.requests = 0
        self.refused = 0

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen; the port is known afterwards (`port` 0 picks a free one)."""
        app = web.Application()
        app.router.add_get("/{token}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ConnectionRequestServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def register(self, cpe: SimulatedCpe) -> str:
        """Give `cpe` a path here and make it its ConnectionRequestURL."""
        token = secrets.token_hex(8)
        self._cpes[token] = cpe
        url = f"{self.base_url}/{token}"
        cpe.connection_request_url = url
        return url

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        cpe = self._cpes.get(request.match_info["token"])
        if cpe is None:
            return web.Response(status=404)
        username, password = cpe.connection_request_credentials
        denied = await self.authority.check(
            request, username, password, allow_basic=cpe.quirks.basic_auth
        )
        if denied is not None:
            self.refused += 1
            return denied
        if not cpe.connection_request():
            return web.Response(status=503, text="rebooting")
        return web.Response(status=200)


# --- many CPEs ------------------------------------------------------------------------


class CpeFleet:
    """N simulated CPEs in one process, sharing an HTTP client and a listener."""

    def __init__(
        self,
        acs_url: str,
        count: int,
        *,
        model: str = "tr098",
        family: str | None = None,
        interval: int = 300,
        jitter: float = 0.1,
        spread: float | None = None,
        seed: int = 0,
        quirks: str | Quirks = "none",
        bootstrapped: bool = False,
        reboot_delay: float = 1.0,
        request_timeout: float = 30.0,
        max_connections: int = 256,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        acs_username: str = "",
        acs_password: str = "",
        clock: Callable[[], float] = time.time,
        fail_ratio: float = 0.0,
        download_failure: str = "fault",
    ) -> None:
        if model not in PROFILES:
            raise ValueError(f"unknown model {model!r}")
        if not 0.0 <= fail_ratio <= 1.0:
            raise ValueError("fail_ratio must be between 0 and 1")
        if download_failure not in DOWNLOAD_FAILURES:
            raise ValueError(f"download_failure must be one of {', '.join(DOWNLOAD_FAILURES)}")
        # Which CPEs fail their downloads: round(count * fail_ratio) of them, picked by
        # the seed, so a test knows exactly how many and which.
        picked = random.Random(f"fail|{seed}").sample(range(count), round(count * fail_ratio))
        self._failing = frozenset(picked)
        self._download_failure = download_failure
        self.acs_url = acs_url
        self.count = count
        self.stats = FleetStats()
        self.listener = ConnectionRequestServer(listen_host, listen_port)
        self.cpes: list[SimulatedCpe] = []
        self._spread = interval if spread is None else spread
        self._max_connections = max_connections
        self._http: aiohttp.ClientSession | None = None
        self._options = {
            "model": model,
            "family": family,
            "periodic_interval": interval,
            "jitter": jitter,
            "bootstrapped": bootstrapped,
            "reboot_delay": reboot_delay,
            "request_timeout": request_timeout,
            "acs_username": acs_username,
            "acs_password": acs_password,
            "clock": clock,
        }
        self._seed = seed
        self._quirks = quirks

    def _quirks_for(self, index: int) -> Quirks:
        if isinstance(self._quirks, Quirks):
            return self._quirks
        return Quirks.variety(index) if self._quirks == "mixed" else Quirks()

    async def start(self) -> None:
        """Start the listener, then power the CPEs on spread over `spread` seconds."""
        await self.listener.start()
        self._http = new_client_session(limit=max(1, min(self._max_connections, self.count)))
        for index in range(self.count):
            cpe = SimulatedCpe(
                self.acs_url,
                seed=self._seed + index,
                quirks=self._quirks_for(index),
                http=self._http,
                stats=self.stats,
                download_failure=self._download_failure if index in self._failing else None,
                **self._options,  # type: ignore[arg-type]
            )
            self.listener.register(cpe)
            self.cpes.append(cpe)
        self.stats.cpes = self.count
        for index, cpe in enumerate(self.cpes):
            await cpe.start(delay=self._spread * index / self.count if self.count else 0)

    @property
    def failing(self) -> list[SimulatedCpe]:
        """The CPEs set to fail their downloads (`fail_ratio`)."""
        return [cpe for cpe in self.cpes if cpe.download_failure is not None]

    async def stop(self) -> None:
        """Stop every CPE, the listener and the HTTP client."""
        await asyncio.gather(*(cpe.stop() for cpe in self.cpes))
        await self.listener.stop()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> CpeFleet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_for(self, predicate: Callable[[FleetStats], bool]) -> FleetStats:
        """Wait until `predicate(stats)` holds (wrap it in `asyncio.timeout`)."""
        await self.stats.when(predicate)
        return self.stats

    async def run(
        self,
        duration: float | None = None,
        *,
        stop: asyncio.Event | None = None,
        progress: Progress | None = None,
    ) -> FleetStats:
        """Run for `duration` seconds (or until `stop` is set), then stop everything."""
        stop = stop or asyncio.Event()
        shower = asyncio.create_task(progress.run()) if progress else None
        try:
            if not self.cpes:
                await self.start()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(duration):
                    await stop.wait()
        finally:
            if shower is not None:
                shower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await shower
            await self.stop()
        return self.stats


# --- command line -------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `chronos sim cpe` (and `python -m tools.sim.cpe`)."""
    parser.add_argument("--acs", required=True, metavar="URL", help="the ACS's CWMP URL")
    parser.add_argument("--count", type=int, default=1, metavar="N", help="how many CPEs")
    parser.add_argument("--model", choices=sorted(PROFILES), default="tr098")
    parser.add_argument("--family", help="product family (default: mixed by seed)")
    parser.add_argument(
        "--interval", type=int, default=300, metavar="S", help="periodic inform interval"
    )
    parser.add_argument(
        "--duration", type=float, metavar="S", help="stop after S seconds (default: Ctrl-C)"
    )
    parser.add_argument("--jitter", type=float, default=0.1, help="periodic jitter fraction")
    parser.add_argument(
        "--spread", type=float, metavar="S", help="power-on spread (default: the interval)"
    )
    parser.add_argument("--seed", type=int, default=0, help="first CPE's seed")
    parser.add_argument(
        "--quirks", choices=("none", "mixed"), default="none", help="protocol quirks"
    )
    parser.add_argument(
        "--bootstrapped", action="store_true", help="already known: first Inform is 1 BOOT"
    )
    parser.add_argument("--reboot-delay", type=float, default=1.0, metavar="S")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S", help="per request")
    parser.add_argument("--max-connections", type=int, default=256, metavar="N")
    parser.add_argument("--listen-host", default="127.0.0.1", help="connection request host")
    parser.add_argument("--listen-port", type=int, default=0, help="connection request port")
    parser.add_argument("--acs-username", default="")
    parser.add_argument("--acs-password", default="")
    parser.add_argument(
        "--fail-ratio", type=float, default=0.0, metavar="R", help="share of CPEs failing downloads"
    )
    parser.add_argument(
        "--download-failure", choices=DOWNLOAD_FAILURES, default="fault", help="how they fail"
    )
    parser.add_argument(
        "--progress-every", type=float, default=5.0, metavar="S", help="when not a TTY"
    )
    parser.add_argument("--no-progress", action="store_true", help="only the summary")


async def run(args: argparse.Namespace, stream: TextIO | None = None) -> int:
    """Run a fleet as `args` say; 0 when every session succeeded."""
    out = stream or sys.stdout
    if args.count < 1:
        print("--count must be at least 1", file=sys.stderr)
        return 2
    if not 0.0 <= args.fail_ratio <= 1.0:
        print("--fail-ratio must be between 0 and 1", file=sys.stderr)
        return 2
    fleet = CpeFleet(
        args.acs,
        args.count,
        model=args.model,
        family=args.family,
        interval=args.interval,
        jitter=args.jitter,
        spread=args.spread,
        seed=args.seed,
        quirks=args.quirks,
        bootstrapped=args.bootstrapped,
        reboot_delay=args.reboot_delay,
        request_timeout=args.timeout,
        max_connections=args.max_connections,
        listen_host=args.listen_host,
        listen_port=args.listen_port,
        acs_username=args.acs_username,
        acs_password=args.acs_password,
        fail_ratio=args.fail_ratio,
        download_failure=args.download_failure,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Loops without signal handlers (Windows' raise NotImplementedError, any loop off the
    # main thread RuntimeError) keep Python's default: Ctrl-C ends the run with
    # KeyboardInterrupt instead of a summary.
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    progress = None if args.no_progress else Progress(fleet.stats, out, every=args.progress_every)
    try:
        stats = await fleet.run(args.duration, stop=stop, progress=progress)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
    print(stats.summary(), file=out)
    return 0 if stats.sessions_ok and not stats.sessions_failed else 1


async def main(argv: list[str]) -> int:
    """`python -m tools.sim.cpe ...`: parse `argv` and run the fleet."""
    parser = argparse.ArgumentParser(
        prog="chronos sim cpe", description="Run simulated TR-069 CPEs against an ACS."
    )
    add_arguments(parser)
    return await run(parser.parse_args(argv))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        sys.exit(runner.run(main(sys.argv[1:])))
