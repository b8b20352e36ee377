"""Soak: hundreds of simulated CPEs against one ACS for a minute, tasks queued while they
inform. Skipped by default; run with `pytest -m soak`."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest

from acs import server
from schemas.config import AcsConfig
from schemas.sealing import Sealer
from tests.conftest import SECRET_KEY, serving
from tools.sim.cpe import CpeFleet

pytestmark = pytest.mark.soak

CPES = 500
SECONDS = 60
IGD = "InternetGatewayDevice"


async def test_fleet_informs_and_runs_tasks_for_a_minute_without_loss(pool: asyncpg.Pool) -> None:
    app = server.create_app(pool, AcsConfig(session_timeout=10), Sealer(SECRET_KEY))
    async with serving(app) as url:
        fleet = CpeFleet(url + "/", CPES, model="tr098", interval=5, spread=5, quirks="mixed")
        async with fleet:
            async with asyncio.timeout(60):
                await fleet.wait_for(lambda s: s.sessions_ok >= CPES)
            rng = random.Random(1)
            queued = 0
            loop = asyncio.get_running_loop()
            deadline = loop.time() + SECONDS
            while loop.time() < deadline:
                cpe = rng.choice(fleet.cpes)
                name, args = rng.choice(
                    [
                        ("getParameterValues", {"names": [f"{IGD}.DeviceInfo.UpTime"]}),
                        (
                            "setParameterValues",
                            {
                                "values": [
                                    [
                                        f"{IGD}.LANDevice.1.WLANConfiguration.1.SSID",
                                        f"soak-{queued}",
                                        "xsd:string",
                                    ]
                                ]
                            },
                        ),
                        ("refreshObject", {"path": f"{IGD}.LANDevice.1.Hosts"}),
                    ]
                )
                await pool.execute(
                    "INSERT INTO tasks (device_id, name, body, args) VALUES ($1, $2, '{}', $3)",
                    cpe.device_id,
                    name,
                    args,
                )
                queued += 1
                await asyncio.sleep(0.05)
            # Every queued task runs at its device's next periodic session.
            async with asyncio.timeout(60):
                while await pool.fetchval("SELECT count(*) FROM tasks WHERE status <> 'done'"):
                    await asyncio.sleep(0.5)
            stats = fleet.stats
        assert stats.sessions_failed == 0
        assert await pool.fetchval("SELECT count(*) FROM faults") == 0
        assert await pool.fetchval("SELECT count(*) FROM tasks WHERE status = 'done'") == queued
    # Sessions ended cleanly: every lease was given back, nothing left in memory.
    async with asyncio.timeout(15):
        while await pool.fetchval("SELECT count(*) FROM devices WHERE session_id IS NOT NULL"):
            await asyncio.sleep(0.2)
    assert not app[server.SESSIONS].by_id and not app[server.SESSIONS].by_connection
