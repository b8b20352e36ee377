"""The agent stream's frames: every type round-trips, and garbage is refused by name."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import frames as f

SPEC = f.TargetSpec(
    id=7,
    kind="snmp",
    address="10.0.0.1",
    port=161,
    credentials={"version": "2c", "community": "s3cret"},
    labels={"zone": "pop1"},
    profile={"if": {"interval": 60}},
    epoch=12,
)

EVERY_FRAME: list[f.Frame] = [
    f.Hello("agent-1", "b00t", f.VERSION, {"zone": "pop1"}, 100, ("snmp",), "test/1"),
    f.Welcome("ctl-1", 1000, 6000, 41),
    f.Heartbeat(3),
    f.Assign((SPEC,), full=True),
    f.Revoke(((7, 12), (8, 13))),
    f.Revoked(((7, 12),)),
    f.Bye(),
    f.Report(
        5,
        (f.Sample(7, "if_in_bps", {"ifIndex": "1"}, 1_700_000_000_000, 12.5),),
        (f.Event(7, "poll_timeout", 1_700_000_000_000, {"group": "if"}),),
    ),
    f.Ack(5),
    f.Job(1, 7, "display", {"command": "display version"}, 30_000),
    f.JobProgress(1, "connected", {}),
    f.JobResult(1, True, {"lines": 3}),
    f.Error("BAD_FRAME", "why"),
]


@pytest.mark.parametrize("frame", EVERY_FRAME, ids=lambda fr: fr.TYPE)
def test_every_frame_type_survives_the_wire(frame: f.Frame) -> None:
    assert f.decode(f.encode(frame)) == frame


def test_every_frame_type_is_registered_once() -> None:
    assert {type(fr) for fr in EVERY_FRAME} == set(f.FRAMES.values())


def test_credentials_never_appear_in_a_target_specs_repr() -> None:
    assert "s3cret" not in repr(SPEC) and "s3cret" not in repr(f.Assign((SPEC,)))


labels = st.dictionaries(st.text(min_size=1, max_size=16), st.text(max_size=32), max_size=4)
samples = st.builds(
    f.Sample,
    st.integers(1, 2**40),
    st.text(min_size=1, max_size=40),
    labels,
    st.integers(0, 2**53),
    st.floats(allow_nan=False),
)


@given(st.integers(1, 2**62), st.lists(samples, max_size=30))
def test_reports_round_trip(seq: int, rows: list[f.Sample]) -> None:
    report = f.Report(seq, tuple(rows))
    assert f.decode(f.encode(report)) == report


def _raw(**fields: object) -> bytes:
    return msgpack.packb(fields, use_bin_type=True)


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        (b"\xc1", "not a msgpack frame"),
        (b"\x93\x01\x02\x03", "a frame is a map"),
        (_raw(t="launch"), "unknown frame type 'launch'"),
        (_raw(t=5), "unknown frame type 5"),
        (_raw(t="heartbeat", n=-1), "n must be an integer"),
        (_raw(t="heartbeat", n=True), "n must be an integer"),
        (_raw(t="ack"), "seq must be an integer"),
        (_raw(t="report", seq=1, samples=[[1, "m", {}, 5]]), "a sample is"),
        (_raw(t="report", seq=1, samples=[[1, "m", {}, 5, "x"]]), "value must be a number"),
        (_raw(t="report", seq=1, samples="all"), "samples and events must be lists"),
        (_raw(t="hello", agent="a", boot="b", version=1, capacity=0, kinds=[]), "capacity"),
        (_raw(t="hello", agent="", boot="b", version=1, capacity=1, kinds=[]), "agent must"),
        (_raw(t="hello", agent="a", boot="b", version=1, capacity=1, kinds="snmp"), "kinds"),
        (_raw(t="assign", targets=[{"id": 1}]), "target.kind"),
        (_raw(t="assign", targets=[], full="yes"), "full must be"),
        (_raw(t="revoke", targets=[[1]]), "[target, epoch]"),
        (_raw(t="job_result", job=1, ok="yes"), "ok must be"),
        (b"\x81\xa1t" + b"\xa4heartbeat"[:3], "not a msgpack frame"),
    ],
)
def test_garbage_is_refused_with_a_reason(data: bytes, complaint: str) -> None:
    with pytest.raises(f.FrameError) as caught:
        f.decode(data)
    assert complaint in str(caught.value)


def test_an_oversize_frame_is_refused_before_decoding() -> None:
    with pytest.raises(f.FrameError, match="exceeds"):
        f.decode(b"\x00" * (f.MAX_FRAME_BYTES + 1))


def test_a_report_over_the_sample_limit_is_refused() -> None:
    rows = [[1, "m", {}, 1, 1.0]] * (f.MAX_SAMPLES + 1)
    with pytest.raises(f.FrameError, match="more than"):
        f.decode(_raw(t="report", seq=1, samples=rows))
