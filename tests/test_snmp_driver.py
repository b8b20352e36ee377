"""The SNMP driver against net-snmp's snmpd: v2c and v3 authPriv polls, refused
credentials as clear errors that hold no secret, table groups, and counters that
`forget` drops."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agents.driver import DRIVERS, GroupPlan, PollError, load_drivers
from agents.snmp import ber
from agents.snmp.driver import SnmpDriver
from agents.snmp.session import walk
from agents.snmp.v3 import Engines, V3Session
from schemas.frames import TargetSpec
from tests.snmp_peers import (  # noqa: F401
    NAME_ROOT,
    TABLE_ROOT,
    TABLE_ROWS,
    V2C_COMMUNITY,
    V3_AUTH_KEY,
    V3_PRIV_KEY,
    V3_USER,
    Peer,
    snmpd_peer,
)

V3 = {
    "version": "3",
    "user": V3_USER,
    "auth_protocol": "SHA",
    "auth_key": V3_AUTH_KEY,
    "priv_protocol": "AES",
    "priv_key": V3_PRIV_KEY,
    "context": "",
}
V2C = {"version": "2c", "community": V2C_COMMUNITY}
SYSTEM = GroupPlan("system", 300, {})
IF = GroupPlan("if", 300, {})


@pytest.fixture
async def driver() -> AsyncIterator[SnmpDriver]:
    d = SnmpDriver()
    try:
        yield d
    finally:
        await d.close()


def target(peer: Peer, credentials: dict[str, Any], target_id: int = 1) -> TargetSpec:
    return TargetSpec(target_id, "snmp", peer.host, peer.port, credentials, {}, {}, 1)


def test_importing_the_agents_drivers_registers_snmp() -> None:
    assert load_drivers()["snmp"] is SnmpDriver
    assert DRIVERS["snmp"].kind == "snmp"  # type: ignore[attr-defined]


@pytest.mark.parametrize("credentials", [V2C, V3], ids=["v2c", "v3-authPriv"])
async def test_system_and_interfaces_poll_with_v2c_and_v3(
    driver: SnmpDriver,
    snmpd_peer: Peer,  # noqa: F811
    credentials: dict[str, Any],
) -> None:
    t = target(snmpd_peer, credentials)
    system = await driver.poll(t, SYSTEM, 1000)
    assert [s.metric for s in system.samples] == ["sys_uptime_s"]
    assert 0 <= system.samples[0].value < 3600
    first = await driver.poll(t, IF, 1_000_000)
    second = await driver.poll(t, IF, 1_060_000)
    names = {s.labels["ifName"] for s in first.samples}
    assert "lo" in names
    assert first.events == second.events == []
    rates = {(s.metric, s.labels["ifName"]): s.value for s in second.samples}
    assert rates[("if_in_bps", "lo")] >= 0
    assert rates[("if_oper_status", "lo")] == 1.0


async def test_v3_walk_reads_what_v2c_reads(snmpd_peer: Peer) -> None:  # noqa: F811
    from agents.snmp.v2c import UdpTransport, V2cSession

    engines = Engines()
    transport = UdpTransport()
    address = (snmpd_peer.host, snmpd_peer.port)
    v3 = V3Session(engines, address, V3)
    v2c = V2cSession(transport, address, V2C_COMMUNITY)
    try:
        root = (1, 3, 6, 1, 2, 1, 1, 9)  # sysORTable: fixed while the agent runs
        by_v3 = await walk(v3, [root], 10)
        by_v2c = await walk(v2c, [root], 10)
    finally:
        v3.close()
        transport.close()
        engines.close()
    assert by_v3.columns == by_v2c.columns
    assert len(by_v3.columns[root]) > 10


async def test_a_wrong_community_times_out_within_its_deadline_and_names_no_secret(
    driver: SnmpDriver,
    snmpd_peer: Peer,  # noqa: F811
) -> None:
    t = target(snmpd_peer, {"version": "2c", "community": "wrong-community-xyz"})
    started = time.monotonic()
    with pytest.raises(PollError) as info:
        await driver.poll(t, GroupPlan("system", 300, {"timeout": 0.3, "retries": 1}), 1)
    assert time.monotonic() - started < 1.5
    assert info.value.code == "timeout"
    assert "wrong-community-xyz" not in str(info.value)
    assert f"127.0.0.1:{snmpd_peer.port}" in str(info.value)


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        (
            {"auth_key": "not-the-auth-key"},
            "auth_failed",
            "refused the SNMPv3 credentials: Wrong SNMP PDU digest",
        ),
        (
            {"user": "nobody-here"},
            "auth_failed",
            "refused the SNMPv3 credentials: Unknown USM user",
        ),
        ({"priv_key": "not-the-priv-key"}, "timeout", "no answer .* wrong privacy key"),
    ],
)
async def test_refused_v3_credentials_are_a_clear_poll_error_without_keys(
    driver: SnmpDriver,
    snmpd_peer: Peer,  # noqa: F811
    change: dict[str, str],
    code: str,
    message: str,
) -> None:
    t = target(snmpd_peer, {**V3, **change}, target_id=7)
    with pytest.raises(PollError, match=message) as info:
        await driver.poll(t, GroupPlan("system", 300, {"timeout": 0.3, "retries": 0}), 1)
    assert info.value.code == code
    for secret in (V3_AUTH_KEY, V3_PRIV_KEY, "not-the-auth-key", "not-the-priv-key"):
        assert secret not in str(info.value)


async def test_targets_sharing_a_v3_user_name_with_different_keys_do_not_mix(
    driver: SnmpDriver,
    snmpd_peer: Peer,  # noqa: F811
) -> None:
    # pysnmp keeps one USM entry per user name and engine: each key set gets its own.
    good = target(snmpd_peer, V3, target_id=21)
    bad = target(snmpd_peer, {**V3, "auth_key": "another-auth-key"}, target_id=22)
    group = GroupPlan("system", 300, {"timeout": 0.5, "retries": 0})
    for _ in range(2):
        results = await asyncio.gather(
            driver.poll(good, group, 1), driver.poll(bad, group, 1), return_exceptions=True
        )
        assert [s.metric for s in results[0].samples] == ["sys_uptime_s"]  # type: ignore[union-attr]
        assert isinstance(results[1], PollError) and results[1].code == "auth_failed"


async def test_a_table_group_scales_skips_and_labels_its_rows(
    driver: SnmpDriver,
    snmpd_peer: Peer,  # noqa: F811
) -> None:
    group = GroupPlan(
        "optical",
        3600,
        {
            "walk": [ber.dotted(TABLE_ROOT)],
            "metric": "onu_rx_dbm",
            "scale": 0.01,
            "skip_values": [2147483647],
            "labels": {"onu": ber.dotted(NAME_ROOT)},
        },
    )
    result = await driver.poll(target(snmpd_peer, V3), group, 42)
    got = {s.labels["index"]: (s.labels["onu"], s.value) for s in result.samples}
    assert got == {
        str(i): (f"onu-{i}", pytest.approx(v * 0.01))
        for i, v in TABLE_ROWS.items()
        if v != 2147483647
    }
    assert result.events == []


async def test_forget_drops_the_previous_counters(
    driver: SnmpDriver,
    snmpd_peer: Peer,  # noqa: F811
) -> None:
    t = target(snmpd_peer, V2C, target_id=11)

    def has_rates(samples: list[Any]) -> bool:
        return any(s.metric == "if_in_bps" for s in samples)

    assert not has_rates((await driver.poll(t, IF, 1_000_000)).samples)
    assert has_rates((await driver.poll(t, IF, 1_300_000)).samples)
    driver.forget(11)
    assert not has_rates((await driver.poll(t, IF, 1_600_000)).samples)


async def test_targets_without_usable_credentials_are_refused(driver: SnmpDriver) -> None:
    for credentials, message in [
        ({}, "must be v2c"),
        ({"version": "2c"}, "need a community"),
        ({**V3, "auth_key": "short"}, "at least 8 characters"),
    ]:
        t = TargetSpec(2, "snmp", "127.0.0.1", 161, credentials, {}, {}, 1)
        with pytest.raises(PollError, match=message):
            await driver.poll(t, SYSTEM, 1)


async def test_a_host_name_target_is_resolved(
    driver: SnmpDriver,
    snmpd_peer: Peer,  # noqa: F811
) -> None:
    t = TargetSpec(4, "snmp", "localhost", snmpd_peer.port, V2C, {}, {}, 1)
    result = await driver.poll(t, SYSTEM, 1)
    assert [s.metric for s in result.samples] == ["sys_uptime_s"]
