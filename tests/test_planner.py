"""The provisioning planner against a simulated device's data model, with no socket: the
planner's RPCs are answered by the CPE simulator's tree, so what it converges to is what
a real CPE would hold. Property test: random desired states converge."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acs import expr, paths
from acs import messages as m
from acs import planner as pl
from acs.faults import CwmpFault
from acs.provisions import Declare, parse_provision
from tools.sim.datamodel import DataModel

IGD = "InternetGatewayDevice"
WLAN = f"{IGD}.LANDevice.1.WLANConfiguration"
PPP = f"{IGD}.WANDevice.1.WANConnectionDevice.1.WANPPPConnection"
CLOCK = iter(range(1_000_000, 10**9))


def tick() -> float:
    return float(next(CLOCK))


def answer(dm: DataModel, message: m.Message) -> m.Message:
    """What the simulated CPE answers; CPE faults are raised like the session throws them."""
    match message:
        case m.GetParameterNames(path, next_level):
            return m.GetParameterNamesResponse(tuple(dm.get_parameter_names(path, next_level)))
        case m.GetParameterValues(names):
            return m.GetParameterValuesResponse(tuple(dm.get_parameter_values(names)))
        case m.SetParameterValues(params, key):
            return m.SetParameterValuesResponse(dm.set_parameter_values(params, key))
        case m.AddObject(name, key):
            return m.AddObjectResponse(dm.add_object(name, key), 0)
        case m.DeleteObject(name, key):
            return m.DeleteObjectResponse(dm.delete_object(name, key))
    raise AssertionError(f"unexpected {message}")


def converge(
    steps: list[Declare], dm: DataModel, state: pl.TreeState | None = None, limit: int = 300
) -> tuple[pl.Planner, list[m.Message]]:
    state = state or pl.TreeState()
    decls = [
        pl.Declaration(s, "default", f"step {i}", {"serial": "SN1", "args": []})
        for i, s in enumerate(steps, 1)
    ]
    planner = pl.Planner(state, decls, pl.PlanContext(started=tick()))
    sent: list[m.Message] = []
    for _ in range(limit):
        planned = planner.next()
        if planned is None:
            return planner, sent
        sent.append(planned.message)
        try:
            planner.apply(planned, answer(dm, planned.message), tick())
        except CwmpFault as fault:
            planner.fault(planned, fault)
    raise AssertionError(f"no convergence after {limit} RPCs: {sent[-5:]}")


def declare(path: str, **kw: Any) -> Declare:
    value = kw.pop("value", None)
    return Declare(
        paths.parse(path), expr.template(value) if isinstance(value, str) else None, **kw
    )


@pytest.fixture
def dm() -> DataModel:
    return DataModel.generate("tr098", seed=11, family=None)


def test_setting_a_known_value_reads_then_writes_once(dm: DataModel) -> None:
    planner, sent = converge([declare(f"{WLAN}.1.SSID", value="ISP-${serial}")], dm)
    assert [type(x) for x in sent] == [m.GetParameterValues, m.SetParameterValues]
    assert dm.read(f"{WLAN}.1.SSID") == "ISP-SN1"
    # Converged: asked again, nothing to do.
    assert planner.next() is None


def test_an_equal_value_is_not_written(dm: DataModel) -> None:
    current = dm.read(f"{WLAN}.1.SSID")
    _, sent = converge([declare(f"{WLAN}.1.SSID", value=current)], dm)
    assert [type(x) for x in sent] == [m.GetParameterValues]


def test_wildcards_list_instances_with_next_level_then_batch_reads_and_writes(
    dm: DataModel,
) -> None:
    for i in dm.instance_numbers(f"{WLAN}."):
        dm.set_value(f"{WLAN}.{i}.Enable", "false", notify=False)
    _, sent = converge([declare(f"{WLAN}.*.Enable", value="${true}")], dm)
    assert sent[0] == m.GetParameterNames(f"{WLAN}.", True)
    assert [type(x) for x in sent[1:]] == [m.GetParameterValues, m.SetParameterValues]
    instances = dm.instance_numbers(f"{WLAN}.")
    assert len(sent[1].names) == len(instances) >= 2  # type: ignore[union-attr]
    assert all(dm.read(f"{WLAN}.{i}.Enable") == "true" for i in instances)


def test_alias_instances_are_created_and_keyed_once(dm: DataModel) -> None:
    steps = [declare(f"{PPP}.[Name:internet]", instances=(1, 1))]
    planner, sent = converge(steps, dm)
    adds = [x for x in sent if isinstance(x, m.AddObject)]
    assert len(adds) == 1
    names = [dm.read(f"{PPP}.{i}.Name") for i in dm.instance_numbers(f"{PPP}.")]
    assert names.count("internet") == 1
    # Run again on the converged state: nothing more is added.
    _, again = converge(steps, dm, planner.state)
    assert not any(isinstance(x, m.AddObject) for x in again)


def test_surplus_instances_are_deleted(dm: DataModel) -> None:
    for _ in range(3):
        dm.add_object(f"{PPP}.")
    converge([declare(f"{PPP}.*", instances=(0, 1))], dm)
    assert len(dm.instance_numbers(f"{PPP}.")) == 1


def test_full_tree_refresh_lists_once_and_reads_every_value_in_batches(dm: DataModel) -> None:
    planner, sent = converge([Declare(paths.Pattern((), True), value_age=0, path_age=0)], dm)
    assert sent[0] == m.GetParameterNames("", False)
    reads = [x for x in sent if isinstance(x, m.GetParameterValues)]
    assert all(len(r.names) <= 100 for r in reads)
    leaves = [p.name for p in dm.get_parameter_names("", False) if not p.name.endswith(".")]
    assert sum(len(r.names) for r in reads) == len(leaves)
    assert all(planner.state.known(p) for p in leaves)


def test_a_fresh_enough_value_is_not_read_again(dm: DataModel) -> None:
    state = pl.TreeState()
    path = f"{IGD}.DeviceInfo.UpTime"
    state.load([{"path": path, "value": "5", "value_type": "xsd:unsignedInt", "value_ts": 10**12}])
    _, sent = converge([declare(path, value_age=3600)], dm, state)
    assert sent == []


def test_a_bad_value_faults_its_channel_only(dm: DataModel) -> None:
    state = pl.TreeState()
    decls = [
        pl.Declaration(
            declare(f"{IGD}.ManagementServer.PeriodicInformInterval", value="often"), "a", "a1"
        ),
        pl.Declaration(declare(f"{WLAN}.1.SSID", value="fine"), "b", "b1"),
    ]
    planner = pl.Planner(state, decls, pl.PlanContext(started=tick()))
    for _ in range(20):
        planned = planner.next()
        if planned is None:
            break
        planner.apply(planned, answer(dm, planned.message), tick())
    assert set(planner.failed) == {"a"} and planner.failed["a"].code == "provision.value"
    assert "often" in planner.failed["a"].message
    assert dm.read(f"{WLAN}.1.SSID") == "fine"


def test_a_missing_parameter_is_found_in_a_failed_batch_and_faults_its_channel(
    dm: DataModel,
) -> None:
    state = pl.TreeState()
    decls = [
        pl.Declaration(declare(f"{IGD}.NoSuch.Thing", value="x"), "a", "a1"),
        pl.Declaration(declare(f"{WLAN}.1.SSID", value="fine"), "b", "b1"),
    ]
    planner = pl.Planner(state, decls, pl.PlanContext(started=tick()))
    for _ in range(20):
        planned = planner.next()
        if planned is None:
            break
        try:
            planner.apply(planned, answer(dm, planned.message), tick())
        except CwmpFault as fault:
            planner.fault(planned, fault)
    assert set(planner.failed) == {"a"} and planner.failed["a"].code == "cwmp.9005"
    assert dm.read(f"{WLAN}.1.SSID") == "fine"


def test_a_read_only_parameter_faults_with_its_cpe_fault(dm: DataModel) -> None:
    state = pl.TreeState()
    decls = [pl.Declaration(declare(f"{IGD}.DeviceInfo.SerialNumber", value="x"), "a", "a1")]
    planner = pl.Planner(state, decls, pl.PlanContext(started=tick()))
    for _ in range(10):
        planned = planner.next()
        if planned is None:
            break
        try:
            planner.apply(planned, answer(dm, planned.message), tick())
        except CwmpFault as fault:
            planner.fault(planned, fault)
    assert planner.failed["a"].code == "cwmp.9003"


def test_a_provision_document_drives_the_planner(dm: DataModel) -> None:
    steps = parse_provision(
        [
            {"declare": f"{WLAN}.1.SSID", "value": "Home-${substr(serial, -3)}"},
            {"value": [f"{IGD}.ManagementServer.PeriodicInformInterval", 600]},
        ]
    )
    converge([s for s in steps if isinstance(s, Declare)], dm)
    assert dm.read(f"{WLAN}.1.SSID") == "Home-SN1"
    assert dm.read(f"{IGD}.ManagementServer.PeriodicInformInterval") == "600"


_ssid = st.text(
    st.characters(min_codepoint=48, max_codepoint=122, whitelist_categories=("Lu", "Ll", "Nd")),
    min_size=1,
    max_size=20,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ssids=st.dictionaries(st.integers(1, 2), _ssid, max_size=2),
    enable=st.none() | st.booleans(),
    interval=st.none() | st.integers(60, 86400),
    ppp=st.none() | st.integers(0, 3),
    seed=st.integers(0, 50),
)
def test_random_desired_states_converge_and_hold(
    ssids: dict[int, str], enable: bool | None, interval: int | None, ppp: int | None, seed: int
) -> None:
    dm = DataModel.generate("tr098", seed=seed)
    steps = [declare(f"{WLAN}.{i}.SSID", value=text) for i, text in ssids.items()]
    if enable is not None:
        steps.append(
            Declare(paths.parse(f"{WLAN}.*.Enable"), expr.Template((expr.Literal(enable),)))
        )
    if interval is not None:
        steps.append(
            Declare(
                paths.parse(f"{IGD}.ManagementServer.PeriodicInformInterval"),
                expr.Template((expr.Literal(interval),)),
            )
        )
    if ppp is not None:
        steps.append(declare(f"{PPP}.*", instances=(ppp, ppp)))
    planner, _ = converge(steps, dm)
    assert not planner.failed
    for i, text in ssids.items():
        assert dm.read(f"{WLAN}.{i}.SSID") == text
    if enable is not None:
        assert all(
            dm.read(f"{WLAN}.{i}.Enable") == ("true" if enable else "false")
            for i in dm.instance_numbers(f"{WLAN}.")
        )
    if interval is not None:
        assert dm.read(f"{IGD}.ManagementServer.PeriodicInformInterval") == str(interval)
    if ppp is not None:
        assert len(dm.instance_numbers(f"{PPP}.")) == ppp
    # Planning again from what was learned asks for nothing.
    assert planner.next() is None
