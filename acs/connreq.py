"""Connection requests (TR-069 section 3.2.2): asking a CPE to open a session now.

An HTTP GET to the ConnectionRequestURL the CPE reported. CPEs answer 401 with a Digest
challenge; we answer it (aiohttp's DigestAuthMiddleware, RFC 7616). Basic is used only
when configured, because it sends the password in the clear. Every attempt has a
bounded timeout; network failures are retried once by default. Credentials never reach
the log.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
from yarl import URL

_OK = (200, 204)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened; `detail` is the GenieACS-style status text ('' on success)."""

    ok: bool
    url: str
    http_status: int | None
    detail: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str


def _valid_url(url: str) -> URL | None:
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return None
    return parsed


def _basic_offered(response: aiohttp.ClientResponse) -> bool:
    challenges = response.headers.getall("WWW-Authenticate", [])
    return any(c.strip().lower().startswith("basic") for c in challenges)


async def _attempt(
    http: aiohttp.ClientSession,
    url: URL,
    creds: Credentials,
    seconds: float,
    allow_basic: bool,
) -> tuple[int, str]:
    """One GET with Digest; then Basic if that is all the CPE offers and it is allowed."""
    client_timeout = aiohttp.ClientTimeout(total=seconds)
    middlewares: tuple[aiohttp.DigestAuthMiddleware, ...] = ()
    if creds.username and ":" not in creds.username:
        middlewares = (aiohttp.DigestAuthMiddleware(creds.username, creds.password),)
    async with http.get(
        url, timeout=client_timeout, middlewares=middlewares, allow_redirects=False
    ) as response:
        status = response.status
        if status != 401 or not _basic_offered(response):
            return status, ""
    if not allow_basic:
        return 401, "Basic HTTP authentication not allowed"
    basic = {"Authorization": aiohttp.encode_basic_auth(creds.username, creds.password)}
    async with http.get(url, timeout=client_timeout, headers=basic, allow_redirects=False) as again:
        return again.status, ""


async def request_connection(
    http: aiohttp.ClientSession,
    url: str,
    creds: Credentials,
    *,
    seconds: float = 2.0,
    retries: int = 1,
    allow_basic: bool = False,
) -> Outcome:
    """Send a connection request, each attempt bounded by `seconds`; never raises for
    anything the network or the CPE does."""
    started = time.monotonic()

    def outcome(ok: bool, status: int | None, detail: str) -> Outcome:
        return Outcome(ok, url, status, detail, round((time.monotonic() - started) * 1000))

    parsed = _valid_url(url)
    if parsed is None:
        return outcome(False, None, "Invalid connection request URL or protocol")
    detail = ""
    for attempt in range(retries + 1):
        try:
            status, why = await _attempt(http, parsed, creds, seconds, allow_basic)
        except (aiohttp.ClientConnectorError, ConnectionResetError):
            detail = "Device is offline"
        except TimeoutError:
            detail = f"Connection request error: no answer within {seconds:g} s"
        except aiohttp.ClientError as exc:
            detail = f"Connection request error: {type(exc).__name__}"
        else:
            if status in _OK:
                return outcome(True, status, "")
            if why:
                return outcome(False, status, why)
            if status == 401:
                return outcome(
                    False,
                    status,
                    "Connection request error: Incorrect connection request credentials",
                )
            if status == 503:
                return outcome(False, status, "Device is offline")
            return outcome(
                False, status, f"Connection request error: Unexpected status code {status}"
            )
        if attempt < retries:
            await asyncio.sleep(0.2)
    return outcome(False, None, detail)
