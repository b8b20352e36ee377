"""Downloads and uploads end to end: the API, the ACS, the file server and PostgreSQL over
real HTTP, with simulated CPEs fetching stored files through their signed links and
uploading their configuration and logs; the transfer-timeout sweep; `chronos acs`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest

from acs import fileserver, server
from acs import filestore as fs
from acs.files import LINK_PURPOSE, UPLOAD_SEAL_PURPOSE, ChunkCipher, FileUrls
from controller import app as api_app
from controller.auth import create_token
from schemas.config import AcsConfig, Config, ConnectionRequestConfig, FileServerConfig
from schemas.sealing import Sealer
from tests.conftest import SECRET_KEY, serving
from tests.test_nbi import CR_PASSWORD, CR_USER, Api, Reply, url_id
from tools.sim.cpe import ConnectionRequestServer, SimulatedCpe
from tools.sim.session import Quirks

IGD = "InternetGatewayDevice"
SSID = f"{IGD}.LANDevice.1.WLANConfiguration.1.SSID"


@dataclass
class Stack:
    api: Api
    pool: asyncpg.Pool
    acs_url: str
    files_url: str
    listener: ConnectionRequestServer


@contextlib.asynccontextmanager
async def stack_with(pool: asyncpg.Pool, db_dsn: str, **files: Any) -> AsyncIterator[Stack]:
    """The API, the ACS and the file server, sharing one key, as `chronos up` runs them."""
    sealer = Sealer(SECRET_KEY)
    config = Config(
        acs=AcsConfig(session_timeout=5),
        files=FileServerConfig(**files),
        connection_request=ConnectionRequestConfig(username=CR_USER, password=CR_PASSWORD),
    )
    token = await create_token(pool, "test admin", "admin")
    key = sealer.subkey(LINK_PURPOSE)
    cipher = ChunkCipher(sealer.subkey(UPLOAD_SEAL_PURPOSE))
    listener = ConnectionRequestServer()
    await listener.start()
    files_app = fileserver.create_app(pool, config, FileUrls(key, "http://unused"), cipher)
    async with serving(files_app) as files_url:
        # CPEs are told the file server's address: known once it listens.
        acs_app = server.create_app(
            pool,
            config.acs,
            sealer,
            db_dsn,
            file_urls=FileUrls(key, files_url),
            link_seconds=config.files.link_seconds,
        )
        async with (
            serving(acs_app) as acs_url,
            serving(api_app.create_app(pool, db_dsn, config, sealer)) as api_url,
        ):
            api = Api(api_url, token)
            try:
                yield Stack(api, pool, acs_url + "/", files_url, listener)
            finally:
                await api.close()
                await listener.stop()


@contextlib.asynccontextmanager
async def booted(stack: Stack, seed: int = 7, **options: Any) -> AsyncIterator[SimulatedCpe]:
    """A TR-098 gateway that has booted and answers connection requests."""
    device = SimulatedCpe(
        stack.acs_url,
        model="tr098",
        seed=seed,
        periodic=False,
        reboot_delay=0.05,
        connection_request_username=CR_USER,
        connection_request_password=CR_PASSWORD,
        **options,
    )
    stack.listener.register(device)
    async with device:
        async with asyncio.timeout(10):
            await device.wait_for_session(lambda r: r.ok)
        yield device


@pytest.fixture
async def stack(pool: asyncpg.Pool, db_dsn: str) -> AsyncIterator[Stack]:
    async with stack_with(pool, db_dsn) as s:
        yield s


@pytest.fixture
async def cpe(stack: Stack) -> AsyncIterator[SimulatedCpe]:
    async with booted(stack) as device:
        yield device


async def store_file(stack: Stack, name: str, data: bytes, **headers: str) -> dict[str, Any]:
    r = await stack.api("PUT", f"/files/{name}", data=data, headers=headers)
    assert r.status == 201, r.body
    return r.body


async def run_now(stack: Stack, cpe: SimulatedCpe, body: dict[str, Any]) -> Reply:
    return await stack.api(
        "POST", f"/devices/{url_id(cpe.device_id)}/tasks?timeout=3000&connection_request", data=body
    )


async def task_view(stack: Stack, reply: Reply) -> dict[str, Any]:
    return (await stack.api("GET", f"/api/v1/tasks/{reply.body['_id']}")).body


async def uploads_of(stack: Stack, cpe: SimulatedCpe) -> list[dict[str, Any]]:
    r = await stack.api("GET", f"/api/v1/devices/{url_id(cpe.device_id)}/uploads")
    assert r.status == 200
    return r.body


async def upload_content(stack: Stack, cpe: SimulatedCpe, upload_id: int) -> bytes:
    path = f"/api/v1/devices/{url_id(cpe.device_id)}/uploads/{upload_id}"
    url = aiohttp.client.URL(stack.api.base + path, encoded=True)
    async with stack.api.http.get(url, headers=stack.api.auth) as r:
        assert r.status == 200
        return await r.read()


# --- downloads ---------------------------------------------------------------------------------


async def test_a_download_by_file_name_reaches_the_cpe_through_its_link_and_completes(
    stack: Stack, cpe: SimulatedCpe
) -> None:
    image = os.urandom(2 * 1024 * 1024 + 77)
    await store_file(stack, "HG-4.3.0.bin", image, fileType="1 Firmware Upgrade Image")
    r = await run_now(stack, cpe, {"name": "download", "file": "HG-4.3.0.bin"})
    assert (r.status, r.reason) == (200, "OK"), r.reason
    assert r.body["file"] == "HG-4.3.0.bin"  # the task as the client sent it
    view = await task_view(stack, r)
    assert view["status"] == "done" and view["result"]["faultCode"] == 0
    # The CPE fetched every byte (FileSize was announced) and installed the image.
    assert cpe.datamodel[f"{IGD}.DeviceInfo.SoftwareVersion"] == "HG-4.3.0"
    args = await stack.pool.fetchval("SELECT args FROM tasks WHERE name = 'download'")
    assert args["fileSize"] == len(image) and args["fileType"] == "1 Firmware Upgrade Image"
    kinds = await stack.pool.fetch(
        "SELECT kind, detail FROM device_events WHERE device_id = $1", cpe.device_id
    )
    assert [k["kind"] for k in kinds] == ["TransferComplete"]
    assert kinds[0]["detail"]["commandKey"] == f"cc-{int(r.body['_id'], 16)}"


async def test_genieacs_file_type_and_file_name_form_and_an_unknown_file(
    stack: Stack, cpe: SimulatedCpe
) -> None:
    await store_file(stack, "router.xml", b"<config/>", fileType="3 Vendor Configuration File")
    path = f"/devices/{url_id(cpe.device_id)}/tasks"
    queued = await stack.api(
        "POST",
        path,
        data={
            "name": "download",
            "fileType": "X 00AA11 Startup Script",
            "fileName": "router.xml",
            "targetFileName": "startup.xml",
        },
    )
    assert queued.status == 202
    args = await stack.pool.fetchval("SELECT args FROM tasks")
    assert args["file"] == "router.xml" and args["fileType"] == "X 00AA11 Startup Script"
    assert args["fileSize"] == 9 and args["targetFileName"] == "startup.xml"
    # Replaced before it ran: the queued download announces the new size.
    await store_file(stack, "router.xml", b"<config>v2</config>")
    assert (await stack.pool.fetchval("SELECT args FROM tasks"))["fileSize"] == 19
    missing = await stack.api("POST", path, data={"name": "download", "file": "nope.bin"})
    assert missing.status == 400 and missing.body["error"]["code"] == "FILE_NOT_FOUND"
    assert missing.body["error"]["details"] == {"file": "nope.bin"}
    nothing = await stack.api("POST", path, data={"name": "download"})
    assert nothing.status == 400 and nothing.body["error"]["code"] == "INVALID_TASK"
    assert await stack.pool.fetchval("SELECT count(*) FROM tasks") == 1


# --- uploads -----------------------------------------------------------------------------------


async def test_an_upload_stores_the_cpes_configuration_for_the_device(
    stack: Stack, cpe: SimulatedCpe
) -> None:
    r = await run_now(stack, cpe, {"name": "upload", "fileType": "1 Vendor Configuration File"})
    assert (r.status, r.reason) == (200, "OK"), r.reason
    assert (await task_view(stack, r))["result"]["faultCode"] == 0
    [upload] = await uploads_of(stack, cpe)
    assert upload["fileType"] == "1 Vendor Configuration File"
    assert upload["task"] == r.body["_id"] and upload["contentType"] == "text/plain"
    backup = await upload_content(stack, cpe, upload["_id"])
    assert hashlib.sha256(backup).hexdigest() == upload["sha256"] and len(backup) > 10_000
    lines = backup.decode().splitlines()
    assert lines[0].startswith("# ") and cpe.serial_number in lines[0]
    assert f"{SSID}\txsd:string\t{cpe.datamodel[SSID]}" in lines


async def test_an_upload_of_the_log_as_a_multipart_post(stack: Stack) -> None:
    async with booted(stack, seed=8, quirks=Quirks(upload_post=True)) as cpe:
        r = await run_now(stack, cpe, {"name": "upload", "fileType": "2 Vendor Log File"})
        assert r.status == 200, r.reason
        [upload] = await uploads_of(stack, cpe)
        assert (upload["fileType"], upload["filename"]) == ("2 Vendor Log File", "device.log")
        log = (await upload_content(stack, cpe, upload["_id"])).decode()
        assert "session 0 events=0 BOOTSTRAP,1 BOOT ok" in log


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "http://127.0.0.1:9/backup"}, "cwmp.9011"),  # nobody listens there
        ({"url": "ftp://127.0.0.1/backup"}, "cwmp.9013"),
        ({"fileType": "3 Vendor Configuration File 2"}, "cwmp.9003"),  # it has just one
    ],
)
async def test_failed_uploads_fault_the_task_with_the_cpes_code(
    stack: Stack, cpe: SimulatedCpe, body: dict[str, str], code: str
) -> None:
    r = await run_now(stack, cpe, {"name": "upload", **body})
    assert (r.status, r.reason) == (202, "Task faulted")
    assert (await task_view(stack, r))["fault"]["code"] == code
    assert await uploads_of(stack, cpe) == []


async def test_an_upload_beyond_the_limit_is_refused_and_faults_the_task(
    pool: asyncpg.Pool, db_dsn: str
) -> None:
    async with stack_with(pool, db_dsn, max_upload_bytes=1000) as stack, booted(stack) as cpe:
        r = await run_now(stack, cpe, {"name": "upload"})
        assert (r.status, r.reason) == (202, "Task faulted")
        fault = (await task_view(stack, r))["fault"]
        assert fault["code"] == "cwmp.9011" and "413" in fault["message"]
        assert await pool.fetchval("SELECT count(*) FROM device_uploads") == 0


# --- transfers that never report ---------------------------------------------------------------


async def test_a_download_without_transfer_complete_is_faulted_by_the_sweep(
    pool: asyncpg.Pool, db_dsn: str
) -> None:
    async with (
        stack_with(pool, db_dsn, download_timeout=1, sweep_interval=0.1) as stack,
        booted(stack) as cpe,
    ):
        await store_file(stack, "fw.bin", b"image")
        # The CPE accepts, then waits an hour before it even starts: no TransferComplete.
        body = {"name": "download", "file": "fw.bin", "delaySeconds": 3600}
        r = await run_now(stack, cpe, body)
        assert (r.status, r.reason) == (202, "Task faulted")
        view = await task_view(stack, r)
        assert view["fault"]["code"] == "transfer.timeout" and view["retries"] == 1
        assert view["status"] == "faulted" and view["retryAt"]


async def test_a_timeout_counts_as_success_for_a_device_that_never_reports(
    pool: asyncpg.Pool, db_dsn: str
) -> None:
    async with (
        stack_with(pool, db_dsn, download_timeout=1, sweep_interval=0.1) as stack,
        booted(stack) as cpe,
    ):
        await pool.execute(
            """UPDATE devices SET options = '{"transfer_timeout_is_success": true}' WHERE id = $1""",
            cpe.device_id,
        )
        await store_file(stack, "fw.bin", b"image")
        r = await run_now(stack, cpe, {"name": "download", "file": "fw.bin", "delaySeconds": 3600})
        assert (r.status, r.reason) == (200, "OK")
        view = await task_view(stack, r)
        assert view["status"] == "done" and "fault" not in view
        assert view["result"] == {"transferComplete": False, "timedOut": True}


async def test_a_device_class_can_say_its_models_never_report(
    pool: asyncpg.Pool, db_dsn: str
) -> None:
    async with (
        stack_with(pool, db_dsn, download_timeout=1, sweep_interval=0.1) as stack,
        booted(stack) as cpe,
    ):
        oui = cpe.device_id.split("-")[0]
        r = await stack.api(
            "PUT", f"/api/v1/device-classes/{oui}/*", data={"transfer_timeout_is_success": True}
        )
        assert r.status == 200
        await store_file(stack, "fw.bin", b"image")
        r = await run_now(stack, cpe, {"name": "download", "file": "fw.bin", "delaySeconds": 3600})
        assert (r.status, r.reason) == (200, "OK")


async def test_the_sweep_settles_each_overdue_transfer_once_from_many_processes(
    pool: asyncpg.Pool,
) -> None:
    await pool.execute("INSERT INTO devices (id, oui, serial_number) VALUES ('D-1', 'D', '1')")
    await pool.execute(
        """INSERT INTO tasks (device_id, name, body, args, status, progress)
           SELECT 'D-1', 'download', '{}', '{}', 'waiting',
                  jsonb_build_object('sentAt', extract(epoch FROM now()) - 60)
           FROM generate_series(1, 50)"""
    )
    # A waiting task that is not yet overdue stays as it is.
    await pool.execute(
        """INSERT INTO tasks (device_id, name, body, args, status, progress)
           VALUES ('D-1', 'upload', '{}', '{}', 'waiting',
                   jsonb_build_object('sentAt', extract(epoch FROM now())))"""
    )
    rounds = await asyncio.gather(*(fs.time_out_transfers(pool, 30, 300, 8) for _ in range(4)))
    assert sum(len(r) for r in rounds) == 50
    assert await pool.fetchval("SELECT count(*) FROM faults WHERE code = 'transfer.timeout'") == 50
    assert await pool.fetchval("SELECT sum(retries) FROM tasks WHERE name = 'download'") == 50
    assert await pool.fetchval("SELECT status FROM tasks WHERE name = 'upload'") == "waiting"


# --- the command line ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_chronos_acs_serves_the_file_server_beside_cwmp(db_dsn: str) -> None:
    acs_port, files_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_dsn,
        "CHRONOS_SECRET_KEY": SECRET_KEY,
        "CHRONOS_CONFIG": os.devnull,
        "CHRONOS_ACS__HOST": "127.0.0.1",
        "CHRONOS_ACS__PORT": str(acs_port),
        "CHRONOS_FILES__HOST": "127.0.0.1",
        "CHRONOS_FILES__PORT": str(files_port),
        "CHRONOS_FILES__PUBLIC_URL": f"http://127.0.0.1:{files_port}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "acs"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(30):
            while True:
                try:
                    async with http.get(f"http://127.0.0.1:{files_port}/ready") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
                await asyncio.sleep(0.1)
            async with http.get(f"http://127.0.0.1:{files_port}/files/x.bin") as r:
                assert r.status == 403  # no link, no file
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0
