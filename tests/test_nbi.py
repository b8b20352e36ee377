"""The GenieACS-compatible API over real HTTP, with the ACS, PostgreSQL and simulated
CPEs behind it. Requests are the examples of GenieACS's NBI API reference, replayed as
written (paths, query strings, task bodies), with our devices' ids in them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import asyncpg
import pytest

from acs import server
from controller import app as api_app
from controller.auth import create_token
from schemas.config import AcsConfig, Config, ConnectionRequestConfig
from schemas.sealing import Sealer
from tests.conftest import SECRET_KEY, serving
from tools.sim.cpe import ConnectionRequestServer, SimulatedCpe

IGD = "InternetGatewayDevice"
CR_USER, CR_PASSWORD = "acs-cr", "s3cret-cr"


@dataclass
class Reply:
    status: int
    reason: str
    headers: dict[str, str]
    body: Any


class Api:
    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self.auth = {"Authorization": f"Bearer {token}"}

    async def __call__(
        self, method: str, path: str, *, data: Any = None, headers: dict | None = None
    ) -> Reply:
        if isinstance(data, dict | list):
            data = json.dumps(data)
        hdrs = {**self.auth, **(headers or {})}
        # The path goes out exactly as written (percent-encoding included).
        url = aiohttp.client.URL(self.base + path, encoded=True)
        async with self.http.request(method, url, data=data, headers=hdrs) as r:
            text = await r.text()
            body: Any = text
            if r.headers.get("Content-Type", "").startswith("application/json") and text:
                body = json.loads(text)
            return Reply(r.status, r.reason or "", dict(r.headers), body)

    async def close(self) -> None:
        await self.http.close()


@dataclass
class Stack:
    api: Api
    acs_url: str
    api_url: str
    pool: asyncpg.Pool
    token: str
    listener: ConnectionRequestServer


@pytest.fixture
async def stack(pool: asyncpg.Pool, db_dsn: str) -> AsyncIterator[Stack]:
    sealer = Sealer(SECRET_KEY)
    config = Config(
        acs=AcsConfig(session_timeout=5),
        connection_request=ConnectionRequestConfig(username=CR_USER, password=CR_PASSWORD),
    )
    token = await create_token(pool, "test admin", "admin")
    listener = ConnectionRequestServer()
    await listener.start()
    async with (
        serving(server.create_app(pool, config.acs, sealer, db_dsn)) as acs_url,
        serving(api_app.create_app(pool, db_dsn, config, sealer)) as api_url,
    ):
        api = Api(api_url, token)
        try:
            yield Stack(api, acs_url + "/", api_url, pool, token, listener)
        finally:
            await api.close()
            await listener.stop()


@pytest.fixture
async def cpe(stack: Stack) -> AsyncIterator[SimulatedCpe]:
    """A TR-098 gateway whose serial has a '-', registered, answering connection requests."""
    device = SimulatedCpe(
        stack.acs_url,
        model="tr098",
        seed=7,
        serial_number="SR552NA084-0003269",
        periodic=False,
        reboot_delay=0.05,
        connection_request_username=CR_USER,
        connection_request_password=CR_PASSWORD,
    )
    stack.listener.register(device)
    async with device:
        async with asyncio.timeout(10):
            await device.wait_for_session(lambda r: r.ok)
        yield device


def url_id(device_id: str) -> str:
    """A device id as the GenieACS docs put it in a path: percent-encoded once more."""
    return quote(device_id, safe="")


def q(obj: object) -> str:
    return quote(json.dumps(obj), safe="")


async def insert_device(
    pool: asyncpg.Pool, device_id: str, last_inform: datetime | None = None, **params: str
) -> None:
    oui, _, rest = device_id.partition("-")
    await pool.execute(
        "INSERT INTO devices (id, oui, serial_number, last_inform) VALUES ($1, $2, $3, $4)",
        device_id,
        oui,
        rest,
        last_inform,
    )
    for path, value in params.items():
        await pool.execute(
            "INSERT INTO device_params (device_id, path, object, value, value_type, value_ts)"
            " VALUES ($1, $2, false, $3, 'xsd:string', now())",
            device_id,
            path,
            value,
        )


# --- authentication ------------------------------------------------------------------------


async def test_requests_without_a_valid_token_are_401_with_the_error_shape(stack: Stack) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(stack.api_url + "/devices/") as r:
            assert r.status == 401
            assert "Bearer" in r.headers["WWW-Authenticate"]
            assert (await r.json())["error"]["code"] == "UNAUTHORIZED"
        async with http.get(
            stack.api_url + "/devices/", headers={"Authorization": "Bearer nope"}
        ) as r:
            assert r.status == 401
        async with http.get(stack.api_url + "/health") as r:
            assert r.status == 200  # probes need no token


async def test_token_as_basic_auth_password_works(stack: Stack) -> None:
    auth = {"Authorization": aiohttp.encode_basic_auth("genieacs-client", stack.token)}
    async with (
        aiohttp.ClientSession() as http,
        http.get(stack.api_url + "/devices/", headers=auth) as r,
    ):
        assert r.status == 200


async def test_viewer_tokens_read_but_do_not_write(stack: Stack) -> None:
    token = await create_token(stack.pool, "noc screen", "viewer")
    viewer = Api(stack.api_url, token)
    try:
        assert (await viewer("GET", "/devices/")).status == 200
        denied = await viewer("POST", "/devices/x/tags/y")
        assert denied.status == 403 and denied.body["error"]["code"] == "FORBIDDEN"
    finally:
        await viewer.close()


# --- devices: the docs' query examples -----------------------------------------------------


async def test_find_a_device_by_id_with_total_header(stack: Stack) -> None:
    await insert_device(stack.pool, "202BC1-BM632w-0000000")
    await insert_device(stack.pool, "202BC1-BM632w-0000001")
    r = await stack.api("GET", "/devices/?query=%7B%22_id%22%3A%22202BC1-BM632w-0000000%22%7D")
    assert r.status == 200 and r.headers["total"] == "1"
    assert [d["_id"] for d in r.body] == ["202BC1-BM632w-0000000"]
    head = await stack.api("HEAD", "/devices/?query=%7B%7D")
    assert head.status == 200 and head.headers["total"] == "2" and head.body == ""


async def test_find_a_device_by_mac_address(stack: Stack) -> None:
    mac = f"{IGD}.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.MACAddress"
    await insert_device(stack.pool, "202BC1-BM632w-0000000", **{mac: "20:2B:C1:E0:06:65"})
    await insert_device(stack.pool, "202BC1-BM632w-0000001", **{mac: "20:2B:C1:E0:06:66"})
    r = await stack.api(
        "GET",
        "/devices/?query=%7B%22InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.MACAddress%22%3A%2220:2B:C1:E0:06:65%22%7D",
    )
    assert [d["_id"] for d in r.body] == ["202BC1-BM632w-0000000"]
    assert (
        r.body[0]["InternetGatewayDevice"]["WANDevice"]["1"]["WANConnectionDevice"]["1"][
            "WANIPConnection"
        ]["1"]["MACAddress"]["_value"]
        == "20:2B:C1:E0:06:65"
    )


async def test_devices_with_no_inform_in_the_last_days(stack: Stack) -> None:
    await insert_device(stack.pool, "202BC1-BM632w-0000000", datetime(2017, 11, 1, tzinfo=UTC))
    await insert_device(stack.pool, "202BC1-BM632w-0000001", datetime(2018, 1, 1, tzinfo=UTC))
    r = await stack.api(
        "GET",
        "/devices/?query=%7B%22_lastInform%22%3A%7B%22%24lt%22%3A%222017-12-11%2013%3A16%3A23%20%2B0000%22%7D%7D",
    )
    assert [d["_id"] for d in r.body] == ["202BC1-BM632w-0000000"]
    assert r.body[0]["_lastInform"] == "2017-11-01T00:00:00.000Z"


async def test_projection_returns_only_the_named_parameters(
    stack: Stack, cpe: SimulatedCpe
) -> None:
    await stack.api(
        "POST",
        f"/devices/{url_id(cpe.device_id)}/tasks?timeout=3000&connection_request",
        data={"name": "refreshObject", "objectName": f"{IGD}.DeviceInfo"},
    )
    r = await stack.api(
        "GET",
        f"/devices?query={q({'_id': cpe.device_id})}"
        "&projection=InternetGatewayDevice.DeviceInfo.ModelName,InternetGatewayDevice.DeviceInfo.Manufacturer",
    )
    assert r.status == 200 and len(r.body) == 1
    doc = r.body[0]
    assert set(doc) == {"_id", "InternetGatewayDevice"}
    info = doc["InternetGatewayDevice"]["DeviceInfo"]
    assert set(info) == {"ModelName", "Manufacturer"}
    assert info["Manufacturer"]["_value"] == cpe.datamodel[f"{IGD}.DeviceInfo.Manufacturer"]
    assert (
        info["Manufacturer"]["_type"] == "xsd:string" and info["Manufacturer"]["_writable"] is False
    )


async def test_sort_skip_limit(stack: Stack) -> None:
    for i in range(5):
        await insert_device(stack.pool, f"202BC1-BM632w-000000{i}")
    r = await stack.api("GET", f"/devices/?sort={q({'_id': -1})}&skip=1&limit=2&projection=_id")
    assert [d["_id"] for d in r.body] == ["202BC1-BM632w-0000003", "202BC1-BM632w-0000002"]
    assert r.headers["total"] == "5"


async def test_bad_query_and_bad_parameters_are_400(stack: Stack) -> None:
    broken = await stack.api("GET", "/devices/?query=%7Bnot-json")
    assert broken.status == 400 and broken.body["error"]["code"] == "BAD_JSON"
    unsupported = await stack.api("GET", f"/devices/?query={q({'a': {'$where': 'x'}})}")
    assert unsupported.status == 400 and unsupported.body["error"]["code"] == "BAD_QUERY"
    negative = await stack.api("GET", "/devices/?limit=-1")
    assert negative.status == 400


# --- tasks: the docs' task examples ----------------------------------------------------------


TASK_EXAMPLES = {
    "getParameterValues": {
        "name": "getParameterValues",
        "parameterNames": [
            f"{IGD}.WANDevice.1.WANConnectionDevice.1.WANIPConnectionNumberOfEntries",
            f"{IGD}.Time.NTPServer1",
            f"{IGD}.Time.Status",
        ],
    },
    "refreshObject": {
        "name": "refreshObject",
        "objectName": f"{IGD}.WANDevice.1.WANConnectionDevice",
    },
    "setParameterValues": {
        "name": "setParameterValues",
        "parameterValues": [[f"{IGD}.ManagementServer.UpgradesManaged", False]],
    },
    "addObject": {
        "name": "addObject",
        "objectName": f"{IGD}.WANDevice.1.WANConnectionDevice.1.WANPPPConnection",
    },
    "reboot": {"name": "reboot"},
    "factoryReset": {"name": "factoryReset"},
}


@pytest.mark.parametrize("name", list(TASK_EXAMPLES))
async def test_docs_task_example_runs_at_once_with_connection_request(
    name: str, stack: Stack, cpe: SimulatedCpe
) -> None:
    body = TASK_EXAMPLES[name]
    r = await stack.api(
        "POST", f"/devices/{url_id(cpe.device_id)}/tasks?timeout=3000&connection_request", data=body
    )
    assert (r.status, r.reason) == (200, "OK"), r.body
    assert r.body["name"] == name and r.body["device"] == cpe.device_id
    assert len(r.body["_id"]) == 24 and r.body["timestamp"].endswith("Z")
    assert (await stack.api("GET", f"/tasks/?query={q({'device': cpe.device_id})}")).body == []


async def test_set_parameter_values_reaches_the_device_with_its_type(
    stack: Stack, cpe: SimulatedCpe
) -> None:
    ssid = f"{IGD}.LANDevice.1.WLANConfiguration.1.SSID"
    body = {"name": "setParameterValues", "parameterValues": [[ssid, "GenieACS", "xsd:string"]]}
    r = await stack.api(
        "POST", f"/devices/{url_id(cpe.device_id)}/tasks?connection_request", data=body
    )
    assert r.status == 200
    assert cpe.datamodel[ssid] == "GenieACS"
    stored = await stack.pool.fetchval("SELECT value FROM device_params WHERE path = $1", ssid)
    assert stored == "GenieACS"


async def test_delete_object_example(stack: Stack, cpe: SimulatedCpe) -> None:
    table = f"{IGD}.WANDevice.1.WANConnectionDevice.1.WANPPPConnection"
    added = await stack.api(
        "POST",
        f"/devices/{url_id(cpe.device_id)}/tasks?timeout=3000&connection_request",
        data={"name": "addObject", "objectName": table},
    )
    instance = (await stack.api("GET", f"/api/v1/tasks/{added.body['_id']}")).body["result"][
        "instance"
    ]
    r = await stack.api(
        "POST",
        f"/devices/{url_id(cpe.device_id)}/tasks?timeout=3000&connection_request",
        data={"name": "deleteObject", "objectName": f"{table}.{instance}"},
    )
    assert r.status == 200
    assert instance not in cpe.datamodel.instance_numbers(table + ".")


async def test_task_without_connection_request_is_queued_202(
    stack: Stack, cpe: SimulatedCpe
) -> None:
    r = await stack.api("POST", f"/devices/{url_id(cpe.device_id)}/tasks", data={"name": "reboot"})
    assert r.status == 202
    assert list(r.body) == ["name", "device", "timestamp", "_id"]
    pending = await stack.api("GET", f"/tasks/?query={q({'device': cpe.device_id})}")
    assert [t["_id"] for t in pending.body] == [r.body["_id"]] and pending.headers["total"] == "1"


async def test_task_for_an_unknown_device_is_404(stack: Stack) -> None:
    r = await stack.api("POST", "/devices/nope/tasks", data={"name": "reboot"})
    assert r.status == 404 and r.body["error"]["code"] == "DEVICE_NOT_FOUND"
    assert await stack.pool.fetchval("SELECT count(*) FROM tasks") == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "BAD_JSON"),
        ('{"name": "launchRocket"}', "INVALID_TASK"),
        ('{"name": "getParameterValues"}', "INVALID_TASK"),
        ('{"name": "setParameterValues", "parameterValues": [["bad name!", 1]]}', "INVALID_TASK"),
        ("[1, 2]", "INVALID_TASK"),
    ],
)
async def test_bad_task_bodies_are_400_and_store_nothing(
    stack: Stack, body: str, code: str
) -> None:
    await insert_device(stack.pool, "00AA11-Box-1")
    r = await stack.api("POST", "/devices/00AA11-Box-1/tasks", data=body)
    assert r.status == 400 and r.body["error"]["code"] == code
    assert await stack.pool.fetchval("SELECT count(*) FROM tasks") == 0


async def test_value_that_its_known_type_cannot_hold_is_refused(
    stack: Stack, cpe: SimulatedCpe
) -> None:
    path = f"{IGD}.ManagementServer.PeriodicInformInterval"
    await stack.api(
        "POST",
        f"/devices/{url_id(cpe.device_id)}/tasks?connection_request",
        data={"name": "getParameterValues", "parameterNames": [path]},
    )
    r = await stack.api(
        "POST",
        f"/devices/{url_id(cpe.device_id)}/tasks",
        data={"name": "setParameterValues", "parameterValues": [[path, "soon"]]},
    )
    assert r.status == 400 and r.body["error"]["code"] == "INVALID_VALUE"
    assert r.body["error"]["details"]["type"] == "xsd:unsignedInt"


async def test_cpe_fault_then_retry_and_delete(stack: Stack, cpe: SimulatedCpe) -> None:
    bad = {"name": "getParameterValues", "parameterNames": [f"{IGD}.NoSuchThing"]}
    r = await stack.api(
        "POST", f"/devices/{url_id(cpe.device_id)}/tasks?connection_request", data=bad
    )
    assert (r.status, r.reason) == (202, "Task faulted")
    task_id = r.body["_id"]
    faults = await stack.api("GET", "/faults/")
    [fault] = faults.body
    assert fault["_id"] == f"{cpe.device_id}:task_{task_id}" and fault["code"] == "cwmp.9005"
    assert fault["channel"] == f"task_{task_id}" and fault["device"] == cpe.device_id
    detail = (await stack.api("GET", f"/api/v1/tasks/{task_id}")).body
    assert detail["status"] == "faulted" and detail["retries"] == 1 and detail["retryAt"]
    assert (await stack.api("POST", f"/tasks/{task_id}/retry")).status == 200
    assert (await stack.api("GET", "/faults/")).body == []
    assert (await stack.api("GET", f"/api/v1/tasks/{task_id}")).body.get("retryAt") is None
    assert (await stack.api("DELETE", f"/tasks/{task_id}")).status == 200
    assert (await stack.api("DELETE", f"/tasks/{task_id}")).status == 404


async def test_deleting_a_task_fault_deletes_the_task(stack: Stack, cpe: SimulatedCpe) -> None:
    bad = {"name": "getParameterValues", "parameterNames": [f"{IGD}.NoSuchThing"]}
    r = await stack.api(
        "POST", f"/devices/{url_id(cpe.device_id)}/tasks?connection_request", data=bad
    )
    fault_id = f"{cpe.device_id}:task_{r.body['_id']}"
    assert (await stack.api("DELETE", f"/faults/{quote(fault_id, safe='')}")).status == 200
    assert (await stack.api("GET", "/tasks/")).body == []


async def test_connection_request_to_an_unreachable_device_is_202_with_reason(stack: Stack) -> None:
    await insert_device(
        stack.pool,
        "00AA11-Box-OFF",
        **{f"{IGD}.ManagementServer.ConnectionRequestURL": "http://127.0.0.1:9/"},
    )
    r = await stack.api(
        "POST", "/devices/00AA11-Box-OFF/tasks?connection_request", data={"name": "reboot"}
    )
    assert (r.status, r.reason) == (202, "Device is offline")
    assert r.body["name"] == "reboot"  # queued all the same
    history = await stack.api("GET", "/api/v1/devices/00AA11-Box-OFF/connection-requests")
    [attempt] = history.body
    assert attempt["ok"] is False and attempt["detail"] == "Device is offline"
    assert attempt["url"] == "http://127.0.0.1:9/"


async def test_bare_connection_request_wakes_the_device(stack: Stack, cpe: SimulatedCpe) -> None:
    n = cpe.session_count
    r = await stack.api("POST", f"/devices/{url_id(cpe.device_id)}/tasks?connection_request")
    assert r.status == 200
    async with asyncio.timeout(10):
        await cpe.wait_for_session(lambda s: "6 CONNECTION REQUEST" in s.events, after=n)
    [attempt] = (
        await stack.api("GET", f"/api/v1/devices/{url_id(cpe.device_id)}/connection-requests")
    ).body
    assert attempt["ok"] is True and attempt["httpStatus"] in (200, 204)


async def test_wrong_connection_request_password_is_reported(
    stack: Stack, cpe: SimulatedCpe
) -> None:
    # The inform preset set credentials the ACS knows; make the stored one wrong.
    await stack.pool.execute(
        "UPDATE device_params SET value = $3 WHERE device_id = $1 AND path = $2",
        cpe.device_id,
        f"{IGD}.ManagementServer.ConnectionRequestPassword",
        Sealer(SECRET_KEY).seal("wrong"),
    )
    r = await stack.api("POST", f"/api/v1/devices/{url_id(cpe.device_id)}/connection-request")
    assert r.status == 504
    assert r.body["detail"] == "Connection request error: Incorrect connection request credentials"


# --- tags, faults, deletion ------------------------------------------------------------------


async def test_tags_add_remove_and_query(stack: Stack) -> None:
    await insert_device(stack.pool, "202BC1-BM632w-0000000")
    await insert_device(stack.pool, "202BC1-BM632w-0000001")
    assert (await stack.api("POST", "/devices/202BC1-BM632w-0000000/tags/testing")).status == 200
    assert (await stack.api("POST", "/devices/202BC1-BM632w-0000000/tags/testing")).status == 200
    r = await stack.api("GET", f"/devices/?query={q({'_tags': 'testing'})}&projection=_id,_tags")
    assert r.body == [{"_id": "202BC1-BM632w-0000000", "_tags": ["testing"]}]
    assert (await stack.api("DELETE", "/devices/202BC1-BM632w-0000000/tags/testing")).status == 200
    assert (await stack.api("GET", f"/devices/?query={q({'_tags': 'testing'})}")).body == []
    missing = await stack.api("POST", "/devices/nope/tags/testing")
    assert missing.status == 404 and missing.body["error"]["code"] == "DEVICE_NOT_FOUND"


async def test_delete_device_removes_tree_tasks_and_faults(stack: Stack, cpe: SimulatedCpe) -> None:
    await stack.api("POST", f"/devices/{url_id(cpe.device_id)}/tasks", data={"name": "reboot"})
    assert (await stack.api("DELETE", f"/devices/{url_id(cpe.device_id)}")).status == 200
    for table in ("devices", "device_params", "tasks", "faults"):
        assert await stack.pool.fetchval(f"SELECT count(*) FROM {table}") == 0


async def test_device_document_shape(stack: Stack, cpe: SimulatedCpe) -> None:
    r = await stack.api("GET", f"/devices/?query={q({'_id': cpe.device_id})}")
    [doc] = r.body
    assert doc["_deviceId"] == {
        "_Manufacturer": cpe.datamodel[f"{IGD}.DeviceInfo.Manufacturer"],
        "_OUI": cpe.datamodel[f"{IGD}.DeviceInfo.ManufacturerOUI"],
        "_ProductClass": cpe.datamodel[f"{IGD}.DeviceInfo.ProductClass"],
        "_SerialNumber": "SR552NA084-0003269",
    }
    assert doc["_id"].endswith("-SR552NA084%2D0003269")
    for key in ("_registered", "_lastInform", "_lastBoot", "_lastBootstrap"):
        assert doc[key].endswith("Z")
    version = doc["InternetGatewayDevice"]["DeviceInfo"]["SoftwareVersion"]
    assert version["_value"] == cpe.datamodel[f"{IGD}.DeviceInfo.SoftwareVersion"]
    assert version["_timestamp"] == doc["_lastInform"]


# --- protocol-level bad input ----------------------------------------------------------------


async def test_unknown_route_and_wrong_method_use_the_error_shape(stack: Stack) -> None:
    r = await stack.api("GET", "/nothing-here")
    assert r.status == 404 and r.body["error"]["code"] == "NOT_FOUND"
    r = await stack.api("PUT", "/devices/")
    assert r.status == 405 and r.body["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_oversize_body_is_413(stack: Stack) -> None:
    await insert_device(stack.pool, "00AA11-Box-1")
    r = await stack.api("POST", "/devices/00AA11-Box-1/tasks", data="x" * (2 * 1024 * 1024))
    assert r.status == 413 and r.body["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_openapi_document_describes_the_task_bodies(stack: Stack) -> None:
    r = await stack.api("GET", "/api/v1/openapi.json")
    assert r.status == 200 and r.body["openapi"].startswith("3.")
    assert "SetParameterValuesTask" in r.body["components"]["schemas"]
    assert "/devices/{id}/tasks" in r.body["paths"]


# --- the rest of the RPC set, through tasks --------------------------------------------------


async def post_now(stack: Stack, cpe: SimulatedCpe, body: dict[str, Any]) -> Reply:
    return await stack.api(
        "POST", f"/devices/{url_id(cpe.device_id)}/tasks?timeout=3000&connection_request", data=body
    )


async def task_view(stack: Stack, reply: Reply) -> dict[str, Any]:
    return (await stack.api("GET", f"/api/v1/tasks/{reply.body['_id']}")).body


async def test_download_by_url_completes_on_transfer_complete(
    stack: Stack, cpe: SimulatedCpe
) -> None:
    from aiohttp import web

    firmware = b"\x7fFIRMWARE" * 1000

    async def serve_file(request: web.Request) -> web.Response:
        return web.Response(body=firmware, content_type="application/octet-stream")

    files = web.Application()
    files.router.add_get("/fw/{name}", serve_file)
    async with serving(files) as base:
        r = await post_now(
            stack,
            cpe,
            {
                "name": "download",
                "url": f"{base}/fw/HG-4.2.0.bin",
                "fileType": "1 Firmware Upgrade Image",
                "fileSize": len(firmware),
            },
        )
    assert r.status == 200, r.reason
    view = await task_view(stack, r)
    assert view["status"] == "done" and view["result"]["faultCode"] == 0
    events = await stack.pool.fetch(
        "SELECT kind FROM device_events WHERE device_id = $1", cpe.device_id
    )
    assert [e["kind"] for e in events] == ["TransferComplete"]


async def test_download_that_fails_on_the_cpe_faults_the_task(
    stack: Stack, cpe: SimulatedCpe
) -> None:
    r = await post_now(stack, cpe, {"name": "download", "url": "http://127.0.0.1:9/missing.bin"})
    assert (r.status, r.reason) == (202, "Task faulted")
    fault = (await task_view(stack, r))["fault"]
    assert fault["code"].startswith("cwmp.90")


async def test_attributes_names_methods_and_schedule_inform(
    stack: Stack, cpe: SimulatedCpe
) -> None:
    ssid = f"{IGD}.LANDevice.1.WLANConfiguration.1.SSID"
    r = await post_now(
        stack,
        cpe,
        {"name": "setParameterAttributes", "parameterAttributes": [[ssid, 2, ["Subscriber"]]]},
    )
    assert r.status == 200
    r = await post_now(stack, cpe, {"name": "getParameterAttributes", "parameterNames": [ssid]})
    assert r.status == 200
    row = await stack.pool.fetchrow(
        "SELECT notification, access_list FROM device_params WHERE device_id = $1 AND path = $2",
        cpe.device_id,
        ssid,
    )
    assert (row["notification"], row["access_list"]) == (2, ["Subscriber"])
    r = await post_now(
        stack,
        cpe,
        {"name": "getParameterNames", "parameterPath": f"{IGD}.LANDevice.1.", "nextLevel": True},
    )
    assert r.status == 200 and (await task_view(stack, r))["result"]["parameters"] > 3
    r = await post_now(stack, cpe, {"name": "getRPCMethods"})
    assert "SetParameterValues" in (await task_view(stack, r))["result"]["methods"]
    n = cpe.session_count
    r = await post_now(stack, cpe, {"name": "scheduleInform", "delaySeconds": 1})
    assert r.status == 200
    async with asyncio.timeout(10):
        record = await cpe.wait_for_session(lambda s: "3 SCHEDULED" in s.events, after=n)
    assert "M ScheduleInform" in record.events


async def test_refresh_of_the_whole_tree_discovers_every_parameter(
    stack: Stack, cpe: SimulatedCpe
) -> None:
    r = await post_now(stack, cpe, {"name": "refreshObject", "objectName": ""})
    assert r.status == 200
    stored = await stack.pool.fetchval(
        "SELECT count(*) FROM device_params WHERE device_id = $1 AND NOT object AND value IS NOT NULL",
        cpe.device_id,
    )
    leaves = [
        p.name for p in cpe.datamodel.get_parameter_names("", False) if not p.name.endswith(".")
    ]
    assert stored == len(leaves) > 300


async def test_an_unchanged_inform_value_is_as_fresh_as_the_inform(
    stack: Stack, cpe: SimulatedCpe
) -> None:
    """Only changed values are rewritten, yet queries see every Inform value as fresh."""
    path = f"{IGD}.DeviceInfo.SoftwareVersion"
    written = await stack.pool.fetchval("SELECT value_ts FROM device_params WHERE path = $1", path)
    since = (await stack.pool.fetchval("SELECT now()")).isoformat()
    assert (
        await stack.api("POST", f"/devices/{url_id(cpe.device_id)}/tasks?connection_request")
    ).status == 200
    async with asyncio.timeout(10):
        await cpe.wait_for_session(lambda s: "6 CONNECTION REQUEST" in s.events and s.ok)
    assert (
        await stack.pool.fetchval("SELECT value_ts FROM device_params WHERE path = $1", path)
        == written
    )
    r = await stack.api(
        "GET", f"/devices/?query={q({path + '._timestamp': {'$gte': since}})}&projection=_id"
    )
    assert [d["_id"] for d in r.body] == [cpe.device_id]
