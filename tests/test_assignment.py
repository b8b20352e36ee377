"""Weighted rendezvous assignment: who polls what, and which moves a change implies."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.assignment import AgentInfo, Held, TargetInfo, owner, plan

SNMP = frozenset({"snmp"})


def agent(name: str, zone: str | None = None, capacity: int = 10, kinds=SNMP) -> AgentInfo:
    return AgentInfo(name, {"zone": zone} if zone else {}, capacity, kinds)


def targets(
    n: int, zone: str | None = None, kind: str = "snmp", start: int = 1
) -> list[TargetInfo]:
    return [TargetInfo(i, kind, zone) for i in range(start, start + n)]


def owners(ts: list[TargetInfo], agents: list[AgentInfo]) -> dict[int, str | None]:
    return {t.id: owner(t, agents) for t in ts}


def test_every_target_goes_to_one_agent_that_may_poll_it() -> None:
    agents = [agent("a", "pop1"), agent("b", "pop1"), agent("c", "pop2")]
    ts = targets(200, "pop1") + targets(200, "pop2", start=1000) + targets(50, None, start=5000)
    result = plan(ts, agents, {})
    assert set(result.assign) == {t.id for t in ts}
    for t in ts:
        chosen = next(a for a in agents if a.id == result.assign[t.id])
        assert chosen.serves(t)
    assert {result.assign[t.id] for t in ts if t.zone == "pop2"} == {"c"}


def test_a_target_of_a_zone_without_agents_is_left_unplaced() -> None:
    result = plan(targets(3, "pop9"), [agent("a", "pop1")], {})
    assert result.assign == {} and sorted(result.unplaced) == [1, 2, 3]


def test_a_target_goes_only_to_agents_with_its_driver() -> None:
    agents = [agent("ssh-only", kinds=frozenset({"huawei-olt"})), agent("snmp-only")]
    result = plan(targets(20, kind="huawei-olt") + targets(20, start=100), agents, {})
    assert {result.assign[i] for i in range(1, 21)} == {"ssh-only"}
    assert {result.assign[i] for i in range(100, 120)} == {"snmp-only"}


def test_capacity_weights_the_share_of_targets() -> None:
    agents = [agent("big", capacity=300), agent("small", capacity=100)]
    result = plan(targets(20000), agents, {})
    share = sum(1 for a in result.assign.values() if a == "big") / 20000
    assert 0.72 < share < 0.78  # 3:1 capacity -> 75% in expectation


def test_a_joining_agent_takes_targets_only_by_revocation() -> None:
    agents = [agent("a"), agent("b")]
    ts = targets(300)
    first = plan(ts, agents, {})
    held = {t: Held(a, epoch=1) for t, a in first.assign.items()}
    joined = plan(ts, [*agents, agent("c")], held)
    # Nothing is assigned while owned: the owners are asked to let go first.
    assert joined.assign == {} and joined.drop == {}
    assert joined.revoke and all(h.agent in ("a", "b") for h in joined.revoke.values())
    wins = {t.id for t in ts if owner(t, [*agents, agent("c")]) == "c"}
    assert set(joined.revoke) == wins
    # Once the owners confirmed (rows deleted), the next pass gives them to c.
    after = {t: h for t, h in held.items() if t not in joined.revoke}
    assert set(plan(ts, [*agents, agent("c")], after).assign.values()) == {"c"}


def test_a_lost_agents_targets_are_dropped_and_reassigned_at_once() -> None:
    ts = targets(300)
    agents = [agent("a"), agent("b"), agent("c")]
    held = {t: Held(a, 1) for t, a in plan(ts, agents, {}).assign.items()}
    lost = plan(ts, [agent("a"), agent("b")], held)
    of_c = {t for t, h in held.items() if h.agent == "c"}
    assert set(lost.drop) == of_c and set(lost.assign) == of_c
    assert lost.revoke == {}
    assert set(lost.assign.values()) <= {"a", "b"}


def test_targets_being_revoked_wait_for_the_confirmation() -> None:
    ts = targets(1)
    live_owner = plan(ts, [agent("a"), agent("b")], {1: Held("b", 4, revoking=True)})
    assert not live_owner  # nothing to do until b confirms
    # An owner that died before confirming has stopped anyway (its lease ran out).
    dead_owner = plan(ts, [agent("a"), agent("b")], {1: Held("c", 4, revoking=True)})
    assert dead_owner.drop == {1: Held("c", 4, True)} and 1 in dead_owner.assign


def test_a_disabled_or_deleted_target_is_revoked_from_its_owner() -> None:
    result = plan([], [agent("a")], {5: Held("a", 9)})
    assert result.revoke == {5: Held("a", 9)}


def test_a_target_whose_zone_changed_is_revoked_even_with_no_new_home() -> None:
    result = plan(targets(1, "pop2"), [agent("a", "pop1")], {1: Held("a", 3)})
    assert set(result.revoke) == {1}


def test_a_settled_fleet_needs_no_changes() -> None:
    ts = targets(500, "pop1")
    agents = [agent("a", "pop1"), agent("b", "pop1", capacity=30)]
    held = {t: Held(a, 1) for t, a in plan(ts, agents, {}).assign.items()}
    assert not plan(ts, agents, held)


names = st.lists(st.text("abcdefgh", min_size=1, max_size=4), min_size=1, max_size=8, unique=True)


@settings(max_examples=60, deadline=None)
@given(names, st.integers(1, 400), st.text("abcdefgh", min_size=5, max_size=5))
def test_a_join_or_a_loss_moves_only_the_targets_it_must(
    present: list[str], count: int, newcomer: str
) -> None:
    ts = targets(count)
    before = owners(ts, [agent(n) for n in present])
    # Join: only targets the newcomer now wins change owner.
    with_new = owners(ts, [agent(n) for n in [*present, newcomer]])
    for t in ts:
        assert with_new[t.id] in (before[t.id], newcomer)
    # Loss: only the lost agent's targets change owner.
    gone = present[0]
    without = owners(ts, [agent(n) for n in present[1:]])
    for t in ts:
        if before[t.id] != gone:
            assert without[t.id] == before[t.id]
