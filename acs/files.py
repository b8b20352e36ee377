"""Signed file links and the pure parts of serving files over HTTP. No I/O.

A CPE fetches a firmware image, or sends its configuration backup, over plain HTTP with
no credentials of its own. So the ACS hands each CPE a link made for it alone: the link
names the file (or, for an upload, the file type), the device, the task and an expiry,
and carries an HMAC-SHA256 over all four under a key derived from the deployment's secret
key (`schemas.sealing.derive_key(secret, LINK_PURPOSE)`). The file server checks the
signature and the expiry before anything else, so a link given to one device does not
work for another, an edited link does not work at all, and no link outlives its expiry.

    {base}/files/{name}?d={device}&t={task}&e={expires}&s={signature}
    {base}/uploads/{task}?d={device}&f={file type}&e={expires}&s={signature}

TR-069 bounds a Download/Upload URL to 256 characters (A.4.1.5); these links stay well
under that for real device ids and file names: the signature is 128 bits (22 characters).

Also here: Range (RFC 9110 section 14) and entity-tag evaluation, and the cipher that
seals uploaded configuration backups at rest (they hold the CPE's credentials).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

LINK_PURPOSE = "chronos file urls"
UPLOAD_SEAL_PURPOSE = "chronos device uploads"
_SIGNATURE_BYTES = 16


class LinkError(Exception):
    """A link the file server must refuse (403); `code` says why, for the answer and log."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class DownloadGrant:
    """What a valid download link allows: this device fetching this file for this task."""

    file_name: str
    device_id: str
    task_id: int
    expires_at: int


@dataclass(frozen=True, slots=True)
class UploadGrant:
    """What a valid upload link allows: this device sending a file of this type."""

    device_id: str
    task_id: int
    file_type: str
    expires_at: int


def _field(value: str) -> bytes:
    # Length-prefixed, so no choice of values can move a boundary between fields.
    data = value.encode("utf-8")
    return str(len(data)).encode() + b":" + data


class FileUrls:
    """Makes and checks the signed links of one deployment's file server."""

    def __init__(self, key: bytes, base_url: str) -> None:
        if len(key) < 16:
            raise ValueError("a link key has at least 16 bytes")
        self._key = key
        self.base_url = base_url.rstrip("/")

    def _sign(self, kind: str, *fields: str) -> str:
        message = b"".join(_field(f) for f in (kind, *fields))
        digest = hmac.new(self._key, message, hashlib.sha256).digest()[:_SIGNATURE_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def download_url(self, file_name: str, device_id: str, task_id: int, expires_at: int) -> str:
        """The link `device_id` fetches stored file `file_name` with, for task `task_id`."""
        signature = self._sign("download", file_name, device_id, str(task_id), str(expires_at))
        return (
            f"{self.base_url}/files/{quote(file_name, safe='')}?d={quote(device_id, safe='')}"
            f"&t={task_id}&e={expires_at}&s={signature}"
        )

    def upload_url(self, device_id: str, task_id: int, file_type: str, expires_at: int) -> str:
        """The link `device_id` sends its `file_type` file to, for task `task_id`."""
        signature = self._sign("upload", device_id, str(task_id), file_type, str(expires_at))
        return (
            f"{self.base_url}/uploads/{task_id}?d={quote(device_id, safe='')}"
            f"&f={quote(file_type, safe='')}&e={expires_at}&s={signature}"
        )

    def verify_download(
        self, file_name: str, query: Mapping[str, str], now: float
    ) -> DownloadGrant:
        """The grant a request for `file_name` with this (decoded) query carries.

        Raises `LinkError` for a missing, malformed, forged or expired link.
        """
        device, task, expires = _parts(query, "t")
        self._check(query, "download", file_name, device, task, expires)
        _check_expiry(expires, now)
        return DownloadGrant(file_name, device, int(task), int(expires))

    def verify_upload(self, task_id: str, query: Mapping[str, str], now: float) -> UploadGrant:
        """The grant an upload to /uploads/{task_id} with this (decoded) query carries."""
        device, file_type, expires = _parts(query, "f")
        if not _is_number(task_id):
            raise LinkError("LINK_INVALID", "malformed link")
        self._check(query, "upload", device, task_id, file_type, expires)
        _check_expiry(expires, now)
        return UploadGrant(device, int(task_id), file_type, int(expires))

    def _check(self, query: Mapping[str, str], kind: str, *fields: str) -> None:
        expected = self._sign(kind, *fields)
        if not hmac.compare_digest(expected, query.get("s", "")):
            raise LinkError("LINK_INVALID", "the link's signature does not match")


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 20


def _parts(query: Mapping[str, str], name: str) -> tuple[str, str, str]:
    """The device, the field `name` and the expiry; every one of them must be there.
    Non-canonical numbers ("0123") are not rewritten: their signature will not match."""
    device, value, expires = query.get("d", ""), query.get(name, ""), query.get("e", "")
    if not device or not value or not _is_number(expires) or not query.get("s"):
        raise LinkError("LINK_INVALID", "malformed link: a signed field is missing")
    if name == "t" and not _is_number(value):
        raise LinkError("LINK_INVALID", "malformed link: the task is not a number")
    return device, value, expires


def _check_expiry(expires: str, now: float) -> None:
    if int(expires) < now:
        raise LinkError("LINK_EXPIRED", "the link has expired")


# --- ranges and validators (RFC 9110) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes `start` to `end` inclusive of a representation `size` bytes long."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


class RangeNotSatisfiable(Exception):
    """A valid Range none of whose bytes exist: answer 416 with `bytes */size`."""

    def __init__(self, size: int) -> None:
        super().__init__(f"no byte of the range lies within {size} bytes")
        self.size = size


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range a Range header asks for; None means send everything.

    A header we ignore (14.2 lets a server ignore Range): absent, another unit, bad
    syntax, or several ranges (we serve single ranges only). A range starting past the
    end raises `RangeNotSatisfiable`; an end past the end is clamped to the last byte.
    """
    if not header:
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or not (_is_number(first) or first == "") or not (_is_number(last) or last == ""):
        return None
    if first == "":
        if last == "":
            return None
        suffix = int(last)  # the last N bytes
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return ByteRange(max(0, size - suffix), size - 1, size)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # invalid: ignore the header
    if start >= size:
        raise RangeNotSatisfiable(size)
    return ByteRange(start, min(end, size - 1), size)


def etag(sha256_hex: str) -> str:
    """The strong entity tag of a stored file: its content hash, quoted."""
    return f'"{sha256_hex}"'


def _tags(header: str) -> list[str]:
    return [t.strip() for t in header.split(",") if t.strip()]


def none_match(header: str | None, tag: str) -> bool:
    """Whether If-None-Match matches (weak comparison): answer 304."""
    if not header:
        return False
    return any(t == "*" or t.removeprefix("W/") == tag for t in _tags(header))


def http_date(value: datetime) -> str:
    return format_datetime(value.replace(microsecond=0), usegmt=True)


def if_range_allows(header: str | None, tag: str, last_modified: datetime) -> bool:
    """Whether a Range may be honoured under If-Range (absent: yes). An entity tag must
    match strongly; a date must equal Last-Modified (to the second)."""
    if not header:
        return True
    value = header.strip()
    if value.startswith(("W/", '"')):
        return value == tag
    try:
        date = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return False
    return date == last_modified.replace(microsecond=0)


# --- uploads at rest ---------------------------------------------------------------------------


class ChunkCipher:
    """Seals upload chunks with AES-256-GCM; each chunk is bound to its upload and place,
    so chunks cannot be swapped between uploads or reordered without detection."""

    NONCE_BYTES = 12

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key[:32])

    @staticmethod
    def _aad(owner: int, seq: int) -> bytes:
        return f"upload:{owner}:{seq}".encode()

    def seal(self, owner: int, seq: int, data: bytes) -> bytes:
        nonce = os.urandom(self.NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, self._aad(owner, seq))

    def open(self, owner: int, seq: int, blob: bytes) -> bytes:
        """The chunk's bytes; ValueError if it was altered or sealed under another key."""
        nonce, sealed = blob[: self.NONCE_BYTES], blob[self.NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, self._aad(owner, seq))
        except InvalidTag:
            raise ValueError(f"upload {owner} chunk {seq} does not open with this key") from None
