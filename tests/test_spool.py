"""The agent's spool: reports kept in order until acknowledged, bounded, and durable."""

from __future__ import annotations

from pathlib import Path

from agents.agent import Agent, AgentSettings
from agents.spool import Spool
from schemas import frames as f


def sample(n: int) -> f.Sample:
    return f.Sample(1, "m", {"i": str(n)}, 1_700_000_000_000 + n, float(n))


def report_of(spool: Spool, seq: int) -> f.Report:
    frame = f.decode(spool.frame(seq))
    assert isinstance(frame, f.Report)
    return frame


def test_reports_are_numbered_and_kept_until_acknowledged() -> None:
    spool = Spool()
    seqs = [spool.add([sample(i)], []) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    spool.ack(2)
    spool.ack(9)  # unknown: ignored
    assert spool.pending() == [1, 3, 4, 5]
    spool.ack_through(3)
    assert spool.pending() == [4, 5]
    assert report_of(spool, 4).samples == (sample(3),)
    assert spool.first_after(4) == 5 and spool.first_after(5) is None


def test_a_full_memory_spool_drops_the_oldest_and_counts_it() -> None:
    one = len(f.encode(f.Report(1, (sample(0),))))
    spool = Spool(max_bytes=3 * one + 2)
    for i in range(5):
        spool.add([sample(i)], [])
    assert spool.pending() == [3, 4, 5] and spool.dropped == 2


def test_overflow_goes_to_disk_and_comes_back_in_order(tmp_path: Path) -> None:
    one = len(f.encode(f.Report(1, (sample(0),))))
    spool = Spool(max_bytes=2 * one + 2, directory=tmp_path)
    for i in range(6):
        spool.add([sample(i)], [])
    assert spool.dropped == 0 and len(list(tmp_path.iterdir())) == 6
    got = []
    while (seq := spool.first_after(0)) is not None:
        got.append(report_of(spool, seq).samples[0].value)
        spool.ack(seq)
    assert got == [0, 1, 2, 3, 4, 5]
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_spool_drops_the_oldest(tmp_path: Path) -> None:
    one = len(f.encode(f.Report(1, (sample(0),))))
    spool = Spool(max_bytes=one, directory=tmp_path, max_disk_bytes=3 * one + 2)
    for i in range(5):
        spool.add([sample(i)], [])
    assert spool.dropped == 2 and spool.pending() == [3, 4, 5]
    assert len(list(tmp_path.iterdir())) == 3


def test_a_restarted_agent_resends_what_its_predecessor_left(tmp_path: Path) -> None:
    first = Spool(directory=tmp_path)
    for i in range(4):
        first.add([sample(i)], [f.Event(1, "e", 5, {"i": i})])
    first.ack(1)
    (tmp_path / "garbage.report").write_bytes(b"\xc1\xc1")
    second = Spool(directory=tmp_path)
    assert second.pending() == [1, 2, 3]  # renumbered in the new process's sequence
    assert [report_of(second, s).samples[0].value for s in (1, 2, 3)] == [1, 2, 3]
    assert report_of(second, 1).events == (f.Event(1, "e", 5, {"i": 1}),)
    assert second.add([sample(9)], []) == 4


def test_an_event_too_big_for_a_frame_is_split_off_or_replaced_never_blocking() -> None:
    agent = Agent(AgentSettings(controller="http://127.0.0.1:1", token="t", agent_id="a"), {})
    big = f.Event(7, "olt.inventory", 1, {"blob": "x" * (f.MAX_FRAME_BYTES // 2)})
    huge = f.Event(8, "olt.inventory", 2, {"blob": "x" * (f.MAX_FRAME_BYTES + 1)})
    samples = [f.Sample(1, "m", {}, 1, float(i)) for i in range(10)]
    agent._collect(samples, [big, big, huge, f.Event(9, "poll_failed", 3, {})])
    agent.flush()
    reports = [f.decode(agent.spool.frame(seq)) for seq in range(1, agent.spool.last_seq + 1)]
    assert all(len(agent.spool.frame(r.seq)) <= f.MAX_FRAME_BYTES for r in reports)
    assert [s.value for r in reports for s in r.samples] == [float(i) for i in range(10)]
    events = [(e.target, e.kind) for r in reports for e in r.events]
    assert events == [
        (7, "olt.inventory"),
        (7, "olt.inventory"),
        (8, "event_too_large"),
        (9, "poll_failed"),
    ]
