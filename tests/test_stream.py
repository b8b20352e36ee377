"""The controller's side of the agent stream, driven frame by frame over a real WebSocket."""

from __future__ import annotations

import logging
import time

import aiohttp
import pytest

from controller.auth import create_token
from schemas import frames as f
from tests import fleet_stack
from tests.fleet_stack import Fleet, RawAgent, eventually

fleet = fleet_stack.fleet

TARGET = {
    "name": "olt-1",
    "kind": "snmp",
    "address": "127.0.0.1",
    "port": 16100,
    "credentials": {"version": "2c", "community": "c0mmunity"},
    "labels": {"zone": "pop1"},
    "profile": {"system": {"interval": 60}},
}


async def _status_of_stream(fleet: Fleet, token: str) -> int:
    async with aiohttp.ClientSession() as http:
        try:
            ws = await http.ws_connect(
                fleet.url + "/api/v1/agents/stream", headers={"Authorization": f"Bearer {token}"}
            )
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        await ws.close()
        return 101


async def test_a_wrong_token_is_refused_and_logged(
    fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chronos.auth")
    assert await _status_of_stream(fleet, "chr_not-a-real-token") == 401
    refused = [r for r in caplog.records if r.getMessage() == "request refused: no valid token"]
    assert refused and refused[0].path == "/api/v1/agents/stream"
    assert "chr_not-a-real-token" not in caplog.text
    assert await fleet.pool.fetchval("SELECT count(*) FROM agents") == 0


async def test_agent_tokens_open_the_stream_and_nothing_else(fleet: Fleet) -> None:
    assert await _status_of_stream(fleet, fleet.admin_token) == 403
    assert await _status_of_stream(fleet, fleet.agent_token) == 101
    async with aiohttp.ClientSession() as http:
        for path in ("/devices/", "/api/v1/targets"):
            r = await http.get(
                fleet.url + path, headers={"Authorization": f"Bearer {fleet.agent_token}"}
            )
            assert r.status == 403


async def test_hello_claims_a_lease_and_the_agent_gets_its_zones_targets(fleet: Fleet) -> None:
    created = await fleet.api("POST", "/api/v1/targets", data=TARGET)
    other_zone = await fleet.api(
        "POST", "/api/v1/targets", data={**TARGET, "name": "far", "labels": {"zone": "pop2"}}
    )
    agent = RawAgent(fleet.url, fleet.agent_token, labels={"zone": "pop1"})
    try:
        welcome = await agent.connect()
        assert isinstance(welcome, f.Welcome)
        assert (welcome.heartbeat_ms, welcome.lease_ms, welcome.acked) == (200, 1200, 0)
        row = await fleet.pool.fetchrow("SELECT * FROM agents WHERE id = 'raw-1'")
        assert row["controller"] == welcome.controller and row["labels"] == {"zone": "pop1"}
        first = await agent.expect(f.Assign)
        assert first.full  # the first assign on a connection is the whole list
        targets = list(first.targets)
        while not targets:
            targets = list((await agent.expect(f.Assign)).targets)
        (spec,) = targets
        assert spec.id == created.body["id"] and spec.epoch > 0
        assert spec.credentials == {"version": "2c", "community": "c0mmunity"}
        assert spec.profile == {"system": {"interval": 60.0, "enabled": True, "options": {}}}
        shown = await fleet.api("GET", f"/api/v1/targets/{other_zone.body['id']}")
        assert shown.body["assignment"] is None  # no agent in pop2
        await agent.send(f.Heartbeat(1))
        assert await agent.expect(f.Heartbeat) == f.Heartbeat(1)
        listed = await fleet.api("GET", "/api/v1/agents?zone=pop1")
        assert listed.headers["total"] == "1"
        (shown,) = listed.body
        assert shown["id"] == "raw-1" and shown["alive"] and shown["targets"] == 1
        assert shown["controller"] == welcome.controller and shown["kinds"] == ["snmp"]
        assert (await fleet.api("GET", "/api/v1/agents/raw-1")).body == shown
        missing = await fleet.api("GET", "/api/v1/agents/nobody")
        assert missing.status == 404 and missing.body["error"]["code"] == "AGENT_NOT_FOUND"
    finally:
        await agent.close()


async def test_a_garbage_frame_gets_an_error_and_the_controller_keeps_serving(
    fleet: Fleet,
) -> None:
    agent = RawAgent(fleet.url, fleet.agent_token)
    try:
        await agent.connect()
        await agent.send(b"\xc1 not msgpack")
        error = await agent.expect(f.Error)
        assert error.code == "BAD_FRAME"
        assert await agent.receive() is None  # and the stream is closed
    finally:
        await agent.close()
    again = RawAgent(fleet.url, fleet.agent_token, boot=agent.hello.boot)  # it reconnects
    try:
        assert isinstance(await again.connect(), f.Welcome)
    finally:
        await again.close()


@pytest.mark.parametrize(
    ("first", "code"),
    [
        (f.Heartbeat(1), "BAD_FRAME"),
        (f.Hello("a", "b", 99, {}, 1, ("snmp",), "x"), "VERSION"),
    ],
)
async def test_a_stream_must_open_with_a_hello_of_this_version(
    fleet: Fleet, first: f.Frame, code: str
) -> None:
    agent = RawAgent(fleet.url, fleet.agent_token)
    try:
        await agent.connect(say_hello=False)
        await agent.send(first)
        error = await agent.expect(f.Error)
        assert error.code == code
    finally:
        await agent.close()


async def test_a_second_process_of_a_live_agent_is_refused_until_its_lease_ends(
    fleet: Fleet,
) -> None:
    first = RawAgent(fleet.url, fleet.agent_token, agent="dup")
    second = RawAgent(fleet.url, fleet.agent_token, agent="dup")
    try:
        assert isinstance(await first.connect(), f.Welcome)
        refused = await second.connect()
        assert isinstance(refused, f.Error) and refused.code == "AGENT_ID_IN_USE"
        await first.close()  # no bye: the lease must run out first (1.2 s here)
        second = RawAgent(fleet.url, fleet.agent_token, agent="dup")

        async def welcomed() -> bool:
            frame = await second.connect()
            if isinstance(frame, f.Welcome):
                return True
            await second.ws.close()
            return False

        await eventually(welcomed, within=5)
    finally:
        await second.close()


async def test_reports_are_acknowledged_after_commit_and_stored_once(fleet: Fleet) -> None:
    created = await fleet.api("POST", "/api/v1/targets", data=TARGET)
    target = created.body["id"]
    agent = RawAgent(fleet.url, fleet.agent_token)
    start = (int(time.time()) - 3600) * 1000
    rows = tuple(
        f.Sample(target, "sys_uptime_s", {}, start + i * 60_000, float(i)) for i in range(10)
    )
    try:
        await agent.connect()
        await agent.send(f.Report(1, rows))
        assert await agent.expect(f.Ack) == f.Ack(1)
        await agent.send(f.Report(1, rows))  # a resend after a lost ack
        assert await agent.expect(f.Ack) == f.Ack(1)
        await agent.send(f.Report(2, rows[:3]))  # samples already stored, in a new report
        assert await agent.expect(f.Ack) == f.Ack(2)
    finally:
        await agent.close()
    assert await fleet.pool.fetchval("SELECT count(*) FROM samples") == 10
    again = RawAgent(fleet.url, fleet.agent_token, boot=agent.hello.boot)
    try:
        welcome = await again.connect()
        assert isinstance(welcome, f.Welcome) and welcome.acked == 2
    finally:
        await again.close()


async def test_revoked_targets_are_released_and_a_bye_ends_the_lease(fleet: Fleet) -> None:
    created = await fleet.api("POST", "/api/v1/targets", data=TARGET)
    target = created.body["id"]
    a = RawAgent(fleet.url, fleet.agent_token, agent="a")
    try:
        await a.connect()
        spec = None
        while spec is None:
            assign = await a.expect(f.Assign)
            spec = next(iter(assign.targets), None)
        # Disabling the target makes the leader revoke it from its owner.
        await fleet.api("PUT", f"/api/v1/targets/{target}", data={**TARGET, "enabled": False})
        revoke = await a.expect(f.Revoke)
        assert revoke.targets == ((target, spec.epoch),)
        await a.send(f.Revoked(revoke.targets))

        async def released() -> bool:
            return await fleet.pool.fetchval("SELECT count(*) FROM assignments") == 0

        await eventually(released)
        await a.send(f.Bye())
        assert await a.receive() is None
        lease = await fleet.pool.fetchval(
            "SELECT lease_expires <= now() FROM agents WHERE id = 'a'"
        )
        assert lease is True
    finally:
        await a.close()


async def test_a_viewer_role_cannot_create_agent_tokens_by_the_api(fleet: Fleet) -> None:
    token = await create_token(fleet.pool, "an agent", "agent")
    assert token.startswith("chr_")
    role = await fleet.pool.fetchval("SELECT role FROM api_tokens WHERE name = 'an agent'")
    assert role == "agent"
