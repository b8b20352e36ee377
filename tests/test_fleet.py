"""The fleet end to end: controllers, agents (in this process and as child processes),
PostgreSQL, and simulated SNMP devices on 127.0.0.1 that log who polls them and when."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from controller.app import LEADER
from tests import fleet_stack
from tests.fleet_stack import (
    FAST_FLEET,
    AgentProcess,
    Fleet,
    TcpProxy,
    agent_running,
    controller_on,
    eventually,
    fleet_config,
    free_port,
)
from tools.sim import snmp as sim

fleet = fleet_stack.fleet
INTERVAL = 5  # seconds: the shortest poll interval a profile may ask for


@pytest.fixture
async def devices() -> AsyncIterator[tuple[sim.SnmpSimulator, int]]:
    simulator = sim.SnmpSimulator(devices=40, interfaces=2)
    async with sim.running(simulator) as port:
        yield simulator, port


async def add_targets(fleet: Fleet, port: int, numbers: range, zone: str = "pop1") -> list[int]:
    reply = await fleet.api(
        "POST",
        "/api/v1/targets/import",
        data={"targets": sim.targets(port, numbers, zone=zone, interval=INTERVAL)},
    )
    assert reply.status == 200, reply.body
    rows = await fleet.pool.fetch(
        "SELECT id, name FROM targets WHERE name = ANY($1::text[])",
        [f"sim-dev{n}" for n in numbers],
    )
    return [r["id"] for r in rows]


async def owners(pool: asyncpg.Pool) -> dict[str, str]:
    rows = await pool.fetch(
        "SELECT t.name, a.agent_id FROM assignments a JOIN targets t ON t.id = a.target_id"
        " WHERE a.state = 'active'"
    )
    return {r["name"]: r["agent_id"] for r in rows}


def device(name: str) -> int:
    return int(name.removeprefix("sim-dev"))


async def test_an_agent_polls_its_targets_and_the_samples_are_stored(
    fleet: Fleet, devices: tuple[sim.SnmpSimulator, int]
) -> None:
    simulator, port = devices
    await add_targets(fleet, port, range(1, 6))
    async with agent_running(fleet.url, fleet.agent_token, "pop1-a"):

        async def all_stored() -> bool:
            n = await fleet.pool.fetchval(
                "SELECT count(DISTINCT s.target_id) FROM series s JOIN samples x"
                " ON x.series_id = s.id WHERE s.metric = 'sys_uptime_s'"
            )
            return n == 5

        await eventually(all_stored, within=10)
    assert all(simulator.requests_for(n) for n in range(1, 6))
    assert not simulator.requests_for(6)


async def test_zones_are_respected(fleet: Fleet, devices: tuple[sim.SnmpSimulator, int]) -> None:
    _, port = devices
    await add_targets(fleet, port, range(1, 11), zone="pop1")
    await add_targets(fleet, port, range(11, 21), zone="pop2")
    async with (
        agent_running(fleet.url, fleet.agent_token, "a1", zone="pop1"),
        agent_running(fleet.url, fleet.agent_token, "a2", zone="pop1"),
        agent_running(fleet.url, fleet.agent_token, "b1", zone="pop2"),
    ):

        async def placed() -> bool:
            return len(await owners(fleet.pool)) == 20

        await eventually(placed)
        held = await owners(fleet.pool)
    assert {a for n, a in held.items() if device(n) <= 10} <= {"a1", "a2"}
    assert {a for n, a in held.items() if device(n) > 10} == {"b1"}


async def test_a_target_that_never_answers_delays_no_other(
    fleet: Fleet, devices: tuple[sim.SnmpSimulator, int]
) -> None:
    simulator, port = devices
    simulator.silent.add(1)
    await add_targets(fleet, port, range(1, 11))
    async with agent_running(fleet.url, fleet.agent_token, "a", max_in_flight=2):
        await eventually(lambda: all(simulator.requests_for(n) for n in range(1, 11)), within=10)

        async def timed_out() -> bool:
            return bool(
                await fleet.pool.fetchval(
                    "SELECT count(*) FROM events WHERE kind IN ('poll_timeout', 'poll_failed')"
                )
            )

        await eventually(timed_out, within=15)
    # The silent device was asked again (retries), the others answered at once.
    assert len(simulator.requests_for(1)) >= 2
    for n in range(2, 11):
        first = simulator.requests_for(n)[0].at
        assert first - simulator.started < 5


@pytest.mark.parametrize("how", ["kill", "freeze", "partition"])
async def test_a_lost_agents_targets_move_and_no_device_ever_has_two_pollers(
    fleet: Fleet, devices: tuple[sim.SnmpSimulator, int], how: str
) -> None:
    """Two agent processes share 30 devices; agent A is lost:
    - kill: SIGKILL, as when a pod dies;
    - freeze: SIGSTOP (alive, holding its sockets, silent) and cut off from the
      controllers, then SIGCONT long after its lease ran out: it wakes past its fence;
    - partition: its network to the controllers is cut while it runs on.
    A's devices move to B within 10 s, no device waits longer than one interval plus the
    lease (plus the leader's pass and the first-poll spread), and once B polls a device,
    A never polls it again: never two pollers at once."""
    simulator, port = devices
    await add_targets(fleet, port, range(1, 31))
    proxy = TcpProxy(int(fleet.url.rsplit(":", 1)[1]))
    await proxy.start()
    a = AgentProcess(proxy.url, fleet.agent_token, "proc-a")
    b = AgentProcess(fleet.url, fleet.agent_token, "proc-b")
    a.start()
    b.start()
    try:

        async def both_polling() -> bool:
            held = await owners(fleet.pool)
            return len(held) == 30 and set(held.values()) == {"proc-a", "proc-b"}

        await eventually(both_polling, within=15)
        await eventually(lambda: all(simulator.requests_for(n) for n in range(1, 31)), within=10)
        settled = time.monotonic()  # (agents joining moved devices before this)
        await asyncio.sleep(INTERVAL + 0.5)  # a full cycle of both

        def since_settled(n: int) -> list[sim.Request]:
            return [r for r in simulator.requests_for(n) if r.at > settled]

        of_a = {device(n) for n, agent in (await owners(fleet.pool)).items() if agent == "proc-a"}
        ports_of = {
            name: {r.source for n in mine for r in since_settled(n)}
            for name, mine in (("a", of_a), ("b", set(range(1, 31)) - of_a))
        }
        assert of_a and not ports_of["a"] & ports_of["b"]
        lost_at = time.monotonic()
        if how == "kill":
            a.signal(signal.SIGKILL)
        elif how == "freeze":
            a.signal(signal.SIGSTOP)
            await proxy.cut()
        else:
            await proxy.cut()

        async def moved() -> bool:
            return set((await owners(fleet.pool)).values()) == {"proc-b"}

        await eventually(moved, within=10)

        def polled_by_b_after_loss() -> bool:
            return all(
                any(r.at > lost_at and r.source in ports_of["b"] for r in simulator.requests_for(n))
                for n in of_a
            )

        await eventually(polled_by_b_after_loss, within=10)
        took_over = max(
            next(
                r.at
                for r in simulator.requests_for(n)
                if r.at > lost_at and r.source in ports_of["b"]
            )
            for n in of_a
        )
        assert took_over - lost_at < 10
        bound = INTERVAL + FAST_FLEET.lease_ms / 1000 + FAST_FLEET.pass_interval + 0.5 + 0.5
        for n in of_a:
            times = [r.at for r in since_settled(n)]
            gaps = [t2 - t1 for t1, t2 in itertools.pairwise(times)]
            assert max(gaps) < bound, (n, max(gaps))
        if how == "freeze":
            a.signal(signal.SIGCONT)  # past its fence: it must poll nothing, ever
        await asyncio.sleep(INTERVAL + 1)
        for n in range(1, 31):
            requests = since_settled(n)
            first_b = next(r.at for r in requests if r.source in ports_of["b"])
            late_a = [r for r in requests if r.at > first_b and r.source not in ports_of["b"]]
            assert not late_a, (n, round(late_a[0].at - lost_at, 2))
    finally:
        a.stop()
        b.stop()
        await proxy.cut()


async def test_a_restarted_controller_loses_and_doubles_no_sample(
    pool: asyncpg.Pool, db_dsn: str, devices: tuple[sim.SnmpSimulator, int]
) -> None:
    """The controller goes away for ~2 s, twice (agents keep polling under a 6 s lease and
    spool); afterwards every sample the agents produced is stored exactly once."""
    from controller.auth import create_token
    from schemas.config import Config, FleetConfig
    from tests.test_nbi import Api

    simulator, sim_port = devices
    config = Config(fleet=FleetConfig(heartbeat_ms=500, lease_ms=6000, pass_interval=0.2))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    admin = await create_token(pool, "admin", "admin")
    token = await create_token(pool, "agents", "agent")
    async with controller_on(pool, db_dsn, config, port):
        api = Api(url, admin)
        reply = await api(
            "POST",
            "/api/v1/targets/import",
            data={"targets": sim.targets(sim_port, range(1, 21), zone="pop1", interval=INTERVAL)},
        )
        await api.close()
        assert reply.status == 200
    held_while_down = []
    async with agent_running(url, token, "steady") as agent:
        for _ in range(2):
            async with controller_on(pool, db_dsn, config, port):
                await eventually(agent.connected.is_set, within=10)
                await asyncio.sleep(3)
            await asyncio.sleep(2.5)  # down: polls go on, reports wait in the spool
            agent.flush()
            held_while_down.append(len(agent.spool))
        async with controller_on(pool, db_dsn, config, port):
            await eventually(agent.connected.is_set, within=10)
            agent.flush()
            await eventually(lambda: len(agent.spool) == 0, within=10)
            produced = agent.spool.samples_added
            assert agent.welcomed >= 3
    stored = await pool.fetchval("SELECT count(*) FROM samples")
    assert produced > 0 and stored == produced
    assert all(held_while_down), held_while_down  # the outages really were spooled through
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM (SELECT series_id, ts FROM samples GROUP BY 1, 2"
            " HAVING count(*) > 1) d"
        )
        == 0
    )
    assert simulator.answered > 0


async def test_two_controllers_elect_one_leader_and_the_other_takes_over(
    pool: asyncpg.Pool, db_dsn: str
) -> None:
    config = fleet_config()
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(controller_on(pool, db_dsn, config, free_port()))
        second_cm = controller_on(pool, db_dsn, config, free_port())
        second = await stack.enter_async_context(second_cm)

        def leaders() -> int:
            return first[LEADER].leading + second[LEADER].leading

        await eventually(lambda: leaders() == 1, within=10)
        await asyncio.sleep(1.5)
        assert leaders() == 1  # and it stays one
        leader, follower = (first, second) if first[LEADER].leading else (second, first)
        lost = time.monotonic()
        await leader[LEADER].stop()  # the leader's process goes
        await eventually(lambda: follower[LEADER].leading, within=10)
        assert time.monotonic() - lost < 10
        # A leader whose database connection is cut loses the lock, and someone leads again.
        await pool.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'chronos-fleet-leader' AND datname = current_database()"
        )
        await eventually(lambda: follower[LEADER].leading, within=10)
