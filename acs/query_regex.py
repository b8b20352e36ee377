"""Regular expressions of the query language, made to mean the same in Python and PostgreSQL.

Operators write JavaScript regex syntax (GenieACS passes `"/…/i"` strings through
`new RegExp`) and expect MongoDB's matching (PCRE): `.` stops only at `\\n`, `$` also
matches before a final `\\n`, `\\d \\w \\s \\b` are ASCII. Python `re` and PostgreSQL's ARE
engine disagree with each other and with PCRE on exactly those points, on case folding
(PostgreSQL folds by the collation's ctype) and on many escapes, so a pattern is never
handed to either engine as written. It is parsed here and re-emitted twice, spelling
every class, anchor and case variant out explicitly with constructs both engines read
the same way (`\\uXXXX` escapes, bracket ranges, lookarounds). What cannot be spelled
that way (backreferences, lookbehind, named groups, POSIX classes, `[]`) is refused
with a `RegexError` naming the construct, so the SQL and Python evaluators always agree.

Semantics of the flags: `i` folds case by Unicode simple case folding (long s `\u017f` matches `s`,
the Kelvin sign matches `k`), applied to literal characters and ranges, not to `\\w`
style escapes; `m` makes `^`/`$` match at line breaks (`\\n`); `s` lets `.` match `\\n`;
`x` ignores whitespace and `#` comments outside classes (PCRE extended syntax).
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field

MAX_SOURCE = 1000
MAX_DEPTH = 40
MAX_REPEAT = 255  # PostgreSQL's RE_DUP_MAX
MAX_WEIGHT = 4000  # expanded size PostgreSQL compiles comfortably (it refuses near 65,000)
_MAX_CP = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)
FLAGS = frozenset("imsx")


class RegexError(ValueError):
    """A pattern the query language cannot evaluate identically in Python and PostgreSQL."""


@dataclass(frozen=True, slots=True)
class Regex:
    """A translated pattern: equal when source and flags are equal."""

    source: str
    flags: str
    python: str = field(compare=False)
    postgres: str = field(compare=False)
    compiled: re.Pattern[str] = field(compare=False, repr=False)

    def search(self, text: str) -> bool:
        """Whether the pattern matches anywhere in `text` (MongoDB `$regex` semantics)."""
        return self.compiled.search(text) is not None


def compile_regex(source: str, flags: str = "") -> Regex:
    """Parse a JS-syntax pattern with MongoDB `$options` letters; raises `RegexError`."""
    unknown = set(flags) - FLAGS
    if unknown:
        raise RegexError(f"unsupported regex option(s) {''.join(sorted(unknown))!r}")
    if len(source) > MAX_SOURCE:
        raise RegexError(f"regex longer than {MAX_SOURCE} characters")
    norm = "".join(sorted(set(flags)))
    return _compile_cached(source, norm)


@functools.lru_cache(maxsize=2048)
def _compile_cached(source: str, flags: str) -> Regex:
    tree = _Parser(source, flags).parse()
    if _weight(tree) > MAX_WEIGHT:
        raise RegexError("regex too complex (too many repetitions of repetitions)")
    multiline = "m" in flags
    python = _emit(tree, _PY, multiline)
    postgres = _emit(tree, _PG, multiline)
    try:
        compiled = re.compile(python)
    except re.error as exc:  # a translation bug, never the user's fault: say so
        raise RegexError(f"internal regex translation failed: {exc}") from exc
    return Regex(source, flags, python, postgres, compiled)


# ---------------------------------------------------------------------------------------
# Character sets: sorted, disjoint, inclusive code point ranges.

Ranges = tuple[tuple[int, int], ...]


def _normalize(ranges: Iterable[tuple[int, int]]) -> Ranges:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def _complement(ranges: Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    nxt = 0
    for lo, hi in ranges:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= _MAX_CP:
        out.append((nxt, _MAX_CP))
    return tuple(out)


def _without_surrogates(ranges: Ranges) -> Ranges:
    """Neither engine can meet a lone surrogate in stored text; PostgreSQL rejects them."""
    s_lo, s_hi = _SURROGATES
    out: list[tuple[int, int]] = []
    for lo, hi in ranges:
        if hi < s_lo or lo > s_hi:
            out.append((lo, hi))
            continue
        if lo < s_lo:
            out.append((lo, s_lo - 1))
        if hi > s_hi:
            out.append((s_hi + 1, hi))
    return tuple(out)


_DIGIT: Ranges = ((0x30, 0x39),)
_WORD: Ranges = _normalize([(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)])
_SPACE: Ranges = _normalize([(0x09, 0x0D), (0x20, 0x20)])  # PCRE: \t \n \v \f \r space
_NEWLINE: Ranges = ((0x0A, 0x0A),)
_CLASS_ESCAPES: dict[str, Ranges] = {
    "d": _DIGIT,
    "D": _complement(_DIGIT),
    "w": _WORD,
    "W": _complement(_WORD),
    "s": _SPACE,
    "S": _complement(_SPACE),
}
_CONTROL_ESCAPES = {"t": 0x09, "n": 0x0A, "v": 0x0B, "f": 0x0C, "r": 0x0D}
_EXTENDED_SPACE = frozenset(" \t\n\v\f\r")


@functools.cache
def _fold_table() -> tuple[list[int], dict[int, tuple[int, ...]]]:
    """Code points with case variants, and each one's equivalence class (simple folding)."""
    groups: dict[str, list[int]] = {}
    for cp in range(0x20000):
        if _SURROGATES[0] <= cp <= _SURROGATES[1]:
            continue
        char = chr(cp)
        folded = char.casefold()
        if len(folded) != 1:
            lower = char.lower()
            folded = lower if len(lower) == 1 else char
        groups.setdefault(folded, []).append(cp)
    table = {cp: tuple(g) for g in groups.values() if len(g) > 1 for cp in g}
    return sorted(table), table


def _fold(ranges: Ranges) -> Ranges:
    """Add every case variant of the characters in `ranges`."""
    keys, table = _fold_table()
    extra: list[tuple[int, int]] = []
    for lo, hi in ranges:
        for i in range(bisect_left(keys, lo), bisect_right(keys, hi)):
            extra.extend((v, v) for v in table[keys[i]])
    return _normalize([*ranges, *extra]) if extra else ranges


# ---------------------------------------------------------------------------------------
# The parsed pattern.


@dataclass(frozen=True, slots=True)
class _Set:
    ranges: Ranges


@dataclass(frozen=True, slots=True)
class _Seq:
    items: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Alt:
    branches: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Repeat:
    item: _Node
    low: int
    high: int | None


@dataclass(frozen=True, slots=True)
class _Look:
    item: _Node
    negative: bool


@dataclass(frozen=True, slots=True)
class _Anchor:
    kind: str  # start | end | word | nonword


_Node = _Set | _Seq | _Alt | _Repeat | _Look | _Anchor


class _Parser:
    """Recursive descent over JS regex syntax (ECMAScript, non-unicode mode)."""

    def __init__(self, source: str, flags: str) -> None:
        self.src = source
        self.pos = 0
        self.fold = "i" in flags
        self.dotall = "s" in flags
        self.extended = "x" in flags

    def parse(self) -> _Node:
        node = self._alternation(0)
        if self.pos < len(self.src):  # only an unbalanced ')' stops the top level early
            raise self._error("unmatched ')'")
        return node

    def _error(self, message: str) -> RegexError:
        return RegexError(f"{message} at position {self.pos} of regex {self.src!r}")

    def _peek(self) -> str:
        return self.src[self.pos] if self.pos < len(self.src) else ""

    def _skip_extended(self) -> None:
        if not self.extended:
            return
        while self.pos < len(self.src):
            char = self.src[self.pos]
            if char in _EXTENDED_SPACE:
                self.pos += 1
            elif char == "#":
                end = self.src.find("\n", self.pos)
                self.pos = len(self.src) if end < 0 else end + 1
            else:
                return

    def _alternation(self, depth: int) -> _Node:
        if depth > MAX_DEPTH:
            raise self._error("regex nested too deeply")
        branches = [self._sequence(depth)]
        while self._peek() == "|":
            self.pos += 1
            branches.append(self._sequence(depth))
        return branches[0] if len(branches) == 1 else _Alt(tuple(branches))

    def _sequence(self, depth: int) -> _Node:
        items: list[_Node] = []
        while True:
            self._skip_extended()
            char = self._peek()
            if char in ("", "|", ")"):
                break
            if char in "*+?" or (char == "{" and self._quantifier_at(self.pos)):
                raise self._error("nothing to repeat")
            atom, quantifiable = self._atom(depth)
            self._skip_extended()
            quantifier = self._quantifier()
            if quantifier is not None:
                if not quantifiable:
                    raise self._error("an assertion cannot be repeated")
                atom = _Repeat(atom, *quantifier)
                self._skip_extended()
                if self._peek() in ("*", "+", "?") or (
                    self._peek() == "{" and self._quantifier_at(self.pos)
                ):
                    raise self._error("nothing to repeat")
            items.append(atom)
        return items[0] if len(items) == 1 else _Seq(tuple(items))

    def _quantifier_at(self, pos: int) -> re.Match[str] | None:
        return _BRACES.match(self.src, pos)

    def _quantifier(self) -> tuple[int, int | None] | None:
        char = self._peek()
        result: tuple[int, int | None]
        if char == "*":
            result, self.pos = (0, None), self.pos + 1
        elif char == "+":
            result, self.pos = (1, None), self.pos + 1
        elif char == "?":
            result, self.pos = (0, 1), self.pos + 1
        elif char == "{" and (m := self._quantifier_at(self.pos)):
            low = int(m["low"])
            high = low if m["comma"] is None else (int(m["high"]) if m["high"] else None)
            if high is not None and high < low:
                raise self._error("numbers out of order in {} quantifier")
            if low > MAX_REPEAT or (high is not None and high > MAX_REPEAT):
                raise self._error(f"repetition count above {MAX_REPEAT}")
            result, self.pos = (low, high), m.end()
        else:
            return None
        if self._peek() == "?":  # lazy: the same set of strings matches
            self.pos += 1
        return result

    def _atom(self, depth: int) -> tuple[_Node, bool]:
        char = self.src[self.pos]
        self.pos += 1
        if char == "(":
            return self._group(depth)
        if char == "[":
            return _Set(self._class()), True
        if char == ".":
            return _Set(_complement(()) if self.dotall else _complement(_NEWLINE)), True
        if char == "^":
            return _Anchor("start"), False
        if char == "$":
            return _Anchor("end"), False
        if char == "\\":
            return self._escape()
        return self._literal(ord(char)), True

    def _literal(self, cp: int) -> _Set:
        ranges: Ranges = ((cp, cp),)
        return _Set(_fold(ranges) if self.fold else ranges)

    def _group(self, depth: int) -> tuple[_Node, bool]:
        look: bool | None = None
        if self.src.startswith("?", self.pos):
            head = self.src[self.pos : self.pos + 3]
            if head.startswith("?:"):
                self.pos += 2
            elif head.startswith(("?=", "?!")):
                look = head[1] == "!"
                self.pos += 2
            elif head in ("?<=", "?<!"):
                raise self._error("lookbehind is not supported")
            elif head.startswith("?<"):
                raise self._error("named groups are not supported")
            else:
                raise self._error("unknown group syntax '(?'")
        inner = self._alternation(depth + 1)
        if self._peek() != ")":
            raise self._error("missing ')'")
        self.pos += 1
        if look is not None:
            return _Look(inner, look), False
        return inner, True

    def _escape(self) -> tuple[_Node, bool]:
        if self.pos >= len(self.src):
            raise self._error("pattern ends with a backslash")
        char = self.src[self.pos]
        if char in "bB":
            self.pos += 1
            return _Anchor("word" if char == "b" else "nonword"), False
        if char in _CLASS_ESCAPES:
            self.pos += 1
            return _Set(_CLASS_ESCAPES[char]), True
        return self._literal(self._char_escape(in_class=False)), True

    def _char_escape(self, *, in_class: bool) -> int:
        """The code point of a character escape; `self.pos` is just after the backslash."""
        char = self.src[self.pos]
        self.pos += 1
        if char in _CONTROL_ESCAPES:
            return _CONTROL_ESCAPES[char]
        if char == "b" and in_class:
            return 0x08
        if char == "0" and not self._peek().isdigit():
            return 0
        if char.isdigit():
            raise self._error("backreferences and octal escapes are not supported")
        if char == "x":
            return self._hex(2)
        if char == "u":
            high = self._hex(4)
            if 0xD800 <= high <= 0xDBFF and _SURROGATE_TAIL.match(self.src, self.pos):
                low = int(self.src[self.pos + 2 : self.pos + 6], 16)
                self.pos += 6
                return 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            if 0xD800 <= high <= 0xDFFF:
                raise self._error("a lone surrogate cannot match stored text")
            return high
        if char == "c" and self._peek().isascii() and self._peek().isalpha():
            self.pos += 1
            return ord(self.src[self.pos - 1]) % 32
        if char == "k":
            raise self._error("named backreferences are not supported")
        if char.isascii() and char.isalnum():
            raise self._error(f"unknown escape '\\{char}'")
        return ord(char)  # an identity escape: \. \/ \\ \- ...

    def _hex(self, digits: int) -> int:
        text = self.src[self.pos : self.pos + digits]
        if len(text) != digits or not all(c in "0123456789abcdefABCDEF" for c in text):
            raise self._error(f"escape needs {digits} hex digits")
        self.pos += digits
        return int(text, 16)

    def _class(self) -> Ranges:
        negated = self._peek() == "^"
        if negated:
            self.pos += 1
        if self._peek() == "]":
            raise self._error("'[]' and '[^]' mean different things in JS and PCRE")
        letters: list[tuple[int, int]] = []
        escapes: list[tuple[int, int]] = []
        while True:
            char = self._peek()
            if char == "":
                raise self._error("missing ']'")
            if char == "]":
                self.pos += 1
                break
            start = self._class_atom()
            if isinstance(start, tuple):  # \d, \w, \s ... inside the class
                escapes.extend(start)
                continue
            if self._peek() == "-" and self.src[self.pos + 1 : self.pos + 2] not in ("]", ""):
                self.pos += 1
                end = self._class_atom()
                if isinstance(end, tuple):  # [a-\d]: the '-' is literal (JS Annex B)
                    letters.extend([(start, start), (0x2D, 0x2D)])
                    escapes.extend(end)
                    continue
                if end < start:
                    raise self._error("range out of order in character class")
                letters.append((start, end))
            else:
                letters.append((start, start))
        ranges = _normalize(letters)
        if self.fold:
            ranges = _fold(ranges)
        ranges = _normalize([*ranges, *escapes])
        return _complement(ranges) if negated else ranges

    def _class_atom(self) -> int | Ranges:
        char = self.src[self.pos]
        if char == "[" and self.src[self.pos + 1 : self.pos + 2] in (":", ".", "="):
            raise self._error("POSIX classes like '[:alpha:]' are not supported")
        self.pos += 1
        if char != "\\":
            return ord(char)
        if self.pos >= len(self.src):
            raise self._error("pattern ends with a backslash")
        escape = self.src[self.pos]
        if escape in _CLASS_ESCAPES:
            self.pos += 1
            return _CLASS_ESCAPES[escape]
        return self._char_escape(in_class=True)


_BRACES = re.compile(r"\{(?P<low>[0-9]+)(?:(?P<comma>,)(?P<high>[0-9]*))?\}")
_SURROGATE_TAIL = re.compile(r"\\u[dD][c-fC-F][0-9a-fA-F]{2}")


def _weight(node: _Node) -> int:
    """Roughly the size of the automaton PostgreSQL builds (repetitions are unrolled)."""
    if isinstance(node, _Set | _Anchor):
        return 1
    if isinstance(node, _Seq):
        return sum(_weight(i) for i in node.items)
    if isinstance(node, _Alt):
        return sum(_weight(b) for b in node.branches)
    if isinstance(node, _Look):
        return _weight(node.item)
    copies = node.high if node.high is not None else node.low + 1
    return _weight(node.item) * max(copies, 1)


# ---------------------------------------------------------------------------------------
# Emission. Only constructs with one meaning in both dialects are written.


@dataclass(frozen=True, slots=True)
class _Dialect:
    any_char: str
    never: str
    start: str
    end: str
    line_start: str
    line_end: str


_PY = _Dialect(
    any_char="(?s:.)",
    never="(?!)",
    start=r"\A",
    end=r"(?=\n?\Z)",
    line_start=r"(?:\A|(?<=\n))",
    line_end=r"(?=\n|\Z)",
)
_PG = _Dialect(
    any_char=".",  # ARE's default (not newline-sensitive) mode: '.' matches '\n'
    never="(?!)",
    start="^",
    end=r"(?=\n?$)",
    line_start=r"(?:^|(?<=\n))",
    line_end=r"(?=\n|$)",
)
_W = r"[0-9A-Z_a-z]"
_WORD_BOUNDARY = rf"(?:(?<={_W})(?!{_W})|(?<!{_W})(?={_W}))"
_NOT_WORD_BOUNDARY = rf"(?:(?<={_W})(?={_W})|(?<!{_W})(?!{_W}))"


def _char(cp: int) -> str:
    """A code point as an escape both dialects read literally, in or out of brackets."""
    if cp < 0x80:
        char = chr(cp)
        if char.isalnum():
            return char
        if 0x20 <= cp < 0x7F:
            return "\\" + char
    return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def _bracket(ranges: Ranges) -> str:
    parts = []
    for lo, hi in ranges:
        if lo == hi:
            parts.append(_char(lo))
        elif hi == lo + 1:
            parts.append(_char(lo) + _char(hi))
        else:
            parts.append(f"{_char(lo)}-{_char(hi)}")
    return "".join(parts)


def _emit_set(ranges: Ranges, dialect: _Dialect) -> str:
    ranges = _without_surrogates(ranges)
    if not ranges:
        return dialect.never
    inverse = _without_surrogates(_complement(ranges))
    if not inverse:
        return dialect.any_char
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _char(ranges[0][0])
    if len(inverse) < len(ranges):
        return f"[^{_bracket(inverse)}]"
    return f"[{_bracket(ranges)}]"


def _emit(node: _Node, dialect: _Dialect, multiline: bool) -> str:
    if isinstance(node, _Set):
        return _emit_set(node.ranges, dialect)
    if isinstance(node, _Seq):
        return "".join(_emit(i, dialect, multiline) for i in node.items)
    if isinstance(node, _Alt):
        return "(?:" + "|".join(_emit(b, dialect, multiline) for b in node.branches) + ")"
    if isinstance(node, _Look):
        return ("(?!" if node.negative else "(?=") + _emit(node.item, dialect, multiline) + ")"
    if isinstance(node, _Anchor):
        return {
            "start": dialect.line_start if multiline else dialect.start,
            "end": dialect.line_end if multiline else dialect.end,
            "word": _WORD_BOUNDARY,
            "nonword": _NOT_WORD_BOUNDARY,
        }[node.kind]
    inner = _emit(node.item, dialect, multiline)
    grouped = isinstance(node.item, _Alt) or (
        isinstance(node.item, _Set) and not inner.startswith("(")
    )
    if not grouped:
        inner = f"(?:{inner})"
    low, high = node.low, node.high
    if (low, high) == (0, None):
        return inner + "*"
    if (low, high) == (1, None):
        return inner + "+"
    if (low, high) == (0, 1):
        return inner + "?"
    if high is None:
        return f"{inner}{{{low},}}"
    return f"{inner}{{{low}}}" if low == high else f"{inner}{{{low},{high}}}"


def wildcard_source(text: str) -> str:
    """GenieACS's `*` wildcard as a JS regex source: `abc*` -> `^abc`, `a*c` -> `^a.*c$`.

    Unlike GenieACS (which escapes only the first special character and replaces only
    the first inner `*`), every special character is escaped and every `*` is a wildcard.
    """
    core = text.strip("*")
    body = ".*".join(re.sub(r"([\\^$.|?+()\[\]{}/])", r"\\\1", part) for part in core.split("*"))
    head = "" if text.startswith("*") else "^"
    tail = "" if text.endswith("*") else "$"
    return head + body + tail
