"""The CWMP HTTP server: a thin loop that feeds POST bodies to `Session` and answers.

Sessions live in this process, found by their cookie or, for CPEs that drop cookies, by
the TCP connection they arrived on; a load balancer in front of several ACS processes
keeps a CPE on one of them for a session with cookie or connection affinity. Between
sessions nothing is kept here: the device, its tree and its tasks are in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from acs import health, metrics, soap
from acs import messages as m
from acs import session as s
from acs.catalog import CatalogCache
from acs.faults import CwmpFault, MethodNotSupported
from acs.files import FileUrls
from acs.store import CwmpStore, LeaseLost, StoreConfig
from schemas.config import AcsConfig
from schemas.sealing import Sealer

log = logging.getLogger("chronos.acs")

COOKIE = "session"
# Content types no CPE sends for SOAP; anything else (or none) is tried as XML.
_REFUSED_TYPES = ("application/json", "multipart/", "application/x-www-form-urlencoded")
_DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
_XML_TYPE = 'text/xml; charset="utf-8"'


@dataclass(slots=True)
class _Live:
    session: s.Session
    expires: float
    started: float


class Sessions:
    """Open sessions by id, plus the connection each was last seen on."""

    def __init__(self) -> None:
        self.by_id: dict[str, _Live] = {}
        # transport -> session id; entries go when their session does.
        self.by_connection: dict[object, str] = {}

    def find(self, request: web.Request) -> _Live | None:
        now = time.monotonic()
        for sid in _session_cookies(request.headers.get("Cookie", "")):
            live = self.by_id.get(sid)
            if live is not None and live.expires > now:
                return live
        sid = self.by_connection.get(request.transport) if request.transport else None
        live = self.by_id.get(sid) if sid else None
        return live if live is not None and live.expires > now else None

    def add(self, live: _Live, request: web.Request) -> None:
        self.by_id[live.session.id] = live
        if request.transport is not None:
            self.by_connection[request.transport] = live.session.id

    def drop(self, live: _Live) -> None:
        sid = live.session.id
        if self.by_id.pop(sid, None) is not None:
            metrics.SESSIONS_ACTIVE.dec()
            for transport in [t for t, v in self.by_connection.items() if v == sid]:
                del self.by_connection[transport]

    def expired(self) -> list[_Live]:
        now = time.monotonic()
        return [live for live in self.by_id.values() if live.expires <= now]


def _session_cookies(header: str) -> list[str]:
    """Our session ids in a Cookie header; tolerant of `$Version`/`$Path` and quotes."""
    out = []
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == COOKIE and value:
            out.append(value.strip().strip('"'))
    return out


STORE = web.AppKey("cwmp_store", CwmpStore)
SESSIONS = web.AppKey("cwmp_sessions", Sessions)
SETTINGS = web.AppKey("acs_config", AcsConfig)
SESSION_CONFIG = web.AppKey("session_config", s.SessionConfig)
CATALOG = web.AppKey("catalog", CatalogCache)


def _same_device(session: s.Session, inform: m.Inform) -> bool:
    ident = inform.device_id
    return session.device_id == s.device_id(ident.oui, ident.product_class, ident.serial_number)


def _envelope_id(session: s.Session) -> str:
    return f"{session.id[:12]}.{session.rpcs_sent}"


def _xml_response(session: s.Session, message: m.Message, request_id: str | None) -> web.Response:
    body = soap.encode(
        message,
        id=request_id or _envelope_id(session),
        cwmp_ns=session.cwmp_ns,
        xml_declaration=session.options.get("xml_declaration", True),
        hold_requests=session.options.get("hold_requests"),
    )
    return web.Response(body=body, headers=_headers(session))


def _headers(session: s.Session) -> dict[str, str]:
    # Written directly: session ids are URL-safe tokens, and http.cookies is slow.
    return {"Content-Type": _XML_TYPE, "Set-Cookie": f"{COOKIE}={session.id}; Path=/; HttpOnly"}


def _fault_response(
    fault: CwmpFault, request_id: str | None, cwmp_ns: str, session: s.Session | None
) -> web.Response:
    metrics.FAULTS.labels(str(fault.fault_code)).inc()
    body = soap.encode(
        fault.to_message(),
        id=request_id or secrets.token_hex(6),
        cwmp_ns=cwmp_ns,
        xml_declaration=session.options.get("xml_declaration", True) if session else True,
    )
    headers = _headers(session) if session else {"Content-Type": _XML_TYPE}
    return web.Response(body=body, headers=headers)


def _refuse(status: int, reason: str, text: str) -> web.Response:
    metrics.BAD_REQUESTS.labels(reason).inc()
    return web.Response(status=status, text=text + "\n")


class CwmpHandler:
    """Per-app handler state; one instance per Application."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.config = app[SETTINGS]
        self.limits = soap.Limits(max_body_bytes=self.config.max_body_bytes)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        content_type = request.headers.get("Content-Type", "").lower()
        if content_type.startswith(_REFUSED_TYPES):
            return _refuse(415, "content_type", f"CWMP expects text/xml, not {content_type}")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _refuse(413, "too_large", f"body exceeds {self.config.max_body_bytes} bytes")
        sessions = self.app[SESSIONS]
        live = sessions.find(request)
        try:
            envelope = soap.decode(body, self.limits)
        except soap.UnknownMethod as exc:
            session = live.session if live else None
            log.warning("unknown CWMP method", extra={"method": exc.method})
            return _fault_response(
                MethodNotSupported(str(exc)), exc.header.id, exc.cwmp_ns, session
            )
        except soap.SoapError as exc:
            log.warning("bad CWMP body", extra={"error": str(exc), "peer": request.remote})
            return _refuse(exc.status, "malformed", f"bad CWMP message: {exc}")
        # A session of another device, found by a cookie or a reused connection, is none
        # of this CPE's business: its Inform opens a session of its own.
        if (
            envelope is not None
            and isinstance(envelope.body, m.Inform)
            and (live is None or not _same_device(live.session, envelope.body))
        ):
            return await self._begin(request, envelope)
        if live is None:
            return _refuse(400, "no_session", "no CWMP session here: start one with an Inform")
        return await self._continue(request, live, envelope)

    async def _begin(self, request: web.Request, envelope: m.Envelope) -> web.StreamResponse:
        started = time.perf_counter()
        session = s.Session(secrets.token_urlsafe(18), self.app[SESSION_CONFIG])
        try:
            session.receive(envelope)
        except s.ProtocolError as exc:
            return self._protocol_error(exc, envelope, session)
        records = session.take_records()
        inform = records[0]
        assert isinstance(inform, s.InformRecord)
        store = self.app[STORE]
        try:
            options = await store.begin(session.id, inform, self._lease(session))
        except _DB_ERRORS as exc:
            return self._db_failure(exc, session)
        if options is None:
            metrics.SESSIONS.labels("refused").inc()
            log.info("session refused: device busy", extra={"device_id": session.device_id})
            return web.Response(
                status=503,
                text="another CWMP session for this device is open\n",
                headers={"Retry-After": str(session.timeout)},
            )
        session.set_options(options)
        live = _Live(session, time.monotonic() + session.timeout, time.monotonic())
        self.app[SESSIONS].add(live, request)
        metrics.SESSIONS_ACTIVE.inc()
        events = [e.event_code for e in inform.inform.events]
        log.info("inform", extra={"device_id": session.device_id, "events": events})
        reply = session.next_reply()
        assert isinstance(reply, s.Send)
        response = _xml_response(session, reply.message, envelope.header.id)
        metrics.INFORM_SECONDS.observe(time.perf_counter() - started)
        return response

    async def _continue(
        self, request: web.Request, live: _Live, envelope: m.Envelope | None
    ) -> web.StreamResponse:
        session = live.session
        live.expires = time.monotonic() + session.timeout
        self.app[SESSIONS].add(live, request)  # the CPE may have opened a new connection
        request_id = envelope.header.id if envelope is not None else None
        try:
            session.receive(envelope)
            if envelope is not None and isinstance(envelope.body, m.CPE_REQUESTS):
                metrics.CPE_REQUESTS.labels(type(envelope.body).__name__).inc()
            reply = await self._settle(session)
        except s.ProtocolError as exc:
            return self._protocol_error(exc, envelope, session)
        except LeaseLost:
            self._end(live, "lease_lost")
            log.warning("session lost its lease", extra={"device_id": session.device_id})
            return web.Response(status=503, text="session expired\n")
        except _DB_ERRORS as exc:
            self._end(live, "error")
            return self._db_failure(exc, session)
        except Exception:
            # A bug of ours must not leave the device locked until its lease runs out.
            log.exception("session failed", extra={"device_id": session.device_id})
            self._end(live, "error")
            await _release(self.app[STORE], session)
            return web.Response(status=500, text="internal error\n")
        if isinstance(reply, s.End):
            self._end(live, "ok")
            return web.Response(status=204, headers=_END_HEADERS)
        message = reply.message
        is_rpc = not isinstance(message, _CPE_REQUEST_REPLIES)
        if is_rpc:
            metrics.RPCS.labels(type(message).__name__).inc()
        return _xml_response(session, message, None if is_rpc else request_id)

    async def _settle(self, session: s.Session) -> s.Send | s.End:
        """Persist what the session recorded and find its answer, loading tasks as needed."""
        store = self.app[STORE]
        assert session.device_id is not None
        lease = self._lease(session)
        while True:
            reply = session.next_reply()
            records = session.take_records()
            for record in records:
                if isinstance(record, s.TaskFailed | s.SessionFault):
                    metrics.FAULTS.labels(record.code).inc()
                elif isinstance(record, s.ChannelResult) and record.fault is not None:
                    metrics.FAULTS.labels(record.fault.code).inc()
            if isinstance(reply, s.LoadDevice):
                if records:
                    await store.commit(session.device_id, session.id, records, lease)
                session.device_loaded(await store.load_device(session.device_id, reply.spec))
                continue
            if isinstance(reply, s.FetchTasks):
                if records:
                    await store.commit(session.device_id, session.id, records, lease)
                tasks = await store.fetch_tasks(
                    session.device_id, session.id, session.attempted, lease
                )
                session.load_tasks(tasks)
                if not tasks:  # the lease went with the empty fetch
                    reply = session.next_reply()
                    assert isinstance(reply, s.End)
                    return reply
                continue
            ending = isinstance(reply, s.End)
            if records or ending:
                await store.commit(session.device_id, session.id, records, lease, release=ending)
            return reply

    def _lease(self, session: s.Session) -> int:
        # A little longer than the session timeout, so the sweeper's release comes first.
        return session.timeout + 5

    def _end(self, live: _Live, outcome: str) -> None:
        self.app[SESSIONS].drop(live)
        metrics.SESSIONS.labels(outcome).inc()
        log.info(
            "session ended",
            extra={
                "device_id": live.session.device_id,
                "outcome": outcome,
                "rpcs": live.session.rpcs_sent,
                "duration_ms": round((time.monotonic() - live.started) * 1000),
            },
        )

    def _protocol_error(
        self, exc: s.ProtocolError, envelope: m.Envelope | None, session: s.Session
    ) -> web.Response:
        log.warning(
            "CWMP protocol error", extra={"device_id": session.device_id, "error": str(exc)}
        )
        if exc.fault is not None:
            request_id = envelope.header.id if envelope else None
            ns = envelope.cwmp_ns if envelope else session.cwmp_ns
            live = session if session.state is not s.State.AWAIT_INFORM else None
            return _fault_response(exc.fault, request_id, ns, live)
        return _refuse(exc.status, "protocol", f"CWMP protocol error: {exc}")

    def _db_failure(self, exc: BaseException, session: s.Session) -> web.Response:
        log.error(
            "database unavailable during session",
            extra={"device_id": session.device_id, "error": type(exc).__name__},
        )
        metrics.SESSIONS.labels("error").inc()
        return web.Response(
            status=503, text="database unavailable\n", headers={"Retry-After": "30"}
        )


# Expire the session cookie with the session.
_END_HEADERS = {"Set-Cookie": f"{COOKIE}=; Path=/; Max-Age=0"}

_CPE_REQUEST_REPLIES = (
    m.InformResponse,
    m.TransferCompleteResponse,
    m.AutonomousTransferCompleteResponse,
    m.GetRPCMethodsResponse,
    m.RequestDownloadResponse,
    m.KickedResponse,
)


async def _release(store: CwmpStore, session: s.Session) -> None:
    """Give a dead session's device back now rather than when its lease runs out."""
    if session.device_id is None:
        return
    try:
        await store.release(session.device_id, session.id)
    except _DB_ERRORS as exc:  # the lease expires on its own
        log.warning("lease release failed", extra={"error": type(exc).__name__})


async def _sweep(app: web.Application) -> AsyncIterator[None]:
    """Close sessions whose CPE went quiet, giving their devices back."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(1.0)
            for live in app[SESSIONS].expired():
                app[SESSIONS].drop(live)
                metrics.SESSIONS.labels("timeout").inc()
                log.info("session timed out", extra={"device_id": live.session.device_id})
                await _release(app[STORE], live.session)

    task = asyncio.create_task(loop(), name="cwmp-session-sweeper")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    # Shutting down: sessions still open here are over (their CPEs will inform again),
    # so their devices are given back now rather than locked until the lease runs out.
    for live in list(app[SESSIONS].by_id.values()):
        app[SESSIONS].drop(live)
        metrics.SESSIONS.labels("shutdown").inc()
        log.info("session ended by shutdown", extra={"device_id": live.session.device_id})
        await _release(app[STORE], live.session)


async def _catalog(app: web.Application) -> AsyncIterator[None]:
    """Presets and provisions, reloaded whenever any process changes them."""
    await app[CATALOG].start()
    yield
    await app[CATALOG].stop()


def create_app(
    pool: asyncpg.Pool,
    config: AcsConfig,
    sealer: Sealer | None,
    dsn: str | None = None,
    *,
    file_urls: FileUrls | None = None,
    link_seconds: int = 3600,
) -> web.Application:
    """The CWMP application (port 7547 by default); the caller owns the pool.

    With `dsn`, catalog changes other processes make are picked up as they happen
    (LISTEN). `file_urls` signs the links Download and Upload RPCs carry (see
    acs.fileserver); without it, downloads of stored files and uploads fault.
    """
    app = web.Application(client_max_size=config.max_body_bytes)
    app[health.POOL] = pool
    app[SETTINGS] = config
    app[STORE] = CwmpStore(
        pool, sealer, StoreConfig(retry_delay=config.retry_delay, max_retries=config.max_retries)
    )
    app[SESSIONS] = Sessions()
    app[CATALOG] = cache = CatalogCache(pool, dsn)
    app[SESSION_CONFIG] = s.SessionConfig(
        timeout=config.session_timeout,
        max_rpcs=config.max_rpcs_per_session,
        unseal=sealer.unseal if sealer else str,
        file_urls=file_urls,
        link_seconds=link_seconds,
        catalog=cache.current,
        retry_delay=config.retry_delay,
        secret_key=sealer.subkey("chronos device secrets") if sealer else b"",
    )
    app.cleanup_ctx.append(_catalog)
    health.add_routes(app)
    handler = CwmpHandler(app)
    # CPEs are configured with any path and query string: every POST is CWMP.
    app.router.add_post("/{tail:.*}", handler.handle)
    app.cleanup_ctx.append(_sweep)
    return app
