"""CLI sessions and the session pool against the simulated MA5800 over real SSH on
127.0.0.1: login and setup, pager and smart prompts, modes, device errors, busy retries,
dropped connections, refused credentials, time-outs, the circuit breaker, one session
per OLT under concurrency, idle close; and the simulator's XPON SNMP view."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from agents.driver import PollError
from agents.huawei.cli import Mode
from agents.huawei.session import CliError, CliSession, OltSessions
from agents.snmp import ber
from tools.sim.olt import NO_VALUE, XPON, OltSimulator, XponMib, gpon_ifindex, running
from tools.sim.snmp import SnmpSimulator

PASSWORD = "s3cret-Pa55"
CREDS = {"username": "root", "password": PASSWORD}
TARGET = 7


async def eventually(check: Callable[[], object], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not check():
            await asyncio.sleep(0.01)


@pytest.fixture
async def olt() -> AsyncIterator[tuple[OltSimulator, int]]:
    sim = OltSimulator(password=PASSWORD, onts=12, seed=3)
    async with running(sim) as ports:
        yield sim, ports.ssh


@pytest.fixture
async def pool() -> AsyncIterator[OltSessions]:
    sessions = OltSessions(busy_retries=2, busy_backoff=0.01, connect_timeout=2, login_timeout=3)
    yield sessions
    await sessions.close()


async def connected(port: int, **options: object) -> CliSession:
    session = CliSession(TARGET, "127.0.0.1", port, CREDS, **options)  # type: ignore[arg-type]
    await session.connect()
    return session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- one session --------------------------------------------------------------------------


async def test_login_sets_the_terminal_up_and_output_is_what_the_olt_rendered(
    olt: tuple[OltSimulator, int],
) -> None:
    sim, port = olt
    session = await connected(port)
    try:
        assert sim.commands == ["enable", "undo smart", "scroll 512", "infoswitch cli OFF"]
        output = await session.run("display board 0")
        assert output == sim.outputs[-1][1]
        assert "H901GPHF" in output
        assert "\x1b" not in output and "More" not in output and sim.host_name not in output
        assert session.screen.mode == Mode("enable")
    finally:
        await session.close()
    assert sim.commands[-1] == "quit"  # logged out, confirming the question
    await eventually(lambda: sim.open_sessions == 0)


async def test_an_olt_that_refuses_scroll_pages_and_the_whole_output_still_arrives(
    olt: tuple[OltSimulator, int],
) -> None:
    sim, port = olt
    sim.accept_scroll, sim.page_lines, sim.alarms = False, 5, True
    session = await connected(port)
    try:
        assert sim.commands[2:4] == ["scroll 512", "scroll"]
        output = await session.run("display ont info 0 0 0")
        rendered = sim.outputs[-1][1]
        assert rendered.count("\n") > 3 * sim.page_lines  # it paged several times
        assert output == rendered
        assert "ALARM" not in output
    finally:
        await session.close()


async def test_the_smart_prompt_is_answered(olt: tuple[OltSimulator, int]) -> None:
    sim, port = olt
    session = await connected(port)
    try:
        await session.run("smart")
        output = await session.run("display ont info summary 0/1/0")
        assert output == sim.outputs[-1][1]
        assert "Command:" not in output and "<cr>" not in output
    finally:
        await session.close()


async def test_modes_are_entered_and_left_for_provisioning(olt: tuple[OltSimulator, int]) -> None:
    sim, port = olt
    waiting = sim.autofind_list[0]
    session = await connected(port)
    try:
        added = await session.run(
            f'ont add {waiting.port} sn-auth {waiting.sn} omci ont-lineprofile-id 10 ont-srvprofile-id 10 desc "new customer"',
            interface=f"gpon 0/{waiting.slot}",
        )
        assert "success: 1" in added
        assert session.screen.mode == Mode("interface", f"gpon 0/{waiting.slot}")
        ont_id = int(added.rsplit(":", 1)[1])
        await session.run(
            f"service-port vlan 200 gpon 0/{waiting.slot}/{waiting.port} ont {ont_id} gemport 1 multi-service user-vlan 200 tag-transform translate",
            mode="config",
        )
        detail = await session.run(f"display ont info by-sn {waiting.sn}")
        assert session.screen.mode == Mode("enable")
        assert "new customer" in detail and "online" in detail
        assert waiting.sn not in await session.run("display ont autofind all")
        with pytest.raises(CliError) as failed:
            await session.run(
                f"ont add {waiting.port} sn-auth {waiting.sn} omci ont-lineprofile-id 10 ont-srvprofile-id 10",
                interface=f"gpon 0/{waiting.slot}",
            )
        assert (failed.value.code, str(failed.value)) == (
            "failure",
            "Failure: The ONT SN already exists.",
        )
        await session.run(
            f"ont reset {waiting.port} {ont_id}", interface=f"gpon 0/{waiting.slot}", confirm=True
        )
        assert sim.resets == [(waiting.slot, waiting.port, ont_id)]
    finally:
        await session.close()
    assert "return" in sim.commands


async def test_device_errors_carry_code_and_message(olt: tuple[OltSimulator, int]) -> None:
    sim, port = olt
    sim.autofind_list.clear()
    session = await connected(port)
    try:
        with pytest.raises(CliError) as unknown:
            await session.run("dispaly board 0")
        assert unknown.value.code == "cli_error"
        with pytest.raises(CliError) as empty:
            await session.run("display ont autofind all")
        assert empty.value.code == "failure"
        assert str(empty.value) == "Failure: The automatically found ONTs do not exist"
        assert not session.broken  # device errors leave the session usable
        assert await session.run("display sysuptime")
    finally:
        await session.close()


async def test_a_command_that_overruns_its_timeout_breaks_the_session(
    olt: tuple[OltSimulator, int],
) -> None:
    sim, port = olt
    session = await connected(port)
    sim.latency = 0.5
    with pytest.raises(PollError) as late:
        await session.run("display board 0", timeout=0.05)
    assert late.value.code == "timeout"
    assert session.broken and not session.open
    await eventually(lambda: sim.open_sessions == 0)


async def test_wrong_password_is_auth_failed_and_never_shown(
    olt: tuple[OltSimulator, int], caplog: pytest.LogCaptureFixture
) -> None:
    sim, port = olt
    caplog.set_level(logging.DEBUG)
    wrong = "wr0ng-Pa55-guess"
    pool = OltSessions(connect_timeout=2, login_timeout=3)
    try:
        with pytest.raises(PollError) as refused:
            async with pool.session(
                TARGET, "127.0.0.1", port, {"username": "root", "password": wrong}
            ):
                pass
    finally:
        await pool.close()
    assert refused.value.code == "auth_failed"
    assert wrong not in str(refused.value) and PASSWORD not in str(refused.value)
    assert wrong not in caplog.text and PASSWORD not in caplog.text
    assert sim.logins and not sim.logins[-1].accepted


async def test_a_full_vty_table_refuses_a_further_login(olt: tuple[OltSimulator, int]) -> None:
    sim, port = olt
    sim.max_sessions = 1
    first = await connected(port)
    try:
        with pytest.raises(PollError) as refused:
            await connected(port)
        assert refused.value.code == "disconnected"
    finally:
        await first.close()


# --- the pool -----------------------------------------------------------------------------


async def test_busy_is_retried_then_succeeds(
    olt: tuple[OltSimulator, int], pool: OltSessions
) -> None:
    sim, port = olt
    async with pool.session(TARGET, "127.0.0.1", port, CREDS) as session:
        sim.busy_next = 2
        assert "H901GPHF" in await session.run("display board 0")
    assert sim.commands.count("display board 0") == 3


async def test_busy_beyond_the_retry_budget_is_reported(
    olt: tuple[OltSimulator, int], pool: OltSessions
) -> None:
    sim, port = olt
    async with pool.session(TARGET, "127.0.0.1", port, CREDS) as session:
        sim.busy_next = 10
        with pytest.raises(CliError) as busy:
            await session.run("display board 0")
    assert busy.value.code == "busy"
    assert sim.commands.count("display board 0") == 3  # the first try and two retries
    assert pool.open_count(TARGET) == 1  # a busy OLT is no broken session


async def test_a_connection_dropped_mid_command_is_disconnected_and_the_next_use_reconnects(
    olt: tuple[OltSimulator, int], pool: OltSessions
) -> None:
    sim, port = olt
    sim.disconnect_on = "display ont info"
    with pytest.raises(PollError) as dropped:
        async with pool.session(TARGET, "127.0.0.1", port, CREDS) as session:
            await session.run("display ont info 0 0 0")
    assert dropped.value.code == "disconnected"
    assert pool.open_count(TARGET) == 0
    async with pool.session(TARGET, "127.0.0.1", port, CREDS) as session:
        assert await session.run("display ont info 0 0 0") == sim.outputs[-1][1]
    assert len([login for login in sim.logins if login.accepted]) == 2


async def test_the_circuit_opens_after_three_failures_and_fails_fast_until_the_cooldown(
    olt: tuple[OltSimulator, int],
) -> None:
    sim, port = olt
    now = [1000.0]
    pool = OltSessions(failures_to_open=3, cooldown=60, connect_timeout=2, clock=lambda: now[0])
    wrong = {"username": "root", "password": "nope"}
    try:
        for _ in range(3):
            with pytest.raises(PollError) as failed:
                async with pool.session(TARGET, "127.0.0.1", port, wrong):
                    pass
            assert failed.value.code == "auth_failed"
        with pytest.raises(PollError) as fast:
            async with pool.session(TARGET, "127.0.0.1", port, CREDS):
                pass
        assert fast.value.code == "circuit_open"
        assert len(sim.logins) == 3  # failing fast: no fourth login
        now[0] += 61  # the cooldown is over: one trial, which succeeds and closes the circuit
        async with pool.session(TARGET, "127.0.0.1", port, CREDS) as session:
            await session.run("display sysuptime")
        async with pool.session(TARGET, "127.0.0.1", port, CREDS) as session:
            await session.run("display sysuptime")
    finally:
        await pool.close()


async def test_an_unreachable_olt_is_unreachable_then_circuit_open() -> None:
    port = free_port()
    pool = OltSessions(failures_to_open=3, cooldown=60, connect_timeout=1)
    try:
        codes = []
        for _ in range(4):
            with pytest.raises(PollError) as failed:
                async with pool.session(TARGET, "127.0.0.1", port, CREDS):
                    pass
            codes.append(failed.value.code)
        assert codes == ["unreachable"] * 3 + ["circuit_open"]
    finally:
        await pool.close()


async def test_twenty_concurrent_callers_share_one_session(
    olt: tuple[OltSimulator, int], pool: OltSessions
) -> None:
    sim, port = olt

    async def caller(n: int) -> str:
        async with pool.session(TARGET, "127.0.0.1", port, CREDS) as session:
            return await session.run(f"display ont info 0 {n % 2} {n % 2}")

    outputs = await asyncio.gather(*(caller(n) for n in range(20)))
    assert all("In port" in output for output in outputs)
    assert sim.max_concurrent == 1
    assert len([login for login in sim.logins if login.accepted]) == 1
    assert pool.open_count(TARGET) == 1


async def test_an_idle_session_is_closed(olt: tuple[OltSimulator, int]) -> None:
    sim, port = olt
    pool = OltSessions(idle_close=0.2, connect_timeout=2)
    try:
        async with pool.session(TARGET, "127.0.0.1", port, CREDS) as session:
            await session.run("display sysuptime")
        assert pool.open_count(TARGET) == 1
        await eventually(lambda: pool.open_count(TARGET) == 0 and sim.open_sessions == 0)
        assert sim.commands[-1] == "quit"
    finally:
        await pool.close()


async def test_a_busy_session_is_still_replaced_after_its_max_age(
    olt: tuple[OltSimulator, int],
) -> None:
    sim, port = olt
    now = [0.0]
    pool = OltSessions(max_age=60, connect_timeout=2, clock=lambda: now[0])
    try:
        for step in range(4):  # used every 25 s: never idle, logged in again past 60 s
            now[0] = step * 25.0
            async with pool.session(TARGET, "127.0.0.1", port, CREDS) as session:
                await session.run("display sysuptime")
        assert [login.accepted for login in sim.logins] == [True, True]
        assert sim.max_concurrent == 1  # the old one logged out before the new login
    finally:
        await pool.close()


async def test_forget_and_close_log_out(olt: tuple[OltSimulator, int], pool: OltSessions) -> None:
    sim, port = olt
    async with pool.session(TARGET, "127.0.0.1", port, CREDS) as session:
        await session.run("display sysuptime")
    pool.forget(TARGET)
    async with pool.session(TARGET, "127.0.0.1", port, CREDS) as session:
        await session.run("display sysuptime")
    assert sim.max_concurrent == 1  # the new session waited for the old one to log out
    async with pool.session(TARGET + 1, "127.0.0.1", port, CREDS) as session:
        await session.run("display sysuptime")
    await pool.close()
    await eventually(lambda: sim.open_sessions == 0)


# --- the simulator's SNMP view ------------------------------------------------------------


async def test_the_xpon_mib_serves_the_same_onts_over_udp() -> None:
    sim = OltSimulator(onts=6, seed=5)
    sim.ont_list[1].online = False
    async with running(sim, snmp_port=0) as ports:
        assert ports.snmp
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bytes] = loop.create_future()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                answer.set_result(data)

        transport, _ = await loop.create_datagram_endpoint(
            Client, remote_addr=("127.0.0.1", ports.snmp)
        )
        try:
            first = sim.ont_list[0]
            index = (gpon_ifindex(0, first.slot, first.port), first.ont_id)
            oids = [(*XPON, 43, 1, 3, *index), (*XPON, 51, 1, 6, *index)]
            request = ber.Message(
                ber.V2C, b"public", ber.Pdu(ber.GET, 1, 0, 0, [(o, ber.NULL, None) for o in oids])
            )
            transport.sendto(ber.encode_message(request))
            async with asyncio.timeout(5):
                reply = ber.decode_message(await answer)
        finally:
            transport.close()
    sn, olt_rx = reply.pdu.varbinds
    assert sn[2] == bytes.fromhex(first.sn)
    assert olt_rx[2] == round(first.olt_rx * 100) + 10000
    offline = sim.ont_list[1]
    mib = SnmpSimulator(devices=1, mib=XponMib(sim))
    off_index = (gpon_ifindex(0, offline.slot, offline.port), offline.ont_id)
    assert mib.answer(
        1, ber.Pdu(ber.GET, 1, 0, 0, [((*XPON, 51, 1, 4, *off_index), ber.NULL, None)])
    ) == [((*XPON, 51, 1, 4, *off_index), ber.INTEGER, NO_VALUE)]
    assert gpon_ifindex(0, 1, 0) == 4194304000 + 8192
