"""The v2c transport and the walk against agents of our own making on 127.0.0.1: agents
that loop, never answer, answer garbage, answer out of order or from elsewhere. (The
codec these agents speak is tested on its own in test_snmp_ber.)"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from agents.driver import GroupPlan, PollError
from agents.snmp import ber
from agents.snmp.driver import SnmpDriver
from agents.snmp.session import SnmpProtocolError, SnmpTimeout, walk
from agents.snmp.v2c import UdpTransport, V2cSession
from schemas.frames import TargetSpec

Answer = Callable[[ber.Message], list[bytes]]
COMMUNITY = "fake-agent"


class FakeAgent(asyncio.DatagramProtocol):
    """Answers each request with whatever `answer` returns (zero or more datagrams)."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[ber.Message] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = ber.decode_message(data)
        self.requests.append(message)
        assert self.transport is not None
        for reply in self.answer(message):
            self.transport.sendto(reply, addr)


@asynccontextmanager
async def fake_agent(answer: Answer) -> AsyncIterator[tuple[FakeAgent, int]]:
    loop = asyncio.get_running_loop()
    transport, agent = await loop.create_datagram_endpoint(
        lambda: FakeAgent(answer), local_addr=("127.0.0.1", 0)
    )
    try:
        yield agent, transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


def response(request: ber.Message, varbinds: list[ber.VarBind], status: int = 0) -> bytes:
    pdu = ber.Pdu(ber.RESPONSE, request.pdu.request_id, status, 0, varbinds)
    return ber.encode_message(ber.Message(request.version, request.community, pdu))


def table_agent(rows: list[ber.VarBind]) -> Answer:
    """A well-behaved agent serving `rows` (sorted): GET, GETNEXT semantics of GETBULK."""
    oids = [oid for oid, _, _ in rows]

    def answer(request: ber.Message) -> list[bytes]:
        out: list[ber.VarBind] = []
        if request.pdu.type == ber.GET:
            values = dict(((oid, (tag, v)) for oid, tag, v in rows))
            for oid, _, _ in request.pdu.varbinds:
                tag, v = values.get(oid, (ber.NO_SUCH_OBJECT, None))
                out.append((oid, tag, v))
            return [response(request, out)]
        cursors = [oid for oid, _, _ in request.pdu.varbinds]
        for _ in range(request.pdu.error_index):
            for i, cursor in enumerate(cursors):
                at = bisect.bisect_right(oids, cursor)
                if at == len(oids):
                    out.append((cursor, ber.END_OF_MIB_VIEW, None))
                else:
                    out.append(rows[at])
                    cursors[i] = rows[at][0]
        return [response(request, out)]

    return answer


COLUMN = (1, 3, 6, 1, 2, 1, 2, 2, 1, 10)
ROWS = [((*COLUMN, i), ber.COUNTER32, i * 1000) for i in range(1, 201)]


async def test_a_walk_returns_every_row_of_a_column_in_order() -> None:
    transport = UdpTransport()
    async with fake_agent(
        table_agent([*ROWS, ((1, 3, 6, 1, 2, 1, 2, 2, 1, 11, 1), ber.COUNTER32, 1)])
    ) as (agent, port):
        session = V2cSession(transport, ("127.0.0.1", port), COMMUNITY, timeout=1, retries=0)
        result = await walk(session, [COLUMN], max_repetitions=7)
    transport.close()
    assert result.columns[COLUMN] == ROWS
    assert result.problems == []
    assert {m.pdu.error_index for m in agent.requests} == {7}  # max-repetitions as asked


async def test_columns_are_walked_side_by_side_and_each_ends_on_its_own() -> None:
    short = (1, 3, 6, 1, 2, 1, 2, 2, 1, 2)
    rows = [((*short, i), ber.OCTET_STRING, b"port%d" % i) for i in (1, 2, 3)] + ROWS
    transport = UdpTransport()
    async with fake_agent(table_agent(rows)) as (agent, port):
        session = V2cSession(transport, ("127.0.0.1", port), COMMUNITY, timeout=1, retries=0)
        result = await walk(session, [short, COLUMN], max_repetitions=10)
    transport.close()
    assert result.columns == {short: rows[:3], COLUMN: ROWS}
    assert result.problems == []
    # Both columns in the first request; the short one left after its end showed.
    assert [len(m.pdu.varbinds) for m in agent.requests][:2] == [2, 1]


async def test_a_walk_stops_at_its_varbind_budget() -> None:
    transport = UdpTransport()
    async with fake_agent(table_agent(ROWS)) as (_, port):
        session = V2cSession(transport, ("127.0.0.1", port), COMMUNITY, timeout=1, retries=0)
        result = await walk(session, [COLUMN], max_repetitions=10, max_varbinds=35)
    transport.close()
    assert result.columns[COLUMN] == ROWS[:40]
    assert [p.reason for p in result.problems] == ["walk stopped after 40 varbinds"]


async def test_an_agent_that_loops_back_stops_the_walk_with_a_problem_not_forever() -> None:
    def looping(request: ber.Message) -> list[bytes]:
        # Real agents do this: after row 5 the table starts over at row 1.
        (cursor, _, _), *_ = request.pdu.varbinds
        nxt = 1 if cursor == (*COLUMN, 5) else (cursor[-1] + 1 if len(cursor) > len(COLUMN) else 1)
        return [response(request, [((*COLUMN, nxt), ber.COUNTER32, nxt)])]

    transport = UdpTransport()
    async with fake_agent(looping) as (agent, port):
        session = V2cSession(transport, ("127.0.0.1", port), COMMUNITY, timeout=1, retries=0)
        result = await walk(session, [COLUMN], max_repetitions=25)
    transport.close()
    assert [oid[-1] for oid, _, _ in result.columns[COLUMN]] == [1, 2, 3, 4, 5]
    assert len(result.problems) == 1
    assert result.problems[0].oid == (*COLUMN, 1)
    assert "not increasing" in result.problems[0].reason
    assert len(agent.requests) == 6


async def test_the_driver_reports_a_looping_table_as_a_walk_stopped_event() -> None:
    def repeating(request: ber.Message) -> list[bytes]:
        if request.pdu.type == ber.GET:
            return [response(request, [((1, 3, 6, 1, 2, 1, 1, 3, 0), ber.TIMETICKS, 100)])]
        # The same row for ever, whatever is asked.
        return [response(request, [((*COLUMN, 3), ber.COUNTER32, 3)] * request.pdu.error_index)]

    driver = SnmpDriver()
    async with fake_agent(repeating) as (_, port):
        target = TargetSpec(1, "snmp", "127.0.0.1", port, {"community": COMMUNITY}, {}, {}, 1)
        group = GroupPlan("ports", 300, {"walk": [ber.dotted(COLUMN)], "metric": "x", "timeout": 1})
        result = await driver.poll(target, group, 1000)
    await driver.close()
    assert [(s.labels["index"], s.value) for s in result.samples] == [("3", 3.0)]
    assert [e.kind for e in result.events] == ["walk_stopped"]
    assert result.events[0].detail["oid"] == ber.dotted((*COLUMN, 3))


async def test_a_target_that_never_answers_times_out_after_its_retries() -> None:
    transport = UdpTransport()
    async with fake_agent(lambda request: []) as (agent, port):
        session = V2cSession(transport, ("127.0.0.1", port), COMMUNITY, timeout=0.2, retries=2)
        started = time.monotonic()
        with pytest.raises(SnmpTimeout, match=f"no answer from 127.0.0.1:{port}") as info:
            await session.get([(1, 3, 6, 1, 2, 1, 1, 3, 0)])
        took = time.monotonic() - started
    transport.close()
    assert info.value.code == "timeout"
    assert len(agent.requests) == 3  # the first try and two retries, same request-id
    assert len({m.pdu.request_id for m in agent.requests}) == 1
    assert 0.6 <= took < 2.0  # three tries of 0.2 s, within the deadline they make


async def test_a_late_answer_to_the_first_try_still_counts() -> None:
    seen: list[ber.Message] = []

    def answers_the_first_try_late(request: ber.Message) -> list[bytes]:
        seen.append(request)
        if len(seen) == 1:
            return []
        # Answer the retry with the first try's request-id (they are the same).
        return [response(seen[0], [(COLUMN, ber.INTEGER, 1)])]

    transport = UdpTransport()
    async with fake_agent(answers_the_first_try_late) as (_, port):
        session = V2cSession(transport, ("127.0.0.1", port), COMMUNITY, timeout=0.2, retries=1)
        assert await session.get([COLUMN]) == [(COLUMN, ber.INTEGER, 1)]
    transport.close()


async def test_garbage_and_strangers_are_dropped_and_the_real_answer_wins() -> None:
    def noisy(request: ber.Message) -> list[bytes]:
        good = response(request, [(COLUMN, ber.INTEGER, 42)])
        wrong_id = ber.encode_message(
            ber.Message(
                1, request.community, ber.Pdu(ber.RESPONSE, request.pdu.request_id + 1, 0, 0, [])
            )
        )
        wrong_community = response(
            ber.Message(1, b"someone-else", request.pdu), [(COLUMN, ber.INTEGER, 666)]
        )
        return [b"\x00\x01garbage", b"", wrong_id, wrong_community, good[:10], good]

    transport = UdpTransport()
    async with fake_agent(noisy) as (_, port):
        session = V2cSession(transport, ("127.0.0.1", port), COMMUNITY, timeout=1, retries=0)
        assert await session.get([COLUMN]) == [(COLUMN, ber.INTEGER, 42)]
    assert transport.dropped >= 4
    transport.close()


async def test_a_malformed_answer_to_our_request_fails_it_with_a_clear_error() -> None:
    broken = [True]

    def sometimes_broken(request: ber.Message) -> list[bytes]:
        good = response(request, [(COLUMN, ber.COUNTER32, 7)])
        return [
            good.replace(bytes.fromhex("410107"), bytes.fromhex("5f0107")) if broken[0] else good
        ]

    transport = UdpTransport()
    async with fake_agent(sometimes_broken) as (_, port):
        session = V2cSession(transport, ("127.0.0.1", port), COMMUNITY, timeout=1, retries=0)
        with pytest.raises(
            SnmpProtocolError, match=r"malformed response .* unknown value tag 0x5f"
        ):
            await session.get([COLUMN])
        broken[0] = False  # the same socket keeps serving
        assert await session.get([COLUMN]) == [(COLUMN, ber.COUNTER32, 7)]
    transport.close()


async def test_concurrent_requests_through_one_socket_each_get_their_own_answer() -> None:
    held: list[tuple[ber.Message, list[ber.VarBind]]] = []

    def reversed_order(request: ber.Message) -> list[bytes]:
        oid = request.pdu.varbinds[0][0]
        held.append((request, [(oid, ber.INTEGER, oid[-1])]))
        if len(held) < 50:
            return []
        # Everything at once, last first.
        return [response(r, vbs) for r, vbs in reversed(held)]

    transport = UdpTransport()
    async with fake_agent(reversed_order) as (_, port):
        session = V2cSession(transport, ("127.0.0.1", port), COMMUNITY, timeout=2, retries=0)
        results = await asyncio.gather(*(session.get([(*COLUMN, i)]) for i in range(50)))
    transport.close()
    assert [r[0][2] for r in results] == list(range(50))


async def test_too_big_makes_the_walk_ask_for_fewer_rows() -> None:
    table = table_agent(ROWS)

    def small_datagrams(request: ber.Message) -> list[bytes]:
        if request.pdu.type == ber.GET_BULK and request.pdu.error_index > 10:
            return [response(request, [], status=1)]  # tooBig
        return table(request)

    transport = UdpTransport()
    async with fake_agent(small_datagrams) as (agent, port):
        session = V2cSession(transport, ("127.0.0.1", port), COMMUNITY, timeout=1, retries=0)
        result = await walk(session, [COLUMN], max_repetitions=40)
    transport.close()
    assert result.columns[COLUMN] == ROWS
    assert [m.pdu.error_index for m in agent.requests[:3]] == [40, 20, 10]


async def test_a_cancelled_request_leaves_nothing_pending() -> None:
    transport = UdpTransport()
    async with fake_agent(lambda request: []) as (_, port):
        session = V2cSession(transport, ("127.0.0.1", port), COMMUNITY, timeout=5, retries=3)
        task = asyncio.create_task(session.get([COLUMN]))
        await asyncio.sleep(0)
        while not transport._pending:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert transport._pending == {}
    transport.close()


async def test_an_agent_error_status_is_a_poll_error_naming_the_varbind() -> None:
    transport = UdpTransport()

    def no_access(request: ber.Message) -> list[bytes]:
        pdu = ber.Pdu(ber.RESPONSE, request.pdu.request_id, 6, 1, request.pdu.varbinds)
        return [ber.encode_message(ber.Message(1, request.community, pdu))]

    async with fake_agent(no_access) as (_, port):
        session = V2cSession(transport, ("127.0.0.1", port), COMMUNITY, timeout=1, retries=0)
        with pytest.raises(PollError, match=r"noAccess at 1\.3\.6\.1\.2\.1\.2\.2\.1\.10") as info:
            await session.get([COLUMN])
    transport.close()
    assert info.value.code == "agent_error"
