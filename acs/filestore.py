"""PostgreSQL side of files: stored files, device uploads, and transfers that never finish.

Content lives in rows of `chunk_size` bytes (1 MiB), written by `ChunkWriter` while a
body streams in (it buffers at most one chunk) and read back one chunk, or one slice of
a chunk, per query, so neither side ever holds a whole file and a slow CPE holds no
database connection between two reads.

A stored file is written as an invisible `uploading` row and published in one
transaction that retires the version it replaces. Retired versions stay readable for a
while (`purge`), so a CPE halfway through the old image finishes it unharmed.

A download or upload task waits for its TransferComplete; `time_out_transfers` settles
those that waited too long, in one UPDATE ... RETURNING that several ACS processes may
run at once without settling a task twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg

from acs.store import DELETE_FAULT, NOTIFY_TASK, UPSERT_FAULT, task_channel

log = logging.getLogger("chronos.files")

CHUNK_BYTES = 1024 * 1024
# An upload that wrote nothing for this long was abandoned by a process that died.
STALE_UPLOAD_SECONDS = 3600

# --- stored files ------------------------------------------------------------------------------

FILE_COLUMNS = """id, name, file_type, oui, product_class, version, length, chunk_size,
    md5, sha256, uploaded"""
BEGIN_FILE = """
INSERT INTO files (name, file_type, oui, product_class, version, chunk_size)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING id
"""
INSERT_FILE_CHUNK = """
WITH chunk AS (INSERT INTO file_chunks (file_id, seq, data) VALUES ($1, $2, $3))
UPDATE files SET touched = now() WHERE id = $1
"""
# Publishing and deleting one name are serialized, so the last writer wins cleanly.
LOCK_NAME = "SELECT pg_advisory_xact_lock(7567, hashtext($1))"
RETIRE_CURRENT = """
UPDATE files SET state = $2, retired = now() WHERE name = $1 AND state = 'current'
RETURNING id
"""
PUBLISH_FILE = f"""
UPDATE files SET state = 'current', length = $2, md5 = $3, sha256 = $4, uploaded = now()
WHERE id = $1 AND state = 'uploading'
RETURNING {FILE_COLUMNS}
"""
# Downloads of this name not yet sent announce the new size (Download's FileSize).
RESIZE_QUEUED = """
UPDATE tasks SET args = args || jsonb_build_object('fileSize', $2::bigint)
WHERE name = 'download' AND status = 'pending' AND args ->> 'file' = $1
"""
DISCARD_FILE = "DELETE FROM files WHERE id = $1 AND state = 'uploading'"
CURRENT_FILE = f"SELECT {FILE_COLUMNS} FROM files WHERE name = $1 AND state = 'current'"
FILE_SLICE = """
SELECT substring(data FROM $3 FOR $4) FROM file_chunks WHERE file_id = $1 AND seq = $2
"""

# --- device uploads ----------------------------------------------------------------------------

UPLOAD_COLUMNS = """id, device_id, task_id, file_type, filename, content_type, length,
    chunk_size, sealed, md5, sha256, created"""
BEGIN_UPLOAD = """
INSERT INTO device_uploads (device_id, task_id, file_type, filename, content_type,
                            chunk_size, sealed)
VALUES ($1, (SELECT id FROM tasks WHERE id = $2), $3, $4, $5, $6, $7)
RETURNING id
"""
INSERT_UPLOAD_CHUNK = """
WITH chunk AS (INSERT INTO device_upload_chunks (upload_id, seq, data) VALUES ($1, $2, $3))
UPDATE device_uploads SET touched = now() WHERE id = $1
"""
# A CPE that sends again for the same task replaces what it sent before.
COMPLETE_UPLOAD = """
WITH done AS (
    UPDATE device_uploads SET state = 'complete', length = $2, md5 = $3, sha256 = $4,
                              touched = now()
    WHERE id = $1 AND state = 'uploading'
    RETURNING id, device_id, task_id
), older AS (
    DELETE FROM device_uploads u USING done
    WHERE u.device_id = done.device_id AND u.task_id = done.task_id
      AND u.id <> done.id AND u.state = 'complete'
)
SELECT id FROM done
"""
DISCARD_UPLOAD = "DELETE FROM device_uploads WHERE id = $1 AND state = 'uploading'"
LIST_UPLOADS = f"""
SELECT {UPLOAD_COLUMNS} FROM device_uploads
WHERE device_id = $1 AND state = 'complete' ORDER BY id DESC LIMIT $2
"""
UPLOAD_BY_ID = f"""
SELECT {UPLOAD_COLUMNS} FROM device_uploads
WHERE device_id = $1 AND id = $2 AND state = 'complete'
"""
UPLOAD_CHUNK = "SELECT data FROM device_upload_chunks WHERE upload_id = $1 AND seq = $2"

# --- links and transfers -----------------------------------------------------------------------

# The open task a link was issued for: a deleted or finished task revokes its links.
OPEN_TASK = """
SELECT name FROM tasks WHERE id = $1 AND device_id = $2 AND status IN ('pending', 'waiting')
"""
TIME_OUT_TRANSFERS = """
WITH due AS (
    -- The device's own option, else its class's (product class, then OUI-wide).
    SELECT t.id, COALESCE(
               d.options -> 'transfer_timeout_is_success',
               (SELECT c.options -> 'transfer_timeout_is_success' FROM device_classes c
                WHERE c.oui = d.oui AND c.product_class IN (d.product_class, '')
                ORDER BY c.product_class DESC LIMIT 1)
           ) = 'true'::jsonb IS TRUE AS ok
    FROM tasks t JOIN devices d ON d.id = t.device_id
    WHERE t.status = 'waiting' AND t.name IN ('download', 'upload')
      AND COALESCE(to_timestamp((t.progress ->> 'sentAt')::float8), t.created)
          < now() - make_interval(secs => $1::float8)
    ORDER BY t.id
    LIMIT 1000
)
UPDATE tasks t SET
    status = CASE WHEN due.ok THEN 'done' ELSE 'pending' END,
    completed = CASE WHEN due.ok THEN now() END,
    result = CASE WHEN due.ok
                  THEN jsonb_build_object('transferComplete', false, 'timedOut', true)
             END,
    retries = CASE WHEN due.ok THEN t.retries ELSE t.retries + 1 END,
    retry_at = CASE WHEN due.ok THEN t.retry_at
                    WHEN t.retries + 1 > $3 THEN 'infinity'::timestamptz
                    ELSE now() + make_interval(secs => $2 * power(2, t.retries)) END
FROM due
WHERE t.id = due.id AND t.status = 'waiting'
RETURNING t.id, t.device_id, t.name, due.ok, t.retries
"""
PURGE_FILES = """
DELETE FROM files
WHERE (state IN ('replaced', 'deleted') AND retired < now() - make_interval(secs => $1::float8))
   OR (state = 'uploading' AND touched < now() - make_interval(secs => $2::float8))
"""
PURGE_UPLOADS = """
DELETE FROM device_uploads
WHERE state = 'uploading' AND touched < now() - make_interval(secs => $1::float8)
"""


class TooLarge(Exception):
    """A body longer than the limit; nothing of it is kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than the limit of {limit} bytes")
        self.limit = limit


class MissingChunk(Exception):
    """Stored content with a chunk gone: the file was purged while being read."""


@dataclass(frozen=True, slots=True)
class Digest:
    length: int
    md5: str
    sha256: str


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One version of a stored file, as `files` has it."""

    id: int
    name: str
    file_type: str
    oui: str
    product_class: str
    version: str
    length: int
    chunk_size: int
    md5: str
    sha256: str
    uploaded: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StoredFile:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class DeviceUpload:
    """A file a CPE sent, as `device_uploads` has it."""

    id: int
    device_id: str
    task_id: int | None
    file_type: str
    filename: str
    content_type: str
    length: int
    chunk_size: int
    sealed: bool
    md5: str
    sha256: str
    created: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> DeviceUpload:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


Sealing = Callable[[int, int, bytes], bytes]


class ChunkWriter:
    """Writes a stream of bytes as chunk rows of `owner`, as the bytes arrive.

    Holds at most one chunk in memory; raises `TooLarge` as soon as the stream passes
    `limit` (the caller then discards the owner row, and its chunks with it).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        sql: str,
        owner: int,
        *,
        limit: int,
        chunk_size: int = CHUNK_BYTES,
        seal: Sealing | None = None,
    ) -> None:
        self._pool = pool
        self._sql = sql
        self._owner = owner
        self._limit = limit
        self._chunk_size = chunk_size
        self._seal = seal
        self._buffer = bytearray()
        self._seq = 0
        self._length = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha256 = hashlib.sha256()

    async def write(self, data: bytes) -> None:
        self._length += len(data)
        if self._length > self._limit:
            raise TooLarge(self._limit)
        self._md5.update(data)
        self._sha256.update(data)
        self._buffer += data
        size = self._chunk_size
        while len(self._buffer) >= size:
            await self._flush(bytes(self._buffer[:size]))
            del self._buffer[:size]

    async def close(self) -> Digest:
        """Write what is left; the length and hashes of everything written."""
        if self._buffer:
            await self._flush(bytes(self._buffer))
            self._buffer.clear()
        return Digest(self._length, self._md5.hexdigest(), self._sha256.hexdigest())

    async def _flush(self, data: bytes) -> None:
        if self._seal is not None:
            data = self._seal(self._owner, self._seq, data)
        await self._pool.execute(self._sql, self._owner, self._seq, data)
        self._seq += 1


# --- stored files ------------------------------------------------------------------------------


async def begin_file(pool: asyncpg.Pool, name: str, meta: Mapping[str, str]) -> int:
    """A new, invisible version of `name`; write it with `ChunkWriter(INSERT_FILE_CHUNK)`."""
    return await pool.fetchval(
        BEGIN_FILE,
        name,
        meta.get("fileType", ""),
        meta.get("oui", ""),
        meta.get("productClass", ""),
        meta.get("version", ""),
        CHUNK_BYTES,
    )


async def publish_file(
    pool: asyncpg.Pool, file_id: int, name: str, digest: Digest
) -> tuple[StoredFile, bool]:
    """Make a written version what `name` serves, atomically; (it, whether it replaced one)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(LOCK_NAME, name)
        replaced = await conn.fetchval(RETIRE_CURRENT, name, "replaced")
        row = await conn.fetchrow(PUBLISH_FILE, file_id, digest.length, digest.md5, digest.sha256)
        if row is None:
            raise MissingChunk(f"file version {file_id} was purged before it was published")
        await conn.execute(RESIZE_QUEUED, name, digest.length)
    return StoredFile.from_row(row), replaced is not None


async def discard_file(pool: asyncpg.Pool, file_id: int) -> None:
    await pool.execute(DISCARD_FILE, file_id)


async def delete_file(pool: asyncpg.Pool, name: str) -> bool:
    """Stop serving `name` (transfers in flight finish); False if there is no such file."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(LOCK_NAME, name)
        return await conn.fetchval(RETIRE_CURRENT, name, "deleted") is not None


async def current_file(conn: asyncpg.Pool | asyncpg.Connection, name: str) -> StoredFile | None:
    row = await conn.fetchrow(CURRENT_FILE, name)
    return StoredFile.from_row(row) if row is not None else None


async def file_slices(
    pool: asyncpg.Pool, stored: StoredFile, start: int, end: int
) -> AsyncIterator[bytes]:
    """Bytes `start` to `end` (inclusive) of one version, a chunk's slice per query."""
    position = start
    while position <= end:
        seq, offset = divmod(position, stored.chunk_size)
        count = min(stored.chunk_size - offset, end - position + 1)
        data = await pool.fetchval(FILE_SLICE, stored.id, seq, offset + 1, count)
        if data is None or len(data) != count:
            raise MissingChunk(f"file {stored.name!r} version {stored.id} lacks chunk {seq}")
        yield data
        position += count


# --- device uploads ----------------------------------------------------------------------------


async def begin_upload(
    pool: asyncpg.Pool,
    device_id: str,
    task_id: int,
    file_type: str,
    *,
    filename: str,
    content_type: str,
    sealed: bool,
) -> int:
    return await pool.fetchval(
        BEGIN_UPLOAD,
        device_id,
        task_id,
        file_type,
        filename,
        content_type,
        CHUNK_BYTES,
        sealed,
    )


async def complete_upload(pool: asyncpg.Pool, upload_id: int, digest: Digest) -> None:
    await pool.fetchval(COMPLETE_UPLOAD, upload_id, digest.length, digest.md5, digest.sha256)


async def discard_upload(pool: asyncpg.Pool, upload_id: int) -> None:
    await pool.execute(DISCARD_UPLOAD, upload_id)


async def list_uploads(pool: asyncpg.Pool, device_id: str, limit: int) -> list[DeviceUpload]:
    return [DeviceUpload.from_row(r) for r in await pool.fetch(LIST_UPLOADS, device_id, limit)]


async def get_upload(pool: asyncpg.Pool, device_id: str, upload_id: int) -> DeviceUpload | None:
    row = await pool.fetchrow(UPLOAD_BY_ID, device_id, upload_id)
    return DeviceUpload.from_row(row) if row is not None else None


async def upload_content(
    pool: asyncpg.Pool, upload: DeviceUpload, unseal: Sealing | None
) -> AsyncIterator[bytes]:
    """An upload's bytes, a chunk per query, opened with `unseal` if it was sealed."""
    chunks = -(-upload.length // upload.chunk_size)
    for seq in range(chunks):
        blob = await pool.fetchval(UPLOAD_CHUNK, upload.id, seq)
        if blob is None:
            raise MissingChunk(f"upload {upload.id} lacks chunk {seq}")
        if upload.sealed:
            if unseal is None:
                raise ValueError(f"upload {upload.id} is sealed and no key was given")
            blob = unseal(upload.id, seq, blob)
        yield blob


# --- links and transfers -----------------------------------------------------------------------


async def open_task(pool: asyncpg.Pool, task_id: int, device_id: str) -> str | None:
    """The name of the open task `task_id` of `device_id`, or None."""
    return await pool.fetchval(OPEN_TASK, task_id, device_id)


@dataclass(frozen=True, slots=True)
class TimedOut:
    task_id: int
    device_id: str
    name: str
    succeeded: bool


async def time_out_transfers(
    pool: asyncpg.Pool, seconds: float, retry_delay: int, max_retries: int
) -> list[TimedOut]:
    """Settle transfer tasks that waited `seconds` for a TransferComplete: fault them (to
    be retried like any fault), or complete them on devices whose option
    `transfer_timeout_is_success` says they never send one."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(TIME_OUT_TRANSFERS, seconds, retry_delay, max_retries)
        for row in rows:
            task_id, device_id = row["id"], row["device_id"]
            fault_id = f"{device_id}:{task_channel(task_id)}"
            if row["ok"]:
                await conn.execute(DELETE_FAULT, fault_id)
                await conn.execute(NOTIFY_TASK, f"{task_id}:done")
                continue
            await conn.execute(
                UPSERT_FAULT,
                fault_id,
                device_id,
                task_channel(task_id),
                task_id,
                "transfer.timeout",
                f"no TransferComplete within {seconds:g} s of the {row['name']} request",
                {"seconds": seconds},
                row["retries"] - 1,
            )
            await conn.execute(NOTIFY_TASK, f"{task_id}:fault")
    settled = [TimedOut(r["id"], r["device_id"], r["name"], r["ok"]) for r in rows]
    for item in settled:
        log.warning(
            "transfer timed out",
            extra={
                "device_id": item.device_id,
                "task_id": item.task_id,
                "task": item.name,
                "outcome": "done" if item.succeeded else "fault",
            },
        )
    return settled


async def purge(pool: asyncpg.Pool, retired_seconds: float) -> int:
    """Remove versions retired longer than `retired_seconds` ago and abandoned uploads."""
    files = await pool.execute(PURGE_FILES, retired_seconds, STALE_UPLOAD_SECONDS)
    uploads = await pool.execute(PURGE_UPLOADS, STALE_UPLOAD_SECONDS)
    return int(files.rsplit(" ", 1)[1]) + int(uploads.rsplit(" ", 1)[1])
