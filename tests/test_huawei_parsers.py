"""The Huawei SmartAX CLI parsers against ntc-templates' recorded outputs (compared field
by field with their expected parses), and against the noise a live session adds:
pager remnants, unsolicited alarms, truncated or reshaped tables, garbage."""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.huawei.parsers import (
    OntOptical,
    ParseError,
    parse_autofind,
    parse_board,
    parse_ont_add,
    parse_ont_info,
    parse_ont_summary,
    parse_optical,
    parse_service_ports,
    parse_version,
    strip_noise,
)
from schemas.olt import serial_forms

OLT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "olt"
SAMPLES = OLT_DATA / "huawei" / "ntc-templates"

ONT_INFO_DIRS = (
    "display_ont_info_0",
    "display_ont_info_0_1",
    "display_ont_info_0_1_2",
    "display_ont_info_0_1_2_3",
    "display_ont_info_by-sn_ABC",
)
PAGER = "  ---- More ( Press 'Q' to break ) ----\x1b[37D" + " " * 37 + "\x1b[37D"
ALARM_WITH_END = """  ! MAJOR ALARM  2026-01-01 10:00:00+08:00
  ALARM NAME :The ONT is offline
  PARAMETERS :FrameID: 0, SlotID: 1, PortID: 0, ONT ID: 3
  DESCRIPTION: the ONT went down
  --- END"""
ALARM_WITHOUT_END = """  ! MINOR ALARM  2026-01-01 10:00:01+08:00
  ALARM NAME :The ONT optical power is low
  PARAMETERS :FrameID: 0, SlotID: 1, PortID: 0, ONT ID: 5
  CAUSE      :dirty connector"""


def raws(*dirs: str) -> list[Any]:
    """The .raw samples of these command directories, or one skipped case without them."""
    found = sorted(path for name in dirs for path in (SAMPLES / name).glob("*.raw"))
    if not found:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no samples in {SAMPLES}"))]
    return [pytest.param(path, id=f"{path.parent.name}/{path.stem}") for path in found]


def sample(relative: str) -> str:
    path = SAMPLES / relative
    if not path.exists():
        pytest.skip(f"sample {path} is missing")
    return path.read_text()


def expected(raw: Path) -> list[dict[str, Any]]:
    return yaml.safe_load(raw.with_suffix(".yml").read_text())["parsed_sample"]


def fsp(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.replace(" ", "").split("/"))


def serials(text: str) -> tuple[str, str]:
    """What the parsers must report for a serial as ntc-templates shows it."""
    first = text.split(maxsplit=1)[0].upper()
    try:
        return serial_forms(first)
    except ValueError:
        return first, ""


def number(text: str) -> float | None:
    return None if text in ("", "-") else float(text)


def insert_before_line(text: str, line_no: int, noise: str) -> str:
    lines = text.split("\n")
    lines.insert(line_no - 1, noise)
    return "\n".join(lines)


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based number of the line holding the n-th occurrence of `needle`."""
    hits = [n for n, line in enumerate(text.split("\n"), 1) if needle in line]
    return hits[occurrence - 1]


# --- every sample against its expected parse --------------------------------------------


@pytest.mark.parametrize("raw", raws("display_board"))
def test_board_samples_parse_as_expected(raw: Path) -> None:
    boards = parse_board(raw.read_text(), frame=0)
    want = expected(raw)
    assert len(boards) == len(want)
    for board, row in zip(boards, want, strict=True):
        assert (board.frame, board.slot) == (0, int(row["slot_id"]))
        assert board.board == row["boardname"]
        assert board.status == row["status"]
        assert board.subtypes == [t for t in (row["subtype_0"], row["subtype_1"]) if t]
        assert board.online == row["online_offline"]


@pytest.mark.parametrize("raw", raws("display_version"))
def test_version_samples_parse_as_expected(raw: Path) -> None:
    version = parse_version(raw.read_text())
    for row in expected(raw):
        assert version["version"] == row["olt_version"]
        assert version["patch"] == row["patch"]
        assert version["product"] == row["product"]
        board = row["mainboard_type"].lower() + "_mainboard_"
        for key in ("current_program_area", "current_data_area", "program_area_a_version"):
            assert version[board + key] == row[key]
        assert version[board + "data_area_b_version"] == row["data_area_b_version"]
    assert version["uptime"] == "20 day(s), 23 hour(s), 19 minute(s), 16 second(s)"


def test_live_ma5800_version_reads_through_the_smart_prompt_and_command_echo() -> None:
    readme = OLT_DATA / "huawei" / "nso_huawei-ias_README.md"
    if not readme.exists():
        pytest.skip(f"{readme} is missing")
    lines = readme.read_text().split("\n")
    start = next(
        n
        for n, line in enumerate(lines)
        if line.strip() == "Command:" and "version" in lines[n + 1]
    )
    end = next(n for n in range(start, len(lines)) if lines[n].strip().startswith("Uptime is"))
    version = parse_version("{ <cr>||<K> }:\n\n" + "\n".join(lines[start : end + 1]))
    assert version["version"] == "MA5800V100R022C10"
    assert version["patch"] == "SPH206 HP0229"
    assert version["product"] == "MA5800-X17"
    assert version["standby_mainboard_current_data_area"] == "Area B"
    assert version["uptime"] == "7 day(s), 22 hour(s), 44 minute(s), 15 second(s)"


@pytest.mark.parametrize("raw", raws("display_ont_autofind"))
def test_autofind_samples_parse_as_expected(raw: Path) -> None:
    entries = parse_autofind(raw.read_text())
    want = expected(raw)
    assert len(entries) == len(want)
    for entry, row in zip(entries, want, strict=True):
        assert (entry.frame, entry.slot, entry.port) == fsp(row["fsp"])
        assert (entry.serial, entry.serial_vendor) == serials(row["serial_number"])
        assert entry.password == row["password"]
        assert entry.loid == row["loid"]
        assert entry.vendor_id == row["vendor_id"]
        assert entry.version == row["ont_version"]
        assert entry.software_version == row["ont_software_version"]
        assert entry.equipment_id == row["ont_equipment_id"]
        assert entry.found_at == row["ont_autofind_time"]


def test_autofind_gives_both_forms_of_a_valid_serial() -> None:
    entries = parse_autofind(
        sample("display_ont_autofind/huawei_smartax_display_ont_autofind_2.raw")
    )
    assert [(e.serial, e.serial_vendor) for e in entries] == [
        ("4857544311E70E9A", "HWTC11E70E9A"),
        ("48575443DE135E2D", "HWTCDE135E2D"),
    ]


def test_two_forms_of_a_serial_that_disagree_are_an_error() -> None:
    text = sample("display_ont_autofind/huawei_smartax_display_ont_autofind_2.raw")
    with pytest.raises(ParseError, match="disagree") as failed:
        parse_autofind(text.replace("(HWTC-11E70E9A)", "(HWTC-11E70E9B)"))
    assert failed.value.line is not None and "HWTC-11E70E9B" in failed.value.line


def test_ont_table_gives_both_forms_of_a_valid_serial() -> None:
    text = sample("display_ont_info_0/huawei_smartax_display_ont_info_fsp_4.raw")
    onts = parse_ont_info(text.replace("1234567890ABCDEF", "4857544311e70e9a"))
    assert [(o.serial, o.serial_vendor) for o in onts] == [
        ("46VBSM4LFW7QLGAV", ""),
        ("4857544311E70E9A", "HWTC11E70E9A"),
    ]


def test_autofind_keeps_a_sanitised_serial_as_is() -> None:
    [entry] = parse_autofind(sample("display_ont_autofind/huawei_smartax_display_ont_autofind.raw"))
    assert (entry.serial, entry.serial_vendor) == ("12345678A12BC3AB", "")


@pytest.mark.parametrize("text", ["", "  \n \n"])
def test_autofind_of_nothing_is_empty(text: str) -> None:
    assert parse_autofind(text) == []


@pytest.mark.parametrize("raw", raws(*ONT_INFO_DIRS))
def test_ont_info_samples_parse_as_expected(raw: Path) -> None:
    onts = parse_ont_info(raw.read_text())
    want = expected(raw)
    assert len(onts) == len(want)
    for ont, row in zip(onts, want, strict=True):
        assert (ont.frame, ont.slot, ont.port) == fsp(row["fsp"])
        assert ont.ont_id == int(row["ont_id"])
        assert (ont.serial, ont.serial_vendor) == serials(row["serial_number"])
        assert ont.control_flag == row["control_flag"]
        assert ont.run_state == row["run_state"]
        assert ont.config_state == row["config_state"]
        assert ont.match_state == row["match_state"]
        assert ont.description == row["description"]
        if "distance_m" in row:  # the detail form
            assert ont.distance_m == int(row["distance_m"])
            assert ont.line_profile == row["line_profile_name"]
            assert ont.service_profile == row["service_profile_name"]
            assert ont.last_up == row["last_up_time"]
            assert ont.last_down == row["last_down_time"]
            assert ont.last_down_cause == row["last_down_cause"]
        else:
            assert ont.distance_m is None


def test_ont_info_table_joins_descriptions_per_port() -> None:
    onts = parse_ont_info(sample("display_ont_info_0/huawei_smartax_display_ont_info_fsp_4.raw"))
    assert [(o.fsp, o.ont_id, o.description) for o in onts] == [
        ("0/1/0", 0, "The boiling consignment budgets."),
        ("0/1/2", 0, "ONT_NO_DESCRIPTION"),
    ]


@pytest.mark.parametrize("raw", raws("display_ont_info_summary_ont"))
def test_summary_samples_parse_as_expected(raw: Path) -> None:
    onts = parse_ont_summary(raw.read_text())
    want = expected(raw)
    assert len(onts) == len(want)
    for ont, row in zip(onts, want, strict=True):
        assert (ont.frame, ont.slot, ont.port) == fsp(row["port"])
        assert ont.ont_id == int(row["ont_id"])
        assert ont.run_state == row["run_state"]
        assert ont.last_up == row["last_uptime"]
        assert ont.last_down == row["last_downtime"]
        assert ont.last_down_cause == row["last_downcause"]
        assert (ont.serial, ont.serial_vendor) == serials(row["serial_number"])
        assert ont.description == row["description"]
        assert ont.distance_m == (None if row["distance_m"] == "-" else int(row["distance_m"]))


def test_summary_takes_the_port_from_arguments_without_an_in_port_line() -> None:
    text = sample("display_ont_info_summary_ont/huawei_smartax_display_ont_info_summary_ont_3.raw")
    headless = "\n".join(text.split("\n")[3:])
    onts = parse_ont_summary(headless, frame=0, slot=3, port=7)
    assert [(o.fsp, o.ont_id, o.distance_m) for o in onts] == [("0/3/7", 0, 42), ("0/3/7", 1, None)]
    with pytest.raises(ParseError, match="no 'In port F/S/P' line"):
        parse_ont_summary(headless)


@pytest.mark.parametrize("raw", raws("display_ont_optical-info_0_all"))
def test_optical_samples_parse_as_expected(raw: Path) -> None:
    readings = parse_optical(raw.read_text(), port=0)
    want = expected(raw)
    assert len(readings) == len(want)
    for reading, row in zip(readings, want, strict=True):
        assert reading == OntOptical(
            port=0,
            ont_id=int(row["ont_id"]),
            rx_dbm=number(row["rx_power"]),
            tx_dbm=number(row["tx_power"]),
            olt_rx_dbm=number(row["olt_rx_ont"]),
            temperature_c=number(row["temperature"]),
            voltage_v=number(row["voltage"]),
            bias_ma=number(row["current"]),
            distance_m=int(row["distance"]),
        )


def test_optical_dash_means_no_reading() -> None:
    text = sample(
        "display_ont_optical-info_0_all/huawei_smartax_display_ont_optical-info_0_all.raw"
    )
    row = next(line for line in text.split("\n") if line.startswith("    9 "))
    offline = "    9  -         -         -           -            -        -        -         "
    [*_, last] = parse_optical(text.replace(row, offline), port=3)
    assert last == OntOptical(3, 9, None, None, None, None, None, None, None)


@pytest.mark.parametrize("raw", raws("display_service-port_all"))
def test_service_port_samples_parse_as_expected(raw: Path) -> None:
    ports = parse_service_ports(raw.read_text())
    want = expected(raw)
    assert len(ports) == len(want)
    for port, row in zip(ports, want, strict=True):
        assert port.index == int(row["index"])
        assert port.vlan == int(row["vlan_id"])
        assert (port.frame, port.slot, port.port) == fsp(row["fsp"])
        assert port.ont_id == int(row["ont_id"])
        assert port.gemport == int(row["gem_index"])
        assert port.flow_type == row["flow_type"]
        assert port.flow_para == row["vlan_access"]
        assert port.state == row["state"]
        assert port.vlan_attr == row["vlan_attr"]
        assert port.port_type == row["port_type"]


@pytest.mark.parametrize("raw", raws("ont_add"))
def test_ont_add_samples_parse_as_expected(raw: Path) -> None:
    [row] = expected(raw)
    assert parse_ont_add(raw.read_text()) == (int(row["port_id"]), int(row["ont_id"]))


def test_ont_add_without_success_is_an_error() -> None:
    with pytest.raises(ParseError, match="no ONT was added") as failed:
        parse_ont_add("  Number of ONTs that can be added: 1, success: 0\n")
    assert failed.value.line_no == 1
    with pytest.raises(ParseError, match="Failure: The ONT SN already exists") as failed:
        parse_ont_add("\n  Failure: The ONT SN already exists.\n")
    assert failed.value.line_no == 2


# --- noise a live session adds ----------------------------------------------------------

ONT_TABLE = "display_ont_info_0/huawei_smartax_display_ont_info_fsp_2.raw"


def test_pager_remnants_inside_a_table_parse_like_the_clean_text() -> None:
    clean = sample(ONT_TABLE)
    row = line_of(clean, "  0/ 2/0    9 ")
    noisy = insert_before_line(clean, row, "").replace("\n\n", "\n" + PAGER, 1)
    noisy = noisy.replace("\n", "\r\n").replace(
        "ONT-ID   Description", "ONT-ID   Description \x1b[1D"
    )
    assert "\x1b[37D" in noisy and noisy.count("\n") == clean.count("\n")
    assert parse_ont_info(noisy) == parse_ont_info(clean)
    assert "More" not in strip_noise(noisy) and "\x1b" not in strip_noise(noisy)


def test_pager_inside_the_summary_and_service_port_tables_is_removed() -> None:
    summary = sample(
        "display_ont_info_summary_ont/huawei_smartax_display_ont_info_summary_ont_4.raw"
    )
    noisy = summary.replace("\n  20   online", "\n" + PAGER + "  20   online")
    assert parse_ont_summary(noisy) == parse_ont_summary(summary)
    flows = sample("display_service-port_all/huawei_smartax_display_service-port_all.raw")
    noisy = flows.replace("\n    5827", "\n" + PAGER + "\x1b[32m    5827\x1b[0m")
    assert parse_service_ports(noisy) == parse_service_ports(flows)


@pytest.mark.parametrize("alarm", [ALARM_WITH_END, ALARM_WITHOUT_END], ids=["end", "no-end"])
def test_an_alarm_inside_a_table_parses_like_the_clean_text(alarm: str) -> None:
    clean = sample(ONT_TABLE)
    noisy = insert_before_line(clean, line_of(clean, "  0/ 2/0    7 "), alarm)
    noisy = insert_before_line(noisy, line_of(noisy, "  0/ 2/0       3 "), alarm)
    assert parse_ont_info(noisy) == parse_ont_info(clean)
    optical_text = sample(
        "display_ont_optical-info_0_all/huawei_smartax_display_ont_optical-info_0_all.raw"
    )
    noisy = insert_before_line(optical_text, 7, alarm)
    assert parse_optical(noisy, 0) == parse_optical(optical_text, 0)


def test_strip_noise_keeps_line_numbers_and_drops_the_smart_prompt_echo() -> None:
    text = (
        "{ <cr>||<K> }:\n\n  Command:\n          display version\n  VERSION : X\n" + ALARM_WITH_END
    )
    cleaned = strip_noise(text)
    assert cleaned.count("\n") == text.count("\n")
    assert [line.strip() for line in cleaned.split("\n") if line.strip()] == ["VERSION : X"]
    assert parse_version(text) == {"version": "X"}


# --- odd output is a ParseError naming the line -----------------------------------------


def test_a_truncated_row_is_an_error_naming_it() -> None:
    clean = sample(ONT_TABLE)
    row = line_of(clean, "  0/ 2/0    5 ")
    lines = clean.split("\n")
    lines[row - 1] = lines[row - 1][:30]
    with pytest.raises(ParseError) as failed:
        parse_ont_info("\n".join(lines))
    assert failed.value.line_no == row
    assert failed.value.line == lines[row - 1]
    assert str(failed.value).startswith(f"display ont info: line {row}: unexpected row '  0/ 2/0")


def test_output_cut_short_is_an_error_not_a_shorter_list() -> None:
    clean = sample(ONT_TABLE)
    with pytest.raises(ParseError, match="no total line"):
        parse_ont_info(clean[: clean.index("  In port")])
    with pytest.raises(ParseError, match="not closed"):
        parse_ont_info(clean[: clean.index("  0/ 2/0       9 ")])


def test_a_count_that_disagrees_with_the_rows_is_an_error() -> None:
    clean = sample(ONT_TABLE)
    with pytest.raises(ParseError, match="15 ONTs listed"):
        parse_ont_info(
            "\n".join(
                line
                for line in clean.split("\n")
                if not line.startswith(("  0/ 2/0    4 ", "  0/ 2/0       4 "))
            )
        )
    with pytest.raises(ParseError, match="description of an ONT not listed"):
        parse_ont_info(clean.replace("0/ 2/0       4 ", "0/ 2/0      44 "))
    flows = sample("display_service-port_all/huawei_smartax_display_service-port_all.raw")
    with pytest.raises(ParseError, match="1 rows but the total says"):
        parse_service_ports(flows.replace("Total : 1 ", "Total : 2 "))


@pytest.mark.parametrize(
    ("relative", "parse", "old", "new"),
    [
        (ONT_TABLE, parse_ont_info, "Match    Protect", "Match    Protect  Battery"),
        (ONT_TABLE, parse_ont_info, "F/S/P   ONT-ID   Description", "F/S/P   ONT-ID   Remark"),
        ("display_board/huawei_smartax_display_board.raw", parse_board, "SubType1", "SubTypeX"),
        (
            "display_ont_optical-info_0_all/huawei_smartax_display_ont_optical-info_0_all.raw",
            lambda text: parse_optical(text, 0),
            "Distance  ",
            "Distance  Laser",
        ),
        (
            "display_service-port_all/huawei_smartax_display_service-port_all.raw",
            parse_service_ports,
            "STATE",
            "STATE  DESC",
        ),
        (
            "display_ont_info_summary_ont/huawei_smartax_display_ont_info_summary_ont.raw",
            parse_ont_summary,
            "Rx/Tx power",
            "Rx power",
        ),
    ],
)
def test_an_unknown_column_header_is_an_error_naming_it(
    relative: str, parse: Callable[[str], object], old: str, new: str
) -> None:
    text = sample(relative)
    assert old in text
    with pytest.raises(ParseError, match="unknown column header") as failed:
        parse(text.replace(old, new, 1))
    assert failed.value.line is not None and new.rsplit(maxsplit=1)[-1] in failed.value.line


def test_a_row_whose_numbers_do_not_parse_is_an_error() -> None:
    text = sample(
        "display_ont_optical-info_0_all/huawei_smartax_display_ont_optical-info_0_all.raw"
    )
    with pytest.raises(ParseError, match=r"not a number: '3\.6x8'"):
        parse_optical(text.replace("3.68 ", "3.6x8"), 0)
    board = sample("display_board/huawei_smartax_display_board.raw")
    with pytest.raises(ParseError, match="invalid value"):
        parse_board(board.replace("  3       A123", "  99      A123"))


PARSERS: list[tuple[str, Callable[[str], object]]] = [
    ("board", parse_board),
    ("version", parse_version),
    ("autofind", parse_autofind),
    ("ont_info", parse_ont_info),
    ("summary", lambda text: parse_ont_summary(text, 0, 1, 0)),
    ("optical", lambda text: parse_optical(text, 0)),
    ("service_ports", parse_service_ports),
    ("ont_add", parse_ont_add),
]


@pytest.mark.parametrize(("name", "parse"), PARSERS, ids=[name for name, _ in PARSERS])
@pytest.mark.parametrize(
    "garbage",
    [
        "% Unknown command, the error locates at '^'",
        "  Failure: System is busy, please retry after a while",
        "0/1/0 garbage 12 here\n-----------------\n",
        "--------\nnothing : here\n1 2 3\n--------",
    ],
)
def test_garbage_is_a_parse_error(name: str, parse: Callable[[str], object], garbage: str) -> None:
    with pytest.raises(ParseError) as failed:
        parse(garbage)
    assert failed.value.command and str(failed.value).startswith(failed.value.command)


def test_parse_error_shortens_its_context_and_pickles() -> None:
    error = ParseError("display ont info", "unexpected row", 7, "x" * 500)
    assert str(error) == f"display ont info: line 7: unexpected row '{'x' * 117}...'"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.command, copy.line_no, copy.line) == ("display ont info", 7, "x" * 500)
    assert isinstance(copy, ValueError)


# --- properties -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "parse"), PARSERS, ids=[name for name, _ in PARSERS])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text())
def test_any_text_parses_or_is_a_parse_error(
    name: str, parse: Callable[[str], object], text: str
) -> None:
    with contextlib.suppress(ParseError):
        parse(text)


# (sample, parser, whether the output is a series of self-contained blocks: per port, or
# per autofind entry; a cut between two blocks reads as the blocks before it).
CUTTABLE: list[tuple[str, Callable[[str], list[Any]], bool]] = [
    (ONT_TABLE, parse_ont_info, False),
    ("display_ont_info_0/huawei_smartax_display_ont_info_fsp_4.raw", parse_ont_info, True),
    ("display_board/huawei_smartax_display_board.raw", parse_board, False),
    ("display_ont_autofind/huawei_smartax_display_ont_autofind_2.raw", parse_autofind, True),
    (
        "display_ont_info_summary_ont/huawei_smartax_display_ont_info_summary_ont_4.raw",
        parse_ont_summary,
        False,
    ),
    (
        "display_ont_info_summary_ont/huawei_smartax_display_ont_info_summary_ont_5.raw",
        parse_ont_summary,
        True,
    ),
    (
        "display_ont_optical-info_0_all/huawei_smartax_display_ont_optical-info_0_all.raw",
        lambda text: parse_optical(text, 0),
        False,
    ),
    (
        "display_service-port_all/huawei_smartax_display_service-port_all.raw",
        parse_service_ports,
        False,
    ),
]


@pytest.mark.parametrize(
    ("relative", "parse", "blocks"), CUTTABLE, ids=[r.split("/")[-1][15:-4] for r, *_ in CUTTABLE]
)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_output_cut_anywhere_reads_whole_or_is_an_error(
    relative: str, parse: Callable[[str], list[Any]], blocks: bool, data: st.DataObject
) -> None:
    text = sample(relative)
    whole = parse(text)
    cut = data.draw(st.integers(0, len(text)), label="cut")
    try:
        part = parse(text[:cut])
    except ParseError:
        return
    if part == whole or not strip_noise(text[:cut]).strip(" -\n"):  # whole, or only rules
        return
    assert blocks and part == whole[: len(part)] and part, "a cut table read as a shorter one"


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    noise=st.sampled_from([PAGER, ALARM_WITH_END, ALARM_WITHOUT_END, "\x1b[0m", "\r"]),
)
def test_noise_between_any_two_lines_changes_nothing(data: st.DataObject, noise: str) -> None:
    text = sample(ONT_TABLE)
    at = data.draw(st.integers(1, text.count("\n") + 1), label="line")
    noisy = insert_before_line(text, at, noise)
    if noise == PAGER:  # the pager shares its line with the next output line
        noisy = noisy.replace(PAGER + "\n", PAGER, 1)
    assert parse_ont_info(noisy) == parse_ont_info(text)
