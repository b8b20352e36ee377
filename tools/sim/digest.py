"""The server side of HTTP Digest authentication, as a CPE checks connection requests.

RFC 7616 with MD5 and qop=auth, which is what TR-069 (3.2.2) asks of a connection
request: the CPE challenges with a fresh nonce, the ACS answers with
MD5(HA1:nonce:nc:cnonce:auth:HA2). Nonces carry their issue time and an HMAC, so the
authority remembers nothing per challenge; it only tracks the last nonce count seen per
nonce, to refuse replays. An expired nonce with an otherwise correct answer gets a new
challenge marked `stale=true` (RFC 7616 3.3), so the client retries without asking
anyone for a password. Basic is accepted only where the caller allows it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDict

_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)')
_ESCAPED_RE = re.compile(r"\\(.)")
_REQUIRED = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of checking one Authorization header."""

    ok: bool
    stale: bool = False  # the answer was right but for an expired nonce
    reason: str = ""


def parse_auth_params(text: str) -> dict[str, str]:
    """`k=v, k2="quoted \\" value"` as a dict with lower-case keys (RFC 7235 auth-param)."""
    out: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _PARAM_RE.match(text, position)
        if match is None or match.end() == position:
            break
        key, quoted, token = match.groups()
        out[key.lower()] = _ESCAPED_RE.sub(r"\1", quoted) if quoted is not None else token
        position = match.end()
    return out


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class DigestAuthority:
    """Issues challenges and checks answers for one realm."""

    def __init__(
        self,
        realm: str = "ChronosConnect simulated CPE",
        *,
        nonce_lifetime: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        secret: bytes | None = None,
        max_tracked_nonces: int = 65536,
    ) -> None:
        self.realm = realm
        self.nonce_lifetime = nonce_lifetime
        self._clock = clock
        self._secret = secret or os.urandom(32)
        self.opaque = hashlib.sha256(self._secret + b"opaque").hexdigest()[:32]
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._max_tracked = max_tracked_nonces

    # --- challenges ----------------------------------------------------------------

    def new_nonce(self) -> str:
        """A nonce: issue time (ms), 8 random bytes, and an HMAC over both."""
        body = f"{int(self._clock() * 1000):016x}{os.urandom(8).hex()}"
        return body + self._sign(body)

    def challenge(self, *, stale: bool = False) -> str:
        """A `WWW-Authenticate` value with a fresh nonce."""
        value = (
            f'Digest realm="{self.realm}", qop="auth", algorithm=MD5, '
            f'nonce="{self.new_nonce()}", opaque="{self.opaque}"'
        )
        return value + (", stale=true" if stale else "")

    def unauthorized(self, verdict: Verdict, *, allow_basic: bool = False) -> web.Response:
        """The 401 answer to a request that failed `verdict`."""
        headers: CIMultiDict[str] = CIMultiDict()
        headers.add("WWW-Authenticate", self.challenge(stale=verdict.stale))
        if allow_basic:
            headers.add("WWW-Authenticate", f'Basic realm="{self.realm}"')
        return web.Response(status=401, headers=headers, text="401: Unauthorized")

    # --- answers ----------------------------------------------------------------------

    def verify(
        self,
        method: str,
        uri: str,
        authorization: str | None,
        username: str,
        password: str,
        *,
        allow_basic: bool = False,
    ) -> Verdict:
        """Check the `Authorization` header of a `method` request for `uri`."""
        if not authorization:
            return Verdict(False, reason="no credentials")
        scheme, _, rest = authorization.strip().partition(" ")
        if scheme.lower() == "basic":
            return self._basic(rest, username, password, allow_basic)
        if scheme.lower() != "digest":
            return Verdict(False, reason=f"unsupported scheme {scheme!r}")
        params = parse_auth_params(rest)
        missing = [k for k in _REQUIRED if k not in params]
        if missing:
            return Verdict(False, reason=f"missing {', '.join(missing)}")
        if params.get("algorithm", "MD5").upper() != "MD5":
            return Verdict(False, reason=f"algorithm {params['algorithm']} not offered")
        if params["qop"] != "auth":
            return Verdict(False, reason=f"qop {params['qop']} not offered")
        if params["realm"] != self.realm or params.get("opaque", self.opaque) != self.opaque:
            return Verdict(False, reason="realm or opaque does not match the challenge")
        if not _same_target(params["uri"], uri):
            return Verdict(False, reason="uri does not match the request")
        if not hmac.compare_digest(params["username"].encode(), username.encode()):
            return Verdict(False, reason="unknown user")
        nonce = params["nonce"]
        issued = self._issued(nonce)
        if issued is None:
            return Verdict(False, reason="nonce was not issued here")
        ha1 = _md5(f"{username}:{self.realm}:{password}")
        ha2 = _md5(f"{method.upper()}:{params['uri']}")
        expected = _md5(f"{ha1}:{nonce}:{params['nc']}:{params['cnonce']}:auth:{ha2}")
        if not hmac.compare_digest(expected.encode(), params["response"].lower().encode()):
            return Verdict(False, reason="wrong response (wrong password?)")
        if self._clock() - issued > self.nonce_lifetime:
            return Verdict(False, stale=True, reason="nonce expired")
        try:
            count = int(params["nc"], 16)
        except ValueError:
            return Verdict(False, reason="nc is not hexadecimal")
        if count <= self._counts.get(nonce, 0):
            return Verdict(False, reason="nonce count replayed")
        self._remember(nonce, count)
        return Verdict(True)

    async def check(
        self, request: web.Request, username: str, password: str, *, allow_basic: bool = False
    ) -> web.Response | None:
        """None when `request` carries valid credentials, else the 401 to send."""
        verdict = self.verify(
            request.method,
            request.raw_path,
            request.headers.get("Authorization"),
            username,
            password,
            allow_basic=allow_basic,
        )
        return None if verdict.ok else self.unauthorized(verdict, allow_basic=allow_basic)

    # --- internals ----------------------------------------------------------------------

    def _sign(self, body: str) -> str:
        return hmac.new(self._secret, body.encode(), hashlib.sha256).hexdigest()[:32]

    def _issued(self, nonce: str) -> float | None:
        if len(nonce) != 64:
            return None
        body, signature = nonce[:32], nonce[32:]
        if not hmac.compare_digest(self._sign(body), signature):
            return None
        return int(body[:16], 16) / 1000

    def _remember(self, nonce: str, count: int) -> None:
        self._counts[nonce] = count
        self._counts.move_to_end(nonce)
        while len(self._counts) > self._max_tracked:
            self._counts.popitem(last=False)

    @staticmethod
    def _basic(token: str, username: str, password: str, allowed: bool) -> Verdict:
        if not allowed:
            return Verdict(False, reason="Basic is not allowed here")
        try:
            user, _, given = base64.b64decode(token.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return Verdict(False, reason="malformed Basic credentials")
        same_user = hmac.compare_digest(user.encode(), username.encode())
        same_password = hmac.compare_digest(given.encode(), password.encode())
        if same_user and same_password:
            return Verdict(True)
        return Verdict(False, reason="wrong user or password")


def _same_target(given: str, request_target: str) -> bool:
    """The digest-uri names the request target, in origin or absolute form."""
    if given == request_target:
        return True
    if "://" in given:
        path = "/" + given.split("://", 1)[1].partition("/")[2]
        return path == request_target
    return False
