"""Secrets at rest: sealing and unsealing values with the deployment's key (Fernet).

Every role that stores or reads a credential (CPE connection-request passwords, WLAN
keys, OLT and SNMP credentials) seals it with the same key, so a database dump alone
discloses none of them. Pure computation: the key comes from configuration.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken

SEALED_PREFIX = "sealed:v1:"

# Parameter names whose values are credentials (TR-098/TR-181 and common vendor forms).
_SECRET_NAME = re.compile(r"(?i)(password|passphrase|presharedkey|wepkey|secret|psk)$")


class SealingError(ValueError):
    """A sealed value that this key cannot open (wrong key, or damaged data)."""


@lru_cache(maxsize=65536)
def is_secret_path(path: str) -> bool:
    """Whether a parameter path names a credential (by its last segment)."""
    return bool(_SECRET_NAME.search(path.rpartition(".")[2]))


def generate_key() -> str:
    """A new random key, in the form the configuration takes."""
    return Fernet.generate_key().decode("ascii")


def derive_key(secret_key: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose (e.g. "chronos file urls"): HMAC-SHA256(secret, purpose).

    Keys of different purposes are independent, and none of them reveals the secret key,
    so a signing key can be handed to code that must never unseal anything.
    """
    return hmac.new(secret_key.encode("ascii"), purpose.encode("utf-8"), hashlib.sha256).digest()


class Sealer:
    """Seals text with one key; unseals what that key sealed."""

    def __init__(self, key: str) -> None:
        self._key = key
        try:
            self._fernet = Fernet(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise SealingError("secret key must be 32 url-safe base64-encoded bytes") from exc

    def subkey(self, purpose: str) -> bytes:
        """This deployment's key for `purpose` (see `derive_key`)."""
        return derive_key(self._key, purpose)

    def seal(self, text: str) -> str:
        if text == "" or text.startswith(SEALED_PREFIX):
            return text  # nothing to hide, or already sealed
        return SEALED_PREFIX + self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def unseal(self, text: str) -> str:
        if not text.startswith(SEALED_PREFIX):
            return text
        try:
            return self._fernet.decrypt(text[len(SEALED_PREFIX) :].encode("ascii")).decode()
        except (InvalidToken, UnicodeError) as exc:
            raise SealingError("sealed value does not open with this key") from exc
