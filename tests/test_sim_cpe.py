"""A simulated CPE behaves like a TR-069 CPE towards a real ACS over HTTP.

The ACS here is a small scripted aiohttp app on 127.0.0.1 (our real ACS is tested
elsewhere): it answers each Inform, then sends the RPCs its script lists, then 204. It
keeps every body it received, so tests assert on what the CPE put on the wire.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from acs import messages as m
from acs import soap
from tools.sim import cpe as cpe_module
from tools.sim.cpe import ConnectionRequestServer, CpeFleet, SessionCookies, SimulatedCpe
from tools.sim.datamodel import DataModel
from tools.sim.session import CpeSession, Quirks, SessionFailed, State
from tools.sim.stats import FleetStats, Progress, SessionRecord

IGD = "InternetGatewayDevice"
WLAN_SSID = f"{IGD}.LANDevice.1.WLANConfiguration.1.SSID"
TIMEOUT = 10


@dataclass
class AcsSession:
    """One CWMP session as the scripted ACS saw it."""

    number: int
    inform: m.Inform
    script: list[m.Message | bytes]
    hold: bool = False
    bodies: list[bytes] = field(default_factory=list)  # every POST body after the Inform
    cookies: list[str | None] = field(default_factory=list)  # Cookie of every POST
    connections: set[int] = field(default_factory=set)
    answers: list[m.Message | None] = field(default_factory=list)  # CPE's messages
    envelopes: list[m.Envelope | None] = field(default_factory=list)

    @property
    def events(self) -> list[tuple[str, str]]:
        return [(e.event_code, e.command_key) for e in self.inform.events]


Script = Callable[[AcsSession], list[m.Message | bytes]]


class ScriptedAcs:
    """An ACS that plays a script per session and remembers everything."""

    def __init__(self, script: Script = lambda session: []) -> None:
        self.script = script
        self.hold_on_inform: Callable[[AcsSession], bool] = lambda session: False
        self.on_request: Callable[[AcsSession], object] = lambda session: None
        self.sessions: list[AcsSession] = []
        self.inform_status = 200
        self.files = {"fw-2.0.bin": b"\x7fFIRMWARE" * 100}
        self.url = ""
        self._by_key: dict[object, AcsSession] = {}
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/acs", self.cwmp)
        app.router.add_post("/old", self.moved)
        app.router.add_get("/files/{name}", self.file)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/acs"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def moved(self, request: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": "/acs"})

    async def file(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["name"])
        return web.Response(body=data) if data is not None else web.Response(status=404)

    async def cwmp(self, request: web.Request) -> web.Response:
        body = await request.read()
        envelope = soap.decode(body) if body.strip() else None
        connection = id(request.transport)
        if envelope is not None and isinstance(envelope.body, m.Inform):
            if self.inform_status != 200:
                return web.Response(status=self.inform_status)
            session = AcsSession(len(self.sessions), envelope.body, [])
            session.script = list(self.script(session))
            session.hold = self.hold_on_inform(session)
            session.connections.add(connection)
            self.sessions.append(session)
            key = f"s{session.number}"
            self._by_key[key] = self._by_key[connection] = session
            reply = soap.encode(
                m.InformResponse(1), id=envelope.header.id or "", hold_requests=session.hold or None
            )
            response = web.Response(body=reply, content_type="text/xml")
            response.headers["Set-Cookie"] = f"session={key}; Path=/; HttpOnly"
            return response
        cookie = request.headers.get("Cookie")
        key = cookie.split("session=")[1].split(";")[0] if cookie else connection
        session = self._by_key[key]
        session.bodies.append(body)
        session.cookies.append(cookie)
        session.connections.add(connection)
        session.envelopes.append(envelope)
        session.answers.append(envelope.body if envelope else None)
        self.on_request(session)
        if envelope is not None and isinstance(envelope.body, m.TransferComplete):
            reply = soap.encode(m.TransferCompleteResponse(), id=envelope.header.id or "")
            return web.Response(body=reply, content_type="text/xml")
        if not session.script:
            return web.Response(status=204)
        step = session.script.pop(0)
        payload = (
            step if isinstance(step, bytes) else soap.encode(step, id=f"acs-{len(session.bodies)}")
        )
        return web.Response(body=payload, content_type="text/xml")


@pytest.fixture
async def acs() -> AsyncIterator[ScriptedAcs]:
    server = ScriptedAcs()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def new_cpe(acs: ScriptedAcs, **options: object) -> SimulatedCpe:
    defaults: dict[str, object] = {"reboot_delay": 0.05, "periodic": False, "seed": 3}
    defaults.update(options)
    return SimulatedCpe(acs.url, **defaults)  # type: ignore[arg-type]


async def session_with(cpe: SimulatedCpe, *codes: str, after: int = 0) -> SessionRecord:
    async with asyncio.timeout(TIMEOUT):
        return await cpe.wait_for_session(
            lambda record: all(code in record.events for code in codes), after=after
        )


# --- the scenario of the brief: Inform, GPV, SPV, Reboot, then the boot ----------------


async def test_a_session_with_gpv_spv_and_reboot_ends_in_a_new_boot_session(
    acs: ScriptedAcs,
) -> None:
    acs.script = lambda session: (
        [
            m.GetParameterValues((f"{IGD}.DeviceInfo.SerialNumber", f"{IGD}.Time.")),
            m.SetParameterValues((m.ParameterValue(WLAN_SSID, "Chronos"),), "pk-1"),
            m.Reboot("reboot-42"),
        ]
        if session.number == 0
        else []
    )
    cpe = new_cpe(acs)
    async with cpe:
        rebooted = await session_with(cpe, "M Reboot")
    first, second = acs.sessions[0], acs.sessions[1]

    identity = cpe.datamodel.identity
    assert first.inform.device_id == m.DeviceIdStruct(
        identity.manufacturer, identity.oui, identity.product_class, identity.serial_number
    )
    assert first.events == [("0 BOOTSTRAP", ""), ("1 BOOT", "")]
    informed = {p.name for p in first.inform.parameters}
    assert f"{IGD}.DeviceInfo.SoftwareVersion" in informed
    assert f"{IGD}.ManagementServer.ParameterKey" in informed
    # Every request after the Inform echoed the session cookie.
    assert first.cookies == ["session=s0"] * 4
    empty, gpv, spv, reboot = first.answers
    assert empty is None and first.bodies[0] == b""
    assert isinstance(gpv, m.GetParameterValuesResponse)
    assert gpv.parameters[0] == m.ParameterValue(
        f"{IGD}.DeviceInfo.SerialNumber", identity.serial_number, "xsd:string"
    )
    assert {p.name for p in gpv.parameters[1:]} >= {f"{IGD}.Time.NTPServer1"}
    assert spv == m.SetParameterValuesResponse(0)
    assert isinstance(reboot, m.RebootResponse)
    # Responses carry the ID of the request they answer.
    assert [e.header.id for e in first.envelopes[1:] if e] == ["acs-1", "acs-2", "acs-3"]

    assert second.events == [("1 BOOT", ""), ("M Reboot", "reboot-42")]
    assert rebooted.events == ("1 BOOT", "M Reboot")
    second_values = {p.name: p.value for p in second.inform.parameters}
    assert second_values[f"{IGD}.ManagementServer.ParameterKey"] == "pk-1"
    assert cpe.datamodel[WLAN_SSID] == "Chronos"
    assert second.cookies == ["session=s1"]


async def test_the_inform_reports_what_the_datamodel_holds(acs: ScriptedAcs) -> None:
    cpe = new_cpe(acs, model="tr181")
    async with cpe:
        await session_with(cpe, "1 BOOT")
    inform = acs.sessions[0].inform
    assert inform.max_envelopes == 1
    assert inform.retry_count == 0
    assert list(inform.parameters) == cpe.datamodel.inform_parameters()
    assert acs.sessions[0].inform.current_time is not None


# --- connection requests -------------------------------------------------------------


async def test_a_digest_authenticated_connection_request_starts_a_session(
    acs: ScriptedAcs,
) -> None:
    cpe = new_cpe(acs)
    async with ConnectionRequestServer() as listener:
        url = listener.register(cpe)
        async with cpe:
            await session_with(cpe, "1 BOOT")
            assert acs.sessions[0].inform.parameters[5] == m.ParameterValue(
                f"{IGD}.ManagementServer.ConnectionRequestURL", url, "xsd:string"
            )
            username, password = cpe.connection_request_credentials
            async with aiohttp.ClientSession() as http:
                wrong = aiohttp.DigestAuthMiddleware(username, "not-it")
                async with http.get(url, middlewares=(wrong,)) as refused:
                    assert refused.status == 401
                right = aiohttp.DigestAuthMiddleware(username, password)
                async with http.get(url, middlewares=(right,)) as accepted:
                    assert accepted.status == 200
            record = await session_with(cpe, "6 CONNECTION REQUEST", after=1)
    assert record.events == ("6 CONNECTION REQUEST",)
    assert len(acs.sessions) == 2
    assert listener.refused >= 1


async def test_connection_request_credentials_follow_the_acs_changing_them(
    acs: ScriptedAcs,
) -> None:
    user_param = f"{IGD}.ManagementServer.ConnectionRequestUsername"
    password_param = f"{IGD}.ManagementServer.ConnectionRequestPassword"
    acs.script = lambda session: (
        [
            m.SetParameterValues(
                (m.ParameterValue(user_param, "acs"), m.ParameterValue(password_param, "n3w"))
            )
        ]
        if session.number == 0
        else []
    )
    cpe = new_cpe(acs)
    async with ConnectionRequestServer() as listener:
        url = listener.register(cpe)
        async with cpe, aiohttp.ClientSession() as http:
            await session_with(cpe, "1 BOOT")
            assert cpe.connection_request_credentials == ("acs", "n3w")
            middleware = aiohttp.DigestAuthMiddleware("acs", "n3w")
            async with http.get(url, middlewares=(middleware,)) as response:
                assert response.status == 200
            await session_with(cpe, "6 CONNECTION REQUEST")


async def test_a_connection_request_during_a_session_is_served_right_after_it(
    acs: ScriptedAcs,
) -> None:
    cpe = new_cpe(acs)
    acs.script = lambda session: [m.GetParameterValues((WLAN_SSID,))] if session.number == 0 else []
    # The request arrives while session 0 is still running (the ACS holds the reply).
    acs.on_request = lambda session: session.number == 0 and cpe.connection_request()
    async with cpe:
        record = await session_with(cpe, "6 CONNECTION REQUEST")
    assert record.index == 1
    assert [s.events[0][0] for s in acs.sessions[:2]] == ["0 BOOTSTRAP", "6 CONNECTION REQUEST"]


# --- events after the session: schedule, factory reset, periodic ---------------------------


async def test_schedule_inform_comes_back_with_scheduled_and_its_command_key(
    acs: ScriptedAcs,
) -> None:
    acs.script = lambda session: [m.ScheduleInform(1, "later")] if session.number == 0 else []
    cpe = new_cpe(acs)
    async with cpe:
        record = await session_with(cpe, "3 SCHEDULED")
    assert record.events == ("3 SCHEDULED", "M ScheduleInform")
    assert acs.sessions[1].events == [("3 SCHEDULED", ""), ("M ScheduleInform", "later")]


async def test_factory_reset_bootstraps_again_with_factory_values(acs: ScriptedAcs) -> None:
    acs.script = lambda session: (
        [m.SetParameterValues((m.ParameterValue(WLAN_SSID, "Custom"),)), m.FactoryReset()]
        if session.number == 0
        else []
    )
    cpe = new_cpe(acs)
    factory_ssid = cpe.datamodel[WLAN_SSID]
    async with cpe:
        await session_with(cpe, "0 BOOTSTRAP", after=1)
    assert acs.sessions[1].events == [("0 BOOTSTRAP", ""), ("1 BOOT", "")]
    assert cpe.datamodel[WLAN_SSID] == factory_ssid


async def test_periodic_informs_follow_the_interval(acs: ScriptedAcs) -> None:
    cpe = new_cpe(acs, periodic=True, periodic_interval=1, jitter=0.0)
    async with cpe:
        record = await session_with(cpe, "2 PERIODIC")
    assert record.events == ("2 PERIODIC",)
    gap = record.started - cpe.sessions[0].started
    assert 0.8 < gap < 3


async def test_an_active_notification_starts_a_value_change_session(acs: ScriptedAcs) -> None:
    code = f"{IGD}.DeviceInfo.ProvisioningCode"  # active notification is forced on
    cpe = new_cpe(acs)
    async with cpe:
        await session_with(cpe, "1 BOOT")
        cpe.change_value(code, "PROV-7")
        await session_with(cpe, "4 VALUE CHANGE")
    changed = {p.name: p.value for p in acs.sessions[1].inform.parameters}
    assert changed[code] == "PROV-7"


# --- downloads and HoldRequests -------------------------------------------------------------


async def test_a_firmware_download_reboots_and_reports_transfer_complete_after_held_requests(
    acs: ScriptedAcs,
) -> None:
    version = f"{IGD}.DeviceInfo.SoftwareVersion"
    acs.script = lambda session: (
        [m.Download("dl-1", "1 Firmware Upgrade Image", f"{acs.base}/files/fw-2.0.bin")]
        if session.number == 0
        else [m.GetParameterValues((version,))]
        if session.number == 1
        else []
    )
    acs.hold_on_inform = lambda session: session.number == 1
    cpe = new_cpe(acs)
    async with cpe:
        await session_with(cpe, "7 TRANSFER COMPLETE")
    assert isinstance(acs.sessions[0].answers[1], m.DownloadResponse)
    assert acs.sessions[0].answers[1].status == 1
    after = acs.sessions[1]
    assert after.events == [("1 BOOT", ""), ("7 TRANSFER COMPLETE", ""), ("M Download", "dl-1")]
    # HoldRequests: an empty POST first, the TransferComplete only after the ACS's 204.
    empty, gpv, transfer, final = after.answers
    assert empty is None
    assert isinstance(gpv, m.GetParameterValuesResponse)
    assert gpv.parameters[0].value == "fw-2.0"
    assert isinstance(transfer, m.TransferComplete)
    assert (transfer.command_key, transfer.fault) == ("dl-1", m.FaultStruct(0, ""))
    assert transfer.start_time is not None and transfer.complete_time is not None
    assert final is None


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("{base}/files/missing.bin", 9016),
        ("ftp://127.0.0.1/fw.bin", 9013),
        ("http://192.0.2.10/fw.bin", 9015),
        ("http://127.0.0.1:1/fw.bin", 9015),
    ],
)
async def test_a_failed_download_reports_its_fault_without_rebooting(
    acs: ScriptedAcs, url: str, code: int
) -> None:
    acs.script = lambda session: (
        [m.Download("dl-x", "1 Firmware Upgrade Image", url.format(base=acs.base))]
        if session.number == 0
        else []
    )
    cpe = new_cpe(acs)
    version_before = cpe.datamodel[f"{IGD}.DeviceInfo.SoftwareVersion"]
    async with cpe:
        record = await session_with(cpe, "7 TRANSFER COMPLETE")
    assert "1 BOOT" not in record.events
    transfer = acs.sessions[1].answers[0]
    assert isinstance(transfer, m.TransferComplete)
    assert transfer.fault.code == code
    assert cpe.datamodel[f"{IGD}.DeviceInfo.SoftwareVersion"] == version_before


# --- faults -----------------------------------------------------------------------------------

# A method the simulator does not implement (A.4.1.8, CWMP 1.1 and later).
SCHEDULE_DOWNLOAD = (
    b'<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"'
    b' xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soap-env:Header>'
    b'<cwmp:ID soap-env:mustUnderstand="1">up-1</cwmp:ID></soap-env:Header><soap-env:Body>'
    b"<cwmp:ScheduleDownload><CommandKey>u</CommandKey>"
    b"<FileType>1 Firmware Upgrade Image</FileType><URL>http://127.0.0.1/u</URL>"
    b"</cwmp:ScheduleDownload></soap-env:Body></soap-env:Envelope>"
)


async def test_unknown_rpcs_and_bad_arguments_are_answered_with_cwmp_faults(
    acs: ScriptedAcs,
) -> None:
    acs.script = lambda session: (
        [
            SCHEDULE_DOWNLOAD,
            m.SetParameterValues(
                (
                    m.ParameterValue(f"{IGD}.DeviceInfo.SerialNumber", "X"),
                    m.ParameterValue(WLAN_SSID, "fine"),
                )
            ),
            m.GetParameterNames(f"{IGD}.NoSuch.", True),
            m.AddObject(f"{IGD}.DeviceInfo."),
        ]
        if session.number == 0
        else []
    )
    cpe = new_cpe(acs)
    async with cpe:
        record = await session_with(cpe, "1 BOOT")
    unknown, spv, gpn, add = acs.sessions[0].answers[1:]
    assert isinstance(unknown, m.Fault) and unknown.code == 9000
    assert acs.sessions[0].envelopes[1].header.id == "up-1"  # type: ignore[union-attr]
    assert isinstance(spv, m.Fault) and spv.code == 9003
    assert [(p.name, p.code) for p in spv.parameter_faults] == [
        (f"{IGD}.DeviceInfo.SerialNumber", 9008)
    ]
    assert isinstance(gpn, m.Fault) and gpn.code == 9005
    assert isinstance(add, m.Fault) and add.code == 9005
    assert record.ok
    assert record.faults == {9000: 1, 9003: 1, 9005: 2}
    assert cpe.datamodel[WLAN_SSID] != "fine"  # all or nothing


async def test_a_failing_acs_fails_the_session_and_the_events_are_retried(
    acs: ScriptedAcs,
) -> None:
    acs.inform_status = 503
    cpe = new_cpe(acs)
    cpe.datamodel.set_value(f"{IGD}.ManagementServer.CWMPRetryMinimumWaitInterval", "1")
    cpe.datamodel.set_value(f"{IGD}.ManagementServer.CWMPRetryIntervalMultiplier", "1000")
    async with cpe:
        async with asyncio.timeout(TIMEOUT):
            failed = await cpe.wait_for_session()
        assert not failed.ok
        assert "HTTP 503" in failed.error
        acs.inform_status = 200
        await session_with(cpe, "0 BOOTSTRAP", after=1)
    retried = acs.sessions[0].inform
    assert retried.retry_count >= 1
    assert [e.event_code for e in retried.events] == ["0 BOOTSTRAP", "1 BOOT"]
    assert cpe.stats.sessions_failed >= 1


async def test_the_first_inform_follows_a_redirect_and_the_session_stays_there(
    acs: ScriptedAcs,
) -> None:
    acs.script = lambda session: [m.GetRPCMethods()] if session.number == 0 else []
    cpe = SimulatedCpe(f"{acs.base}/old", reboot_delay=0.05, periodic=False)
    async with cpe:
        record = await session_with(cpe, "1 BOOT")
    assert record.ok
    methods = acs.sessions[0].answers[1]
    assert isinstance(methods, m.GetRPCMethodsResponse)
    assert "Download" in methods.methods


# --- quirks on the wire ----------------------------------------------------------------------


@pytest.mark.parametrize("index", range(1, 8))
async def test_each_quirk_shows_on_the_wire_and_the_session_still_completes(
    acs: ScriptedAcs, index: int
) -> None:
    quirks = Quirks.variety(index)
    acs.script = lambda session: (
        [m.GetParameterValues((f"{IGD}.Time.Enable",))] if session.number == 0 else []
    )
    cpe = new_cpe(acs, quirks=quirks)
    async with cpe:
        record = await session_with(cpe, "1 BOOT")
    assert record.ok
    session = acs.sessions[0]
    empty_body, answer_body = session.bodies
    gpv = session.answers[1]
    assert isinstance(gpv, m.GetParameterValuesResponse)
    assert gpv.parameters[0].value == ("1" if quirks.boolean_digits else "true")
    version = 0 if quirks.cwmp_version is None else quirks.cwmp_version
    assert f"urn:dslforum-org:cwmp-1-{version}".encode() in answer_body
    assert answer_body.startswith(b"<?xml") == quirks.xml_declaration
    assert (b"Header" in answer_body) == quirks.soap_header
    assert (empty_body == b"") != quirks.empty_post_envelope
    if not quirks.cookies:
        assert session.cookies == [None, None]
        assert len(session.connections) == 1  # one TCP connection carried the session
    elif quirks.cookie_attributes:
        assert session.cookies[0] == '$Version="1"; session=s0; $Path="/"'
    else:
        assert session.cookies == ["session=s0", "session=s0"]


def test_session_cookies_echo_set_cookie_and_forget_expired_ones() -> None:
    jar = SessionCookies()
    jar.update(["a=1; Path=/; HttpOnly", "b=2; Max-Age=60"])
    assert jar.header() == "a=1; b=2"
    jar.update(["a=gone; Max-Age=0", "b=3; Expires=Wed, 21 Oct 2015 07:28:00 GMT"])
    assert jar.header() is None


# --- the session machine without sockets --------------------------------------------------


def inform_response(hold: bool | None = None) -> bytes:
    return soap.encode(m.InformResponse(1), id="1", hold_requests=hold)


def test_a_cpe_request_is_sent_right_after_inform_response_unless_held() -> None:
    transfer = m.TransferComplete("k", m.FaultStruct(), None, None)
    held = CpeSession(DataModel.generate(), [m.EventStruct("7 TRANSFER COMPLETE")], [transfer])
    held.start()
    assert held.receive(200, inform_response(hold=True)) == b""
    sent = held.receive(204, b"")
    assert sent is not None
    assert isinstance(soap.decode(sent).body, m.TransferComplete)  # type: ignore[union-attr]

    free = CpeSession(DataModel.generate(), [m.EventStruct("7 TRANSFER COMPLETE")], [transfer])
    free.start()
    sent = free.receive(200, inform_response())
    assert isinstance(soap.decode(sent).body, m.TransferComplete)  # type: ignore[union-attr, arg-type]
    assert free.receive(200, soap.encode(m.TransferCompleteResponse(), id="2")) == b""
    assert free.receive(204, b"") is None
    assert free.state is State.DONE
    assert free.delivered == [transfer]


def test_a_faulted_cpe_request_is_kept_for_a_later_session() -> None:
    transfer = m.TransferComplete("k", m.FaultStruct(), None, None)
    session = CpeSession(DataModel.generate(), [m.EventStruct("1 BOOT")], [transfer])
    session.start()
    session.receive(200, inform_response())
    retry = soap.encode(m.Fault(8005, "Retry request", (), "Server"), id="2")
    assert session.receive(200, retry) == b""
    assert session.receive(204, b"") is None
    assert session.delivered == []


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b""),
        (200, b"<not-xml"),
        (200, soap.encode(m.GetParameterValues(("x",)), id="1")),  # not an InformResponse
        (204, b""),  # an Inform needs an answer
    ],
)
def test_a_wrong_answer_to_the_inform_fails_the_session(status: int, body: bytes) -> None:
    session = CpeSession(DataModel.generate(), [m.EventStruct("1 BOOT")])
    session.start()
    with pytest.raises(SessionFailed):
        session.receive(status, body)
    assert session.state is State.FAILED
    assert not session.inform_delivered


def test_booleans_in_the_inform_follow_the_quirk() -> None:
    model = DataModel.generate("tr181")
    plain = soap.decode(CpeSession(model, []).start())
    digits = soap.decode(CpeSession(model, [], quirks=Quirks(boolean_digits=True)).start())
    name = "Device.ManagementServer.AliasBasedAddressing"

    def value(envelope: m.Envelope | None) -> str:
        assert envelope is not None and isinstance(envelope.body, m.Inform)
        return next(p.value for p in envelope.body.parameters if p.name == name)

    assert (value(plain), value(digits)) == ("false", "0")


# --- the fleet and the command line ----------------------------------------------------------


async def test_a_fleet_runs_every_cpe_and_answers_connection_requests(acs: ScriptedAcs) -> None:
    acs.script = lambda session: [m.GetParameterValues((f"{IGD}.DeviceInfo.UpTime",))]
    async with CpeFleet(acs.url, 6, spread=0.2, reboot_delay=0.05, quirks="mixed") as fleet:
        async with asyncio.timeout(TIMEOUT):
            await fleet.wait_for(lambda stats: stats.sessions_ok >= 6)
        target = fleet.cpes[2]
        username, password = target.connection_request_credentials
        async with aiohttp.ClientSession() as http:
            middleware = aiohttp.DigestAuthMiddleware(username, password)
            async with http.get(target.connection_request_url, middlewares=(middleware,)) as r:
                assert r.status == 200
        await session_with(target, "6 CONNECTION REQUEST")
        stats = fleet.stats
    assert len({s.inform.device_id.serial_number for s in acs.sessions}) == 6
    assert stats.sessions_failed == 0
    assert stats.rpcs["GetParameterValues"] == stats.sessions_ok
    assert stats.connection_requests == 1
    assert stats.events["0 BOOTSTRAP"] == 6
    assert stats.percentile(0.5) is not None
    assert "sessions: 7 ok, 0 failed" in stats.summary()


def test_progress_rewrites_one_line_on_a_tty_and_prints_lines_otherwise() -> None:
    stats = FleetStats()
    tty, log = io.StringIO(), io.StringIO()
    on_tty, in_log = Progress(stats, tty, tty=True), Progress(stats, log, tty=False)
    for _ in range(2):
        on_tty.show()
        in_log.show()
    assert tty.getvalue().count("\r") == 2 and "\n" not in tty.getvalue()
    assert log.getvalue().count("\n") == 2 and "\r" not in log.getvalue()
    assert "sessions 0 ok / 0 failed" in log.getvalue()


async def test_the_command_line_runs_a_short_fleet_and_prints_a_summary(
    acs: ScriptedAcs, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--acs", acs.url, "--count", "3", "--spread", "0", "--duration", "1"]
    status = await cpe_module.main([*argv, "--model", "tr181", "--progress-every", "0.3"])
    out = capsys.readouterr().out
    assert status == 0
    assert "simulated 3 CPEs" in out
    assert "sessions: 3 ok, 0 failed" in out
    assert len(acs.sessions) == 3
