"""Files: signed links, ranges and sealing as pure code; the GenieACS /files API and the
file server over real HTTP on real PostgreSQL (PUT streaming, limits, the list shape and
queries, atomic replacement, Range/ETag/HEAD/416, refused links, device uploads)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import asyncpg
import pytest

from acs import fileserver
from acs import filestore as fs
from acs.files import (
    LINK_PURPOSE,
    UPLOAD_SEAL_PURPOSE,
    ByteRange,
    ChunkCipher,
    FileUrls,
    LinkError,
    RangeNotSatisfiable,
    etag,
    if_range_allows,
    none_match,
    parse_range,
)
from controller import app as api_app
from controller.auth import create_token
from schemas.config import Config, FileServerConfig
from schemas.sealing import Sealer, derive_key
from tests.conftest import SECRET_KEY, serving
from tests.test_nbi import Api, insert_device, q

MIB = 1024 * 1024
KEY = derive_key(SECRET_KEY, LINK_PURPOSE)
DEVICE = "00AA11-Box-SN1"
OTHER = "00AA11-Box-SN2"


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def content(size: int, seed: int = 0) -> bytes:
    """Deterministic bytes that differ at every offset (a misplaced slice shows)."""
    block = hashlib.sha256(str(seed).encode()).digest() * 4096
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(block[:64] + counter.to_bytes(8, "big")).digest() * 64
        counter += 1
    return bytes(out[:size])


# --- links (pure) ------------------------------------------------------------------------------


def test_a_download_link_grants_its_file_to_its_device_for_its_task() -> None:
    urls = FileUrls(KEY, "http://files.example.net:7567/")
    url = urls.download_url("HG 4.2.0+beta.bin", "00AA11-Box-SN%2D1", 42, 2_000_000_000)
    parts = urlsplit(url)
    assert url.startswith("http://files.example.net:7567/files/HG%204.2.0%2Bbeta.bin?")
    assert parts.path.endswith(".bin")  # CPEs name the image after the URL's last segment
    grant = urls.verify_download("HG 4.2.0+beta.bin", query_of(url), now=1_999_999_999)
    assert (grant.file_name, grant.device_id, grant.task_id) == (
        "HG 4.2.0+beta.bin",
        "00AA11-Box-SN%2D1",
        42,
    )


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"d": OTHER}, "LINK_INVALID"),  # the link of another device
        ({"t": "43"}, "LINK_INVALID"),  # another task
        ({"t": "042"}, "LINK_INVALID"),  # the same number, written otherwise
        ({"e": "2000000001"}, "LINK_INVALID"),  # a later expiry
        ({"s": "A" * 22}, "LINK_INVALID"),  # a forged signature
        ({"s": ""}, "LINK_INVALID"),
        ({"t": "x"}, "LINK_INVALID"),
        ({"e": "²"}, "LINK_INVALID"),
    ],
)
def test_an_edited_download_link_is_refused(change: dict[str, str], code: str) -> None:
    urls = FileUrls(KEY, "http://f")
    query = {**query_of(urls.download_url("fw.bin", DEVICE, 42, 2_000_000_000)), **change}
    with pytest.raises(LinkError) as refused:
        urls.verify_download("fw.bin", query, now=0)
    assert refused.value.code == code


def test_a_link_for_another_file_expired_or_of_another_key_is_refused() -> None:
    urls = FileUrls(KEY, "http://f")
    query = query_of(urls.download_url("fw.bin", DEVICE, 42, 1000))
    with pytest.raises(LinkError, match="signature"):
        urls.verify_download("other.bin", query, now=0)
    with pytest.raises(LinkError) as expired:
        urls.verify_download("fw.bin", query, now=1001)
    assert expired.value.code == "LINK_EXPIRED"
    assert urls.verify_download("fw.bin", query, now=1000).expires_at == 1000
    stranger = FileUrls(derive_key(SECRET_KEY, "another purpose"), "http://f")
    with pytest.raises(LinkError):
        stranger.verify_download("fw.bin", query, now=0)


def test_an_upload_link_names_the_device_task_and_file_type() -> None:
    urls = FileUrls(KEY, "http://f/")
    url = urls.upload_url(DEVICE, 7, "3 Vendor Configuration File 1", 5000)
    assert urlsplit(url).path == "/uploads/7"
    grant = urls.verify_upload("7", query_of(url), now=10)
    assert (grant.device_id, grant.task_id, grant.file_type) == (
        DEVICE,
        7,
        "3 Vendor Configuration File 1",
    )
    for change in ({"f": "2 Vendor Log File"}, {"d": OTHER}):
        with pytest.raises(LinkError):
            urls.verify_upload("7", {**query_of(url), **change}, now=10)
    with pytest.raises(LinkError):
        urls.verify_upload("8", query_of(url), now=10)
    with pytest.raises(LinkError):
        urls.verify_upload("7", query_of(url), now=5001)


def test_links_for_real_device_ids_fit_the_256_characters_of_a_download_url() -> None:
    urls = FileUrls(KEY, "https://acs-files.provider.example.net:7567")
    device = "00259E-HG8245Q2-48575443A1B2C3D4"
    url = urls.download_url("HG8245Q2-V300R019C10SPC128-full.bin", device, 10**9, 2**31)
    assert len(url) < 256, len(url)


def test_sub_keys_are_independent_of_each_other_and_of_the_secret() -> None:
    sealer = Sealer(SECRET_KEY)
    assert sealer.subkey(LINK_PURPOSE) == KEY
    assert len(KEY) == 32 and derive_key(SECRET_KEY, UPLOAD_SEAL_PURPOSE) != KEY
    assert SECRET_KEY.encode() not in KEY


# --- ranges and validators (pure) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 100, None),
        ("bytes=0-9", 100, ByteRange(0, 9, 100)),
        ("bytes=90-", 100, ByteRange(90, 99, 100)),
        ("bytes=-10", 100, ByteRange(90, 99, 100)),
        ("bytes=-500", 100, ByteRange(0, 99, 100)),
        ("bytes=95-200", 100, ByteRange(95, 99, 100)),
        (" Bytes = 5 - 6 ", 100, ByteRange(5, 6, 100)),
        ("bytes=0-1,5-6", 100, None),  # several ranges: the whole file instead
        ("items=0-1", 100, None),  # another unit
        ("bytes=9-3", 100, None),  # invalid: ignored
        ("bytes=a-b", 100, None),
        ("bytes=-", 100, None),
        ("bytes", 100, None),
    ],
)
def test_range_headers(header: str | None, size: int, expected: ByteRange | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=100-", 100), ("bytes=-0", 100), ("bytes=0-", 0)]
)
def test_ranges_past_the_end_are_not_satisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


def test_entity_tags_and_if_range() -> None:
    tag = etag("ab" * 32)
    assert none_match(f'"x", W/{tag}', tag) and none_match("*", tag)
    assert not none_match('"x"', tag) and not none_match(None, tag)
    modified = datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC)
    assert if_range_allows(None, tag, modified) and if_range_allows(tag, tag, modified)
    assert not if_range_allows(f"W/{tag}", tag, modified)  # If-Range compares strongly
    assert if_range_allows("Wed, 01 May 2024 10:00:00 GMT", tag, modified)
    assert not if_range_allows("Wed, 01 May 2024 09:00:00 GMT", tag, modified)
    assert not if_range_allows("yesterday", tag, modified)


def test_sealed_upload_chunks_open_only_in_their_place() -> None:
    cipher = ChunkCipher(derive_key(SECRET_KEY, UPLOAD_SEAL_PURPOSE))
    blob = cipher.seal(5, 0, b"PPPoE password=hunter2")
    assert b"hunter2" not in blob
    assert cipher.open(5, 0, blob) == b"PPPoE password=hunter2"
    for owner, seq in ((6, 0), (5, 1)):
        with pytest.raises(ValueError, match="does not open"):
            cipher.open(owner, seq, blob)
    with pytest.raises(ValueError):
        cipher.open(5, 0, blob[:-1] + bytes([blob[-1] ^ 1]))


# --- the API and the file server over HTTP ------------------------------------------------------


@dataclass
class Servers:
    api: Api
    files_url: str
    urls: FileUrls
    pool: asyncpg.Pool
    config: Config
    app: aiohttp.web.Application
    http: aiohttp.ClientSession

    def link(self, name: str, device: str = DEVICE, task: int = 1, seconds: int = 60) -> str:
        return self.urls.download_url(name, device, task, int(time.time()) + seconds)


@pytest.fixture
async def servers(pool: asyncpg.Pool, db_dsn: str) -> AsyncIterator[Servers]:
    sealer = Sealer(SECRET_KEY)
    config = Config(
        files=FileServerConfig(
            max_file_bytes=8 * MIB, max_upload_bytes=2 * MIB, sweep_interval=3600
        )
    )
    token = await create_token(pool, "test admin", "admin")
    cipher = ChunkCipher(sealer.subkey(UPLOAD_SEAL_PURPOSE))
    app = fileserver.create_app(pool, config, FileUrls(sealer.subkey(LINK_PURPOSE), "x"), cipher)
    async with (
        serving(api_app.create_app(pool, db_dsn, config, sealer)) as api_url,
        serving(app) as files_url,
        aiohttp.ClientSession() as http,
    ):
        api = Api(api_url, token)
        urls = FileUrls(sealer.subkey(LINK_PURPOSE), files_url)
        try:
            yield Servers(api, files_url, urls, pool, config, app, http)
        finally:
            await api.close()


async def device_with_task(pool: asyncpg.Pool, device: str, name: str = "download") -> int:
    """A device with an open task of `name`, as a link needs; returns the task id."""
    if await pool.fetchval("SELECT 1 FROM devices WHERE id = $1", device) is None:
        await insert_device(pool, device)
    return await pool.fetchval(
        "INSERT INTO tasks (device_id, name, body, args) VALUES ($1, $2, '{}', '{}') RETURNING id",
        device,
        name,
    )


async def put(s: Servers, name: str, body: object, **headers: str) -> tuple[int, dict]:
    url = aiohttp.client.URL(s.api.base + "/files/" + name, encoded=True)
    async with s.api.http.put(url, data=body, headers={**s.api.auth, **headers}) as r:
        return r.status, await r.json()


async def stream(data: bytes, piece: int = 300_000) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), piece):
        yield data[offset : offset + piece]


async def test_put_streams_a_multi_mib_file_into_chunks_and_lists_it_like_genieacs(
    servers: Servers,
) -> None:
    data = content(5 * MIB + 123)
    status, doc = await put(
        servers,
        "HG-4.3.0.bin",
        stream(data),  # chunked transfer encoding: no Content-Length to trust
        FILETYPE="1 Firmware Upgrade Image",
        oui="00AA11",
        productclass="Box",
        Version="4.3.0",
    )
    assert status == 201
    sizes = await servers.pool.fetch("SELECT seq, length(data) AS n FROM file_chunks ORDER BY seq")
    assert [r["n"] for r in sizes] == [MIB] * 5 + [123]
    listed = await servers.api("GET", "/files/")
    assert listed.status == 200 and listed.headers["total"] == "1"
    [item] = listed.body
    assert item == doc
    assert set(item) == {
        "_id",
        "length",
        "chunkSize",
        "uploadDate",
        "filename",
        "metadata",
        "md5",
        "sha256",
    }
    assert item["_id"] == item["filename"] == "HG-4.3.0.bin"
    assert item["length"] == len(data) and item["chunkSize"] == MIB
    assert item["metadata"] == {
        "fileType": "1 Firmware Upgrade Image",
        "oui": "00AA11",
        "productClass": "Box",
        "version": "4.3.0",
    }
    assert item["md5"] == hashlib.md5(data).hexdigest()
    assert item["sha256"] == hashlib.sha256(data).hexdigest()
    assert item["uploadDate"].endswith("Z")
    task = await device_with_task(servers.pool, DEVICE)
    async with servers.http.get(servers.link("HG-4.3.0.bin", task=task)) as r:
        assert r.status == 200 and await r.read() == data


async def test_a_file_beyond_the_limit_is_413_and_leaves_nothing_behind(servers: Servers) -> None:
    too_big = content(8 * MIB + 1)
    status, body = await put(servers, "huge.bin", stream(too_big))
    assert status == 413 and body["error"]["code"] == "FILE_TOO_LARGE"
    assert body["error"]["details"]["limit"] == 8 * MIB
    # A declared length beyond the limit is refused before the body is sent.
    url = aiohttp.client.URL(servers.api.base + "/files/huge.bin", encoded=True)
    async with servers.api.http.put(
        url, data=too_big, headers=servers.api.auth, expect100=True
    ) as declared:
        assert declared.status == 413
    for table in ("files", "file_chunks"):
        assert await servers.pool.fetchval(f"SELECT count(*) FROM {table}") == 0
    exact = await put(servers, "exact.bin", stream(content(8 * MIB)))
    assert exact[0] == 201


async def test_file_names_and_metadata_headers_are_checked(servers: Servers) -> None:
    assert (await put(servers, "..", b"x"))[0] == 400
    status, body = await put(servers, "ok.bin", b"x", version="v" * 300)
    assert status == 400 and body["error"]["code"] == "BAD_HEADER"
    assert await servers.pool.fetchval("SELECT count(*) FROM files") == 0
    viewer = Api(servers.api.base, await create_token(servers.pool, "noc", "viewer"))
    try:
        assert (await viewer("PUT", "/files/x.bin", data=b"x")).status == 403
        assert (await viewer("GET", "/files/")).status == 200
    finally:
        await viewer.close()


async def test_the_file_list_takes_genieacs_queries_projections_sorts_and_pages(
    servers: Servers,
) -> None:
    for name, file_type, version, body in (
        ("a.bin", "1 Firmware Upgrade Image", "1.0", b"image a"),
        ("b.bin", "1 Firmware Upgrade Image", "2.0", b"image b"),
        ("c.xml", "3 Vendor Configuration File", "", b"<config>...</config>"),
    ):
        status, _ = await put(servers, name, body, fileType=file_type, version=version)
        assert status == 201
    firmware = q({"metadata.fileType": "1 Firmware Upgrade Image"})
    r = await servers.api("GET", f"/files/?query={firmware}&projection=filename,metadata.version")
    assert r.headers["total"] == "2"
    assert r.body == [
        {"_id": "a.bin", "filename": "a.bin", "metadata": {"version": "1.0"}},
        {"_id": "b.bin", "filename": "b.bin", "metadata": {"version": "2.0"}},
    ]
    r = await servers.api("GET", f"/files?query={q({'filename': 'c.xml'})}")
    assert [f["_id"] for f in r.body] == ["c.xml"]
    r = await servers.api("GET", f"/files/?sort={q({'filename': -1})}&skip=1&limit=1")
    assert [f["_id"] for f in r.body] == ["b.bin"] and r.headers["total"] == "3"
    r = await servers.api("GET", f"/files/?query={q({'length': {'$gt': 7}})}&projection=_id")
    assert r.body == [{"_id": "c.xml"}]
    head = await servers.api("HEAD", f"/files/?query={firmware}")
    assert head.status == 200 and head.headers["total"] == "2" and head.body == ""
    bad = await servers.api("GET", f"/files/?query={q({'nope': 1})}")
    assert bad.status == 400 and bad.body["error"]["code"] == "BAD_QUERY"


async def test_delete_removes_a_file_and_is_404_when_absent(servers: Servers) -> None:
    await put(servers, "old.bin", b"old")
    task = await device_with_task(servers.pool, DEVICE)
    assert (await servers.api("DELETE", "/files/old.bin")).status == 200
    assert (await servers.api("GET", "/files/")).body == []
    again = await servers.api("DELETE", "/files/old.bin")
    assert again.status == 404 and again.body["error"]["code"] == "FILE_NOT_FOUND"
    async with servers.http.get(servers.link("old.bin", task=task)) as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == "FILE_NOT_FOUND"


async def test_replacing_a_file_is_atomic_and_a_transfer_of_the_old_one_finishes(
    servers: Servers,
) -> None:
    old, new = content(3 * MIB, seed=1), content(2 * MIB, seed=2)
    assert (await put(servers, "fw.bin", old, version="1"))[0] == 201
    task = await device_with_task(servers.pool, DEVICE)
    async with servers.http.get(servers.link("fw.bin", task=task)) as reading:
        first = await reading.content.readexactly(100_000)
        status, doc = await put(servers, "fw.bin", new, version="2")
        assert status == 201 and doc["length"] == len(new)
        rest = await reading.read()
    assert first + rest == old  # the reader of the old version was not broken
    async with servers.http.get(servers.link("fw.bin", task=task)) as r:
        assert await r.read() == new
    listed = await servers.api("GET", "/files/")
    assert [(f["_id"], f["metadata"]["version"]) for f in listed.body] == [("fw.bin", "2")]
    # The old version goes once transfers on it can have finished.
    assert await fs.purge(servers.pool, 0) == 1
    assert await servers.pool.fetchval("SELECT count(*) FROM files") == 1


async def test_downloads_honour_range_etag_last_modified_and_head(servers: Servers) -> None:
    data = content(MIB + 1000)
    _, doc = await put(servers, "fw.bin", data)
    task = await device_with_task(servers.pool, DEVICE)
    link = servers.link("fw.bin", task=task)
    tag = f'"{doc["sha256"]}"'
    async with servers.http.get(link) as r:
        assert r.status == 200 and r.headers["ETag"] == tag
        assert r.headers["Content-Length"] == str(len(data))
        assert r.headers["Accept-Ranges"] == "bytes" and r.headers["Last-Modified"].endswith("GMT")
        assert await r.read() == data
    async with servers.http.head(link) as r:
        assert r.status == 200 and r.headers["Content-Length"] == str(len(data))
        assert await r.read() == b""
    across = (MIB - 5, MIB + 4)  # a range that spans two chunks
    for header, start, end in (
        (f"bytes={across[0]}-{across[1]}", *across),
        ("bytes=-7", len(data) - 7, len(data) - 1),
        (f"bytes={len(data) - 3}-", len(data) - 3, len(data) - 1),
    ):
        async with servers.http.get(link, headers={"Range": header}) as r:
            assert r.status == 206, header
            assert r.headers["Content-Range"] == f"bytes {start}-{end}/{len(data)}"
            assert await r.read() == data[start : end + 1]
    async with servers.http.get(link, headers={"Range": f"bytes={len(data)}-"}) as r:
        assert r.status == 416 and r.headers["Content-Range"] == f"bytes */{len(data)}"
    async with servers.http.get(link, headers={"Range": "bytes=0-1,5-6"}) as r:
        assert r.status == 200 and len(await r.read()) == len(data)
    async with servers.http.get(link, headers={"Range": "bytes=0-9", "If-Range": '"old"'}) as r:
        assert r.status == 200  # the file changed since: all of it
    async with servers.http.get(link, headers={"Range": "bytes=0-9", "If-Range": tag}) as r:
        assert r.status == 206 and await r.read() == data[:10]
    async with servers.http.get(link, headers={"If-None-Match": tag}) as r:
        assert r.status == 304 and r.headers["ETag"] == tag


async def test_links_of_another_device_expired_tampered_or_revoked_are_403(
    servers: Servers,
) -> None:
    await put(servers, "fw.bin", b"firmware")
    task = await device_with_task(servers.pool, DEVICE)
    other_task = await device_with_task(servers.pool, OTHER)
    good = servers.link("fw.bin", task=task)
    # Device B's task with device A's name in the link: A's link, presented by B.
    wrong_device = servers.link("fw.bin", device=DEVICE, task=other_task)
    tampered = good.replace(f"t={task}", f"t={other_task}")
    expired = servers.link("fw.bin", task=task, seconds=-1)
    unsigned = f"{servers.files_url}/files/fw.bin"
    upload_link_as_download = servers.urls.upload_url(DEVICE, task, "2 Vendor Log File", 2**31)
    for url, code in (
        (wrong_device, "LINK_REVOKED"),
        (tampered, "LINK_INVALID"),
        (expired, "LINK_EXPIRED"),
        (unsigned, "LINK_INVALID"),
        (good.replace("fw.bin?", "fw2.bin?"), "LINK_INVALID"),
    ):
        async with servers.http.get(url) as r:
            assert r.status == 403, url
            assert (await r.json())["error"]["code"] == code
    async with servers.http.put(upload_link_as_download, data=b"x") as r:
        assert r.status == 403  # a download task's link uploads nothing
    async with servers.http.get(good) as r:
        assert r.status == 200 and await r.read() == b"firmware"
    await servers.pool.execute("UPDATE tasks SET status = 'done' WHERE id = $1", task)
    async with servers.http.get(good) as r:
        assert r.status == 403 and (await r.json())["error"]["code"] == "LINK_REVOKED"


async def test_uploads_are_stored_sealed_per_device_and_fetched_back(servers: Servers) -> None:
    task = await device_with_task(servers.pool, DEVICE, "upload")
    link = servers.urls.upload_url(DEVICE, task, "1 Vendor Configuration File", 2**31)
    backup = b"# backup\nPPPoE.Password\txsd:string\thunter2\n" * 50_000  # ~2 MiB
    backup = backup[: 2 * MIB]
    async with servers.http.put(
        link, data=stream(backup), headers={"Content-Type": "text/plain"}
    ) as r:
        assert r.status == 200, await r.text()
    stored = await servers.pool.fetch("SELECT data FROM device_upload_chunks ORDER BY seq")
    assert len(stored) == 2 and all(b"hunter2" not in row["data"] for row in stored)
    listed = await servers.api("GET", f"/api/v1/devices/{DEVICE}/uploads")
    [item] = listed.body
    assert item["fileType"] == "1 Vendor Configuration File" and item["length"] == len(backup)
    assert item["task"] == f"{task:024x}" and item["contentType"] == "text/plain"
    assert item["sha256"] == hashlib.sha256(backup).hexdigest()
    url = aiohttp.client.URL(
        f"{servers.api.base}/api/v1/devices/{DEVICE}/uploads/{item['_id']}", encoded=True
    )
    async with servers.api.http.get(url, headers=servers.api.auth) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
        assert await r.read() == backup
    # Sent again for the same task: the new one replaces the old.
    async with servers.http.put(link, data=b"second") as r:
        assert r.status == 200
    [again] = (await servers.api("GET", f"/api/v1/devices/{DEVICE}/uploads")).body
    assert again["length"] == 6 and again["_id"] != item["_id"]
    viewer = Api(servers.api.base, await create_token(servers.pool, "noc", "viewer"))
    try:
        assert (await viewer("GET", f"/api/v1/devices/{DEVICE}/uploads")).status == 200
        denied = await viewer("GET", f"/api/v1/devices/{DEVICE}/uploads/{again['_id']}")
        assert denied.status == 403  # backups hold credentials
    finally:
        await viewer.close()
    missing = await servers.api("GET", f"/api/v1/devices/{DEVICE}/uploads/999")
    assert missing.status == 404 and missing.body["error"]["code"] == "UPLOAD_NOT_FOUND"
    nobody = await servers.api("GET", "/api/v1/devices/nope/uploads")
    assert nobody.status == 404 and nobody.body["error"]["code"] == "DEVICE_NOT_FOUND"


async def test_an_upload_beyond_the_limit_is_413_and_leaves_nothing(servers: Servers) -> None:
    task = await device_with_task(servers.pool, DEVICE, "upload")
    link = servers.urls.upload_url(DEVICE, task, "2 Vendor Log File", 2**31)
    async with servers.http.put(link, data=stream(content(2 * MIB + 1))) as r:
        assert r.status == 413 and (await r.json())["error"]["code"] == "UPLOAD_TOO_LARGE"
    async with servers.http.post(link, data=content(3 * MIB), expect100=True) as r:
        assert r.status == 413
    for table in ("device_uploads", "device_upload_chunks"):
        assert await servers.pool.fetchval(f"SELECT count(*) FROM {table}") == 0


async def test_a_multipart_post_upload_keeps_the_file_part_name_and_type(
    servers: Servers,
) -> None:
    task = await device_with_task(servers.pool, DEVICE, "upload")
    link = servers.urls.upload_url(DEVICE, task, "2 Vendor Log File", 2**31)
    form = aiohttp.FormData()
    form.add_field("note", "not the file")
    form.add_field("file", b"line 1\nline 2\n", filename="syslog.txt", content_type="text/plain")
    async with servers.http.post(link, data=form) as r:
        assert r.status == 200
    [item] = (await servers.api("GET", f"/api/v1/devices/{DEVICE}/uploads")).body
    assert (item["filename"], item["contentType"], item["length"]) == (
        "syslog.txt",
        "text/plain",
        14,
    )
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("note", "no file at all")
    async with servers.http.post(link, data=form) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "BAD_UPLOAD"


async def test_the_file_server_has_health_ready_and_metrics(servers: Servers) -> None:
    for path, status in (("/health", 200), ("/ready", 200), ("/metrics", 200)):
        async with servers.http.get(servers.files_url + path) as r:
            assert r.status == status
    async with servers.http.get(servers.files_url + "/metrics") as r:
        assert "chronos_files_requests_total" in await r.text()


async def test_abandoned_writes_and_retired_versions_are_purged(servers: Servers) -> None:
    await put(servers, "keep.bin", b"kept")
    stale = await fs.begin_file(servers.pool, "half.bin", {})
    await servers.pool.execute(
        "UPDATE files SET touched = now() - interval '2 hours' WHERE id = $1", stale
    )
    await insert_device(servers.pool, DEVICE)
    upload = await fs.begin_upload(
        servers.pool, DEVICE, 0, "2 Vendor Log File", filename="", content_type="", sealed=False
    )
    await servers.pool.execute(
        "UPDATE device_uploads SET touched = now() - interval '2 hours' WHERE id = $1", upload
    )
    await servers.api("DELETE", "/files/keep.bin")
    assert await fs.purge(servers.pool, 3600) == 2  # the deleted version is kept a while
    await fileserver.sweep_once(servers.app)  # the file server's own round: nothing due
    assert await servers.pool.fetchval("SELECT count(*) FROM files") == 1
    assert await fs.purge(servers.pool, 0) == 1
