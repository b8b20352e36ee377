"""OLTs on the controller's side: inventory reported by an agent, jobs sent to the owning
agent and their outcomes, the ONT-to-CPE link, and live events. The agent here speaks
frames by hand; `tests/test_olt_e2e.py` runs the real agent against the OLT simulator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from schemas import frames as f
from schemas import olt
from tests import fleet_stack
from tests.fleet_stack import Fleet, RawAgent, eventually, job_when

fleet = fleet_stack.fleet
events = fleet_stack.events

OLT_TARGET = {
    "name": "olt-centro",
    "kind": "huawei-olt",
    "address": "127.0.0.1",
    "port": 2222,
    "credentials": {"username": "noc", "password": "s3cret"},
    "labels": {"zone": "pop1"},
}
SERIAL = "48575443A1B2C3D4"  # HWTC-A1B2C3D4


def now_ms() -> int:
    return int(time.time() * 1000)


def ont(ont_id: int, serial: str = SERIAL, port: int = 2, **extra: object) -> dict:
    return {
        "frame": 0,
        "slot": 1,
        "port": port,
        "ont_id": ont_id,
        "serial": serial,
        "run_state": "online",
        "config_state": "normal",
        "match_state": "match",
        "description": f"cliente {ont_id}",
        "distance_m": 1234,
        **extra,
    }


INVENTORY = {
    "version": {"product": "MA5800-X7", "version": "MA5800V100R019C10", "patch": "SPC100"},
    "boards": [
        {"slot": 0, "board": "H901PILA", "status": "Normal"},
        {"slot": 1, "board": "H901GPSF", "status": "Normal", "subtypes": ["CPSF"]},
    ],
    "ports": [{"slot": 1, "port": p, "enabled": True} for p in range(4)],
    "onts": [ont(0, "48575443000000AA"), ont(1, "HWTC-000000BB")],
}
AUTOFIND = {
    "entries": [
        {"slot": 1, "port": 2, "serial": SERIAL, "vendor_id": "HWTC", "equipment_id": "EG8145V5"}
    ]
}


@pytest.fixture
async def owned(fleet: Fleet) -> AsyncIterator[tuple[RawAgent, int]]:
    """An OLT target, and a frame-level agent that owns it."""
    created = await fleet.api("POST", "/api/v1/targets", data=OLT_TARGET)
    assert created.status == 201, created.body
    agent = RawAgent(fleet.url, fleet.agent_token, kinds=("huawei-olt",))
    await agent.connect()
    while not (await agent.expect(f.Assign)).targets:
        pass
    try:
        yield agent, created.body["id"]
    finally:
        await agent.close()


async def report(agent: RawAgent, seq: int, *events: f.Event) -> None:
    await agent.send(f.Report(seq, (), events))
    assert await agent.expect(f.Ack) == f.Ack(seq)


async def test_reported_inventory_fills_the_olt_views(
    fleet: Fleet, owned: tuple[RawAgent, int], events: list[dict]
) -> None:
    agent, olt_id = owned
    await report(
        agent,
        1,
        f.Event(olt_id, olt.INVENTORY, now_ms(), INVENTORY),
        f.Event(olt_id, olt.AUTOFIND, now_ms(), AUTOFIND),
    )
    (shown,) = (await fleet.api("GET", "/api/v1/olts")).body
    assert shown["id"] == olt_id and shown["product"] == "MA5800-X7"
    assert (shown["onts"], shown["ontsOnline"], shown["autofind"]) == (2, 2, 1)
    assert shown["agent"] == "raw-1"
    boards = (await fleet.api("GET", f"/api/v1/olts/{olt_id}/board-info")).body["boards"]
    assert [(b["slot"], b["board"], b["subtypes"]) for b in boards] == [
        (0, "H901PILA", []),
        (1, "H901GPSF", ["CPSF"]),
    ]
    found = (await fleet.api("GET", f"/api/v1/olts/{olt_id}/autofind-onts/all")).body["onts"]
    assert [(x["serial"], x["serialVendor"], x["fsp"]) for x in found] == [
        (SERIAL, "HWTCA1B2C3D4", "0/1/2")
    ]
    onts = (await fleet.api("GET", f"/api/v1/onts?olt={olt_id}&state=online")).body
    assert [(o["ontId"], o["serial"], o["serialVendor"]) for o in onts] == [
        (0, "48575443000000AA", "HWTC000000AA"),
        (1, "48575443000000BB", "HWTC000000BB"),  # the vendor form, normalised
    ]
    await eventually(lambda: {e["type"] for e in events} >= {"inventory", "autofind"})
    # No inventory lands in the events table: it is in its own tables.
    assert await fleet.pool.fetchval("SELECT count(*) FROM events") == 0


async def test_an_older_snapshot_does_not_undo_a_newer_one(
    fleet: Fleet, owned: tuple[RawAgent, int]
) -> None:
    agent, olt_id = owned
    newer = {**INVENTORY, "onts": [ont(0, "48575443000000AA")]}
    await report(agent, 1, f.Event(olt_id, olt.INVENTORY, now_ms(), newer))
    await report(agent, 2, f.Event(olt_id, olt.INVENTORY, now_ms() - 60_000, INVENTORY))
    assert await fleet.pool.fetchval("SELECT count(*) FROM onts") == 1


async def test_a_malformed_inventory_changes_nothing_and_the_stream_goes_on(
    fleet: Fleet, owned: tuple[RawAgent, int]
) -> None:
    agent, olt_id = owned
    bad = {"onts": [{"slot": 1, "port": 2, "ont_id": 999, "serial": "x"}]}
    await report(agent, 1, f.Event(olt_id, olt.INVENTORY, now_ms(), bad))
    assert await fleet.pool.fetchval("SELECT count(*) FROM onts") == 0
    await report(agent, 2, f.Event(olt_id, olt.INVENTORY, now_ms(), INVENTORY))
    assert await fleet.pool.fetchval("SELECT count(*) FROM onts") == 2


PROVISION = {
    "fsp": "0/1/2",
    "serial": "HWTC-A1B2C3D4",
    "line_profile_id": 10,
    "service_profile_id": 10,
    "description": "cliente 42",
    "service_ports": [{"vlan": 100, "gemport": 1, "user_vlan": 100}],
}


async def test_a_provisioning_job_goes_to_the_owner_and_its_outcome_comes_back(
    fleet: Fleet, owned: tuple[RawAgent, int], events: list[dict]
) -> None:
    agent, olt_id = owned
    headers = {"Idempotency-Key": "provision-A1B2C3D4"}
    queued = await fleet.api("POST", f"/api/v1/olts/{olt_id}/onts", data=PROVISION, headers=headers)
    assert queued.status == 202, queued.body
    job = queued.body
    assert job["kind"] == "ont.provision" and job["params"]["serial"] == SERIAL
    frame = await agent.expect(f.Job)
    assert (frame.job, frame.target, frame.kind) == (job["id"], olt_id, "ont.provision")
    assert frame.params["service_ports"] == [{"vlan": 100, "gemport": 1, "user_vlan": 100}]
    again = await fleet.api("POST", f"/api/v1/olts/{olt_id}/onts", data=PROVISION, headers=headers)
    assert again.status == 200 and again.body["id"] == job["id"]  # same key: same job
    other = {**PROVISION, "description": "someone else"}
    clash = await fleet.api("POST", f"/api/v1/olts/{olt_id}/onts", data=other, headers=headers)
    assert clash.status == 409 and clash.body["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"

    await agent.send(f.JobProgress(frame.job, "ont_added", {"ont_id": 5}))
    port = {"slot": 1, "port": 2, "onts": [ont(5, SERIAL, description="cliente 42")]}
    await agent.send(f.JobResult(frame.job, True, {"ont_id": 5, olt.PORT_ONTS: [port]}))

    shown = await job_when(fleet, job["id"], ("succeeded",))
    assert [p["step"] for p in shown["progress"]] == ["ont_added"]
    assert shown["result"]["ont_id"] == 5 and shown["agent"] == "raw-1"
    (listed,) = (await fleet.api("GET", f"/api/v1/onts?serial={SERIAL}")).body
    assert (listed["fsp"], listed["ontId"], listed["description"]) == ("0/1/2", 5, "cliente 42")
    await eventually(
        lambda: (
            [e["state"] for e in events if e["type"] == "job"]
            == ["queued", "sent", "running", "succeeded"]
        )
    )


async def test_a_job_without_a_result_fails_at_its_deadline(
    fleet: Fleet, owned: tuple[RawAgent, int]
) -> None:
    agent, olt_id = owned
    queued = await fleet.api(
        "POST", f"/api/v1/olts/{olt_id}/ports/0-1-3/disable", data={"timeoutMs": 1000}
    )
    assert queued.status == 202 and queued.body["params"] == {"frame": 0, "slot": 1, "port": 3}
    await agent.expect(f.Job)  # and never answered

    shown = await job_when(fleet, queued.body["id"], ("failed",), within=10)
    assert shown["error"] == "timed out: no result from agent raw-1"
    # A result arriving after the deadline changes nothing.
    await agent.send(f.JobResult(queued.body["id"], True, {}))
    await asyncio.sleep(0.3)
    assert (await fleet.api("GET", f"/api/v1/jobs/{queued.body['id']}")).body["state"] == "failed"


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("onts", {**PROVISION, "serial": "not-a-serial"}, "INVALID_JOB"),
        ("onts", {**PROVISION, "description": 'x" ; reboot'}, "INVALID_JOB"),
        ("onts", {**PROVISION, "description": "why?"}, "INVALID_JOB"),
        ("onts", {**PROVISION, "description": "line\nbreak"}, "INVALID_JOB"),
        ("onts", {**PROVISION, "fsp": "0/1"}, "BAD_PORT"),
        ("commands", {"command": "config"}, "INVALID_JOB"),
        ("commands", {"command": "display version; reboot"}, "INVALID_JOB"),
        ("ports/0-1-2/enable", {"timeoutMs": 5}, "INVALID_JOB"),
    ],
)
async def test_bad_job_requests_are_refused_and_nothing_is_queued(
    fleet: Fleet, owned: tuple[RawAgent, int], path: str, body: dict, code: str
) -> None:
    _, olt_id = owned
    reply = await fleet.api("POST", f"/api/v1/olts/{olt_id}/{path}", data=body)
    assert reply.status == 400 and reply.body["error"]["code"] == code, reply.body
    assert await fleet.pool.fetchval("SELECT count(*) FROM jobs") == 0


async def test_olt_jobs_need_an_olt(fleet: Fleet) -> None:
    snmp = await fleet.api(
        "POST",
        "/api/v1/targets",
        data={"name": "sw", "kind": "snmp", "address": "10.0.0.1", "labels": {"zone": "pop1"}},
    )
    assert (
        await fleet.api("POST", f"/api/v1/olts/{snmp.body['id']}/commands", data={})
    ).status == 404
    generic = await fleet.api(
        "POST",
        "/api/v1/jobs",
        data={
            "target": snmp.body["id"],
            "kind": "display",
            "params": {"command": "display version"},
        },
    )
    assert generic.status == 400 and "runs no 'display' jobs" in generic.body["error"]["message"]


async def test_an_ont_shows_the_cpe_behind_it_and_the_cpe_its_ont(
    fleet: Fleet, owned: tuple[RawAgent, int]
) -> None:
    agent, olt_id = owned
    await report(
        agent, 1, f.Event(olt_id, olt.INVENTORY, now_ms(), {**INVENTORY, "onts": [ont(7)]})
    )
    # The CPE informs with the vendor form of the serial, in lower case.
    device = "00259E-EG8145V5-hwtca1b2c3d4"
    await fleet.pool.execute(
        "INSERT INTO devices (id, oui, product_class, serial_number, last_inform)"
        " VALUES ($1, '00259E', 'EG8145V5', 'hwtca1b2c3d4', now())",
        device,
    )
    (listed,) = (await fleet.api("GET", "/api/v1/onts")).body
    assert listed["cpe"]["deviceId"] == device and listed["cpe"]["lastInform"]
    shown = (await fleet.api("GET", f"/api/v1/onts/{listed['id']}")).body
    assert shown["cpe"]["deviceId"] == device
    mine = await fleet.api("GET", f"/api/v1/devices/{device}/ont")
    assert mine.status == 200
    assert (mine.body["oltName"], mine.body["fsp"], mine.body["ontId"]) == (
        "olt-centro",
        "0/1/2",
        7,
    )
    missing = await fleet.api("GET", "/api/v1/devices/nobody/ont")
    assert missing.status == 404
