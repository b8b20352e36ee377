"""The Huawei SmartAX CLI as data: prompts, modes, the way between modes, and a screen.

Pure code, no I/O (the h11 shape): `Screen.command()` gives the text to send for a command,
`Screen.feed()` takes what the OLT sent back and returns the actions for the I/O layer:
`Send` (answer a pager, smart prompt, confirmation or banner question), then one `Done`
(the prompt came back; the cleaned output and the mode it is in) or `Error` (the output
holds a device error; its code says what kind).

Rules, from public Huawei material (see ../shared/data/olt/HUAWEI.md):

* Prompts: `host>` user, `host#` enable, `host(config)#`, `host(config-if-gpon-0/2)#`.
* Modes: user -enable-> enable -config-> config -"interface gpon F/S"-> interface;
  `quit` goes one level back, `return` from any config level to enable.
* Pager `---- More ( Press 'Q' to break ) ----` -> space; the device then erases it with
  ESC[37D + spaces + ESC[37D (a stray " ESC[1D" is seen too).
* Smart prompts `{ <cr>||<K> }:`, `{ <cr>|ont<K> }:` ... -> Enter; the device then echoes a
  `Command:` block before the output.
* `(y/n)[n]:` -> "y" when the command is expected to ask (logout, ont delete, reset),
  "n" otherwise. The post-login `YES/NO` question -> "yes".
* Unsolicited alarm blocks (`! ... ALARM|EVENT ...` up to `--- END`) are not output.

A prompt or question is answered only when it ends the received text: the OLT stops
and waits there, so what the screen decides does not depend on how the text was chunked.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Final, TypeAlias

USER: Final = "user"
ENABLE: Final = "enable"
CONFIG: Final = "config"
INTERFACE: Final = "interface"
LEVELS: Final = (USER, ENABLE, CONFIG, INTERFACE)


@dataclass(frozen=True, slots=True)
class Mode:
    """Where the CLI is: a level, and for the interface level which interface."""

    level: str
    interface: str | None = None  # "gpon 0/2" at the interface level

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"unknown CLI level {self.level!r}")
        if (self.level == INTERFACE) != (self.interface is not None):
            raise ValueError("an interface is given exactly at the interface level")


# The state table: one command moves one step. `{interface}` is the target's interface.
TRANSITIONS: Final[dict[tuple[str, str], str]] = {
    (USER, ENABLE): "enable",
    (ENABLE, USER): "disable",
    (ENABLE, CONFIG): "config",
    (CONFIG, ENABLE): "quit",
    (CONFIG, INTERFACE): "interface {interface}",
    (INTERFACE, CONFIG): "quit",
    (INTERFACE, ENABLE): "return",
}


def mode_for(target: str, interface: str | None = None) -> Mode:
    """The Mode a caller names: "user" | "enable" | "config" | "interface gpon F/S", or
    any level with `interface="gpon F/S"` (the interface wins)."""
    if target.startswith(INTERFACE + " "):
        target, interface = INTERFACE, target.split(" ", 1)[1].strip()
    if interface is None and target != INTERFACE:
        return Mode(target)
    if not interface or not re.fullmatch(r"[a-z]+ \d+/\d+", interface):
        raise ValueError(f"interface mode needs e.g. 'gpon 0/1', not {interface!r}")
    return Mode(INTERFACE, interface)


def steps(current: Mode, target: Mode) -> list[str]:
    """The commands that lead from `current` to `target` through TRANSITIONS (shortest)."""
    if current == target:
        return []
    seen = {current}
    queue: deque[tuple[Mode, list[str]]] = deque([(current, [])])
    while queue:
        mode, path = queue.popleft()
        for (src, dst), template in TRANSITIONS.items():
            if src != mode.level:
                continue
            nxt = Mode(dst, target.interface if dst == INTERFACE else None)
            if dst == INTERFACE and target.interface is None:
                continue
            if nxt in seen:
                continue
            command = template.format(interface=nxt.interface)
            if nxt == target:
                return [*path, command]
            seen.add(nxt)
            queue.append((nxt, [*path, command]))
    raise ValueError(f"no way from {current} to {target}")


# --- prompts --------------------------------------------------------------------------

_VIEW = r"(?:\((?P<view>config(?:-if-(?P<iftype>[a-z]+)-(?P<fs>\d+/\d+))?)\))?"
_ANY_PROMPT: Final = re.compile(
    r"(?:^|\n)(?P<host>[A-Za-z0-9][\w.\-]*)" + _VIEW + r"(?P<sign>[>#])[ ]*\Z"
)
PAGER: Final = "---- More ( Press 'Q' to break ) ----"
_PAGER_AT_END: Final = re.compile(re.escape(PAGER) + r"[ ]*\Z")
_SMART_AT_END: Final = re.compile(r"\{ ?<cr>[^{}\n]*\}:[ ]*\Z")
_CONFIRM_AT_END: Final = re.compile(r"\(y/n\)[ ]*\[[yYnN]\][ ]*:[ ]*\Z")
_YES_NO_AT_END: Final = re.compile(r"YES/NO[^\n]*[:?][ ]*\Z")
_CONSOLE_TIMEOUT: Final = re.compile(r"Configuration console time out[^\n]*(?:\n|log on)")

# --- cleaning -------------------------------------------------------------------------

# The pager and what erases it: ESC[37D, the spaces over the pager text, ESC[37D.
_PAGER_ERASE: Final = re.compile(re.escape(PAGER) + r"[ ]*(?:\x1b\[\d+D[ ]*\x1b\[\d+D| ?\x1b\[1D)*")
_STRAY_BACK: Final = re.compile(r" ?\x1b\[1D")
_ANSI: Final = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_ALARM: Final = re.compile(
    r"^[ \t]*![^\n]*\b(?:ALARM|EVENT)\b.*?^[ \t]*-+[ \t]*END[ \t]*(?:\n|\Z)",
    re.MULTILINE | re.DOTALL,
)
_SMART_LINE: Final = re.compile(r"^[ \t]*\{ ?<cr>[^{}\n]*\}:[ \t]*\n", re.MULTILINE)
_QUESTION_LINE: Final = re.compile(
    r"^[^\n]*\(y/n\)[ ]*\[[yYnN]\][ ]*:[^\n]*(?:\n|\Z)", re.MULTILINE
)
_COMMAND_BLOCK: Final = re.compile(r"\A\n*[ \t]*Command:[ \t]*\n[^\n]*\n")

# Device errors, first match wins: (regex on an output line, code).
ERRORS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"^\s*(Configuration console time out.*)$", re.M), "console_timeout"),
    (re.compile(r"^\s*(Failure: System is busy.*)$", re.M), "busy"),
    (re.compile(r"^\s*(% ?Unknown command.*)$", re.M), "cli_error"),
    (re.compile(r"^\s*(% ?Incorrect command.*|Incorrect command.*)$", re.M), "cli_error"),
    (re.compile(r"^\s*(% ?Parameter error.*)$", re.M), "cli_error"),
    (re.compile(r"^\s*(% ?(?:Incomplete command|Too many parameters).*)$", re.M), "cli_error"),
    (re.compile(r"^\s*(Failure: .*)$", re.M), "failure"),
)


def clean(text: str) -> str:
    """Text as a person would read it: no pager remnants, ANSI, CR or alarm blocks."""
    text = _PAGER_ERASE.sub("", text)
    text = _STRAY_BACK.sub("", text)
    text = _ANSI.sub("", text)
    text = text.replace("\r", "")
    return _ALARM.sub("", text)


def find_error(output: str) -> tuple[str, str] | None:
    """(code, message) for the first device error in `output`, or None."""
    for pattern, code in ERRORS:
        found = pattern.search(output)
        if found:
            return code, found.group(1).strip()
    return None


def parse_prompt(text: str, host: str | None = None) -> tuple[str, Mode] | None:
    """(host, mode) when `text` ends with a prompt (of `host` if given), else None."""
    found = _ANY_PROMPT.search(text)
    if not found or (host is not None and found.group("host") != host):
        return None
    view = found.group("view")
    if found.group("fs"):
        mode = Mode(INTERFACE, f"{found.group('iftype')} {found.group('fs')}")
    elif view == "config":
        mode = Mode(CONFIG)
    elif found.group("sign") == "#":
        mode = Mode(ENABLE)
    else:
        mode = Mode(USER)
    return found.group("host"), mode


# --- actions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Write `text` to the OLT (an answer to a pager, prompt or question)."""

    text: str


@dataclass(frozen=True, slots=True)
class Done:
    """The prompt came back: the command's cleaned output and the mode now."""

    output: str
    mode: Mode


@dataclass(frozen=True, slots=True)
class Error:
    """The prompt came back (or the console closed) with a device error in the output."""

    code: str  # cli_error | busy | console_timeout | failure
    message: str
    output: str
    mode: Mode | None

    def __post_init__(self) -> None:
        if self.code not in {"cli_error", "busy", "console_timeout", "failure"}:
            raise ValueError(f"unknown CLI error code {self.code!r}")


Action: TypeAlias = Send | Done | Error


class Screen:
    """What the OLT shows, one exchange at a time; sans-IO.

    A new screen waits for the login prompt (answering the YES/NO banner question);
    `command()` starts the next exchange. After Done or Error the screen is idle until
    the next `command()`; text fed while idle is kept for it (a late alarm, say).
    """

    def __init__(self, host: str | None = None) -> None:
        self.host = host
        self.mode: Mode | None = None
        self._buffer = ""
        self._answered_to = 0  # questions before this offset are answered
        self._command: str | None = None
        self._confirm = False
        self._busy = True  # the login is the first exchange

    @property
    def idle(self) -> bool:
        return not self._busy

    def command(self, text: str, *, confirm: bool = False) -> Send:
        """Start an exchange: the text to send for `text` (answer "y" to (y/n) if confirm)."""
        if self._busy:
            raise RuntimeError("the previous exchange has not finished")
        if "\n" in text or "\r" in text:
            raise ValueError("one command, one line")
        self._command, self._confirm, self._busy = text, confirm, True
        return Send(text + "\n")

    def feed(self, chunk: str) -> list[Action]:
        """Take received text; the actions it calls for, in order."""
        self._buffer += chunk
        if not self._busy:
            return []
        tail = self._buffer[self._answered_to :]
        if _CONSOLE_TIMEOUT.search(tail):  # the console closed on us: no prompt will come
            return [self._finish(None)]
        view = clean(tail)
        prompt = parse_prompt(view, self.host)
        if prompt is not None:
            self.host, self.mode = prompt
            return [self._finish(prompt[1])]
        answer = self._answer(tail, view)
        if answer is None:
            return []
        self._answered_to = len(self._buffer)
        return [Send(answer)]

    def eof(self) -> Error | None:
        """The OLT closed the channel: the console time-out it announced, or None."""
        if self._busy and "Configuration console time out" in self._buffer:
            return self._finish(None)  # type: ignore[return-value]
        return None

    def _answer(self, tail: str, view: str) -> str | None:
        if _PAGER_AT_END.search(tail):  # the raw text: clean() removes the pager
            return " "
        if _SMART_AT_END.search(view):
            return "\n"
        if _CONFIRM_AT_END.search(view):
            return "y\n" if self._confirm else "n\n"
        if self._command is None and _YES_NO_AT_END.search(view):
            return "yes\n"
        return None

    def _finish(self, mode: Mode | None) -> Done | Error:
        text = clean(self._buffer)
        if mode is not None:  # drop the prompt line and the newline before it
            text = text[: text.rfind("\n") + 1] if "\n" in text else ""
            text = text.removesuffix("\n")
        output = self._strip_echo(text)
        self._buffer, self._answered_to, self._busy = "", 0, False
        command, self._command = self._command, None
        error = find_error(output) if command is not None else None
        if mode is None:
            error = error or ("console_timeout", "Configuration console time out")
        if error is not None:
            return Error(error[0], error[1], output, mode)
        return Done(output, mode)  # type: ignore[arg-type]

    def _strip_echo(self, text: str) -> str:
        if self._command is None:
            return text
        at = text.find(self._command)
        if at >= 0:
            end = text.find("\n", at)
            text = "" if end < 0 else text[end + 1 :]
        text = _SMART_LINE.sub("", text)
        text = _QUESTION_LINE.sub("", text)  # answered: not output
        block = _COMMAND_BLOCK.match(text)
        if block is not None:
            text = text[block.end() :]
        return text
