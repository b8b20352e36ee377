"""The session state machine and task runners, with no socket and no database: the test
plays the CPE and the store, and checks what the ACS core answers and records."""

from __future__ import annotations

from typing import Any

import pytest

from acs import messages as m
from acs import session as s
from acs import tree
from acs.faults import AcsInvalidArguments, RequestDenied
from acs.tasks import TaskRecord, task_id_from_key, task_key

IGD = "InternetGatewayDevice"


def make_inform(
    *events: tuple[str, str], parameter_key: str = "", serial: str = "SN1"
) -> m.Envelope:
    return m.Envelope(
        m.Header(id="1"),
        m.Inform(
            m.DeviceIdStruct("Acme", "00AA11", "Box", serial),
            tuple(m.EventStruct(c, k) for c, k in events or [("2 PERIODIC", "")]),
            1,
            None,
            0,
            (m.ParameterValue(f"{IGD}.ManagementServer.ParameterKey", parameter_key),),
        ),
        "urn:dslforum-org:cwmp-1-2",
    )


def wrap(body: m.Message) -> m.Envelope:
    return m.Envelope(m.Header(id="7"), body)


class Harness:
    """Plays the store: hands out `tasks` when asked, collects records."""

    def __init__(self, tasks: list[TaskRecord] | None = None, **config: Any) -> None:
        self.session = s.Session("sid", s.SessionConfig(**config))
        self.tasks = list(tasks or [])
        self.records: list[s.Record] = []
        self.sent: list[m.Message] = []
        self.fetches = 0

    def send(self, envelope: m.Envelope | None) -> s.Send | s.End:
        self.session.receive(envelope)
        while True:
            reply = self.session.next_reply()
            self.records += self.session.take_records()
            if isinstance(reply, s.FetchTasks):
                self.fetches += 1
                done = {r.task_id for r in self.records if isinstance(r, s.TaskFinished)}
                self.session.load_tasks([t for t in self.tasks if t.id not in done])
                continue
            if isinstance(reply, s.Send):
                self.sent.append(reply.message)
            return reply

    def start(self, envelope: m.Envelope | None = None) -> s.Send | s.End:
        reply = self.send(envelope or make_inform())
        assert isinstance(reply, s.Send) and isinstance(reply.message, m.InformResponse)
        return self.send(None)

    def of(self, kind: type) -> list[Any]:
        return [r for r in self.records if isinstance(r, kind)]


def test_device_id_is_escaped_like_genieacs() -> None:
    assert (
        s.device_id("00236a", "96318REF", "SR360NA0A4-0003196")
        == "00236a-96318REF-SR360NA0A4%2D0003196"
    )
    assert (
        s.device_id("00147F", "SpeedTouch 780", "CP0611JTLNW")
        == "00147F-SpeedTouch%20780-CP0611JTLNW"
    )
    assert s.device_id("00AA11", "", "SN") == "00AA11-SN"
    assert s.device_id("00AA11", "Bé", "1") == "00AA11-B%C3%A9-1"


def test_periodic_session_without_tasks_is_inform_then_204() -> None:
    h = Harness()
    assert h.start() == s.End()
    inform = h.of(s.InformRecord)[0]
    assert inform.device_id == "00AA11-Box-SN1" and inform.cwmp_ns.endswith("1-2")
    assert h.fetches == 1 and h.session.state is s.State.ENDED


def test_a_session_must_start_with_an_inform() -> None:
    h = Harness()
    with pytest.raises(s.ProtocolError, match="starts with an Inform"):
        h.session.receive(None)
    with pytest.raises(s.ProtocolError, match="starts with an Inform"):
        h.session.receive(wrap(m.GetRPCMethodsResponse(())))


def test_inform_inside_a_session_is_refused_with_8001_and_changes_nothing() -> None:
    h = Harness()
    h.send(make_inform())
    with pytest.raises(s.ProtocolError) as err:
        h.session.receive(make_inform())
    assert isinstance(err.value.fault, RequestDenied)
    assert h.session.state is s.State.CPE_REQUESTS and h.session.take_records() == []


def test_inform_without_serial_number_is_refused_with_8003() -> None:
    h = Harness()
    with pytest.raises(s.ProtocolError) as err:
        h.session.receive(make_inform(serial=""))
    assert isinstance(err.value.fault, AcsInvalidArguments)


def test_cwmp_session_timeout_header_is_honoured() -> None:
    env = make_inform()
    env = m.Envelope(m.Header(id="1", session_timeout=90), env.body, env.cwmp_ns)
    h = Harness(timeout=30)
    h.send(env)
    assert h.session.timeout == 90


@pytest.mark.parametrize(
    ("request_", "reply", "kind"),
    [
        (
            m.TransferComplete("cc-5", m.FaultStruct(), None, None),
            m.TransferCompleteResponse(),
            s.TransferRecord,
        ),
        (m.GetRPCMethods(), m.GetRPCMethodsResponse(m.ACS_METHODS), None),
        (
            m.RequestDownload("1 Firmware Upgrade Image"),
            m.RequestDownloadResponse(),
            s.DeviceEventRecord,
        ),
        (
            m.Kicked("cmd", "ref", "arg", "http://next/"),
            m.KickedResponse("http://next/"),
            s.DeviceEventRecord,
        ),
        (
            m.AutonomousTransferComplete("", "u", True, "1", 1, "", m.FaultStruct(), None, None),
            m.AutonomousTransferCompleteResponse(),
            s.DeviceEventRecord,
        ),
    ],
)
def test_each_cpe_request_is_answered_and_recorded(
    request_: m.Message, reply: m.Message, kind: type | None
) -> None:
    h = Harness()
    h.send(make_inform())
    assert h.send(wrap(request_)) == s.Send(reply)
    if kind is not None:
        assert len(h.of(kind)) == 1
    assert h.send(None) == s.End()


def test_get_parameter_values_task_runs_and_updates_the_tree() -> None:
    task = TaskRecord(1, "getParameterValues", {"names": [f"{IGD}.DeviceInfo.SoftwareVersion"]})
    h = Harness([task])
    reply = h.start()
    assert reply == s.Send(m.GetParameterValues((f"{IGD}.DeviceInfo.SoftwareVersion",)))
    value = m.ParameterValue(f"{IGD}.DeviceInfo.SoftwareVersion", "2.0")
    assert h.send(wrap(m.GetParameterValuesResponse((value,)))) == s.End()
    [finished] = h.of(s.TaskFinished)
    assert finished.task_id == 1 and finished.status == "done"
    assert finished.update.values == (value,)
    assert h.fetches == 2  # once on the empty POST, once before ending


def test_tasks_run_in_order_and_a_fault_moves_on_to_the_next() -> None:
    tasks = [
        TaskRecord(1, "getParameterValues", {"names": ["X.Bad"]}),
        TaskRecord(2, "reboot", {}),
    ]
    h = Harness(tasks)
    assert h.start() == s.Send(m.GetParameterValues(("X.Bad",)))
    reply = h.send(wrap(m.Fault(9005, "Invalid parameter name")))
    assert reply == s.Send(m.Reboot(task_key(2)))
    [failed] = h.of(s.TaskFailed)
    assert failed.task_id == 1 and failed.code == "cwmp.9005"
    assert h.send(wrap(m.RebootResponse())) == s.End()
    assert [r.task_id for r in h.of(s.TaskFinished)] == [2]


def test_spv_carries_the_task_key_and_typed_values() -> None:
    task = TaskRecord(9, "setParameterValues", {"values": [["A.Enable", "true", "xsd:boolean"]]})
    h = Harness([task])
    h.session.set_options({"boolean_style": "digit"})
    reply = h.start()
    assert reply == s.Send(
        m.SetParameterValues((m.ParameterValue("A.Enable", "1", "xsd:boolean"),), "cc-9")
    )
    h.send(wrap(m.SetParameterValuesResponse(0)))
    [finished] = h.of(s.TaskFinished)
    assert finished.update.values == (m.ParameterValue("A.Enable", "true", "xsd:boolean"),)


def test_spv_fault_names_the_failing_parameters() -> None:
    task = TaskRecord(3, "setParameterValues", {"values": [["A.B", "x", "xsd:string"]]})
    h = Harness([task])
    h.start()
    h.send(wrap(m.Fault(9003, "Invalid arguments", (m.ParameterFault("A.B", 9008, "read-only"),))))
    [failed] = h.of(s.TaskFailed)
    assert failed.detail == {
        "code": 9003,
        "string": "Invalid arguments",
        "parameters": [{"name": "A.B", "code": 9008, "string": "read-only"}],
    }


def test_spv_already_applied_before_a_crash_is_not_sent_again() -> None:
    task = TaskRecord(4, "setParameterValues", {"values": [["A.B", "x", "xsd:string"]]})
    h = Harness([task])
    assert h.start(make_inform(parameter_key="cc-4")) == s.End()
    [finished] = h.of(s.TaskFinished)
    assert finished.result == {"reconciled": "ParameterKey"}
    assert h.session.rpcs_sent == 0


def test_reboot_confirmed_by_m_reboot_event_is_not_repeated() -> None:
    h = Harness([TaskRecord(5, "reboot", {})])
    assert h.start(make_inform(("1 BOOT", ""), ("M Reboot", "cc-5"))) == s.End()
    assert h.session.rpcs_sent == 0
    assert h.of(s.TaskFinished)[0].result == {"reconciled": "M Reboot"}


def test_refresh_object_lists_then_reads_leaves_in_batches() -> None:
    h = Harness([TaskRecord(6, "refreshObject", {"path": f"{IGD}.LANDevice"})], gpv_batch=2)
    reply = h.start()
    assert reply == s.Send(m.GetParameterNames(f"{IGD}.LANDevice.", False))
    names = (
        m.ParameterInfo(f"{IGD}.LANDevice.", False),
        m.ParameterInfo(f"{IGD}.LANDevice.1.", False),
        m.ParameterInfo(f"{IGD}.LANDevice.1.A", True),
        m.ParameterInfo(f"{IGD}.LANDevice.1.B", False),
        m.ParameterInfo(f"{IGD}.LANDevice.1.C", False),
    )
    reply = h.send(wrap(m.GetParameterNamesResponse(names)))
    assert reply == s.Send(m.GetParameterValues((f"{IGD}.LANDevice.1.A", f"{IGD}.LANDevice.1.B")))
    [step] = h.of(s.TaskStep)
    assert step.update.prunes == (
        tree.Prune(f"{IGD}.LANDevice", False, frozenset(n.name.rstrip(".") for n in names)),
    )
    reply = h.send(
        wrap(m.GetParameterValuesResponse((m.ParameterValue(f"{IGD}.LANDevice.1.A", "1"),)))
    )
    assert reply == s.Send(m.GetParameterValues((f"{IGD}.LANDevice.1.C",)))
    assert h.send(wrap(m.GetParameterValuesResponse(()))) == s.End()
    assert h.of(s.TaskFinished)[0].task_id == 6


def test_refresh_of_a_vanished_object_deletes_it_from_the_tree() -> None:
    h = Harness([TaskRecord(7, "refreshObject", {"path": "A.B.3."})])
    h.start()
    assert h.send(wrap(m.Fault(9005, "no such object"))) == s.End()
    assert h.of(s.TaskFinished)[0].update.deletes == ("A.B.3",)


def test_refresh_of_a_parameter_falls_back_to_get_parameter_values() -> None:
    h = Harness([TaskRecord(8, "refreshObject", {"path": "A.B.C"})])
    assert h.start() == s.Send(m.GetParameterNames("A.B.C.", False))
    assert h.send(wrap(m.Fault(9005, "not an object"))) == s.Send(m.GetParameterValues(("A.B.C",)))
    h.send(wrap(m.GetParameterValuesResponse((m.ParameterValue("A.B.C", "v"),))))
    assert h.of(s.TaskFinished)[0].update.values == (m.ParameterValue("A.B.C", "v"),)


def test_add_object_lists_adds_sets_and_reads_back_the_instance() -> None:
    task = TaskRecord(10, "addObject", {"object": "W.P.", "values": [["Name", "x", "xsd:string"]]})
    h = Harness([task])
    assert h.start() == s.Send(m.GetParameterNames("W.P.", True))
    listing = m.GetParameterNamesResponse((m.ParameterInfo("W.P.1.", True),))
    assert h.send(wrap(listing)) == s.Send(m.AddObject("W.P.", "cc-10-1"))
    assert h.of(s.TaskStep)[-1].progress == {"before": [1]}
    reply = h.send(wrap(m.AddObjectResponse(2, 0)))
    assert reply == s.Send(m.SetParameterValues((m.ParameterValue("W.P.2.Name", "x"),), "cc-10-2"))
    assert h.of(s.TaskStep)[-1].progress == {"instance": 2}
    assert h.send(wrap(m.SetParameterValuesResponse(0))) == s.Send(
        m.GetParameterNames("W.P.2.", False)
    )
    h.send(wrap(m.GetParameterNamesResponse((m.ParameterInfo("W.P.2.Name", True),))))
    h.send(wrap(m.GetParameterValuesResponse((m.ParameterValue("W.P.2.Name", "x"),))))
    assert h.of(s.TaskFinished)[0].result == {"instance": 2}


def test_add_object_applied_before_a_crash_finds_the_new_instance_instead_of_adding_again() -> None:
    task = TaskRecord(11, "addObject", {"object": "W.P.", "values": []}, progress={"before": [1]})
    h = Harness([task])
    assert h.start(make_inform(parameter_key="cc-11-1")) == s.Send(
        m.GetParameterNames("W.P.", True)
    )
    listing = m.GetParameterNamesResponse(
        (m.ParameterInfo("W.P.1.", True), m.ParameterInfo("W.P.4.", True))
    )
    assert h.send(wrap(listing)) == s.Send(m.GetParameterNames("W.P.4.", False))
    h.send(wrap(m.GetParameterNamesResponse(())))
    assert h.of(s.TaskFinished)[0].result == {"instance": 4}
    assert [type(x) for x in h.sent] == [m.InformResponse, m.GetParameterNames, m.GetParameterNames]


def test_download_that_completes_later_leaves_the_task_waiting() -> None:
    task = TaskRecord(
        12, "download", {"url": "http://f/x.bin", "fileType": "1 Firmware Upgrade Image"}
    )
    h = Harness([task])
    reply = h.start()
    assert isinstance(reply, s.Send) and isinstance(reply.message, m.Download)
    assert reply.message.command_key == "cc-12"
    h.send(wrap(m.DownloadResponse(1)))
    assert h.of(s.TaskFinished)[0].status == "waiting"
    assert task_id_from_key("cc-12") == 12 and task_id_from_key("other") is None


def test_a_response_of_the_wrong_kind_faults_the_task() -> None:
    h = Harness([TaskRecord(13, "reboot", {})])
    h.start()
    h.send(wrap(m.FactoryResetResponse()))
    assert h.of(s.TaskFailed)[0].code == "cwmp.unexpected_response"


def test_a_response_with_nothing_outstanding_is_a_protocol_error() -> None:
    h = Harness()
    h.send(make_inform())
    with pytest.raises(s.ProtocolError, match="no request is outstanding"):
        h.session.receive(wrap(m.RebootResponse()))


def test_empty_post_instead_of_a_response_faults_that_task() -> None:
    h = Harness([TaskRecord(14, "reboot", {})])
    h.start()
    assert h.send(None) == s.End()
    assert h.of(s.TaskFailed)[0].code == "cwmp.no_response"


def test_cpe_request_between_rpcs_is_answered_and_the_rpc_still_completes() -> None:
    h = Harness([TaskRecord(15, "reboot", {})])
    h.start()
    tc = m.TransferComplete("x", m.FaultStruct(), None, None)
    assert h.send(wrap(tc)) == s.Send(m.TransferCompleteResponse())
    assert h.send(wrap(m.RebootResponse())) == s.End()
    assert h.of(s.TaskFinished)[0].task_id == 15


def test_too_many_rpcs_end_the_session_with_a_fault() -> None:
    tasks = [TaskRecord(i, "getRPCMethods", {}) for i in range(1, 6)]
    h = Harness(tasks, max_rpcs=3)
    h.start()
    h.send(wrap(m.GetRPCMethodsResponse(())))
    h.send(wrap(m.GetRPCMethodsResponse(())))
    assert h.send(wrap(m.GetRPCMethodsResponse(()))) == s.End()
    assert h.of(s.SessionFault)[0].code == "too_many_rpcs"


def test_a_task_queued_during_the_session_runs_before_it_ends() -> None:
    h = Harness([TaskRecord(1, "reboot", {})])
    h.start()
    h.tasks.append(TaskRecord(2, "factoryReset", {}))
    assert h.send(wrap(m.RebootResponse())) == s.Send(m.FactoryReset())


def test_unknown_task_name_fails_that_task_only() -> None:
    h = Harness([TaskRecord(1, "launchRocket", {}), TaskRecord(2, "reboot", {})])
    assert h.start() == s.Send(m.Reboot("cc-2"))
    assert h.of(s.TaskFailed)[0].code == "task.unknown"
