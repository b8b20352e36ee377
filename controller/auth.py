"""API tokens: how they are made, stored (as hashes only) and checked on every request.

A request authenticates with `Authorization: Bearer <token>`, or with HTTP Basic auth
whose password is the token (any user name): what GenieACS clients send when their NBI
sits behind an authenticating proxy. Roles: admin (everything), operator (everything but
token management), viewer (reads only), agent (the agent stream, and nothing else: an
agent token leaked from a POP opens no operator API).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from controller.errors import ApiError, Handler

log = logging.getLogger("chronos.auth")

ROLES = ("admin", "operator", "viewer", "agent")
STREAM_PATH = "/api/v1/agents/stream"
TOKEN_PREFIX = "chr_"
_CACHE_SECONDS = 30.0
_TOUCH_SECONDS = 60.0

INSERT_TOKEN = """
INSERT INTO api_tokens (name, role, token_hash) VALUES ($1, $2, $3) RETURNING id
"""
FIND_TOKEN = """
SELECT id, name, role FROM api_tokens WHERE token_hash = $1 AND revoked IS NULL
"""
TOUCH_TOKEN = "UPDATE api_tokens SET last_used = now() WHERE id = $1"
REVOKE_TOKEN = "UPDATE api_tokens SET revoked = now() WHERE name = $1 AND revoked IS NULL"
LIST_TOKENS = """
SELECT id, name, role, created, last_used, revoked FROM api_tokens ORDER BY id
"""


@dataclass(frozen=True, slots=True)
class Principal:
    token_id: int
    name: str
    role: str

    @property
    def can_write(self) -> bool:
        return self.role in ("admin", "operator")


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def create_token(conn: asyncpg.Connection | asyncpg.Pool, name: str, role: str) -> str:
    """A new token with `role`; only its hash is stored, so this is the one chance to see it."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    token = new_token()
    await conn.fetchval(INSERT_TOKEN, name, role, hash_token(token))
    log.info("api token created", extra={"label": name, "role": role})
    return token


def credentials(header: str) -> str | None:
    """The token an Authorization header carries (Bearer, or Basic's password)."""
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        return value.strip() or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


class TokenChecker:
    """Looks tokens up, remembering answers briefly so each request costs no query."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._cache: dict[bytes, tuple[float, Principal | None]] = {}
        self._touched: dict[int, float] = {}

    async def check(self, token: str) -> Principal | None:
        digest = hash_token(token)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            principal = hit[1]
        else:
            row = await self.pool.fetchrow(FIND_TOKEN, digest)
            principal = Principal(row["id"], row["name"], row["role"]) if row else None
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[digest] = (now + _CACHE_SECONDS, principal)
        if principal is not None and self._touched.get(principal.token_id, 0) < now:
            self._touched[principal.token_id] = now + _TOUCH_SECONDS
            await self.pool.execute(TOUCH_TOKEN, principal.token_id)
        return principal


CHECKER = web.AppKey("token_checker", TokenChecker)
PRINCIPAL = web.RequestKey("principal", Principal)
OPEN_PATHS = frozenset({"/health", "/ready", "/metrics"})
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in OPEN_PATHS:
        return await handler(request)
    token = credentials(request.headers.get("Authorization", ""))
    principal = await request.app[CHECKER].check(token) if token else None
    if principal is None:
        log.info(
            "request refused: no valid token",
            extra={"path": request.path, "remote": request.remote},
        )
        raise ApiError(
            401,
            "UNAUTHORIZED",
            "a valid API token is required (Bearer, or Basic password)",
            headers={"WWW-Authenticate": 'Bearer, Basic realm="chronos"'},
        )
    if (principal.role == "agent") != (request.path == STREAM_PATH):
        log.warning(
            "request refused: wrong role for path",
            extra={"path": request.path, "role": principal.role, "token": principal.name},
        )
        raise ApiError(403, "FORBIDDEN", f"role {principal.role} may not use {request.path}")
    if request.method not in _READ_METHODS and not principal.can_write:
        raise ApiError(403, "FORBIDDEN", f"role {principal.role} may only read")
    request[PRINCIPAL] = principal
    return await handler(request)


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL]
