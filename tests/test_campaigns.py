"""Campaigns: the rules as pure functions, the API's validation, and whole campaigns run
end to end: real PostgreSQL, the ACS, the API with its engine, and simulated CPEs
downloading firmware from a local file server over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from acs import fileserver, server
from acs.files import LINK_PURPOSE, UPLOAD_SEAL_PURPOSE, ChunkCipher, FileUrls
from controller import app as api_app
from controller import campaign_cli, campaigns, cli
from controller import campaign_rules as rules
from controller.auth import create_token
from schemas.campaigns import CampaignSpec, Wave
from schemas.config import AcsConfig, Config, ConnectionRequestConfig
from schemas.sealing import Sealer
from tests.conftest import SECRET_KEY, serving
from tests.test_nbi import Api, insert_device
from tools.sim.cpe import CpeFleet, SimulatedCpe

IGD = "InternetGatewayDevice"
VERSION = f"{IGD}.DeviceInfo.SoftwareVersion"
FAST = campaigns.EngineSettings(interval=0.3, settle=0.05, lock_retry=0.2)
NOW = datetime(2025, 1, 1, tzinfo=UTC)
IMAGE = b"\x7fFIRMWARE" * 512


# --- end-to-end scaffolding ------------------------------------------------------------------


@dataclass
class Env:
    pool: asyncpg.Pool
    dsn: str
    config: Config
    sealer: Sealer
    token: str
    acs_url: str
    files_url: str


@pytest.fixture
async def env(pool: asyncpg.Pool, db_dsn: str) -> AsyncIterator[Env]:
    """PostgreSQL, the ACS with its file server (stored files), and a plain web server
    for firmware by URL; the API is started by each test."""
    config = Config(
        acs=AcsConfig(session_timeout=5),
        connection_request=ConnectionRequestConfig(timeout=2),
    )
    sealer = Sealer(SECRET_KEY)
    token = await create_token(pool, "noc-admin", "admin")
    web_server = web.Application()

    async def firmware(_request: web.Request) -> web.Response:
        return web.Response(body=IMAGE)

    web_server.router.add_get("/fw/{name}", firmware)
    key = sealer.subkey(LINK_PURPOSE)
    cipher = ChunkCipher(sealer.subkey(UPLOAD_SEAL_PURPOSE))
    stored_files = fileserver.create_app(pool, config, FileUrls(key, "http://unused"), cipher)
    async with serving(stored_files) as stored_url, serving(web_server) as files_url:
        acs = server.create_app(pool, config.acs, sealer, file_urls=FileUrls(key, stored_url))
        async with serving(acs) as acs_url:
            yield Env(pool, db_dsn, config, sealer, token, acs_url + "/", files_url)


@contextlib.asynccontextmanager
async def api(env: Env) -> AsyncIterator[tuple[Api, web.Application]]:
    """The operator API with its campaign engine, as `chronos controller` runs it."""
    app = api_app.create_app(env.pool, env.dsn, env.config, env.sealer)
    app[campaigns.ENGINE].settings = FAST
    async with serving(app) as url:
        client = Api(url, env.token)
        try:
            yield client, app
        finally:
            await client.close()


@contextlib.asynccontextmanager
async def fleet(env: Env, count: int, **options: Any) -> AsyncIterator[CpeFleet]:
    """`count` booted CPEs whose connection request credentials the ACS knows (as a
    provisioning preset would have set them)."""
    cpes = CpeFleet(env.acs_url, count, model="tr098", spread=0.5, reboot_delay=0.05, **options)
    async with cpes:
        async with asyncio.timeout(30):
            await cpes.wait_for(lambda s: s.sessions_ok >= count)
        await known_credentials(env.pool, cpes.cpes)
        yield cpes


async def known_credentials(pool: asyncpg.Pool, cpes: list[SimulatedCpe]) -> None:
    rows = []
    for cpe in cpes:
        username, password = cpe.connection_request_credentials
        rows.append((cpe.device_id, f"{IGD}.ManagementServer.ConnectionRequestUsername", username))
        rows.append((cpe.device_id, f"{IGD}.ManagementServer.ConnectionRequestPassword", password))
    await pool.executemany(
        "INSERT INTO device_params (device_id, path, object, value, value_type, value_ts)"
        " VALUES ($1, $2, false, $3, 'xsd:string', now())"
        " ON CONFLICT (device_id, path) DO UPDATE SET value = EXCLUDED.value",
        rows,
    )


def firmware_spec(env: Env, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "firmware 2.0",
        "query": {VERSION: {"$ne": "2.0"}},
        "actions": [{"name": "download", "url": f"{env.files_url}/fw/2.0.bin"}],
        "maxConcurrent": 20,
        "connectionRequest": True,
        "successCriterion": {VERSION: "2.0"},
        "successGraceSeconds": 10,
        "deviceTimeoutSeconds": 30,
        "maxFailureRatio": 0.05,
        "minFinished": 10,
    }
    return spec | overrides


async def campaign(client: Api, campaign_id: int) -> dict[str, Any]:
    reply = await client("GET", f"/api/v1/campaigns/{campaign_id}?limit=1000")
    assert reply.status == 200, reply.body
    return reply.body


async def wait_campaign(
    client: Api, campaign_id: int, predicate: Callable[[dict[str, Any]], bool], seconds: float = 30
) -> dict[str, Any]:
    async with asyncio.timeout(seconds):
        while True:
            doc = await campaign(client, campaign_id)
            if predicate(doc):
                return doc
            await asyncio.sleep(0.1)


def settled(doc: dict[str, Any]) -> bool:
    return doc["finished"] is not None


async def create(client: Api, spec: dict[str, Any]) -> int:
    reply = await client("POST", "/api/v1/campaigns", data=spec)
    assert reply.status == 201, reply.body
    return reply.body["id"]


async def tasks_by_device(pool: asyncpg.Pool) -> dict[str, list[asyncpg.Record]]:
    out: dict[str, list[asyncpg.Record]] = {}
    for row in await pool.fetch("SELECT * FROM tasks ORDER BY id"):
        out.setdefault(row["device_id"], []).append(row)
    return out


def downloads_received(cpe: SimulatedCpe) -> int:
    return sum(record.rpcs.get("Download", 0) for record in cpe.history)


# --- end to end ------------------------------------------------------------------------------


async def test_a_campaign_over_200_cpes_with_10_percent_failing_halts_and_leaves_the_rest_untouched(
    env: Env,
) -> None:
    async with fleet(env, 200, fail_ratio=0.1, seed=100) as cpes, api(env) as (client, _app):
        failing = {cpe.device_id for cpe in cpes.failing}
        assert len(failing) == 20
        campaign_id = await create(client, firmware_spec(env, waves=[{"percent": 25}]))
        doc = await wait_campaign(
            client, campaign_id, lambda d: d["state"] == "halted" and settled(d)
        )
        devices = doc["devices"]
        assert devices["total"] == 200
        assert doc["waves"][0]["size"] == 50 and len(doc["waves"]) == 4
        assert "failure ratio" in doc["stateReason"]
        finished = devices["succeeded"] + devices["failed"]
        assert finished >= 10 and devices["failed"] / finished > 0.05
        assert doc["failureRatio"] == pytest.approx(devices["failed"] / finished, abs=1e-4)
        assert devices["waiting"] > 0 and devices["queued"] == devices["running"] == 0
        by_state: dict[str, set[str]] = {}
        for item in doc["outcomes"]["items"]:
            by_state.setdefault(item["state"], set()).add(item["device"])
        # Only devices set to fail failed, each with the fault its TransferComplete carried.
        assert by_state["failed"] <= failing
        for item in doc["outcomes"]["items"]:
            if item["state"] == "failed":
                assert item["detail"]["reason"] == "task_fault"
                assert item["detail"]["fault"]["code"] == "cwmp.9010"
        untouched = by_state["waiting"] | by_state.get("skipped", set())
        tasks = await tasks_by_device(env.pool)
        assert not untouched & set(tasks)  # no task was ever left for them
        for cpe in cpes.cpes:
            version = cpe.datamodel[VERSION]
            if cpe.device_id in untouched:
                assert downloads_received(cpe) == 0 and version != "2.0"
            if cpe.device_id in by_state["succeeded"]:
                assert version == "2.0"
        stored = await env.pool.fetch(
            "SELECT device_id, value FROM device_params WHERE path = $1", VERSION
        )
        for row in stored:
            if row["device_id"] in by_state["succeeded"]:
                assert row["value"] == "2.0"
            elif row["device_id"] in untouched:
                assert row["value"] != "2.0"
        # Halted stays halted: further rounds start nothing.
        engine = _app[campaigns.ENGINE]
        rounds = engine.rounds
        async with asyncio.timeout(10):
            while engine.rounds < rounds + 3:
                await asyncio.sleep(0.05)
        again = await campaign(client, campaign_id)
        assert again["devices"] == devices
        assert await env.pool.fetchval("SELECT count(*) FROM tasks") == sum(
            len(v) for v in (await tasks_by_device(env.pool)).values()
        )
        assert set(await tasks_by_device(env.pool)) == set(tasks)
        history = [event["event"] for event in again["history"]]
        assert history[:2] == ["created", "started"] and "halted" in history


async def test_a_halt_withdraws_devices_not_yet_begun_and_resume_gives_them_their_turn(
    env: Env,
) -> None:
    phantoms = [f"000000-Phantom-{i:04d}" for i in range(10)]
    for device in phantoms:  # known to the ACS, but never answering
        await insert_device(env.pool, device, datetime.now(UTC))
    async with (
        fleet(env, 10, fail_ratio=1.0, download_failure="refuse", seed=300) as cpes,
        api(env) as (client, _app),
    ):
        spec = firmware_spec(env, maxConcurrent=20, minFinished=5, maxFailureRatio=0.5)
        campaign_id = await create(client, spec)
        doc = await wait_campaign(
            client, campaign_id, lambda d: d["state"] == "halted" and settled(d)
        )
        outcomes = {o["device"]: o for o in doc["outcomes"]["items"]}
        assert doc["devices"]["total"] == 20
        for device in phantoms:  # queued, never contacted: withdrawn, not failed
            assert outcomes[device]["state"] == "skipped"
            assert outcomes[device]["detail"]["reason"] == "withdrawn_on_halt"
        skipped = {d for d, o in outcomes.items() if o["state"] == "skipped"}
        assert not skipped & set(await tasks_by_device(env.pool))
        for cpe in cpes.cpes:
            outcome = outcomes[cpe.device_id]
            if outcome["state"] == "failed":  # refused: the Download RPC's own fault
                assert outcome["detail"]["fault"]["code"] == "cwmp.9010"
            else:
                assert outcome["state"] == "skipped" and downloads_received(cpe) == 0
        # An operator looks, raises the threshold and resumes: the withdrawn get their turn.
        resumed = await client(
            "POST",
            f"/api/v1/campaigns/{campaign_id}/resume",
            data={"maxFailureRatio": 1.0, "minFinished": 5},
        )
        assert resumed.status == 200 and resumed.body["state"] == "running"
        assert resumed.body["devices"]["skipped"] == 0
        assert resumed.body["definition"]["maxFailureRatio"] == 1.0
        # Phantoms time out (30 s is long: shorten it the way an operator cannot, in SQL).
        await env.pool.execute(
            "UPDATE campaigns SET definition = definition || '{\"deviceTimeoutSeconds\": 1}'"
        )
        doc = await wait_campaign(client, campaign_id, lambda d: d["state"] == "completed")
        assert doc["devices"]["failed"] == 20 and doc["finished"] is not None
        reasons = {o["device"]: o["detail"]["reason"] for o in doc["outcomes"]["items"]}
        assert {reasons[d] for d in phantoms} == {"timeout"}
        assert not set(phantoms) & set(await tasks_by_device(env.pool))  # timed out: withdrawn
        events = [e["event"] for e in doc["history"]]
        assert events.index("halted") < events.index("resumed") < events.index("completed")
        refused = await client("POST", f"/api/v1/campaigns/{campaign_id}/cancel")
        assert refused.status == 409
        assert refused.body["error"]["code"] == "CAMPAIGN_STATE_CONFLICT"
        assert refused.body["error"]["details"]["state"] == "completed"


async def test_pause_between_waves_waits_for_an_operator(env: Env) -> None:
    async with fleet(env, 20, seed=400) as cpes, api(env) as (client, _app):
        spec = firmware_spec(env, waves=[{"size": 10}], pauseBetweenWaves=True, maxConcurrent=5)
        campaign_id = await create(client, spec)
        doc = await wait_campaign(client, campaign_id, lambda d: d["state"] == "paused")
        assert doc["stateReason"].startswith("wave 1 of 2 finished")
        assert doc["waves"][0]["succeeded"] == 10 and doc["waves"][1]["waiting"] == 10
        assert doc["currentWave"] == 2
        second = {o["device"] for o in doc["outcomes"]["items"] if o["wave"] == 2}
        assert not second & set(await tasks_by_device(env.pool))
        assert all(downloads_received(c) == 0 for c in cpes.cpes if c.device_id in second)
        resumed = await client("POST", f"/api/v1/campaigns/{campaign_id}/resume")
        assert resumed.status == 200 and resumed.body["stateReason"] == ""
        doc = await wait_campaign(client, campaign_id, lambda d: d["state"] == "completed")
        assert doc["devices"]["succeeded"] == 20
        assert all(c.datamodel[VERSION] == "2.0" for c in cpes.cpes)


async def test_an_operator_pause_starts_nothing_new_and_resume_carries_on(env: Env) -> None:
    async with fleet(env, 30, seed=500) as cpes, api(env) as (client, app):
        campaign_id = await create(client, firmware_spec(env, maxConcurrent=3))
        await wait_campaign(client, campaign_id, lambda d: d["devices"]["succeeded"] >= 3)
        paused = await client("POST", f"/api/v1/campaigns/{campaign_id}/pause")
        assert paused.status == 200 and paused.body["state"] == "paused"
        assert paused.body["stateReason"] == "paused by noc-admin"
        again = await client("POST", f"/api/v1/campaigns/{campaign_id}/pause")
        assert again.status == 409
        # Devices already started finish; nothing new starts while paused.
        doc = await wait_campaign(
            client, campaign_id, lambda d: d["devices"]["queued"] + d["devices"]["running"] == 0
        )
        engine = app[campaigns.ENGINE]
        rounds = engine.rounds
        async with asyncio.timeout(10):
            while engine.rounds < rounds + 3:
                await asyncio.sleep(0.05)
        still = await campaign(client, campaign_id)
        assert still["state"] == "paused" and still["devices"] == doc["devices"]
        assert doc["devices"]["waiting"] > 0
        await client("POST", f"/api/v1/campaigns/{campaign_id}/resume")
        doc = await wait_campaign(client, campaign_id, lambda d: d["state"] == "completed")
        assert doc["devices"]["succeeded"] == 30
        events = [e["event"] for e in doc["history"]]
        assert events.index("paused") < events.index("resumed") < events.index("completed")
        assert all(downloads_received(c) == 1 for c in cpes.cpes)


async def test_cancel_withdraws_what_has_not_begun(env: Env) -> None:
    phantoms = [f"000000-Phantom-{i:04d}" for i in range(5)]
    for device in phantoms:
        await insert_device(env.pool, device, datetime.now(UTC))
    async with fleet(env, 25, seed=600) as cpes, api(env) as (client, _app):
        campaign_id = await create(client, firmware_spec(env, maxConcurrent=8))
        await wait_campaign(client, campaign_id, lambda d: d["devices"]["succeeded"] >= 5)
        cancelled = await client("POST", f"/api/v1/campaigns/{campaign_id}/cancel")
        assert cancelled.status == 200 and cancelled.body["state"] == "cancelled"
        assert cancelled.body["devices"]["waiting"] == 0
        doc = await wait_campaign(client, campaign_id, settled)
        devices = doc["devices"]
        assert devices["queued"] == devices["running"] == devices["waiting"] == 0
        assert devices["succeeded"] + devices["failed"] + devices["skipped"] == 30
        assert devices["skipped"] > 0 and devices["failed"] == 0
        skipped = {o["device"] for o in doc["outcomes"]["items"] if o["state"] == "skipped"}
        assert not skipped & set(await tasks_by_device(env.pool))
        for cpe in cpes.cpes:
            if cpe.device_id in skipped:
                assert downloads_received(cpe) == 0 and cpe.datamodel[VERSION] != "2.0"
        assert (await client("POST", f"/api/v1/campaigns/{campaign_id}/resume")).status == 409


async def test_a_campaign_survives_a_controller_restart(env: Env) -> None:
    async with fleet(env, 60, seed=700) as cpes:
        async with api(env) as (client, _app):
            campaign_id = await create(client, firmware_spec(env, maxConcurrent=10))
            await wait_campaign(client, campaign_id, lambda d: d["devices"]["succeeded"] >= 5)
        # The controller is gone mid-campaign, devices in flight; a new one takes over.
        row = await env.pool.fetchrow("SELECT * FROM campaigns WHERE id = $1", campaign_id)
        assert row["state"] == "running" and row["waiting"] > 0
        async with api(env) as (client, _app):
            doc = await wait_campaign(client, campaign_id, lambda d: d["state"] == "completed")
        assert doc["devices"]["succeeded"] == 60
        tasks = await tasks_by_device(env.pool)
        assert all(len(tasks[c.device_id]) == 1 for c in cpes.cpes)  # nothing queued twice
        assert all(downloads_received(c) == 1 for c in cpes.cpes)
        assert all(c.datamodel[VERSION] == "2.0" for c in cpes.cpes)


async def test_one_controller_drives_campaigns_and_another_takes_over(env: Env) -> None:
    await insert_device(env.pool, "000000-Phantom-0001", datetime.now(UTC))
    async with contextlib.AsyncExitStack() as second_stack:
        first_stack = contextlib.AsyncExitStack()
        _first, first_app = await first_stack.enter_async_context(api(env))
        leader = first_app[campaigns.ENGINE]
        await until(lambda: leader.leader)
        second, second_app = await second_stack.enter_async_context(api(env))
        follower = second_app[campaigns.ENGINE]
        await asyncio.sleep(0.5)  # several of the follower's lock attempts
        assert leader.leader and not follower.leader
        # Created through the follower's API, run by the leader (woken by NOTIFY).
        spec = {
            "name": "reboot",
            "query": {},
            "actions": [{"name": "reboot"}],
            "deviceTimeoutSeconds": 2,
        }
        campaign_id = await create(second, spec)
        await wait_campaign(second, campaign_id, lambda d: d["devices"]["queued"] == 1)
        await first_stack.aclose()  # the leader's process ends
        await until(lambda: follower.leader)
        doc = await wait_campaign(second, campaign_id, lambda d: d["state"] == "completed")
        assert doc["devices"]["failed"] == 1  # timed out under the new leader
        assert doc["outcomes"]["items"][0]["detail"]["reason"] == "timeout"


async def until(predicate: Callable[[], bool], seconds: float = 5) -> None:
    async with asyncio.timeout(seconds):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_success_needs_the_criterion_within_the_grace_and_silent_devices_time_out(
    env: Env,
) -> None:
    phantom = "000000-Phantom-0001"
    await insert_device(env.pool, phantom, datetime.now(UTC))
    async with (
        fleet(env, 6, fail_ratio=0.5, download_failure="no-install", seed=800) as cpes,
        api(env) as (client, _app),
    ):
        spec = firmware_spec(
            env, maxFailureRatio=1.0, successGraceSeconds=1.5, deviceTimeoutSeconds=3
        )
        campaign_id = await create(client, spec)
        doc = await wait_campaign(client, campaign_id, lambda d: d["state"] == "completed")
        reasons = {
            o["device"]: (o["state"], o["detail"]["reason"]) for o in doc["outcomes"]["items"]
        }
        failing = {c.device_id for c in cpes.failing}
        for cpe in cpes.cpes:
            if cpe.device_id in failing:  # reported success, firmware unchanged
                assert reasons[cpe.device_id] == ("failed", "criterion_not_met")
            else:
                assert reasons[cpe.device_id] == ("succeeded", "criterion_met")
        assert reasons[phantom] == ("failed", "timeout")
        assert phantom not in await tasks_by_device(env.pool)


async def test_actions_run_in_order_each_queued_when_the_previous_is_done(env: Env) -> None:
    async with (
        fleet(env, 4, fail_ratio=0.25, download_failure="refuse", seed=900) as cpes,
        api(env) as (client, _app),
    ):
        spec = firmware_spec(
            env,
            actions=[
                {"name": "download", "url": f"{env.files_url}/fw/2.0.bin"},
                {"name": "reboot"},
            ],
            maxFailureRatio=1.0,
        )
        campaign_id = await create(client, spec)
        doc = await wait_campaign(client, campaign_id, lambda d: d["state"] == "completed")
        outcomes = {o["device"]: o for o in doc["outcomes"]["items"]}
        tasks = await tasks_by_device(env.pool)
        for cpe in cpes.cpes:
            outcome = outcomes[cpe.device_id]
            if cpe.download_failure:
                assert outcome["state"] == "failed" and outcome["step"] == 1
                assert outcome["detail"]["fault"]["code"] == "cwmp.9010"
                assert cpe.device_id not in tasks  # withdrawn: no retries behind our back
                continue
            assert outcome["state"] == "succeeded" and outcome["step"] == 2
            download, reboot = tasks[cpe.device_id]
            assert (download["name"], reboot["name"]) == ("download", "reboot")
            assert reboot["created"] >= download["completed"]
            assert download["body"]["campaign"] == campaign_id
            assert any(("M Reboot" in r.events) for r in cpe.history)


async def test_a_campaign_downloads_a_stored_file_by_name(env: Env) -> None:
    async with fleet(env, 10, seed=1000) as cpes, api(env) as (client, _app):
        missing = await client(
            "POST",
            "/api/v1/campaigns",
            data=firmware_spec(env, actions=[{"name": "download", "file": "3.0.bin"}]),
        )
        assert missing.status == 400 and missing.body["error"]["code"] == "FILE_NOT_FOUND"
        assert missing.body["error"]["message"].startswith("actions[0]: ")
        stored = await client(
            "PUT", "/files/3.0.bin", data=IMAGE, headers={"fileType": "1 Firmware Upgrade Image"}
        )
        assert stored.status in (200, 201), stored.body
        spec = firmware_spec(
            env,
            actions=[{"name": "download", "file": "3.0.bin"}],
            successCriterion={VERSION: "3.0"},
        )
        campaign_id = await create(client, spec)
        doc = await wait_campaign(client, campaign_id, lambda d: d["state"] == "completed")
        assert doc["devices"]["succeeded"] == 10
        assert all(c.datamodel[VERSION] == "3.0" for c in cpes.cpes)
        task = await env.pool.fetchrow("SELECT * FROM tasks LIMIT 1")
        assert task["args"]["file"] == "3.0.bin" and task["args"]["fileSize"] == len(IMAGE)


# --- the rules, without I/O ------------------------------------------------------------------


def spec_of(**overrides: Any) -> CampaignSpec:
    body = {"name": "c", "query": {}, "actions": [{"name": "reboot"}]} | overrides
    return CampaignSpec.model_validate(body)


@pytest.mark.parametrize(
    ("total", "waves", "sizes"),
    [
        (200, [Wave(percent=25)], [50, 50, 50, 50]),
        (10, [Wave(size=3)], [3, 3, 3, 1]),
        (10, [Wave(size=1), Wave(percent=50)], [1, 5, 4]),
        (100, [Wave(percent=7)], [7] * 14 + [2]),  # 7% of 100 is 7, not 8
        (3, [Wave(percent=1)], [1, 1, 1]),  # at least one device per wave
        (5, [], [5]),
        (0, [Wave(size=2)], []),
        (5, [Wave(size=10), Wave(size=1)], [5]),
    ],
)
def test_waves_are_consecutive_slices_and_the_last_one_repeats(
    total: int, waves: list[Wave], sizes: list[int]
) -> None:
    assert rules.wave_sizes(total, waves) == sizes
    assert sum(sizes) == total


def test_wave_count_is_bounded_and_starts_are_width_bucket_thresholds() -> None:
    sizes = rules.wave_sizes(5000, [Wave(size=1)])
    assert len(sizes) == rules.MAX_WAVE_COUNT and sizes[-1] == 5000 - 999 and sum(sizes) == 5000
    assert rules.wave_starts([50, 50, 20]) == [1, 51, 101]


@pytest.mark.parametrize(
    ("counts", "spec", "halts"),
    [
        (rules.Counts(succeeded=0, failed=9), spec_of(), False),  # fewer than minFinished
        (rules.Counts(succeeded=9, failed=1), spec_of(), True),  # 10% > 5%
        (rules.Counts(succeeded=19, failed=1), spec_of(), False),  # 5% is not above 5%
        (rules.Counts(succeeded=18, failed=2, running=50), spec_of(), True),
        (rules.Counts(succeeded=1, failed=2), spec_of(maxFailures=2), True),
        (rules.Counts(succeeded=0, failed=30), spec_of(maxFailureRatio=1.0), False),
    ],
)
def test_the_failure_ratio_halts_once_enough_devices_finished(
    counts: rules.Counts, spec: CampaignSpec, halts: bool
) -> None:
    assert (rules.halt_reason(counts, spec) is not None) == halts


def observation(**overrides: Any) -> rules.DeviceObservation:
    values: dict[str, Any] = {
        "device_id": "D",
        "state": "queued",
        "step": 0,
        "task_ids": (1,),
        "tasks": {1: rules.TaskView(1, "pending")},
        "queued_at": NOW,
    }
    return rules.DeviceObservation(**(values | overrides))


def judge(obs: rules.DeviceObservation, *, now: datetime = NOW, steps: int = 1) -> rules.Verdict:
    return rules.judge_device(obs, steps=steps, has_criterion=True, grace=60, timeout=600, now=now)


def test_a_device_is_judged_by_its_tasks_faults_and_criterion() -> None:
    later = NOW + timedelta(seconds=30)
    assert judge(observation()).kind == "wait"
    assert judge(observation(contacted=True)).kind == "running"
    assert judge(observation(tasks={1: rules.TaskView(1, "waiting")})).kind == "running"
    fault = {"code": "cwmp.9010", "message": "Download failure", "task": "1"}
    failed = judge(observation(state="running", fault=fault))
    assert failed.kind == "failed" and failed.detail["reason"] == "task_fault"
    assert failed.detail["fault"]["code"] == "cwmp.9010"
    assert judge(observation(tasks={})).detail["reason"] == "task_deleted"
    assert judge(observation(tasks={1: rules.TaskView(1, "expired")})).kind == "failed"
    # Done: the criterion decides, with a grace period for the post-reboot Inform.
    done = {1: rules.TaskView(1, "done")}
    assert judge(observation(tasks=done, criterion_met=True)).kind == "succeeded"
    assert judge(observation(tasks=done)).kind == "verify"
    assert judge(observation(tasks=done, tasks_done_at=NOW), now=later).kind == "wait"
    late = judge(observation(tasks=done, tasks_done_at=NOW), now=NOW + timedelta(seconds=60))
    assert late.kind == "failed" and late.detail["reason"] == "criterion_not_met"
    assert judge(observation(tasks=done), steps=2).kind == "next_step"
    # Nothing done within the timeout.
    timed_out = judge(observation(), now=NOW + timedelta(seconds=600))
    assert timed_out.kind == "failed" and timed_out.detail["reason"] == "timeout"
    # A deleted device: skipped if it never began, failed if it had.
    assert judge(observation(present=False)).kind == "skipped"
    assert judge(observation(present=False, state="running")).kind == "failed"


def test_without_a_criterion_done_tasks_are_success() -> None:
    done = observation(tasks={1: rules.TaskView(1, "done")})
    verdict = rules.judge_device(done, steps=1, has_criterion=False, grace=0, timeout=1, now=NOW)
    assert verdict == rules.Verdict("succeeded", {"reason": "tasks_done"})


def view(**overrides: Any) -> rules.CampaignView:
    values: dict[str, Any] = {
        "state": "running",
        "current_wave": 0,
        "wave_count": 3,
        "waiting_by_wave": {0: 10, 1: 10, 2: 10},
        "in_flight": 0,
        "next_wave_at": None,
        "max_concurrent": 4,
    }
    return rules.CampaignView(**(values | overrides))


def test_a_round_starts_devices_up_to_the_concurrency_limit() -> None:
    assert rules.plan_round(view(), NOW).start == 4
    assert rules.plan_round(view(in_flight=3), NOW).start == 1
    assert rules.plan_round(view(in_flight=4), NOW).start == 0
    assert rules.plan_round(view(waiting_by_wave={0: 2, 1: 10}), NOW).start == 2
    assert rules.plan_round(view(state="paused"), NOW) == rules.Plan("paused", 0)


def test_the_next_wave_waits_for_the_current_one_to_finish() -> None:
    busy = rules.plan_round(view(waiting_by_wave={0: 0, 1: 10}, in_flight=2), NOW)
    assert busy.current_wave == 0 and busy.start == 0
    moved = rules.plan_round(view(waiting_by_wave={1: 10, 2: 10}), NOW)
    assert moved.current_wave == 1 and moved.start == 4
    assert [kind for kind, _ in moved.events] == ["wave_finished", "wave_started"]
    paused = rules.plan_round(view(waiting_by_wave={1: 10}, pause_between_waves=True), NOW)
    assert (paused.state, paused.current_wave, paused.start) == ("paused", 1, 0)
    assert paused.reason.startswith("wave 1 of 3 finished")
    delayed = rules.plan_round(view(waiting_by_wave={1: 10}, wave_delay=60), NOW)
    assert delayed.next_wave_at == NOW + timedelta(seconds=60) and delayed.start == 0
    due = view(current_wave=1, waiting_by_wave={1: 10}, next_wave_at=NOW)
    assert rules.plan_round(due, NOW).start == 4
    last = rules.plan_round(view(current_wave=2, waiting_by_wave={}), NOW)
    assert last.state == "completed"


@pytest.mark.parametrize(
    ("action", "state", "result"),
    [
        ("pause", "running", "paused"),
        ("pause", "pending", "paused"),
        ("pause", "halted", None),
        ("resume", "paused", "running"),
        ("resume", "halted", "running"),
        ("resume", "running", None),
        ("cancel", "halted", "cancelled"),
        ("cancel", "completed", None),
        ("cancel", "cancelled", None),
        ("restart", "running", None),
    ],
)
def test_operator_actions_follow_the_state_table(
    action: str, state: str, result: str | None
) -> None:
    if result is None:
        with pytest.raises(rules.TransitionRefused):
            rules.operator_transition(action, state)
    else:
        assert rules.operator_transition(action, state) == result


def test_actions_become_tasks_and_their_credentials_can_be_sealed_or_masked() -> None:
    assert rules.task_body({"provision": "firmware", "args": ["2.0", 1]}) == {
        "name": "provisions",
        "provisions": [["firmware", "2.0", 1]],
    }
    spv = {
        "name": "setParameterValues",
        "parameterValues": [
            [f"{IGD}.LANDevice.1.WLANConfiguration.1.KeyPassphrase", "hunter22"],
            [f"{IGD}.LANDevice.1.WLANConfiguration.1.SSID", "home"],
        ],
    }
    masked = rules.map_secrets(spv, lambda _v: "***")
    assert [v for _, v in masked["parameterValues"]] == ["***", "home"]
    download = {"name": "download", "url": "http://x/fw.bin", "password": "pw"}
    assert rules.map_secrets(download, str.upper)["password"] == "PW"


# --- the API: validation, errors, roles --------------------------------------------------------

REBOOT = {"name": "reboot all", "query": {}, "actions": [{"name": "reboot"}]}


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ("{not json", "BAD_JSON", None),
        ([1, 2], "INVALID_CAMPAIGN", None),
        ({"name": "x", "actions": [{"name": "reboot"}]}, "INVALID_CAMPAIGN", "query"),
        (REBOOT | {"maxConcurent": 5}, "INVALID_CAMPAIGN", "maxConcurent"),
        (REBOOT | {"actions": []}, "INVALID_CAMPAIGN", "actions"),
        (REBOOT | {"maxConcurrent": 0}, "INVALID_CAMPAIGN", "maxConcurrent"),
        (REBOOT | {"waves": [{"size": 5, "percent": 10}]}, "INVALID_CAMPAIGN", "waves.0"),
        (REBOOT | {"waves": [{"percent": 120}]}, "INVALID_CAMPAIGN", "waves.0.percent"),
        (REBOOT | {"maxFailureRatio": 1.5}, "INVALID_CAMPAIGN", "maxFailureRatio"),
        (REBOOT | {"query": {"$bogus": 1}}, "BAD_QUERY", None),
        (REBOOT | {"successCriterion": {"a": {"$regex": "("}}}, "BAD_QUERY", None),
        (REBOOT | {"actions": [{"name": "upgrade"}]}, "INVALID_TASK", None),
        (
            REBOOT | {"actions": [{"name": "getParameterValues", "parameterNames": ["bad name"]}]},
            "INVALID_TASK",
            None,
        ),
        (REBOOT | {"actions": [{"provision": "fw", "args": [{}]}]}, "INVALID_ACTION", None),
        (REBOOT | {"actions": [{"provision": ""}]}, "INVALID_ACTION", None),
    ],
)
async def test_invalid_campaigns_are_refused_with_the_problem_named(
    env: Env, body: Any, code: str, field: str | None
) -> None:
    async with api(env) as (client, _app):
        reply = await client("POST", "/api/v1/campaigns", data=body)
        assert reply.status == 400, reply.body
        error = reply.body["error"]
        assert error["code"] == code and error["message"]
        if field is not None:
            assert field in [p["field"] for p in error["details"]["problems"]]
        if code in ("INVALID_TASK", "INVALID_ACTION"):
            assert error["message"].startswith("actions[0]")
        assert await env.pool.fetchval("SELECT count(*) FROM campaigns") == 0


async def test_campaign_routes_answer_404_409_and_respect_roles(env: Env) -> None:
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    async with api(env) as (client, app):
        missing = await client("GET", "/api/v1/campaigns/999")
        assert missing.status == 404 and missing.body["error"]["code"] == "CAMPAIGN_NOT_FOUND"
        assert (await client("GET", "/api/v1/campaigns/abc")).status == 404
        assert (await client("POST", "/api/v1/campaigns/999/pause")).status == 404
        assert (await client("POST", "/api/v1/campaigns/1/restart")).status == 404
        created = await client("POST", "/api/v1/campaigns", data=REBOOT | {"startAt": future})
        assert created.status == 201
        assert created.headers["Location"] == f"/api/v1/campaigns/{created.body['id']}"
        assert created.body["createdBy"] == "noc-admin" and created.body["state"] == "pending"
        path = f"/api/v1/campaigns/{created.body['id']}"
        refused = await client("POST", f"{path}/resume")
        assert refused.status == 409
        assert refused.body["error"]["details"] == {
            "state": "pending",
            "allowed": ["halted", "paused"],
        }
        body = await client("POST", f"{path}/pause", data={"maxFailureRatio": 0.5})
        assert body.status == 400 and body.body["error"]["code"] == "UNEXPECTED_BODY"
        bad = await client("POST", f"{path}/resume", data={"maxFailureRatio": 2})
        assert bad.status == 400
        viewer = Api(client.base, await create_token(env.pool, "noc screen", "viewer"))
        try:
            assert (await viewer("GET", path)).status == 200
            assert (await viewer("GET", "/api/v1/campaigns")).status == 200
            assert (await viewer("POST", f"{path}/cancel")).status == 403
            assert (await viewer("POST", "/api/v1/campaigns", data=REBOOT)).status == 403
        finally:
            await viewer.close()
        listed = await client("GET", "/api/v1/campaigns?state=pending")
        assert listed.headers["total"] == "1" and listed.body[0]["id"] == created.body["id"]
        assert (await client("GET", "/api/v1/campaigns?state=nope")).status == 400
        assert (await client("GET", f"{path}?deviceState=nope")).status == 400
        # Paused before it started, resumed: it starts then (no device: completed).
        assert (await client("POST", f"{path}/pause")).body["state"] == "paused"
        assert (await client("POST", f"{path}/resume")).body["state"] == "running"
        doc = await wait_campaign(client, created.body["id"], lambda d: d["state"] == "completed")
        assert doc["stateReason"] == "no device matched the query"
        assert app[campaigns.ENGINE].leader


async def test_a_dry_run_counts_devices_and_creates_nothing(env: Env) -> None:
    for i in range(7):
        await insert_device(env.pool, f"202BC1-BM632w-{i:07d}", **{VERSION: "1.0"})
    await insert_device(env.pool, "202BC1-BM632w-9999999", **{VERSION: "2.0"})
    async with api(env) as (client, _app):
        spec = REBOOT | {"query": {VERSION: {"$ne": "2.0"}}, "waves": [{"size": 3}]}
        reply = await client("POST", "/api/v1/campaigns?dryRun=1", data=spec)
        assert reply.status == 200 and reply.body == {"devices": 7, "waves": [3, 3, 1]}
        assert await env.pool.fetchval("SELECT count(*) FROM campaigns") == 0


async def test_credentials_in_actions_are_sealed_at_rest_and_masked_in_answers(env: Env) -> None:
    phrase = f"{IGD}.LANDevice.1.WLANConfiguration.1.KeyPassphrase"
    spec = REBOOT | {
        "startAt": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        "actions": [
            {"name": "setParameterValues", "parameterValues": [[phrase, "hunter22"]]},
            {"name": "download", "url": "http://127.0.0.1/fw.bin", "password": "s3cret"},
        ],
    }
    async with api(env) as (client, _app):
        reply = await client("POST", "/api/v1/campaigns", data=spec)
        assert reply.status == 201
        shown = json.dumps(reply.body) + json.dumps(await campaign(client, reply.body["id"]))
        assert "hunter22" not in shown and "s3cret" not in shown and "********" in shown
    stored = json.dumps(await env.pool.fetchval("SELECT definition FROM campaigns"))
    assert "hunter22" not in stored and "s3cret" not in stored and "sealed:v1:" in stored


async def test_tasks_are_queued_with_the_api_s_rules_and_a_provision_as_a_provisions_task(
    env: Env,
) -> None:
    """Device-specific checks happen at queue time: a value its parameter's type refuses
    fails that device alone."""
    ssid = f"{IGD}.LANDevice.1.WLANConfiguration.1.SSID"
    interval = f"{IGD}.ManagementServer.PeriodicInformInterval"
    await insert_device(env.pool, "202BC1-BM632w-0000001")
    await insert_device(env.pool, "202BC1-BM632w-0000002")
    await env.pool.execute(
        "INSERT INTO device_params (device_id, path, object, value, value_type)"
        " VALUES ('202BC1-BM632w-0000002', $1, false, '300', 'xsd:unsignedInt')",
        interval,
    )
    spec = {
        "name": "settings",
        "query": {},
        "actions": [
            {
                "name": "setParameterValues",
                "parameterValues": [[ssid, "home"], [interval, "soon"]],
                "uniqueKey": "settings",
            },
            {"provision": "firmware", "args": ["2.0"]},
        ],
        "maxFailureRatio": 1.0,
    }
    async with api(env) as (client, _app):
        campaign_id = await create(client, spec)
        doc = await wait_campaign(client, campaign_id, lambda d: d["devices"]["failed"] == 1)
        outcomes = {o["device"]: o for o in doc["outcomes"]["items"]}
        refused = outcomes["202BC1-BM632w-0000002"]
        assert (
            refused["detail"]["reason"] == "invalid_task"
            and interval in refused["detail"]["message"]
        )
        assert outcomes["202BC1-BM632w-0000001"]["state"] == "queued"
        row = await env.pool.fetchrow("SELECT * FROM tasks")
        assert row["device_id"] == "202BC1-BM632w-0000001"
        assert row["args"]["values"] == [
            [ssid, "home", "xsd:string"],
            [interval, "soon", "xsd:string"],
        ]
        assert row["body"]["campaign"] == campaign_id and row["body"]["uniqueKey"] == "settings"
        # The ACS finishing the first task (as a session would) queues the provision.
        await env.pool.execute("UPDATE tasks SET status = 'done', completed = now()")
        await env.pool.execute("SELECT pg_notify('chronos_task', $1)", f"{row['id']}:done")
        await wait_campaign(
            client,
            campaign_id,
            lambda d: any(o["step"] == 2 for o in d["outcomes"]["items"]),
        )
        provision = await env.pool.fetchrow("SELECT * FROM tasks WHERE status = 'pending'")
        assert provision["name"] == "provisions"
        assert provision["body"]["provisions"] == [["firmware", "2.0"]]


# --- chronos campaign ---------------------------------------------------------------------------


async def chronos(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """The real command in a child process, while this loop serves the API."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "CHRONOS_CONFIG": os.devnull, **env},
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def in_process(config: Config, *args: str, tty: bool = False) -> tuple[int, str]:
    stream = Terminal() if tty else io.StringIO()
    parsed = cli._parser().parse_args(["campaign", *args])
    status = await campaign_cli.run(config, parsed, stream)
    return status, stream.getvalue()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_chronos_campaign_creates_shows_and_acts_over_the_api(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(12):
        await insert_device(env.pool, f"202BC1-BM632w-{i:07d}", **{VERSION: "1.0"})
    spec = REBOOT | {"name": "reboot in waves", "waves": [{"size": 4}], "maxConcurrent": 10}
    path = tmp_path / "campaign.json"
    path.write_text(json.dumps(spec))
    async with api(env) as (client, _app):
        shell = {"CHRONOS_API_URL": client.base, "CHRONOS_API_TOKEN": env.token}
        status, out, _err = await chronos(
            "campaign", "create", "--file", str(path), "--dry-run", env=shell
        )
        assert status == 0 and out == "would run on 12 devices in waves of 4, 4, 4\n"
        status, out, err = await chronos("campaign", "create", "--file", str(path), env=shell)
        assert (status, out) == (0, "created campaign 1\n"), err
        await wait_campaign(client, 1, lambda d: d["devices"]["queued"] == 4)
        status, out, err = await chronos("campaign", "show", "1", env=shell)
        assert status == 0, err
        lines = out.splitlines()
        assert lines[0] == 'campaign 1 "reboot in waves"  running'
        assert lines[1].startswith("created   ") and "by noc-admin; started " in lines[1]
        assert lines[2].startswith(
            "devices   12: 0 succeeded, 0 failed, 0 running, 4 queued, 8 waiting"
        )
        assert lines[3].startswith("failures  - of 0 finished (halts above 5.0% once 10")
        assert lines[4] == "*wave 1/3 [" + ">" * 32 + "] 0/4  0 ok, 4 in flight"
        assert lines[5] == " wave 2/3 [" + "." * 32 + "] 0/4  0 ok"
        status, out, _err = await chronos("campaign", "list", env=shell)
        header, row = out.splitlines()
        assert header.split() == ["ID", "STATE", "WAVE", "FINISHED", "FAILED", "RATIO", "NAME"]
        assert row.split()[:6] == ["1", "running", "1/3", "0/12", "0", "-"]
        assert row.endswith("reboot in waves")
        status, _out, err = await chronos("campaign", "show", "9", env=shell)
        assert status == 1 and "no campaign 9 (CAMPAIGN_NOT_FOUND)" in err

        monkeypatch.setenv("CHRONOS_API_URL", client.base)
        monkeypatch.delenv("CHRONOS_API_TOKEN", raising=False)
        config = Config(data_dir=tmp_path)
        status, _out = await in_process(config, "list")
        assert status == 2  # no token anywhere
        (tmp_path / "admin-token").write_text(env.token + "\n")  # as `chronos up` keeps it
        assert await in_process(config, "pause", "1") == (
            0,
            'campaign 1 "reboot in waves"  paused: paused by noc-admin\n',
        )
        status, out = await in_process(config, "cancel", "1")
        assert status == 0 and "cancelled: cancelled by noc-admin" in out
        # Cancelled before any device began: settled at once, so --watch ends at once.
        status, out = await in_process(config, "show", "1", "--watch", "--every", "0.05")
        assert status == 1 and out.splitlines() == [
            "campaign 1 cancelled wave 1/3: 0/12 finished (0 ok, 0 failed), 0 in flight,"
            " 0 waiting, failure ratio -"
        ]
        status, out = await in_process(config, "show", "1", "--watch", tty=True)
        assert status == 1 and out.startswith("\x1b[2Kcampaign 1 ") and out.endswith("\x1b[J")
        assert "\x1b[2K*wave 1/3 [" + "-" * 32 + "] 4/4  0 ok, 4 skipped\n" in out


def test_a_watched_campaign_is_redrawn_in_place_on_a_terminal() -> None:
    doc = {
        "id": 3,
        "name": "fw",
        "state": "running",
        "stateReason": "",
        "created": "2025-01-01T10:00:00.000Z",
        "createdBy": "noc",
        "started": None,
        "finished": None,
        "devices": {
            "total": 10,
            "waiting": 4,
            "queued": 1,
            "running": 1,
            "succeeded": 3,
            "failed": 1,
            "skipped": 0,
        },
        "failureRatio": 0.25,
        "maxFailureRatio": 0.05,
        "minFinished": 10,
        "currentWave": 1,
        "waveCount": 1,
        "waves": [
            {
                "wave": 1,
                "size": 10,
                "waiting": 4,
                "queued": 1,
                "running": 1,
                "succeeded": 3,
                "failed": 1,
                "skipped": 0,
            }
        ],
        "outcomes": {
            "items": [
                {
                    "device": "D-1",
                    "state": "failed",
                    "detail": {"message": "task faulted: cwmp.9010"},
                }
            ]
        },
    }
    lines = campaign_cli.render(doc)
    assert (
        lines[4]
        == "*wave 1/1 [##########xxx>>>>>>.............]  4/10  3 ok, 1 failed, 2 in flight"
    )
    assert lines[-2:] == ["failed devices (1 of 1 shown):", "  D-1  task faulted: cwmp.9010"]
    assert campaign_cli.bar({"succeeded": 1}, 1000) == "[#" + "." * 31 + "]"  # never invisible
    assert not campaign_cli.is_settled(doc)
