"""OLT management end to end: a controller on real PostgreSQL, agents with the real
drivers, and the simulated MA5800 over SSH and SNMP on 127.0.0.1.

API -> controller -> agent -> OLT -> inventory updated -> event on the WebSocket; the
ONT-to-CPE join with a simulated CPE informing the ACS; and an OLT moving between
agents while a job runs, with never two SSH sessions to it at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from acs import server
from controller.assignment import AgentInfo, score
from schemas.config import AcsConfig
from schemas.sealing import Sealer
from tests import fleet_stack
from tests.conftest import SECRET_KEY, serving
from tests.fleet_stack import Fleet, agent_running, eventually, job_when
from tools.sim.cpe import SimulatedCpe
from tools.sim.olt import OltSimulator, running

fleet = fleet_stack.fleet
events = fleet_stack.events


@dataclass
class OltStack:
    fleet: Fleet
    sim: OltSimulator
    olt_id: int


def olt_target(ssh: int, snmp: int | None, name: str = "olt-centro") -> dict:
    return {
        "name": name,
        "kind": "huawei-olt",
        "address": "127.0.0.1",
        "port": ssh,
        "credentials": {
            "username": "root",
            "password": "admin123",
            "snmp": {"community": "public"},
            "snmp_port": snmp,
        },
        "labels": {"zone": "pop1"},
        "profile": {
            "inventory": {"interval": 3600},
            "autofind": {"interval": 5},
            "optical": {"interval": 5},
        },
    }


@pytest.fixture
async def sim_olt(fleet: Fleet) -> AsyncIterator[OltStack]:
    sim = OltSimulator(onts=12, autofind=3, seed=11)
    async with running(sim, snmp_port=0) as ports:
        created = await fleet.api("POST", "/api/v1/targets", data=olt_target(ports.ssh, ports.snmp))
        assert created.status == 201, created.body
        yield OltStack(fleet, sim, created.body["id"])


async def inventory_loaded(stack: OltStack) -> list[dict]:
    api = stack.fleet.api

    async def loaded() -> bool:
        onts = (await api("GET", f"/api/v1/onts?olt={stack.olt_id}&limit=1000")).body
        found = (await api("GET", f"/api/v1/olts/{stack.olt_id}/autofind-onts/all")).body
        return len(onts) == len(stack.sim.ont_list) and len(found["onts"]) == len(
            stack.sim.autofind_list
        )

    await eventually(loaded, within=15)
    return (await api("GET", f"/api/v1/olts/{stack.olt_id}/autofind-onts/all")).body["onts"]


async def test_an_operator_provisions_an_ont_from_the_autofind_list(
    sim_olt: OltStack, events: list[dict]
) -> None:
    fleet, sim = sim_olt.fleet, sim_olt.sim
    async with agent_running(fleet.url, fleet.agent_token, "olt-agent"):
        found = await inventory_loaded(sim_olt)
        olts = (await fleet.api("GET", "/api/v1/olts")).body
        assert olts[0]["product"] == "MA5800-X7" and olts[0]["onts"] == len(sim.ont_list)
        info = (await fleet.api("GET", f"/api/v1/olts/{sim_olt.olt_id}/board-info")).body
        assert {b["board"] for b in info["boards"]} >= {"H901GPHF", "H805GPFD"}
        waiting = found[0]
        queued = await fleet.api(
            "POST",
            f"/api/v1/olts/{sim_olt.olt_id}/onts",
            data={
                "fsp": waiting["fsp"],
                "serial": waiting["serial"],
                "line_profile_id": 10,
                "service_profile_id": 10,
                "description": "cliente 4242",
                "service_ports": [{"vlan": 100, "user_vlan": 100}],
            },
            headers={"Idempotency-Key": "provision-4242"},
        )
        assert queued.status == 202, queued.body
        job_id = queued.body["id"]
        job = await job_when(fleet, job_id)
        assert job["state"] == "succeeded", job
        assert [p["step"] for p in job["progress"]] == ["ont_added", "service_port_added"]
        # On the OLT, and in the inventory at once (not at the next hourly poll).
        assert waiting["serial"] in {o.sn for o in sim.ont_list}
        (ont,) = (await fleet.api("GET", f"/api/v1/onts?serial={waiting['serial']}")).body
        assert (ont["fsp"], ont["ontId"], ont["description"]) == (
            waiting["fsp"],
            job["result"]["ont_id"],
            "cliente 4242",
        )
        left = (await fleet.api("GET", f"/api/v1/olts/{sim_olt.olt_id}/autofind-onts/all")).body
        assert waiting["serial"] not in {a["serial"] for a in left["onts"]}

        # Seen live: the job's steps, and the port's inventory change.
        def seen() -> bool:
            states = [e["state"] for e in events if e["type"] == "job" and e["job"] == job_id]
            changed = [e for e in events if e["type"] == "inventory" and e.get("port")]
            return states[-1:] == ["succeeded"] and "running" in states and bool(changed)

        await eventually(seen)

        # Its optical levels come in over SNMP and show with the ONT.
        async def optical() -> bool:
            shown = (await fleet.api("GET", f"/api/v1/onts/{ont['id']}")).body
            return "ont_rx_dbm" in shown["optical"]

        await eventually(optical, within=15)
        shown = (await fleet.api("GET", f"/api/v1/onts/{ont['id']}")).body
        new = next(o for o in sim.ont_list if o.sn == waiting["serial"])
        assert shown["optical"]["ont_rx_dbm"]["value"] == pytest.approx(new.rx, abs=0.01)
        assert shown["optical"]["olt_rx_dbm"]["value"] == pytest.approx(new.olt_rx, abs=0.01)
    assert sim.max_concurrent == 1


async def test_a_failed_provisioning_is_undone_and_says_why(sim_olt: OltStack) -> None:
    fleet, sim = sim_olt.fleet, sim_olt.sim
    async with agent_running(fleet.url, fleet.agent_token, "olt-agent"):
        waiting = (await inventory_loaded(sim_olt))[0]
        before = len(sim.ont_list)
        queued = await fleet.api(
            "POST",
            f"/api/v1/olts/{sim_olt.olt_id}/onts",
            data={
                "fsp": waiting["fsp"],
                "serial": waiting["serial"],
                "line_profile_id": 10,
                "service_profile_id": 10,
                "service_ports": [{"vlan": 4000, "user_vlan": 100}],  # not on this OLT
            },
        )
        job_id = queued.body["id"]
        job = await job_when(fleet, job_id)
        assert job["state"] == "failed" and "VLAN does not exist" in job["error"]
        assert [p["step"] for p in job["progress"]][-1] == "rolled_back"
        assert len(sim.ont_list) == before
        assert waiting["serial"] in {a.sn for a in sim.autofind_list}


async def test_an_ont_shows_the_cpe_behind_it(sim_olt: OltStack, db_dsn: str) -> None:
    fleet, sim = sim_olt.fleet, sim_olt.sim
    ont = next(o for o in sim.ont_list if sim.online(o))
    acs = server.create_app(fleet.pool, AcsConfig(), Sealer(SECRET_KEY), db_dsn)
    async with (
        agent_running(fleet.url, fleet.agent_token, "olt-agent"),
        serving(acs) as acs_url,
    ):
        await inventory_loaded(sim_olt)
        # The gateway informs with the vendor form of the serial the OLT shows in hex.
        async with aiohttp.ClientSession() as http:
            cpe = SimulatedCpe(
                acs_url + "/", serial_number="HWTC" + ont.sn[8:], periodic=False, http=http
            )
            record = await cpe.run_session()
        assert record.ok, record
        (listed,) = (await fleet.api("GET", f"/api/v1/onts?serial={ont.sn}")).body
        assert listed["cpe"]["deviceId"].endswith("HWTC" + ont.sn[8:])
        shown = (await fleet.api("GET", f"/api/v1/onts/{listed['id']}")).body
        assert shown["cpe"]["lastInform"] and shown["cpe"]["deviceId"] == listed["cpe"]["deviceId"]
        device = listed["cpe"]["deviceId"]
        mine = (await fleet.api("GET", f"/api/v1/devices/{device}/ont")).body
        assert (mine["oltName"], mine["fsp"], mine["ontId"]) == (
            "olt-centro",
            f"0/{ont.slot}/{ont.port}",
            ont.ont_id,
        )


async def test_an_olt_moving_between_agents_never_has_two_sessions(sim_olt: OltStack) -> None:
    fleet, sim = sim_olt.fleet, sim_olt.sim
    first = AgentInfo("olt-a", {"zone": "pop1"}, 100, frozenset({"huawei-olt"}))
    # A second agent that wins this OLT: joining, it takes it over from the first.
    second = next(
        name
        for n in range(1000)
        if score(AgentInfo(name := f"olt-b{n}", {}, 100), sim_olt.olt_id)
        > score(first, sim_olt.olt_id)
    )
    async with agent_running(fleet.url, fleet.agent_token, "olt-a"):
        waiting = (await inventory_loaded(sim_olt))[0]
        sim.latency = 0.4  # every command takes a while: the job holds the session
        queued = await fleet.api(
            "POST",
            f"/api/v1/olts/{sim_olt.olt_id}/onts",
            data={
                "fsp": waiting["fsp"],
                "serial": waiting["serial"],
                "line_profile_id": 10,
                "service_profile_id": 10,
                "service_ports": [{"vlan": 100, "user_vlan": u} for u in range(101, 109)],
            },
        )
        job_id = queued.body["id"]

        await job_when(fleet, job_id, ("running",))
        logins_before = len(sim.logins)
        async with agent_running(fleet.url, fleet.agent_token, second):
            job = (await fleet.api("GET", f"/api/v1/jobs/{job_id}")).body
            assert job["state"] == "running"  # the move begins while the job runs

            async def moved() -> bool:
                agents = (await fleet.api("GET", f"/api/v1/agents/{second}")).body
                return agents.get("targets") == 1 and len(sim.logins) > logins_before

            await eventually(moved, within=20)
            job = (await fleet.api("GET", f"/api/v1/jobs/{job_id}")).body
            # The first agent finished the job before it let the OLT go.
            assert job["state"] == "succeeded", job
            sim.latency = 0.0
    assert sim.max_concurrent == 1
