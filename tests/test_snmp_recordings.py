"""Walks of real device recordings served by snmpsim: what we read is what the device
had, varbind for varbind, whatever the max-repetitions; the `if` group reads a real
switch's interfaces."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agents.driver import GroupPlan
from agents.snmp import ber
from agents.snmp.driver import SnmpDriver
from agents.snmp.session import walk
from agents.snmp.v2c import UdpTransport, V2cSession
from schemas.frames import TargetSpec
from tests.snmp_peers import SNMP_DATA, Peer, parse_snmprec, snmpsim_peer  # noqa: F401

RECORDING = "huawei-s5720"
# mib-2 subtrees holding every type the recording has: system (OID, TimeTicks, strings),
# interfaces and ifMIB (Counter32/64, Gauge32, hex strings), ip (IpAddress), entity.
SUBTREES = [
    (1, 3, 6, 1, 2, 1, 1),
    (1, 3, 6, 1, 2, 1, 2),
    (1, 3, 6, 1, 2, 1, 4),
    (1, 3, 6, 1, 2, 1, 31),
    (1, 3, 6, 1, 2, 1, 47),
]


@pytest.fixture(scope="module")
def recording() -> list[ber.VarBind]:
    return parse_snmprec(SNMP_DATA / f"{RECORDING}.snmprec.bz2")


@pytest.fixture
async def session(snmpsim_peer: Peer) -> AsyncIterator[V2cSession]:  # noqa: F811
    transport = UdpTransport()
    try:
        yield V2cSession(transport, (snmpsim_peer.host, snmpsim_peer.port), RECORDING, timeout=5)
    finally:
        transport.close()


def under(root: ber.Oid, rows: list[ber.VarBind]) -> list[ber.VarBind]:
    return [vb for vb in rows if vb[0][: len(root)] == root]


@pytest.mark.parametrize("max_repetitions", [1, 25, 60])
async def test_walking_subtrees_gives_exactly_the_recorded_varbinds(
    session: V2cSession, recording: list[ber.VarBind], max_repetitions: int
) -> None:
    result = await walk(session, SUBTREES, max_repetitions)
    assert result.problems == []
    for root in SUBTREES:
        expected = under(root, recording)
        assert expected, root
        assert result.columns[root] == expected
    assert result.count > 3000


async def test_a_get_returns_recorded_values_and_no_such_object_for_the_rest(
    session: V2cSession, recording: list[ber.VarBind]
) -> None:
    by_oid = {vb[0]: vb for vb in recording}
    wanted = [
        (1, 3, 6, 1, 2, 1, 1, 3, 0),
        (1, 3, 6, 1, 2, 1, 1, 5, 0),
        (1, 3, 6, 1, 2, 1, 1, 77, 0),
    ]
    got = await session.get(wanted)
    assert got[:2] == [by_oid[wanted[0]], by_oid[wanted[1]]]
    assert got[2][1] in (ber.NO_SUCH_OBJECT, ber.NO_SUCH_INSTANCE)


async def test_the_if_group_reads_every_interface_of_the_switch(
    snmpsim_peer: Peer,  # noqa: F811
    recording: list[ber.VarBind],
) -> None:
    if_names = {
        str(oid[-1]): value.decode()
        for oid, _, value in under((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1), recording)
        if isinstance(value, bytes)
    }
    driver = SnmpDriver()
    target = TargetSpec(
        3, "snmp", snmpsim_peer.host, snmpsim_peer.port, {"community": RECORDING}, {}, {}, 1
    )
    plan = {g.name: g for g in driver.plan(target)}
    assert set(plan) == {"system", "if"}
    try:
        first = await driver.poll(target, plan["if"], 1_000_000)
        second = await driver.poll(target, plan["if"], 1_300_000)
        system = await driver.poll(target, plan["system"], 1_300_000)
    finally:
        await driver.close()
    status = {s.labels["ifIndex"]: s.labels["ifName"] for s in first.samples}
    assert status == if_names
    assert {s.metric for s in first.samples} == {"if_oper_status"}
    assert first.events == second.events == []
    # A recording does not move: every rate of the second poll is zero.
    rates = [s for s in second.samples if s.metric.endswith(("_bps", "_ps"))]
    assert {s.metric for s in rates} >= {"if_in_bps", "if_out_bps", "if_in_errors_ps"}
    assert {s.value for s in rates} == {0.0}
    assert [(s.metric, s.value) for s in system.samples] == [("sys_uptime_s", 17470829.7)]


async def test_a_table_group_turns_a_recorded_column_into_samples(
    snmpsim_peer: Peer,  # noqa: F811
    recording: list[ber.VarBind],
) -> None:
    column = (1, 3, 6, 1, 2, 1, 2, 2, 1, 4)  # ifMtu
    expected = {str(oid[-1]): float(v) for oid, _, v in under(column, recording)}  # type: ignore[arg-type]
    driver = SnmpDriver()
    target = TargetSpec(
        3, "snmp", snmpsim_peer.host, snmpsim_peer.port, {"community": RECORDING}, {}, {}, 1
    )
    group = GroupPlan("mtu", 3600, {"walk": [ber.dotted(column)], "metric": "if_mtu"})
    try:
        result = await driver.poll(target, group, 5)
    finally:
        await driver.close()
    assert {s.labels["index"]: s.value for s in result.samples} == expected
