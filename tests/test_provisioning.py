"""Provisioning end to end: presets, declarative provisions, virtual parameters and device
classes through the API, applied by the ACS to simulated CPEs over real HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests import test_nbi
from tests.test_nbi import Stack, q, url_id
from tools.sim.cpe import SimulatedCpe

stack = test_nbi.stack  # the ACS, the API and a connection-request listener

IGD = "InternetGatewayDevice"
WLAN = f"{IGD}.LANDevice.1.WLANConfiguration"
PPP = f"{IGD}.WANDevice.1.WANConnectionDevice.1.WANPPPConnection"


async def boot(stack: Stack, seed: int, model: str = "tr098") -> SimulatedCpe:
    device = SimulatedCpe(stack.acs_url, model=model, seed=seed, periodic=False, reboot_delay=0.05)
    stack.listener.register(device)
    await device.start()
    async with asyncio.timeout(20):
        await device.wait_for_session(lambda r: r.ok)
    return device


@pytest.fixture
async def fleet(stack: Stack) -> AsyncIterator[list[SimulatedCpe]]:
    devices: list[SimulatedCpe] = []
    yield devices
    for device in devices:
        await device.stop()


async def session(stack: Stack, device: SimulatedCpe) -> None:
    """Wake a device and wait for its session to end well."""
    n = device.session_count
    device.connection_request()
    async with asyncio.timeout(20):
        record = await device.wait_for_session(after=n)
    assert record.ok, record.error


async def test_bootstrap_discovers_the_whole_tree(stack: Stack, fleet: list[SimulatedCpe]) -> None:
    device = await boot(stack, 21)
    fleet.append(device)
    leaves = {
        p.name for p in device.datamodel.get_parameter_names("", False) if not p.name.endswith(".")
    }
    stored = await stack.pool.fetch(
        "SELECT path, value_type FROM device_params WHERE device_id = $1 AND value IS NOT NULL",
        device.device_id,
    )
    assert {r["path"] for r in stored} >= leaves and len(leaves) > 300
    objects = await stack.pool.fetchval(
        "SELECT count(*) FROM device_params WHERE device_id = $1 AND object AND subtree_ts IS NOT NULL",
        device.device_id,
    )
    assert objects > 20  # every object was listed by the bootstrap's GetParameterNames
    assert await stack.pool.fetchval("SELECT count(*) FROM faults") == 0


async def test_inform_preset_gives_the_acs_working_connection_request_credentials(
    stack: Stack, fleet: list[SimulatedCpe]
) -> None:
    device = await boot(stack, 22)
    fleet.append(device)
    user, password = device.connection_request_credentials
    assert user == device.device_id and len(password) >= 20
    stored = await stack.pool.fetchval(
        "SELECT value FROM device_params WHERE device_id = $1 AND path = $2",
        device.device_id,
        f"{IGD}.ManagementServer.ConnectionRequestPassword",
    )
    assert stored.startswith("sealed:") and password not in stored
    # The ACS can wake it with those, not with the configured defaults.
    r = await stack.api("POST", f"/api/v1/devices/{url_id(device.device_id)}/connection-request")
    assert r.status == 200, r.body


async def test_preset_sets_the_ssid_of_tagged_devices_only(
    stack: Stack, fleet: list[SimulatedCpe]
) -> None:
    tagged, other = await boot(stack, 23), await boot(stack, 24)
    fleet += [tagged, other]
    provision = f"""
- declare: {WLAN}.1.SSID
  value: "ISP-${{substr(serial, -4)}}"
- tag: ssid-managed
"""
    assert (await stack.api("PUT", "/provisions/isp-wifi", data=provision)).status == 200
    preset = {
        "weight": 10,
        "precondition": json.dumps({"_tags": "wifi"}),
        "provisions": [["isp-wifi"]],
    }
    assert (await stack.api("PUT", "/presets/wifi", data=preset)).status == 200
    assert (await stack.api("POST", f"/devices/{url_id(tagged.device_id)}/tags/wifi")).status == 200
    await asyncio.sleep(0.3)  # the ACS hears of the new preset by LISTEN
    await session(stack, tagged)
    await session(stack, other)
    assert (
        tagged.datamodel[f"{WLAN}.1.SSID"]
        == "ISP-" + tagged.datamodel[f"{IGD}.DeviceInfo.SerialNumber"][-4:]
    )
    assert other.datamodel[f"{WLAN}.1.SSID"] != tagged.datamodel[f"{WLAN}.1.SSID"]
    r = await stack.api("GET", f"/devices/?query={q({'_tags': 'ssid-managed'})}&projection=_id")
    assert [d["_id"] for d in r.body] == [tagged.device_id]
    # Converged: the next session sends no SetParameterValues.
    n = tagged.session_count
    await session(stack, tagged)
    assert "SetParameterValues" not in tagged.sessions[n].rpcs


async def test_alias_filtered_instance_is_created_once_with_its_keys(
    stack: Stack, fleet: list[SimulatedCpe]
) -> None:
    device = await boot(stack, 25)
    fleet.append(device)
    provision = {
        "steps": [
            {"declare": f"{PPP}.[Name:internet]", "instances": 1},
            {"declare": f"{PPP}.[Name:internet].Username", "value": "${serial}@isp"},
        ]
    }
    await stack.api("PUT", "/provisions/ppp", data=provision)
    await stack.api("PUT", "/presets/ppp", data={"provisions": [["ppp"]]})
    await asyncio.sleep(0.3)
    await session(stack, device)
    await session(stack, device)
    instances = device.datamodel.instance_numbers(f"{PPP}.")
    named = [i for i in instances if device.datamodel[f"{PPP}.{i}.Name"] == "internet"]
    assert len(named) == 1
    serial = device.datamodel[f"{IGD}.DeviceInfo.SerialNumber"]
    assert device.datamodel[f"{PPP}.{named[0]}.Username"] == f"{serial}@isp"
    assert await stack.pool.fetchval("SELECT count(*) FROM faults") == 0


async def test_a_fault_in_one_channel_does_not_block_another(
    stack: Stack, fleet: list[SimulatedCpe]
) -> None:
    device = await boot(stack, 26)
    fleet.append(device)
    await stack.api(
        "PUT", "/provisions/broken", data=[{"value": [f"{IGD}.DeviceInfo.SerialNumber", "forged"]}]
    )
    await stack.api("PUT", "/provisions/good", data=[{"value": [f"{WLAN}.1.SSID", "still-works"]}])
    await stack.api("PUT", "/presets/a", data={"channel": "broken", "provisions": [["broken"]]})
    await stack.api("PUT", "/presets/b", data={"channel": "good", "provisions": [["good"]]})
    await asyncio.sleep(0.3)
    await session(stack, device)
    assert device.datamodel[f"{WLAN}.1.SSID"] == "still-works"
    [fault] = (await stack.api("GET", "/faults/")).body
    assert fault["channel"] == "broken" and fault["code"] == "provision.not_writable"
    assert "provision broken, step 1" in fault["detail"]["origin"]
    assert fault["retries"] == 0
    # In backoff: the next session leaves the broken channel alone (no new attempt).
    await session(stack, device)
    [fault] = (await stack.api("GET", "/faults/")).body
    assert fault["retries"] == 0


async def test_invalid_documents_are_refused_naming_the_bad_step(stack: Stack) -> None:
    r = await stack.api(
        "PUT", "/provisions/x", data=[{"declare": "A.B", "value": 1}, {"declare": "A..B"}]
    )
    assert r.status == 400 and r.body["error"]["code"] == "INVALID_PROVISION"
    assert "step 2 (declare)" in r.body["error"]["message"]
    r = await stack.api("PUT", "/provisions/x", data="declare('A.B', {value: 1});")
    assert r.status == 400 and "declarative" in r.body["error"]["message"]
    r = await stack.api("PUT", "/provisions/x", data=[{"declare": "A.B", "value": "${nosuch(1)}"}])
    assert "unknown function" in r.body["error"]["message"]
    r = await stack.api("PUT", "/presets/p", data={"precondition": {"a": {"$where": 1}}})
    assert r.status == 400 and "precondition" in r.body["error"]["message"]
    r = await stack.api(
        "PUT", "/presets/p", data={"schedule": {"cron": "every day", "duration": 60}}
    )
    assert r.status == 400 and "cron" in r.body["error"]["message"]
    r = await stack.api("PUT", "/provisions/bootstrap", data=[])
    assert r.status == 400 and "built-in" in r.body["error"]["message"]
    assert await stack.pool.fetchval("SELECT count(*) FROM provisions") == 0


async def test_virtual_parameters_are_queryable_and_cycles_refused(
    stack: Stack, fleet: list[SimulatedCpe]
) -> None:
    wan = {
        "first": [
            f"{IGD}.WANDevice.*.WANConnectionDevice.*.WANPPPConnection.*.ExternalIPAddress",
            f"{IGD}.WANDevice.*.WANConnectionDevice.*.WANIPConnection.*.ExternalIPAddress",
        ]
    }
    assert (await stack.api("PUT", "/virtual_parameters/WanIp", data=wan)).status == 200
    label = {"value": "${serial}/${param('VirtualParameters.WanIp')}"}
    assert (await stack.api("PUT", "/virtual_parameters/Label", data=label)).status == 200
    loop = {"value": "${param('VirtualParameters.Label')}"}
    r = await stack.api("PUT", "/virtual_parameters/WanIp", data=loop)
    assert r.status == 400 and "cycle" in r.body["error"]["message"]
    await asyncio.sleep(0.3)
    device = await boot(stack, 27)
    fleet.append(device)
    ips = [
        p.value
        for p in device.datamodel.inform_parameters()
        if p.name.endswith("ExternalIPAddress")
    ]
    r = await stack.api(
        "GET",
        f"/devices/?query={q({'VirtualParameters.WanIp': ips[0]})}&projection=VirtualParameters",
    )
    [doc] = r.body
    serial = device.datamodel[f"{IGD}.DeviceInfo.SerialNumber"]
    assert doc["VirtualParameters"]["WanIp"]["_value"] == ips[0]
    assert doc["VirtualParameters"]["Label"]["_value"] == f"{serial}/{ips[0]}"


async def test_device_class_quirks_apply_to_that_model(
    stack: Stack, fleet: list[SimulatedCpe]
) -> None:
    device = await boot(stack, 28)
    fleet.append(device)
    oui, product_class = (
        device.device_id.split("-")[0],
        device.datamodel[f"{IGD}.DeviceInfo.ProductClass"],
    )
    r = await stack.api(
        "PUT",
        f"/api/v1/device-classes/{oui}/*",
        data={"boolean_style": "digit", "xml_declaration": False},
    )
    assert r.status == 200 and r.body["options"] == {
        "boolean_style": "digit",
        "xml_declaration": False,
    }
    bad = await stack.api("PUT", f"/api/v1/device-classes/{oui}/*", data={"boolean_style": "yes"})
    assert bad.status == 400
    await stack.api("PUT", "/provisions/off", data=[{"value": [f"{WLAN}.2.Enable", False]}])
    await stack.api("PUT", "/presets/off", data={"provisions": [["off"]]})
    await asyncio.sleep(0.3)
    await session(stack, device)
    assert device.datamodel[f"{WLAN}.2.Enable"] == "false"
    listing = await stack.api("GET", "/api/v1/device-classes")
    assert listing.body[0]["oui"] == oui and product_class


async def test_preset_listing_has_the_genieacs_shape(stack: Stack) -> None:
    await stack.api(
        "PUT",
        "/presets/inform-every-hour",
        data={
            "weight": 0,
            "channel": "x",
            "precondition": '{"_tags": "test"}',
            "configurations": [
                {
                    "type": "value",
                    "name": f"{IGD}.ManagementServer.PeriodicInformEnable",
                    "value": "true",
                },
                {
                    "type": "value",
                    "name": f"{IGD}.ManagementServer.PeriodicInformInterval",
                    "value": "3600",
                },
            ],
        },
    )
    r = await stack.api("GET", f"/presets/?query={q({'_id': 'inform-every-hour'})}")
    assert r.status == 200 and r.headers["total"] == "1"
    assert r.body[0]["_id"] == "inform-every-hour" and r.body[0]["channel"] == "x"
    assert (await stack.api("DELETE", "/presets/inform-every-hour")).status == 200
    assert (await stack.api("GET", "/presets/")).headers["total"] == "2"  # the defaults remain


async def test_provisions_task_runs_named_provisions_at_once(
    stack: Stack, fleet: list[SimulatedCpe]
) -> None:
    device = await boot(stack, 29)
    fleet.append(device)
    await stack.api(
        "PUT",
        "/provisions/set-interval",
        data=[
            {"value": [f"{IGD}.ManagementServer.PeriodicInformInterval", "${args[0]}"]},
            {"tag": "interval-${args[0]}"},
        ],
    )
    body = {"name": "provisions", "provisions": [["set-interval", 900]]}
    r = await stack.api(
        "POST", f"/devices/{url_id(device.device_id)}/tasks?connection_request", data=body
    )
    assert r.status == 200, r.reason
    assert device.datamodel[f"{IGD}.ManagementServer.PeriodicInformInterval"] == "900"
    tags = await stack.pool.fetchval("SELECT tags FROM devices WHERE id = $1", device.device_id)
    assert "interval-900" in tags
    unknown = await stack.api(
        "POST",
        f"/devices/{url_id(device.device_id)}/tasks",
        data={"name": "provisions", "provisions": [["nope"]]},
    )
    assert unknown.status == 400 and unknown.body["error"]["code"] == "UNKNOWN_PROVISION"


async def test_reboot_step_reboots_only_devices_up_too_long(
    stack: Stack, fleet: list[SimulatedCpe]
) -> None:
    device = await boot(stack, 30)
    fleet.append(device)
    await stack.api("PUT", "/provisions/nightly", data=[{"reboot": 3600}])
    await stack.api(
        "PUT", "/presets/nightly", data={"channel": "nightly", "provisions": [["nightly"]]}
    )
    await asyncio.sleep(0.3)
    await session(stack, device)  # booted moments ago: no reboot
    assert "Reboot" not in device.sessions[-1].rpcs
    await stack.pool.execute(
        "UPDATE devices SET last_boot = now() - interval '2 hours' WHERE id = $1", device.device_id
    )
    n = device.session_count
    await session(stack, device)
    assert device.sessions[n].rpcs["Reboot"] == 1
    async with asyncio.timeout(20):
        await device.wait_for_session(lambda r: "1 BOOT" in r.events and r.ok, after=n + 1)


async def test_provisioned_firmware_downloads_once_by_file_name(
    pool: asyncpg.Pool, db_dsn: str
) -> None:
    from tests.test_files_e2e import booted, stack_with, store_file

    async with stack_with(pool, db_dsn) as files_stack, booted(files_stack, seed=31) as device:
        await store_file(
            files_stack, "HG-9.9.9.bin", b"\x7fIMAGE" * 1000, fileType="1 Firmware Upgrade Image"
        )
        await files_stack.api(
            "PUT",
            "/provisions/firmware",
            data=[
                {"download": {"fileType": "1 Firmware Upgrade Image", "fileName": "HG-9.9.9.bin"}},
            ],
        )
        await files_stack.api(
            "PUT", "/presets/firmware", data={"channel": "firmware", "provisions": [["firmware"]]}
        )
        await asyncio.sleep(0.3)
        await session(files_stack, device)  # queues the download and runs it at once
        async with asyncio.timeout(20):
            while (
                await pool.fetchval(
                    "SELECT count(*) FROM tasks WHERE name = 'download' AND status = 'done'"
                )
                == 0
            ):
                await asyncio.sleep(0.1)
        assert device.datamodel[f"{IGD}.DeviceInfo.SoftwareVersion"] == "HG-9.9.9"
        await session(files_stack, device)  # done already: not queued again
        assert await pool.fetchval("SELECT count(*) FROM tasks WHERE name = 'download'") == 1
        await files_stack.api(
            "PUT",
            "/provisions/firmware",
            data=[
                {"download": {"fileType": "1 Firmware Upgrade Image", "fileName": "missing.bin"}},
            ],
        )
        await asyncio.sleep(0.3)
        await session(files_stack, device)
        [fault] = (await files_stack.api("GET", "/faults/")).body
        assert fault["channel"] == "firmware" and fault["code"] == "provision.file_not_found"
