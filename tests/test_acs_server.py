"""The CWMP server over real HTTP on 127.0.0.1 against real PostgreSQL: sessions,
quirky CPEs, tasks, faults, and bad input that changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from acs import messages as m
from acs import server, soap
from schemas.config import AcsConfig
from schemas.sealing import Sealer
from tests.conftest import SECRET_KEY, SOAP_DATA, serving

THOMSON = SOAP_DATA / "thomson-speedtouch780-Inform-cwmp10.xml"
THOMSON_ID = "00147F-SpeedTouch%20780-CP0611JTLNW"
IGD = "InternetGatewayDevice"


@pytest.fixture
async def acs(pool: asyncpg.Pool) -> AsyncIterator[str]:
    # The protocol layer alone: without the default presets a BOOTSTRAP session ends
    # when the CPE is done (test_provisioning covers what presets add).
    await pool.execute("DELETE FROM presets")
    config = AcsConfig(session_timeout=2, retry_delay=60)
    async with serving(server.create_app(pool, config, Sealer(SECRET_KEY))) as url:
        yield url


class Cpe:
    """A scripted CPE: posts bytes, keeps cookies like a real one (unless told not to)."""

    def __init__(self, url: str, *, cookies: bool = True) -> None:
        jar = aiohttp.CookieJar(unsafe=True) if cookies else aiohttp.DummyCookieJar()
        self.url = url
        self.http = aiohttp.ClientSession(
            cookie_jar=jar,
            connector=aiohttp.TCPConnector(limit=1),
            timeout=aiohttp.ClientTimeout(10),
        )

    async def post(self, body: bytes, **kwargs: object) -> tuple[int, bytes]:
        async with self.http.post(self.url, data=body, **kwargs) as r:
            return r.status, await r.read()

    async def message(self, body: bytes | m.Message) -> tuple[int, m.Message | None]:
        data = soap.encode(body, id="cpe-1") if isinstance(body, m.Message) else body
        status, reply = await self.post(data)
        env = soap.decode(reply) if status == 200 else None
        return status, env.body if env else None

    async def close(self) -> None:
        await self.http.close()


@pytest.fixture
async def cpe(acs: str) -> AsyncIterator[Cpe]:
    c = Cpe(acs + "/")
    yield c
    await c.close()


def inform(
    serial: str = "SN1", *params: m.ParameterValue, events: tuple[str, ...] = ("2 PERIODIC",)
) -> m.Inform:
    return m.Inform(
        m.DeviceIdStruct("Acme", "00AA11", "Box", serial),
        tuple(m.EventStruct(e, "") for e in events),
        1,
        None,
        0,
        params,
    )


async def device_count(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM devices")


async def test_inform_creates_the_device_with_identity_tree_and_events(
    cpe: Cpe, pool: asyncpg.Pool
) -> None:
    status, reply = await cpe.message(THOMSON.read_bytes())
    assert status == 200 and reply == m.InformResponse(1)
    row = await pool.fetchrow("SELECT * FROM devices WHERE id = $1", THOMSON_ID)
    assert (row["oui"], row["product_class"], row["serial_number"]) == (
        "00147F",
        "SpeedTouch 780",
        "CP0611JTLNW",
    )
    assert row["last_boot"] is not None and row["last_bootstrap"] is not None
    assert row["last_events"] == ["0 BOOTSTRAP", "1 BOOT", "2 PERIODIC", "4 VALUE CHANGE"]
    assert row["session_id"] is not None  # leased while the session is open
    version = await pool.fetchrow(
        "SELECT value, value_type FROM device_params WHERE device_id = $1 AND path = $2",
        THOMSON_ID,
        f"{IGD}.DeviceInfo.SoftwareVersion",
    )
    assert tuple(version) == ("6.2.35.0", "xsd:string")
    assert await cpe.post(b"") == (204, b"")
    assert await pool.fetchval("SELECT session_id FROM devices") is None


@pytest.mark.parametrize("path", sorted(SOAP_DATA.glob("*Inform*.xml")), ids=lambda p: p.name)
async def test_every_captured_inform_opens_and_closes_a_session(
    path: Path, cpe: Cpe, pool: asyncpg.Pool
) -> None:
    assert (await cpe.message(path.read_bytes()))[0] == 200
    assert await cpe.post(b"") == (204, b"")
    assert await device_count(pool) == 1


async def test_duplicate_parameter_in_one_inform_keeps_the_last_value(
    cpe: Cpe, pool: asyncpg.Pool
) -> None:
    await cpe.message(inform("D", m.ParameterValue("A.B", "1"), m.ParameterValue("A.B", "2")))
    assert await pool.fetchval("SELECT value FROM device_params WHERE path = 'A.B'") == "2"


async def test_query_string_missing_content_type_and_chunked_body_are_fine(
    acs: str, pool: asyncpg.Pool
) -> None:
    c = Cpe(acs + "/cwmp/acs?serial=1&x")
    try:
        body = soap.encode(inform("Q"), id="1")

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(body), 100):
                yield body[i : i + 100]

        async with c.http.post(c.url, data=chunks(), skip_auto_headers=["Content-Type"]) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/xml")
        assert await c.post(b"") == (204, b"")
    finally:
        await c.close()
    assert await device_count(pool) == 1


async def test_cpe_without_cookies_is_followed_by_its_connection(
    acs: str, pool: asyncpg.Pool
) -> None:
    c = Cpe(acs + "/", cookies=False)
    try:
        await pool.execute(
            "INSERT INTO devices (id, oui, serial_number) VALUES ('00AA11-Box-NC', '00AA11', 'NC')"
        )
        await pool.execute(
            "INSERT INTO tasks (device_id, name, body, args) VALUES ('00AA11-Box-NC', 'reboot', '{}', '{}')"
        )
        assert (await c.message(inform("NC")))[1] == m.InformResponse(1)
        status, reply = await c.message(b"")
        assert status == 200 and isinstance(reply, m.Reboot)
        assert await c.post(soap.encode(m.RebootResponse(), id="x")) == (204, b"")
    finally:
        await c.close()
    assert await pool.fetchval("SELECT status FROM tasks") == "done"


async def test_attribute_laden_and_quoted_cookie_is_understood(
    cpe: Cpe, pool: asyncpg.Pool
) -> None:
    await pool.execute(
        "INSERT INTO devices (id, oui, serial_number) VALUES ('00AA11-Box-CK', '00AA11', 'CK')"
    )
    await pool.execute(
        "INSERT INTO tasks (device_id, name, body, args) VALUES ('00AA11-Box-CK', 'reboot', '{}', '{}')"
    )
    async with cpe.http.post(cpe.url, data=soap.encode(inform("CK"), id="1")) as r:
        sid = r.cookies["session"].value
    fresh = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    try:
        header = {"Cookie": f'$Version="1"; session="{sid}"; $Path="/"'}
        async with fresh.post(cpe.url, data=b"", headers=header) as r:
            assert r.status == 200
            assert isinstance(soap.decode(await r.read()).body, m.Reboot)  # type: ignore[union-attr]
    finally:
        await fresh.close()


async def test_stale_cookie_with_a_new_inform_starts_a_new_session(
    cpe: Cpe, pool: asyncpg.Pool
) -> None:
    headers = {"Cookie": "session=long-gone-session"}
    status, body = await cpe.post(soap.encode(inform("ST"), id="1"), headers=headers)
    assert status == 200 and isinstance(soap.decode(body).body, m.InformResponse)  # type: ignore[union-attr]
    assert await cpe.post(b"") == (204, b"")


async def test_second_concurrent_session_for_a_device_is_refused_without_side_effects(
    acs: str, cpe: Cpe, pool: asyncpg.Pool
) -> None:
    await cpe.message(inform("BUSY", m.ParameterValue("A.B", "first")))
    before = await pool.fetchrow("SELECT last_inform, session_id FROM devices")
    other = Cpe(acs + "/")
    try:
        status, _ = await other.post(
            soap.encode(inform("BUSY", m.ParameterValue("A.B", "second")), id="2")
        )
    finally:
        await other.close()
    assert status == 503
    assert tuple(await pool.fetchrow("SELECT last_inform, session_id FROM devices")) == tuple(
        before
    )
    assert await pool.fetchval("SELECT value FROM device_params WHERE path = 'A.B'") == "first"
    assert await cpe.post(b"") == (204, b"")


async def test_get_parameter_values_task_end_to_end(cpe: Cpe, pool: asyncpg.Pool) -> None:
    await pool.execute(
        "INSERT INTO devices (id, oui, serial_number) VALUES ('00AA11-Box-T', '00AA11', 'T')"
    )
    await pool.execute(
        "INSERT INTO tasks (device_id, name, body, args) VALUES ('00AA11-Box-T', 'getParameterValues', '{}', $1)",
        {"names": ["A.Uptime"]},
    )
    await cpe.message(inform("T"))
    status, rpc = await cpe.message(b"")
    assert rpc == m.GetParameterValues(("A.Uptime",))
    status, _ = await cpe.message(
        m.GetParameterValuesResponse((m.ParameterValue("A.Uptime", "42", "xsd:unsignedInt"),))
    )
    assert status == 204
    row = await pool.fetchrow(
        "SELECT value, value_type, value_num FROM device_params WHERE path = 'A.Uptime'"
    )
    assert tuple(row) == ("42", "xsd:unsignedInt", 42)
    assert await pool.fetchval("SELECT status FROM tasks") == "done"


async def test_spv_fault_is_stored_naming_parameters_and_retried_later(
    cpe: Cpe, pool: asyncpg.Pool
) -> None:
    await pool.execute(
        "INSERT INTO devices (id, oui, serial_number) VALUES ('00AA11-Box-F', '00AA11', 'F')"
    )
    task_id = await pool.fetchval(
        "INSERT INTO tasks (device_id, name, body, args) VALUES ('00AA11-Box-F', 'setParameterValues', '{}', $1) RETURNING id",
        {
            "values": [
                [
                    f"{IGD}.WANDevice.1.WANConnectionDevice.3.WANPPPConnection.1.Password",
                    "x",
                    "xsd:string",
                ]
            ]
        },
    )
    await cpe.message(inform("F"))
    await cpe.message(b"")
    fault = (SOAP_DATA / "thomson-speedtouch780-Fault-SPV-9003.xml").read_bytes()
    assert (await cpe.message(fault))[0] == 204
    row = await pool.fetchrow("SELECT * FROM faults")
    assert row["id"] == f"00AA11-Box-F:task_{task_id:024x}" and row["code"] == "cwmp.9003"
    assert [p["name"].rsplit(".", 1)[1] for p in row["detail"]["parameters"]] == [
        "Password",
        "Username",
    ]
    task = await pool.fetchrow(
        "SELECT status, retries, retry_at > now() + interval '50 seconds' AS later FROM tasks"
    )
    assert tuple(task) == ("pending", 1, True)
    # backing off: the next session does not run it
    await cpe.message(inform("F"))
    assert await cpe.post(b"") == (204, b"")


async def test_per_device_options_shape_what_the_acs_writes(cpe: Cpe, pool: asyncpg.Pool) -> None:
    await pool.execute(
        "INSERT INTO devices (id, oui, serial_number, options) VALUES ('00AA11-Box-O', '00AA11', 'O', $1)",
        {"hold_requests": True, "xml_declaration": False, "boolean_style": "digit"},
    )
    await pool.execute(
        "INSERT INTO tasks (device_id, name, body, args) VALUES ('00AA11-Box-O', 'setParameterValues', '{}', $1)",
        {"values": [["A.Enable", "true", "xsd:boolean"]]},
    )
    status, body = await cpe.post(soap.encode(inform("O"), id="1"))
    assert status == 200 and not body.startswith(b"<?xml")
    status, body = await cpe.post(b"")
    assert b'<cwmp:HoldRequests soap-env:mustUnderstand="1">1</cwmp:HoldRequests>' in body
    env = soap.decode(body)
    assert env.body.parameters == (m.ParameterValue("A.Enable", "1", "xsd:boolean"),)  # type: ignore[union-attr]
    assert await cpe.post(soap.encode(m.SetParameterValuesResponse(0), id="2")) == (204, b"")
    assert await pool.fetchval("SELECT value FROM device_params WHERE path = 'A.Enable'") == "true"


async def test_secret_values_are_sealed_at_rest(cpe: Cpe, pool: asyncpg.Pool) -> None:
    path = f"{IGD}.ManagementServer.ConnectionRequestPassword"
    await cpe.message(inform("S", m.ParameterValue(path, "hunter2")))
    stored = await pool.fetchval("SELECT value FROM device_params WHERE path = $1", path)
    assert "hunter2" not in stored and Sealer(SECRET_KEY).unseal(stored) == "hunter2"


async def test_quiet_session_times_out_and_frees_the_device(
    acs: str, cpe: Cpe, pool: asyncpg.Pool
) -> None:
    await cpe.message(inform("TO"))
    assert await pool.fetchval("SELECT session_id FROM devices") is not None
    for _ in range(100):
        if await pool.fetchval("SELECT session_id FROM devices") is None:
            break
        await asyncio.sleep(0.1)
    assert await pool.fetchval("SELECT session_id FROM devices") is None
    assert (await cpe.message(b""))[0] == 400  # that session is gone


async def test_stopping_the_acs_gives_back_the_devices_of_open_sessions(
    pool: asyncpg.Pool,
) -> None:
    await pool.execute("DELETE FROM presets")
    config = AcsConfig(session_timeout=600)
    app = server.create_app(pool, config, Sealer(SECRET_KEY))
    async with serving(app) as url:
        c = Cpe(url + "/")
        try:
            await c.message(inform("OPEN"))  # and then nothing: the session stays open
        finally:
            await c.close()
        assert await pool.fetchval("SELECT session_id FROM devices") is not None
    # Without this the device would be refused (another session) for ten minutes.
    assert await pool.fetchval("SELECT session_id FROM devices") is None
    assert not app[server.SESSIONS].by_id


# --- bad input ----------------------------------------------------------------------------


BAD_BODIES = {
    "malformed": (b"<soap:Envelope><broken", 400),
    "xml bomb": (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        b"<soap:Body>&c;</soap:Body></soap:Envelope>",
        400,
    ),
    "external entity": (
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "http://127.0.0.1:1/x">]><x>&e;</x>',
        400,
    ),
    "garbage after envelope": (soap.encode(inform("G"), id="1") + b"\x01\x02junk", 400),
    "not soap": (b"<html><body>hi</body></html>", 400),
    "response without session": (soap.encode(m.RebootResponse(), id="1"), 400),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
async def test_bad_body_gets_a_clear_4xx_and_changes_nothing(
    case: str, cpe: Cpe, pool: asyncpg.Pool
) -> None:
    data, status = BAD_BODIES[case]
    got, text = await cpe.post(data)
    assert got == status and text.strip()
    assert await device_count(pool) == 0
    # and the server keeps serving
    assert (await cpe.message(inform("OK")))[0] == 200
    assert await cpe.post(b"") == (204, b"")


async def test_oversize_body_is_413(acs: str, pool: asyncpg.Pool) -> None:
    c = Cpe(acs + "/")
    try:
        assert (await c.post(b" " * (9 * 1024 * 1024)))[0] == 413
    finally:
        await c.close()
    assert await device_count(pool) == 0


async def test_json_content_type_is_415(cpe: Cpe, pool: asyncpg.Pool) -> None:
    status, _ = await cpe.post(b"{}", headers={"Content-Type": "application/json"})
    assert status == 415


async def test_inform_mid_session_gets_fault_8001_and_changes_nothing(
    cpe: Cpe, pool: asyncpg.Pool
) -> None:
    await cpe.message(inform("MID", m.ParameterValue("A.B", "1")))
    before = await pool.fetchrow("SELECT last_inform FROM devices")
    status, reply = await cpe.message(inform("MID", m.ParameterValue("A.B", "2")))
    assert status == 200 and isinstance(reply, m.Fault) and reply.code == 8001
    assert await pool.fetchval("SELECT last_inform FROM devices") == before["last_inform"]
    assert await pool.fetchval("SELECT value FROM device_params WHERE path = 'A.B'") == "1"
    assert await cpe.post(b"") == (204, b"")


async def test_unknown_method_gets_fault_8000(cpe: Cpe) -> None:
    data = soap.encode(inform("U"), id="1").replace(b"cwmp:Inform>", b"cwmp:X_Ping>")
    status, body = await cpe.post(data)
    env = soap.decode(body)
    assert status == 200 and isinstance(env.body, m.Fault) and env.body.code == 8000  # type: ignore[union-attr]


async def test_health_ready_and_metrics(acs: str, cpe: Cpe) -> None:
    await cpe.message(inform("M"))
    await cpe.post(b"")
    async with aiohttp.ClientSession() as http:
        async with http.get(acs + "/health") as r:
            assert r.status == 200
        async with http.get(acs + "/ready") as r:
            assert r.status == 200 and (await r.json())["status"] == "ready"
        async with http.get(acs + "/metrics") as r:
            text = await r.text()
    assert 'chronos_cwmp_sessions_total{outcome="ok"}' in text
    assert "chronos_cwmp_inform_seconds_bucket" in text


async def test_an_internal_error_gives_the_device_back_and_the_server_keeps_serving(
    cpe: Cpe, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from acs import session as s

    await cpe.message(inform("BUG"))

    def broken(self: s.Session) -> s.Reply:
        raise RuntimeError("a bug")

    monkeypatch.setattr(s.Session, "next_reply", broken)
    assert (await cpe.post(b""))[0] == 500
    assert await pool.fetchval("SELECT session_id FROM devices") is None
    monkeypatch.undo()
    assert (await cpe.message(inform("BUG")))[0] == 200
    assert await cpe.post(b"") == (204, b"")
