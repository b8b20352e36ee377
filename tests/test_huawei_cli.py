"""The Huawei CLI screen without sockets: prompts, pager, smart prompts, confirmations,
errors and modes, on real MA5800/MA5600 output (ntc-templates samples), and the same
result however the received text is chunked."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.huawei import cli
from agents.huawei.cli import Done, Error, Mode, Screen, Send
from tests.conftest import SHARED_DATA

SAMPLES = SHARED_DATA / "olt" / "huawei" / "ntc-templates"
HOST = "MA5800-X17"
ERASE = "\x1b[37D" + " " * 37 + "\x1b[37D"
ENABLE = Mode("enable")


def sample(relative: str) -> str:
    text = (SAMPLES / relative).read_text()
    return text.removesuffix("\n")


def device_text(body: str, page: int = 0) -> list[str]:
    """What an OLT sends for `body`, as segments: it waits for an answer after each."""
    lines = body.split("\n")
    segments, current = [], ""
    for number, line in enumerate(lines):
        if page and number and number % page == 0:
            segments.append(current + cli.PAGER)
            current = ERASE
        current += line + "\r\n"
    segments.append(current + f"{HOST}#")
    return segments


def exchange(
    screen: Screen,
    command: str | None,
    segments: list[str],
    cuts: list[set[int]] | None = None,
    confirm: bool = False,
) -> tuple[list[str], Done | Error]:
    """Feed `segments` (each split at `cuts`); the answers sent and the final action.

    Every action must come with the last chunk of its segment: the screen never answers
    or finishes on part of what the device sends before it waits.
    """
    if command is not None:
        assert screen.command(command, confirm=confirm).text == command + "\n"
    sends: list[str] = []
    final: Done | Error | None = None
    for index, segment in enumerate(segments):
        points = sorted((cuts[index] if cuts else set()) | {0, len(segment)})
        chunks = [segment[a:b] for a, b in itertools.pairwise(points)]
        for number, chunk in enumerate(chunks):
            actions = screen.feed(chunk)
            if number < len(chunks) - 1:
                assert actions == [], (segment, chunk)
            for action in actions:
                if isinstance(action, Send):
                    sends.append(action.text)
                else:
                    assert final is None
                    final = action
    assert final is not None
    return sends, final


def logged_in() -> Screen:
    screen = Screen()
    exchange(screen, None, [f"\r\n  Welcome\r\n\r\n{HOST}#"])
    return screen


# --- login and modes --------------------------------------------------------------------


def test_login_answers_the_yes_no_question_and_learns_host_and_mode() -> None:
    screen = Screen()
    sends, final = exchange(
        screen,
        None,
        ["\r\n  Warning: default password. Continue? (YES/NO)[NO]:", f"yes\r\n\r\n{HOST}>"],
    )
    assert sends == ["yes\n"]
    assert isinstance(final, Done)
    assert final.mode == Mode("user")
    assert screen.host == HOST


@pytest.mark.parametrize(
    ("prompt", "mode"),
    [
        (f"{HOST}>", Mode("user")),
        (f"{HOST}#", Mode("enable")),
        (f"{HOST}(config)#", Mode("config")),
        (f"{HOST}(config-if-gpon-0/2)#", Mode("interface", "gpon 0/2")),
    ],
)
def test_prompts_name_their_mode(prompt: str, mode: Mode) -> None:
    assert cli.parse_prompt("output\r\n" + prompt) == (HOST, mode)
    assert cli.parse_prompt("output\r\n" + prompt, host="other") is None


def test_a_prompt_inside_a_line_is_no_prompt() -> None:
    assert cli.parse_prompt("  <T-CONT   0>") is None
    assert cli.parse_prompt(f"{HOST}(config") is None


def test_the_state_table_gives_the_shortest_way_between_modes() -> None:
    gpon = Mode("interface", "gpon 0/1")
    assert cli.steps(Mode("user"), gpon) == ["enable", "config", "interface gpon 0/1"]
    assert cli.steps(gpon, ENABLE) == ["return"]
    assert cli.steps(gpon, Mode("config")) == ["quit"]
    assert cli.steps(Mode("interface", "gpon 0/2"), gpon) == ["quit", "interface gpon 0/1"]
    assert cli.steps(ENABLE, ENABLE) == []


def test_modes_are_named_as_the_session_api_takes_them() -> None:
    assert cli.mode_for("enable") == ENABLE
    assert cli.mode_for("interface gpon 0/3") == Mode("interface", "gpon 0/3")
    assert cli.mode_for("interface", "gpon 0/3") == Mode("interface", "gpon 0/3")
    with pytest.raises(ValueError):
        cli.mode_for("interface")
    with pytest.raises(ValueError):
        Mode("shell")


def test_a_mode_change_is_reported_with_the_prompt() -> None:
    screen = logged_in()
    _, final = exchange(
        screen, "interface gpon 0/1", [f"interface gpon 0/1\r\n{HOST}(config-if-gpon-0/1)#"]
    )
    assert final == Done("", Mode("interface", "gpon 0/1"))
    assert screen.mode == Mode("interface", "gpon 0/1")


# --- output -----------------------------------------------------------------------------

OUTPUTS = [
    "display_board/huawei_smartax_display_board.raw",
    "display_version/huawei_smartax_display_version.raw",
    "display_ont_info_0_1_2/huawei_smartax_display_ont_info_fsp.raw",
    "display_ont_info_summary_ont/huawei_smartax_display_ont_info_summary_ont.raw",
    "display_ont_optical-info_0_all/huawei_smartax_display_ont_optical-info_0_all.raw",
    "display_service-port_all/huawei_smartax_display_service-port_all.raw",
]


@pytest.mark.parametrize("path", OUTPUTS)
def test_paged_output_comes_back_whole_without_pager_or_escapes(path: str) -> None:
    body = sample(path)
    segments = device_text(body, page=7)
    screen = logged_in()
    sends, final = exchange(screen, "display x", ["display x\r\n", *segments])
    assert sends == [" "] * (len(segments) - 1)
    assert final == Done(body, ENABLE)


def test_the_stray_cursor_back_sequence_is_removed() -> None:
    screen = logged_in()
    segments = ["display x\r\n  a\r\n" + cli.PAGER, f" \x1b[1D  b\r\n{HOST}#"]
    _, final = exchange(screen, "display x", segments)
    assert final == Done("  a\n  b", ENABLE)


def test_the_smart_prompt_is_answered_and_the_command_block_dropped() -> None:
    # As seen live on an MA5800-X17 (NSO huawei-ias README).
    screen = logged_in()
    command = "display ont ipconfig 0 108"
    body = "  ONT 108 IP query result\r\n  ONT IP host index        : 0"
    sends, final = exchange(
        screen,
        command,
        [
            f"{command}\r\n{{ <cr>||<K> }}:",
            f"\r\n\r\n\r\n  Command:\r\n          {command}\r\n{body}\r\n{HOST}#",
        ],
    )
    assert sends == ["\n"]
    assert final == Done(body.replace("\r", ""), ENABLE)


def test_other_smart_prompts_are_answered_too() -> None:
    screen = logged_in()
    sends, _ = exchange(
        screen,
        "display ont info 0 1 2",
        ["display ont info 0 1 2\r\n{ <cr>|ont<K> }:", f"\r\n  x\r\n{HOST}#"],
    )
    assert sends == ["\n"]


def test_unsolicited_alarm_blocks_are_not_output() -> None:
    screen = logged_in()
    alarm = (
        "  ! EVENT WARNING 2024-01-01 10:00:00+00:00\r\n"
        "  ALARM NAME :The ONT goes online\r\n"
        "  PARAMETERS :FrameID: 0, SlotID: 1, PortID: 0, ONT ID: 3\r\n"
        "  --- END\r\n"
    )
    _, final = exchange(screen, "display x", [f"display x\r\n  a\r\n{alarm}  b\r\n{HOST}#"])
    assert final == Done("  a\n  b", ENABLE)


@pytest.mark.parametrize(
    ("confirm", "answer"), [(True, "y\n"), (False, "n\n")], ids=["expected", "unexpected"]
)
def test_confirmations_are_answered_yes_only_when_expected(confirm: bool, answer: str) -> None:
    screen = logged_in()
    sends, final = exchange(
        screen,
        "ont delete 0 1",
        [
            "ont delete 0 1\r\n  Are you sure to delete the ONT? (y/n)[n]:",
            f"\r\n  Number of ONTs that can be deleted: 1, success: 1\r\n{HOST}(config-if-gpon-0/1)#",
        ],
        confirm=confirm,
    )
    assert sends == [answer]
    assert final == Done(
        "  Number of ONTs that can be deleted: 1, success: 1", Mode("interface", "gpon 0/1")
    )


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "code", "message"),
    [
        (
            "             ^\r\n  % Unknown command, the error locates at '^'",
            "cli_error",
            "% Unknown command, the error locates at '^'",
        ),
        (
            "  % Parameter error, the error locates at '^'",
            "cli_error",
            "% Parameter error, the error locates at '^'",
        ),
        ("  Incorrect command: x", "cli_error", "Incorrect command: x"),
        (
            "  Failure: System is busy, please retry after a while",
            "busy",
            "Failure: System is busy, please retry after a while",
        ),
        (
            "  Failure: The automatically found ONTs do not exist",
            "failure",
            "Failure: The automatically found ONTs do not exist",
        ),
        ("  Failure: The ONT SN already exists.", "failure", "Failure: The ONT SN already exists."),
    ],
)
def test_device_errors_have_a_code_and_the_device_message(
    lines: str, code: str, message: str
) -> None:
    screen = logged_in()
    _, final = exchange(screen, "display x", [f"display x\r\n{lines}\r\n{HOST}#"])
    assert isinstance(final, Error)
    assert (final.code, final.message, final.mode) == (code, message, ENABLE)
    assert screen.idle


def test_a_console_time_out_ends_the_exchange_without_a_prompt() -> None:
    screen = logged_in()
    screen.command("display x")
    assert screen.feed("display x\r\n") == []
    assert screen.eof() is None
    actions = screen.feed("  Configuration console time out, please retry to log on\r\n")
    assert len(actions) == 1
    assert isinstance(actions[0], Error)
    assert actions[0].code == "console_timeout"


def test_error_actions_validate_their_code() -> None:
    with pytest.raises(ValueError):
        Error("oops", "x", "", None)


def test_one_exchange_at_a_time() -> None:
    screen = logged_in()
    screen.command("display x")
    with pytest.raises(RuntimeError):
        screen.command("display y")
    with pytest.raises(RuntimeError):
        Screen().command("display x")  # still logging in
    with pytest.raises(ValueError):
        logged_in().command("a\nb")


# --- chunking does not matter -----------------------------------------------------------

BOARD = sample("display_board/huawei_smartax_display_board.raw")
SCRIPT = [  # (command, confirm, what the OLT sends)
    (
        "display board 0",
        False,
        [
            "display board 0\r\n{ <cr>||<K> }:",
            "\r\n\r\n  Command:\r\n          display board 0\r\n",
            *device_text(BOARD, page=4),
        ],
    ),
    (
        "ont reset 0 1",
        True,
        ["ont reset 0 1\r\n  Are you sure to reset the ONT(s)? (y/n)[n]:", f"\r\n{HOST}#"],
    ),
    (
        "display ont autofind all",
        False,
        [
            "display ont autofind all\r\n  Failure: The automatically found ONTs do not exist\r\n",
            f"{HOST}#",
        ],
    ),
]
EXPECTED = [
    (["\n", " ", " "], Done(BOARD, ENABLE)),
    (["y\n"], Done("", ENABLE)),
    (
        [],
        Error(
            "failure",
            "Failure: The automatically found ONTs do not exist",
            "  Failure: The automatically found ONTs do not exist",
            ENABLE,
        ),
    ),
]


def run_script(cuts: list[list[set[int]]]) -> list[tuple[list[str], Done | Error]]:
    screen = Screen()
    exchange(screen, None, ["\r\n  x (YES/NO)[NO]:", f"yes\r\n{HOST}#"], cuts[0])
    results = []
    for (command, confirm, segments), segment_cuts in zip(SCRIPT, cuts[1:], strict=True):
        results.append(exchange(screen, command, segments, segment_cuts, confirm))
    return results


def test_every_single_split_point_gives_the_same_result() -> None:
    for index, (_, _, segments) in enumerate(SCRIPT):
        for s, segment in enumerate(segments):
            for at in range(1, len(segment)):
                cuts: list[list[set[int]]] = [[set(), set()]] + [
                    [set() for _ in seg] for _, _, seg in SCRIPT
                ]
                cuts[index + 1][s] = {at}
                assert run_script(cuts) == EXPECTED


@st.composite
def script_cuts(draw: st.DrawFn) -> list[list[set[int]]]:
    login = ["\r\n  x (YES/NO)[NO]:", f"yes\r\n{HOST}#"]
    out = []
    for segments in [login, *(segments for _, _, segments in SCRIPT)]:
        out.append(
            [draw(st.sets(st.integers(1, max(1, len(seg) - 1)), max_size=12)) for seg in segments]
        )
    return out


@settings(max_examples=200, deadline=None)
@given(script_cuts())
def test_any_chunking_gives_the_same_answers_and_output(cuts: list[list[set[int]]]) -> None:
    assert run_script(cuts) == EXPECTED


def test_real_output_is_cleaned_the_same_in_one_chunk_or_byte_by_byte() -> None:
    body = sample("display_ont_info_0_1_2_3/huawei_smartax_display_ont_info_1.raw")
    segments = ["display ont info 0 0 6 2\r\n", *device_text(body, page=20)]
    whole = exchange(logged_in(), "display ont info 0 0 6 2", segments)
    bytewise = exchange(
        logged_in(), "display ont info 0 0 6 2", segments, [set(range(1, len(s))) for s in segments]
    )
    assert whole == bytewise
    assert whole[1] == Done(body, ENABLE)


def test_samples_are_where_the_tests_expect_them() -> None:
    assert Path(SAMPLES).is_dir()
