"""Rates from counters (wraps, resets, restarts) and what the groups make of a walk:
pure functions, fed with the varbinds an agent would send."""

from __future__ import annotations

import pytest

from agents.driver import PollError
from agents.snmp import ber
from agents.snmp.counters import (
    Baseline,
    Rate,
    Reading,
    Reset,
    counter_rate,
    max_bytes_per_second,
    uptime_seconds,
)
from agents.snmp.groups import IF_COLUMNS, check_options, if_samples, table_samples, table_spec
from schemas.frames import Event, Sample

GBIT = 1e9 / 8 * 1.1  # a gigabit port's ceiling in bytes/s, as max_bytes_per_second gives it


def test_a_rising_counter_gives_its_per_second_rate() -> None:
    assert counter_rate(Reading(1000, 64), Reading(31000, 64), 300, GBIT) == Rate(100.0)


def test_a_32_bit_counter_that_wrapped_gives_the_rate_across_the_wrap() -> None:
    outcome = counter_rate(Reading(2**32 - 1000, 32), Reading(2000, 32), 10, GBIT)
    assert outcome == Rate(300.0)


def test_a_32_bit_counter_going_back_more_than_the_port_can_carry_is_a_reset() -> None:
    # A wrap would mean 2**32 - 100 bytes in 10 s: 3.4 Gbit/s on a gigabit port.
    outcome = counter_rate(Reading(1000, 32), Reading(900, 32), 10, GBIT)
    assert isinstance(outcome, Reset)
    assert "went back from 1000 to 900" in outcome.reason


def test_a_64_bit_counter_going_back_is_always_a_reset() -> None:
    outcome = counter_rate(Reading(10**12, 64), Reading(5, 64), 300, float("inf"))
    assert isinstance(outcome, Reset)


def test_first_reading_and_a_change_of_width_give_no_rate() -> None:
    assert counter_rate(None, Reading(5, 64), 300, GBIT) == Baseline()
    assert counter_rate(Reading(5, 32), Reading(9, 64), 300, GBIT) == Baseline()


def test_a_moved_discontinuity_marker_voids_the_difference() -> None:
    outcome = counter_rate(Reading(5, 64, 100), Reading(9, 64, 250), 300, GBIT)
    assert isinstance(outcome, Reset)


def test_uptime_going_back_is_a_restart_unless_its_own_wrap_explains_it() -> None:
    assert uptime_seconds(1000, 31000, 300) == 300
    assert uptime_seconds(500_000, 100, 300) is None
    # 497 days up: TimeTicks wrapped during a 5-minute poll interval.
    assert uptime_seconds(2**32 - 10_000, 20_000, 300) == 300


def test_port_speed_comes_from_ifhighspeed_when_ifspeed_saturates() -> None:
    assert max_bytes_per_second(10**9, 1000) == pytest.approx(10**9 / 8 * 1.1)
    assert max_bytes_per_second(2**32 - 1, 100_000) == pytest.approx(100e9 / 8 * 1.1)
    assert max_bytes_per_second(None, None) > 1e11


# --- the `if` group ----------------------------------------------------------------------


def if_walk(
    rows: dict[int, dict[str, int | bytes]],
) -> dict[ber.Oid, list[ber.VarBind]]:
    """ifTable/ifXTable columns as a walk returns them: rows are {column name: value}."""
    tags = {
        "descr": ber.OCTET_STRING,
        "name": ber.OCTET_STRING,
        "speed": ber.GAUGE32,
        "high_speed": ber.GAUGE32,
        "oper_status": ber.INTEGER,
        "hc_in_octets": ber.COUNTER64,
        "hc_out_octets": ber.COUNTER64,
        "discontinuity": ber.TIMETICKS,
    }
    out: dict[ber.Oid, list[ber.VarBind]] = {oid: [] for oid in IF_COLUMNS.values()}
    for index, row in sorted(rows.items()):
        for name, value in row.items():
            column = IF_COLUMNS[name]
            out[column].append(((*column, index), tags.get(name, ber.COUNTER32), value))
    return out


def by_metric(samples: list[Sample]) -> dict[tuple[str, str], float]:
    return {(s.metric, s.labels["ifIndex"]): s.value for s in samples}


def test_interfaces_give_bits_per_second_from_hc_counters_and_32_bit_ones_elsewhere() -> None:
    first = {
        3: {"name": b"GE0/0/1", "oper_status": 1, "hc_in_octets": 10**12, "hc_out_octets": 0,
            "in_octets": 5, "out_octets": 5, "in_errors": 10, "speed": 10**9},
        7: {"descr": b"Vlanif1", "oper_status": 2, "in_octets": 100, "out_octets": 200,
            "speed": 10**9},
    }  # fmt: skip
    second = {
        3: {
            **first[3],
            "hc_in_octets": 10**12 + 3_750_000_000,
            "hc_out_octets": 37_500,
            "in_errors": 40,
        },
        7: {**first[7], "in_octets": 100 + 300_000, "out_octets": 200},
    }
    samples, events, memory = if_samples(9, if_walk(first), 1000, 1_000_000, None)
    assert events == []
    assert by_metric(samples) == {("if_oper_status", "3"): 1.0, ("if_oper_status", "7"): 2.0}
    assert {s.labels["ifName"] for s in samples} == {"GE0/0/1", "Vlanif1"}
    samples, events, _ = if_samples(9, if_walk(second), 31000, 1_300_000, memory)
    assert events == []
    values = by_metric(samples)
    assert values[("if_in_bps", "3")] == pytest.approx(3_750_000_000 * 8 / 300)  # 100 Mbit/s
    assert values[("if_out_bps", "3")] == pytest.approx(1000.0)
    assert values[("if_in_errors_ps", "3")] == pytest.approx(0.1)
    assert values[("if_in_bps", "7")] == pytest.approx(8000.0)
    assert values[("if_out_bps", "7")] == 0.0
    assert all(s.ts_ms == 1_300_000 and s.target == 9 for s in samples)


def test_an_agent_restart_reports_one_counter_reset_and_no_rates_that_cycle() -> None:
    rows = {1: {"name": b"eth0", "oper_status": 1, "hc_in_octets": 5_000, "hc_out_octets": 0}}
    _, _, memory = if_samples(9, if_walk(rows), 900_000, 1_000_000, None)
    after = {1: {**rows[1], "hc_in_octets": 100}}
    samples, events, memory = if_samples(9, if_walk(after), 3_000, 1_300_000, memory)
    assert [e.kind for e in events] == ["counter_reset"]
    assert "sysUpTime went back" in events[0].detail["reason"]
    assert {s.metric for s in samples} == {"if_oper_status"}
    # The next cycle measures from the new baseline.
    later = {1: {**rows[1], "hc_in_octets": 100 + 3000}}
    samples, events, _ = if_samples(9, if_walk(later), 33_000, 1_600_000, memory)
    assert events == []
    assert by_metric(samples)[("if_in_bps", "1")] == pytest.approx(80.0)


def test_a_counter_going_back_beyond_a_wrap_is_reported_and_skipped_for_that_interface() -> None:
    rows = {
        1: {"name": b"eth0", "hc_in_octets": 10**9, "hc_out_octets": 10**9},
        2: {"name": b"eth1", "hc_in_octets": 10**9, "hc_out_octets": 10**9},
    }
    _, _, memory = if_samples(9, if_walk(rows), 1000, 1_000_000, None)
    after = {1: {**rows[1], "hc_in_octets": 50}, 2: {**rows[2], "hc_in_octets": 10**9 + 300}}
    samples, events, _ = if_samples(9, if_walk(after), 31000, 1_300_000, memory)
    assert events == [
        Event(
            9,
            "counter_reset",
            1_300_000,
            {
                "group": "if",
                "ifIndex": "1",
                "reasons": ["in_octets: 64-bit counter went back from 1000000000 to 50"],
            },
        )
    ]
    values = by_metric(samples)
    assert ("if_in_bps", "1") not in values
    assert values[("if_out_bps", "1")] == 0.0
    assert values[("if_in_bps", "2")] == pytest.approx(8.0)


def test_a_32_bit_in_octets_wrap_on_a_gigabit_port_is_a_rate() -> None:
    rows = {4: {"descr": b"port4", "in_octets": 2**32 - 1_000_000, "speed": 10**9}}
    _, _, memory = if_samples(9, if_walk(rows), 1000, 1_000_000, None)
    after = {4: {**rows[4], "in_octets": 2_000_000}}
    samples, events, _ = if_samples(9, if_walk(after), 31000, 1_300_000, memory)
    assert events == []
    assert by_metric(samples)[("if_in_bps", "4")] == pytest.approx(3_000_000 * 8 / 300)


# --- table groups ------------------------------------------------------------------------

OPTICAL = "1.3.6.1.4.1.2011.6.128.1.1.2.51.1.4"


def column(oid: str, rows: dict[str, tuple[int, ber.Value]]) -> tuple[ber.Oid, list[ber.VarBind]]:
    root = ber.parse_oid(oid)
    return root, [
        ((*root, *ber.parse_oid("1.3." + idx)[2:]), tag, v) for idx, (tag, v) in rows.items()
    ]


def test_a_table_column_becomes_scaled_samples_labelled_by_index() -> None:
    spec = table_spec(
        "optical",
        {"walk": [OPTICAL], "metric": "onu_rx_dbm", "scale": 0.01, "skip_values": [2147483647],
         "labels": {"onu": "1.3.6.1.4.1.2011.6.128.1.1.2.43.1.9"}, "index_label": "onu_index"},
    )  # fmt: skip
    walked = dict(
        [
            column(OPTICAL, {"4194320384.1": (ber.INTEGER, -2350), "4194320384.2": (ber.INTEGER, 2147483647),
                             "4194320384.3": (ber.OCTET_STRING, b"-18.75")}),
            column("1.3.6.1.4.1.2011.6.128.1.1.2.43.1.9", {"4194320384.1": (ber.OCTET_STRING, b"cliente\x01-42")}),
        ]
    )  # fmt: skip
    samples, events, memory = table_samples(
        5, "optical", spec, walked, uptime=None, now_ms=7, memory=None
    )
    assert (events, memory) == ([], None)
    assert samples == [
        Sample(
            5,
            "onu_rx_dbm",
            {"onu_index": "4194320384.1", "onu": "cliente -42"},
            7,
            pytest.approx(-23.5),
        ),
        Sample(
            5, "onu_rx_dbm", {"onu_index": "4194320384.3", "onu": ""}, 7, pytest.approx(-0.1875)
        ),
    ]


def test_a_rate_table_gives_per_second_rates_of_its_counters() -> None:
    spec = table_spec(
        "pon", {"walk": ["1.3.6.1.4.1.9.9.1", "1.3.6.1.4.1.9.9.2"], "metric": "pon_bytes"}
    )
    assert spec.column_label
    spec = table_spec(
        "pon", {"walk": ["1.3.6.1.4.1.9.9.1"], "metric": "pon_bps", "rate": True, "scale": 8}
    )
    before = dict(
        [column("1.3.6.1.4.1.9.9.1", {"1": (ber.COUNTER64, 1000), "2": (ber.COUNTER64, 0)})]
    )
    after = dict(
        [column("1.3.6.1.4.1.9.9.1", {"1": (ber.COUNTER64, 4000), "2": (ber.COUNTER64, 0)})]
    )
    samples, _, memory = table_samples(5, "pon", spec, before, uptime=100, now_ms=0, memory=None)
    assert samples == []
    samples, events, _ = table_samples(
        5, "pon", spec, after, uptime=30100, now_ms=300_000, memory=memory
    )
    assert events == []
    assert [(s.labels["index"], s.value) for s in samples] == [("1", 80.0), ("2", 0.0)]


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("bogus", {}, "unknown SNMP group 'bogus'"),
        ("if", {"walk": ["1.3.6.1"]}, "takes no option walk"),
        ("system", {"timeout": "soon"}, "option timeout"),
        ("t", {"walk": ["IF-MIB::ifInOctets"], "metric": "x"}, "not a numeric OID"),
        ("t", {"walk": ["1.3.6.1.2"], "metric": "bad metric"}, "not a valid metric name"),
        (
            "t",
            {"walk": ["1.3.6.1.2", "1.3.6.1.3"], "metric": ["one"]},
            "one name per walked column",
        ),
        ("t", {"walk": [], "metric": "x"}, "1 to 32"),
        ("t", {"walk": ["1.3.6.1.2"], "metric": "x", "skip_values": ["n/a"]}, "skip_values"),
        ("t", {"walk": ["1.3.6.1.2"], "metric": "x", "colour": 1}, "unknown option colour"),
        ("t", {"walk": ["1.3.6.1.2"], "metric": "x", "max_repetitions": 0}, "max_repetitions"),
    ],
)
def test_unknown_groups_and_bad_options_are_refused_with_the_reason(
    name: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(PollError, match=message):
        check_options(name, options)


def test_known_groups_and_a_documented_table_are_accepted() -> None:
    assert check_options("system", {}) is None
    assert check_options("if", {"max_repetitions": 10, "timeout": 5, "retries": 2}) is None
    spec = check_options("optical", {"walk": [OPTICAL], "metric": "onu_rx_dbm", "scale": 0.01})
    assert spec is not None and spec.columns == (ber.parse_oid(OPTICAL),)
