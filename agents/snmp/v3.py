"""SNMPv3 (USM authPriv) sessions through pysnmp, with its errors mapped here, once.

USM security (key localisation, HMAC digests, DES/AES privacy, engine-id discovery and
time windows, RFC 3414) is left to pysnmp 7: it is where a home-made implementation
would be wrong in quiet ways. pysnmp answers a request with a tuple
(errorIndication, errorStatus, errorIndex, varBinds) instead of raising; `_check` turns
that tuple, and any exception pysnmp raises, into our `SnmpError` family. No other
module sees a pysnmp type.

pysnmp keeps USM users in one table per `SnmpEngine`, keyed by user name: two targets
with the same user name but different keys would overwrite each other's entry. So this
module keeps one engine per distinct credential set (user, protocols, keys; the context
travels with each request), shared by the sessions that use it (an ISP usually has a
handful of sets) and closed with the last of them. An engine costs ~45 ms of CPU to
build.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from pyasn1.error import PyAsn1Error
from pysnmp.entity import config as usm
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
)
from pysnmp.hlapi.v3arch.asyncio import (
    Udp6TransportTarget as _Udp6Target,
)
from pysnmp.proto import errind
from pysnmp.proto.rfc1902 import ObjectName

from agents.snmp.ber import (
    BYTES_TAGS,
    EXCEPTION_TAGS,
    INTEGER,
    NULL,
    OBJECT_IDENTIFIER,
    UNSIGNED_TAGS,
    Oid,
    VarBind,
)
from agents.snmp.session import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    Session,
    SnmpAuthError,
    SnmpError,
    SnmpProtocolError,
    SnmpTimeout,
    agent_error,
)

log = logging.getLogger(__name__)

AUTH_PROTOCOLS: dict[str, tuple[int, ...]] = {
    "MD5": usm.USM_AUTH_HMAC96_MD5,
    "SHA": usm.USM_AUTH_HMAC96_SHA,
    "SHA224": usm.USM_AUTH_HMAC128_SHA224,
    "SHA256": usm.USM_AUTH_HMAC192_SHA256,
    "SHA384": usm.USM_AUTH_HMAC256_SHA384,
    "SHA512": usm.USM_AUTH_HMAC384_SHA512,
}
# AES-192/256 with the key extension of draft-blumenthal-aes-usm: what net-snmp means by
# AES192/AES256. (Cisco's "Reeder" variant would need a credential field of its own.)
PRIV_PROTOCOLS: dict[str, tuple[int, ...]] = {
    "DES": usm.USM_PRIV_CBC56_DES,
    "AES": usm.USM_PRIV_CFB128_AES,
    "AES192": usm.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "AES256": usm.USM_PRIV_CFB256_AES_BLUMENTHAL,
}

# errorIndication classes that mean "your credentials were refused" (RFC 3414 3.2 and
# the usmStats reports an agent sends back). Time-window and engine-id reports are
# handled by pysnmp's discovery; if one surfaces, it is a plain SnmpError.
_AUTH_FAILURES: tuple[type[errind.ErrorIndication], ...] = (
    errind.WrongDigest,
    errind.UnknownUserName,
    errind.UnknownSecurityName,
    errind.UnsupportedSecurityLevel,
    errind.AuthenticationError,
    errind.AuthenticationFailure,
    errind.DecryptionError,
)


def credential_key(credentials: dict[str, Any]) -> str:
    """A digest naming one credential set (never the secrets themselves)."""
    parts = [str(credentials.get(k, "")) for k in _CREDENTIAL_FIELDS]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


_CREDENTIAL_FIELDS = ("user", "auth_protocol", "auth_key", "priv_protocol", "priv_key")


def check_credentials(credentials: dict[str, Any]) -> None:
    """SnmpError unless `credentials` are a usable authPriv v3 set."""
    if not credentials.get("user"):
        raise SnmpError("SNMPv3 credentials need a user")
    if credentials.get("auth_protocol", "SHA256") not in AUTH_PROTOCOLS:
        raise SnmpError(f"unknown SNMPv3 auth protocol {credentials.get('auth_protocol')!r}")
    if credentials.get("priv_protocol", "AES") not in PRIV_PROTOCOLS:
        raise SnmpError(f"unknown SNMPv3 privacy protocol {credentials.get('priv_protocol')!r}")
    for name in ("auth_key", "priv_key"):
        # RFC 3414 11.2: a pass phrase of at least 8 characters; pysnmp enforces it too.
        if len(str(credentials.get(name) or "")) < 8:
            raise SnmpError(f"SNMPv3 {name} must have at least 8 characters")


class Engines:
    """pysnmp engines by credential set, with the sessions (by id) that use each."""

    def __init__(self) -> None:
        self._engines: dict[str, tuple[SnmpEngine, set[int]]] = {}

    def acquire(self, key: str, owner: int) -> SnmpEngine:
        entry = self._engines.get(key)
        if entry is None:
            entry = self._engines[key] = (SnmpEngine(), set())
        entry[1].add(owner)
        return entry[0]

    def release(self, key: str, owner: int) -> None:
        entry = self._engines.get(key)
        if entry is None:
            return
        entry[1].discard(owner)
        if not entry[1]:
            del self._engines[key]
            _close_engine(entry[0])

    def close(self) -> None:
        for engine, _ in self._engines.values():
            _close_engine(engine)
        self._engines.clear()


def _close_engine(engine: SnmpEngine) -> None:
    try:
        engine.close_dispatcher()
    except Exception as exc:  # pragma: no cover - closing must not fail a poll
        log.debug("closing a pysnmp engine: %s", type(exc).__name__)


class V3Session(Session):
    """GET and GETBULK with USM authPriv through pysnmp."""

    def __init__(
        self,
        engines: Engines,
        address: tuple[str, int],
        credentials: dict[str, Any],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
    ) -> None:
        check_credentials(credentials)
        self.address = address
        self.description = f"v3 {address[0]}:{address[1]}"
        self.timeout = timeout
        self.retries = retries
        self._engines = engines
        self._key = credential_key(credentials)
        self._engine = engines.acquire(self._key, id(self))
        self._auth = UsmUserData(
            str(credentials["user"]),
            authKey=str(credentials["auth_key"]),
            privKey=str(credentials["priv_key"]),
            authProtocol=AUTH_PROTOCOLS[credentials.get("auth_protocol", "SHA256")],
            privProtocol=PRIV_PROTOCOLS[credentials.get("priv_protocol", "AES")],
        )
        self._context = ContextData(contextName=str(credentials.get("context") or "").encode())
        self._secrets = tuple(
            s for s in (str(credentials["auth_key"]), str(credentials["priv_key"])) if s
        )
        self._target: UdpTransportTarget | None = None

    async def _transport(self) -> UdpTransportTarget:
        if self._target is None:
            cls = _Udp6Target if ":" in self.address[0] else UdpTransportTarget
            # pysnmp counts retries the way we do: 0 means a single request.
            self._target = await cls.create(
                self.address, timeout=self.timeout, retries=self.retries
            )
        return self._target

    async def get(self, oids: Sequence[Oid]) -> list[VarBind]:
        request = [ObjectType(ObjectIdentity(ObjectName(oid))) for oid in oids]
        try:
            result = await get_cmd(
                self._engine,
                self._auth,
                await self._transport(),
                self._context,
                *request,
                lookupMib=False,
            )
        except (PySnmpError, PyAsn1Error, errind.ErrorIndication) as exc:
            raise self._mapped(exc) from None
        varbinds = self._check(result, oids)
        if [vb[0] for vb in varbinds] != list(oids):
            raise SnmpProtocolError(f"{self.description} answered a GET with other OIDs than asked")
        return varbinds

    async def get_bulk(
        self, oids: Sequence[Oid], non_repeaters: int, max_repetitions: int
    ) -> list[VarBind]:
        request = [ObjectType(ObjectIdentity(ObjectName(oid))) for oid in oids]
        try:
            result = await bulk_cmd(
                self._engine,
                self._auth,
                await self._transport(),
                self._context,
                non_repeaters,
                max_repetitions,
                *request,
                lookupMib=False,
            )
        except (PySnmpError, PyAsn1Error, errind.ErrorIndication) as exc:
            raise self._mapped(exc) from None
        return self._check(result, oids)

    def close(self) -> None:
        self._engines.release(self._key, id(self))

    # --- the one edge where pysnmp's results become ours --------------------------------

    def _check(self, result: tuple[Any, Any, Any, Any], oids: Sequence[Oid]) -> list[VarBind]:
        indication, status, index, varbinds = result
        if indication:
            raise self._mapped(indication)
        if status:
            raise agent_error(int(status), int(index), oids)
        try:
            return [_varbind(name, value) for name, value in varbinds]
        except (TypeError, ValueError) as exc:
            raise SnmpProtocolError(
                f"{self.description} answered a value we cannot read: {type(exc).__name__}"
            ) from None

    def _mapped(self, problem: object) -> SnmpError:
        text = self._redacted(str(problem) or type(problem).__name__)
        where = self.description
        if isinstance(problem, errind.RequestTimedOut):
            # An agent that cannot decrypt a request drops it: a wrong privacy key shows
            # as silence, like an unreachable agent.
            return SnmpTimeout(f"no answer from {where} (unreachable, or a wrong privacy key)")
        if isinstance(problem, _AUTH_FAILURES):
            return SnmpAuthError(f"{where} refused the SNMPv3 credentials: {text}")
        if isinstance(problem, errind.OidNotIncreasing):
            return SnmpProtocolError(f"{where}: OID not increasing")
        if isinstance(problem, errind.ErrorIndication):
            return SnmpError(f"{where}: {text}")
        return SnmpError(f"{where}: SNMP engine error {type(problem).__name__}: {text}")

    def _redacted(self, text: str) -> str:
        # pysnmp's messages do not quote keys today; make sure none ever travels on.
        for secret in self._secrets:
            text = text.replace(secret, "********")
        return text


def _varbind(name: Any, value: Any) -> VarBind:
    """Our (oid, tag, value) from a pysnmp name and pyasn1 value."""
    tag_of = value.tagSet[-1] if value.tagSet else None
    if tag_of is None:
        raise ValueError("untagged value")
    tag = tag_of.tagClass | tag_of.tagFormat | tag_of.tagId
    oid = tuple(name)
    if tag == INTEGER or tag in UNSIGNED_TAGS:
        return oid, tag, int(value)
    if tag in BYTES_TAGS:
        return oid, tag, value.asOctets()
    if tag == OBJECT_IDENTIFIER:
        return oid, tag, tuple(value)
    if tag == NULL or tag in EXCEPTION_TAGS:
        return oid, tag, None
    raise ValueError(f"tag 0x{tag:02x}")
