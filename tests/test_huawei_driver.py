"""The huawei-olt driver against the simulated MA5800 over real SSH and SNMP on 127.0.0.1:
what polls report, what jobs change on the OLT, and how failures come back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncssh
import pytest

from agents.driver import GroupPlan, PollError
from agents.huawei.driver import HuaweiOltDriver
from agents.huawei.optical import gpon_ifindex, port_of
from agents.huawei.session import OltSessions
from schemas import olt
from schemas.frames import TargetSpec
from tools.sim import olt_output
from tools.sim.olt import OltSimulator, running

PASSWORD = "admin123"


class Olt:
    def __init__(self, sim: OltSimulator, target: TargetSpec, driver: HuaweiOltDriver) -> None:
        self.sim, self.target, self.driver = sim, target, driver
        self.steps: list[tuple[str, dict]] = []

    async def poll(self, group: str) -> Any:
        return await self.driver.poll(self.target, GroupPlan(group, 60), 1_000)

    async def job(self, kind: str, params: dict) -> dict:
        async def progress(step: str, detail: dict) -> None:
            self.steps.append((step, detail))

        return await self.driver.run_job(self.target, kind, params, progress)


def target_of(ssh: int, snmp: int | None, password: str = PASSWORD) -> TargetSpec:
    credentials: dict[str, Any] = {"username": "root", "password": password}
    if snmp is not None:
        credentials |= {"snmp": {"version": "2c", "community": "public"}, "snmp_port": snmp}
    return TargetSpec(7, "huawei-olt", "127.0.0.1", ssh, credentials, {}, {}, 1)


@pytest.fixture
async def olt_sim() -> AsyncIterator[Olt]:
    sim = OltSimulator(onts=12, autofind=3, seed=5)
    async with running(sim, snmp_port=0) as ports:
        driver = HuaweiOltDriver(OltSessions(busy_backoff=0.01))
        try:
            yield Olt(sim, target_of(ports.ssh, ports.snmp), driver)
        finally:
            await driver.close()


def inventory_of(result: Any) -> olt.Inventory:
    (event,) = result.events
    assert event.kind == olt.INVENTORY
    return olt.Inventory.model_validate(event.detail)


async def test_inventory_lists_every_ont_the_olt_has_with_its_state(olt_sim: Olt) -> None:
    sim = olt_sim.sim
    sim.shut_ports.add((0, 1))  # its ONTs go offline
    inv = inventory_of(await olt_sim.poll("inventory"))
    assert inv.version["product"] == "MA5800-X7" and inv.version["version"]
    assert [b.slot for b in inv.boards if b.board] == [b.slot for b in sim.boards if b.name]
    assert len(inv.ports) == 32  # two 16-port GPON boards
    got = {(o.slot, o.port, o.ont_id): o for o in inv.onts}
    assert set(got) == {(o.slot, o.port, o.ont_id) for o in sim.ont_list}
    for ont in sim.ont_list:
        seen = got[ont.slot, ont.port, ont.ont_id]
        assert seen.serial == ont.sn and seen.serial_vendor == "HWTC" + ont.sn[8:]
        assert seen.description == ont.desc
        assert seen.line_profile == sim.line_profiles[ont.line_profile]  # over SNMP
        assert seen.service_profile == sim.srv_profiles[ont.srv_profile]
        assert seen.run_state == ("online" if sim.online(ont) else "offline")
        if sim.online(ont):
            assert seen.distance_m == ont.distance
    assert sim.max_concurrent == 1


async def test_autofind_reports_the_unregistered_onts(olt_sim: Olt) -> None:
    (event,) = (await olt_sim.poll("autofind")).events
    found = olt.Autofind.model_validate(event.detail).entries
    assert [(e.slot, e.port, e.serial) for e in found] == [
        (a.slot, a.port, a.sn) for a in olt_sim.sim.autofind_list
    ]
    olt_sim.sim.autofind_list.clear()  # the OLT answers a Failure then: an empty list
    (event,) = (await olt_sim.poll("autofind")).events
    assert event.detail["entries"] == []


async def test_optical_levels_come_from_the_xpon_mib_per_ont(olt_sim: Olt) -> None:
    sim = olt_sim.sim
    sim.ont_list[0].online, sim.ont_list[1].online = False, True
    sim.version += 1
    samples = (await olt_sim.poll("optical")).samples
    by = {(s.metric, s.labels["ont"]): s.value for s in samples}
    for ont in sim.ont_list:
        name = f"0/{ont.slot}/{ont.port}/{ont.ont_id}"
        if not sim.online(ont):
            assert by[("ont_online", name)] == 0.0
            assert ("ont_rx_dbm", name) not in by  # 2147483647: no value, not a number
            continue
        assert by[("ont_online", name)] == 1.0
        assert by[("ont_rx_dbm", name)] == pytest.approx(ont.rx, abs=0.01)
        assert by[("ont_tx_dbm", name)] == pytest.approx(ont.tx, abs=0.01)
        assert by[("olt_rx_dbm", name)] == pytest.approx(ont.olt_rx, abs=0.01)
        assert by[("ont_voltage_v", name)] == pytest.approx(ont.voltage / 1000)
        assert by[("ont_temperature_c", name)] == ont.temperature


def test_the_gpon_ifindex_formula_round_trips() -> None:
    assert gpon_ifindex(0, 1, 2) == 4194304000 + 1 * 8192 + 2 * 256
    assert port_of(gpon_ifindex(0, 17, 15)) == (0, 17, 15)
    assert port_of(gpon_ifindex(0, 1, 2) + 1) is None and port_of(1) is None


async def test_without_snmp_credentials_optical_is_not_planned(olt_sim: Olt) -> None:
    bare = target_of(olt_sim.target.port, None)
    assert [p.name for p in olt_sim.driver.plan(bare)] == ["inventory", "autofind"]
    assert "optical" in [p.name for p in olt_sim.driver.plan(olt_sim.target)]
    with pytest.raises(PollError) as error:
        await olt_sim.driver.poll(bare, GroupPlan("optical", 300), 0)
    assert error.value.code == "bad_credentials"


async def test_provisioning_adds_the_ont_and_its_service_ports(olt_sim: Olt) -> None:
    sim = olt_sim.sim
    waiting = sim.autofind_list[0]
    result = await olt_sim.job(
        "ont.provision",
        {
            "slot": waiting.slot,
            "port": waiting.port,
            "serial": "HWTC-" + waiting.sn[8:],  # the vendor form works too
            "line_profile_id": 10,
            "service_profile_id": 10,
            "description": "cliente 42",
            "service_ports": [{"vlan": 100, "user_vlan": 100}, {"vlan": 200, "user_vlan": 20}],
        },
    )
    ont = sim.find(waiting.slot, waiting.port, result["ont_id"])
    assert ont is not None and ont.sn == waiting.sn and ont.desc == "cliente 42"
    assert waiting not in sim.autofind_list
    vlans = sorted(
        (s.vlan, s.user_vlan)
        for s in sim.service_ports.values()
        if (s.slot, s.port, s.ont_id) == (ont.slot, ont.port, ont.ont_id)
    )
    assert vlans == [(100, 100), (200, 20)]
    assert [s for s, _ in olt_sim.steps] == [
        "ont_added",
        "service_port_added",
        "service_port_added",
    ]
    (port,) = result[olt.PORT_ONTS]
    listed = {o.serial: o for o in olt.PortOnts.model_validate(port).onts}
    assert listed[waiting.sn].line_profile == "ftth" == listed[waiting.sn].service_profile


async def test_a_failing_provisioning_undoes_its_steps(olt_sim: Olt) -> None:
    sim = olt_sim.sim
    waiting = sim.autofind_list[0]
    before_onts, before_ports = len(sim.ont_list), dict(sim.service_ports)
    with pytest.raises(PollError) as error:
        await olt_sim.job(
            "ont.provision",
            {
                "slot": waiting.slot,
                "port": waiting.port,
                "serial": waiting.sn,
                "line_profile_id": 10,
                "service_profile_id": 10,
                # VLAN 999 does not exist on this OLT: the second service port fails.
                "service_ports": [{"vlan": 100, "user_vlan": 100}, {"vlan": 999, "user_vlan": 9}],
            },
        )
    assert error.value.code == "failure" and "VLAN does not exist" in str(error.value)
    assert len(sim.ont_list) == before_onts and sim.service_ports == before_ports
    assert waiting.sn in {a.sn for a in sim.autofind_list}  # it can be tried again
    steps = [s for s, _ in olt_sim.steps]
    assert steps == [
        "ont_added",
        "service_port_added",
        "service_port_removed",
        "ont_deleted",
        "rolled_back",
    ]


async def test_a_serial_registered_elsewhere_or_a_bad_one_changes_nothing(olt_sim: Olt) -> None:
    sim = olt_sim.sim
    known = sim.ont_list[0]
    before = len(sim.ont_list)
    elsewhere = {"slot": 1, "port": 5, "line_profile_id": 10, "service_profile_id": 10}
    with pytest.raises(PollError) as error:
        await olt_sim.job("ont.provision", {**elsewhere, "serial": known.sn})
    assert error.value.code == "failure"
    assert f"already registered as ONT 0/{known.slot}/{known.port}/{known.ont_id}" in str(
        error.value
    )
    with pytest.raises(PollError) as error:
        await olt_sim.job("ont.provision", {**elsewhere, "serial": "not a serial"})
    assert error.value.code == "bad_params"
    assert len(sim.ont_list) == before and olt_sim.steps == []


async def test_provisioning_again_takes_up_what_is_there(olt_sim: Olt) -> None:
    """A job run again (its agent was lost halfway) keeps the ONT and adds only the
    service ports it lacks; failing then, it removes only what it added itself."""
    sim = olt_sim.sim
    waiting = sim.autofind_list[0]
    params = {
        "slot": waiting.slot,
        "port": waiting.port,
        "serial": waiting.sn,
        "line_profile_id": 10,
        "service_profile_id": 10,
    }
    one = [{"vlan": 100, "user_vlan": 100}]
    first = await olt_sim.job("ont.provision", {**params, "service_ports": one})
    two = [*one, {"vlan": 200, "user_vlan": 20}]
    olt_sim.steps.clear()
    again = await olt_sim.job("ont.provision", {**params, "service_ports": two})
    assert again["ont_id"] == first["ont_id"]
    assert [s for s, _ in olt_sim.steps] == ["ont_exists", "service_port_added"]

    def service_ports() -> list[tuple[int, int]]:
        return sorted(
            (s.vlan, s.user_vlan)
            for s in sim.service_ports.values()
            if (s.slot, s.port, s.ont_id) == (waiting.slot, waiting.port, first["ont_id"])
        )

    assert service_ports() == [(100, 100), (200, 20)]
    olt_sim.steps.clear()
    with pytest.raises(PollError):
        three = [*two, {"vlan": 300, "user_vlan": 30}, {"vlan": 999, "user_vlan": 9}]
        await olt_sim.job("ont.provision", {**params, "service_ports": three})
    assert service_ports() == [(100, 100), (200, 20)]  # the ONT and its ports stay
    assert sim.find(waiting.slot, waiting.port, first["ont_id"]) is not None
    steps = [s for s, _ in olt_sim.steps]
    assert steps == ["ont_exists", "service_port_added", "service_port_removed", "rolled_back"]


async def test_delete_reboot_and_port_jobs_change_the_olt(olt_sim: Olt) -> None:
    sim = olt_sim.sim
    ont = sim.ont_list[3]
    ref = {"slot": ont.slot, "port": ont.port, "ont_id": ont.ont_id}
    await olt_sim.job("ont.reboot", ref)
    assert sim.resets == [(ont.slot, ont.port, ont.ont_id)]
    result = await olt_sim.job("ont.delete", ref)
    assert sim.find(ont.slot, ont.port, ont.ont_id) is None
    assert not any(
        (s.slot, s.port, s.ont_id) == (ont.slot, ont.port, ont.ont_id)
        for s in sim.service_ports.values()
    )
    assert ont.ont_id not in {o["ont_id"] for o in result[olt.PORT_ONTS][0]["onts"]}
    result = await olt_sim.job("port.disable", {"slot": 1, "port": 0})
    assert (1, 0) in sim.shut_ports and result[olt.PORT_ONTS][0]["enabled"] is False
    assert {o["run_state"] for o in result[olt.PORT_ONTS][0]["onts"]} == {"offline"}
    await olt_sim.job("port.enable", {"slot": 1, "port": 0})
    assert (1, 0) not in sim.shut_ports


async def test_display_runs_allowed_commands_only(olt_sim: Olt) -> None:
    result = await olt_sim.job(
        "display", {"command": "display ont optical-info 0 all", "interface": "0/1"}
    )
    assert "Rx power" in result["output"] and not result["truncated"]
    olt_sim.sim.autofind_list.clear()
    result = await olt_sim.job("display", {"command": "display ont autofind all"})
    assert "automatically found ONTs do not exist" in result["output"]  # an answer, not an error
    refused = ("reboot", "display current-configuration", "display board 0; reboot")
    for command in refused:
        with pytest.raises(PollError) as error:
            await olt_sim.job("display", {"command": command})
        assert error.value.code == "bad_params"
    assert not set(refused) & set(olt_sim.sim.commands)


async def test_output_the_parsers_do_not_understand_is_an_error_with_context(
    olt_sim: Olt, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = olt_output.render

    def truncated_board(sim: OltSimulator, command: str, interface: str) -> str:
        out = real(sim, command, interface)
        return out[: out.index("H805GPFD") + 4] if command == "display board 0" else out

    monkeypatch.setattr("tools.sim.olt.render", truncated_board)
    with pytest.raises(PollError) as error:
        await olt_sim.poll("inventory")
    assert error.value.code == "bad_output" and "display board" in str(error.value)
    monkeypatch.setattr("tools.sim.olt.render", real)
    assert inventory_of(await olt_sim.poll("inventory")).onts  # the session still serves


async def test_a_pagered_alarm_ridden_busy_olt_still_gives_the_same_inventory(
    olt_sim: Olt,
) -> None:
    clean = inventory_of(await olt_sim.poll("inventory"))
    await olt_sim.driver.release(olt_sim.target.id)
    sim = olt_sim.sim
    sim.accept_scroll, sim.page_lines, sim.alarms, sim.busy_next = False, 5, True, 2
    noisy = inventory_of(await olt_sim.poll("inventory"))
    assert noisy.onts == clean.onts and noisy.boards == clean.boards


async def test_a_job_cut_short_leaves_no_half_read_session_behind(olt_sim: Olt) -> None:
    sim = olt_sim.sim
    sim.latency = 1.0
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await olt_sim.job("ont.reboot", {"slot": 0, "port": 0, "ont_id": 0})
    sim.latency = 0.0
    assert inventory_of(await olt_sim.poll("inventory")).onts
    assert sim.max_concurrent == 1


async def test_a_wrong_password_is_an_auth_failure_that_names_no_secret(
    olt_sim: Olt, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = target_of(olt_sim.target.port, None, password="not-the-password")
    with pytest.raises(PollError) as error:
        await olt_sim.driver.poll(wrong, GroupPlan("autofind", 60), 0)
    assert error.value.code == "auth_failed"
    assert "not-the-password" not in str(error.value) + caplog.text
    assert PASSWORD not in caplog.text


async def test_an_olt_login_may_be_a_private_key() -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    sim = OltSimulator(onts=2, autofind=0, authorized_key=key)
    async with running(sim) as ports:
        driver = HuaweiOltDriver()
        pem = key.export_private_key().decode()
        target = TargetSpec(
            8,
            "huawei-olt",
            "127.0.0.1",
            ports.ssh,
            {"username": "root", "private_key": pem},
            {},
            {},
            1,
        )
        try:
            assert (
                len(inventory_of(await driver.poll(target, GroupPlan("inventory", 60), 0)).onts)
                == 2
            )
            other = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
            wrong = TargetSpec(
                9,
                "huawei-olt",
                "127.0.0.1",
                ports.ssh,
                {"username": "root", "private_key": other},
                {},
                {},
                1,
            )
            with pytest.raises(PollError) as error:
                await driver.poll(wrong, GroupPlan("inventory", 60), 0)
            assert error.value.code == "auth_failed"
        finally:
            await driver.close()


async def test_a_pinned_host_key_admits_that_olt_only(olt_sim: Olt) -> None:
    login = {"username": "root", "password": PASSWORD}
    pinned = {**login, "host_key": olt_sim.sim.host_key}
    target = TargetSpec(10, "huawei-olt", "127.0.0.1", olt_sim.target.port, pinned, {}, {}, 1)
    assert (await olt_sim.driver.poll(target, GroupPlan("autofind", 60), 0)).events
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    impostor = {**login, "host_key": other}
    target = TargetSpec(11, "huawei-olt", "127.0.0.1", olt_sim.target.port, impostor, {}, {}, 1)
    with pytest.raises(PollError) as error:
        await olt_sim.driver.poll(target, GroupPlan("autofind", 60), 0)
    assert error.value.code == "host_key_mismatch"
    assert len(olt_sim.sim.logins) == 1  # the impostor was never sent the password
