"""Who polls what: weighted rendezvous hashing over live agents, and the moves it implies.

Pure code. The leader (`controller.leader`) reads targets, live agents and current
assignments from PostgreSQL, asks `plan()` what to change, and writes the answer.

Each target goes to the eligible agent with the highest score
`-capacity / ln(h(agent, target))`, where h is a hash mapped into (0, 1): the weighted
rendezvous rule (an agent with twice the capacity wins twice as many targets, in
expectation). Eligible means live, holding a driver for the target's kind, and in the
target's zone when the target has one. A join moves only the targets the newcomer now
wins; a loss moves only the lost agent's targets: nothing else changes hands.

The safety rule, which keeps two pollers off one OLT: a target is handed to a new agent
only when nobody holds it. A live owner is first asked to let go (`revoke`: the row turns
`revoking`, the owner stops and confirms, the row is deleted) and the target is assigned
at the next pass; an owner whose lease ran out has stopped by itself (agents fence
themselves before their lease ends), so its rows are simply dropped and reassigned.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from hashlib import blake2b

_SCALE = float(2**64)


@dataclass(frozen=True, slots=True)
class AgentInfo:
    id: str
    labels: Mapping[str, str] = field(hash=False)
    capacity: int = 1
    kinds: frozenset[str] = frozenset()

    def serves(self, target: TargetInfo) -> bool:
        """May this agent poll `target`? Its driver kinds, and the zone when one is set."""
        if target.kind not in self.kinds:
            return False
        return target.zone is None or self.labels.get("zone") == target.zone


@dataclass(frozen=True, slots=True)
class TargetInfo:
    id: int
    kind: str
    zone: str | None


@dataclass(frozen=True, slots=True)
class Held:
    """A current assignment row."""

    agent: str
    epoch: int
    revoking: bool = False


@dataclass(slots=True)
class Plan:
    """What one leader pass changes."""

    assign: dict[int, str] = field(default_factory=dict)  # target -> agent (new rows)
    revoke: dict[int, Held] = field(default_factory=dict)  # live owner asked to let go
    drop: dict[int, Held] = field(default_factory=dict)  # owner's lease ran out: delete
    unplaced: list[int] = field(default_factory=list)  # no eligible live agent

    def agents_touched(self) -> set[str]:
        return (
            set(self.assign.values())
            | {h.agent for h in self.revoke.values()}
            | {h.agent for h in self.drop.values()}
        )

    def __bool__(self) -> bool:
        return bool(self.assign or self.revoke or self.drop)


def _unit_hash(agent: str, target: int) -> float:
    digest = blake2b(f"{agent}\x00{target}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / _SCALE  # strictly inside (0, 1)


def score(agent: AgentInfo, target: int) -> float:
    """The weighted rendezvous score; the highest wins."""
    return -agent.capacity / math.log(_unit_hash(agent.id, target))


def owner(target: TargetInfo, agents: Iterable[AgentInfo]) -> str | None:
    """The agent that should poll `target`, or None when no live agent may."""
    best, best_score = None, -1.0
    for agent in agents:
        if agent.serves(target):
            s = score(agent, target.id)
            if s > best_score or (s == best_score and best is not None and agent.id < best):
                best, best_score = agent.id, s
    return best


def plan(
    targets: Iterable[TargetInfo],
    live: Iterable[AgentInfo],
    held: Mapping[int, Held],
) -> Plan:
    """The moves from `held` towards the rendezvous owners of enabled `targets`.

    `targets` are the enabled targets; a held target missing from them (disabled) is
    revoked. `live` are agents whose lease has not run out; rows held by anyone else are
    dropped. Targets already being revoked wait for the owner's confirmation.
    """
    agents = list(live)
    alive = {a.id for a in agents}
    by_zone: dict[str | None, list[AgentInfo]] = {}
    for agent in agents:
        by_zone.setdefault(agent.labels.get("zone"), []).append(agent)
    out = Plan()
    wanted: set[int] = set()
    for target in targets:
        wanted.add(target.id)
        pool = agents if target.zone is None else by_zone.get(target.zone, [])
        desired = owner(target, pool)
        current = held.get(target.id)
        if current is not None and current.agent not in alive:
            out.drop[target.id] = current
            current = None
        if current is None:
            if desired is None:
                out.unplaced.append(target.id)
            else:
                out.assign[target.id] = desired
        elif current.agent != desired and not current.revoking:
            out.revoke[target.id] = current
    for target_id, current in held.items():
        if target_id in wanted:
            continue
        if current.agent not in alive:
            out.drop[target_id] = current
        elif not current.revoking:
            out.revoke[target_id] = current
    return out
