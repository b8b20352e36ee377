"""A small, safe expression language for values in provisions and virtual parameters.

Operators upload documents, never code: an expression can only read what it is given
(device parameters, provision arguments, the device's identity, the time) and call the
functions in `FUNCTIONS`. No attribute access, no loops, no recursion into user code;
length, depth and result sizes are bounded.

    "ISP-" + serial + "-5G"
    substr(param("InternetGatewayDevice.DeviceInfo.SerialNumber"), -6, 6)
    args[0] == "business" ? 3600 : 86400
    first("Device.IP.Interface.*.IPv4Address.*.IPAddress") ?? "0.0.0.0"
    round(num(param("X_HW.RxPower")) / 10000 - 40, 2)

In strings of a provision, `${...}` interpolates an expression: "ISP-${serial}".
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_SOURCE = 2000
MAX_DEPTH = 32
MAX_STRING = 65536
MAX_STEPS = 10_000


class ExprError(ValueError):
    """A malformed expression, or one that cannot be evaluated; says where and why."""


class Unknown(Exception):
    """Evaluation needs a parameter value the ACS does not know yet (it must read it)."""

    def __init__(self, paths: Sequence[str]) -> None:
        super().__init__(", ".join(paths))
        self.paths = tuple(paths)


Value = str | int | float | bool | None

# --- tokens --------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>\?\?|==|!=|<=|>=|&&|\|\||[-+*/%<>!?:(),\[\]])
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"'}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    at: int


def _tokens(source: str) -> list[_Token]:
    out = []
    pos = 0
    while pos < len(source):
        if source[pos:].isspace():
            break
        match = _TOKEN.match(source, pos)
        if match is None or match.end() == pos:
            raise ExprError(f"unexpected {source[pos : pos + 10]!r} at {pos}")
        kind = match.lastgroup
        assert kind is not None
        out.append(_Token(kind, match.group(kind), match.start(kind)))
        pos = match.end()
    out.append(_Token("end", "", len(source)))
    return out


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


# --- syntax tree -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal:
    value: Value


@dataclass(frozen=True, slots=True)
class Name:
    name: str


@dataclass(frozen=True, slots=True)
class Index:
    target: Node
    index: Node


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Conditional:
    test: Node
    then: Node
    otherwise: Node


Node = Literal | Name | Index | Call | Unary | Binary | Conditional

# Binding powers: higher binds tighter.
_BINARY = {
    "??": 1,
    "||": 2,
    "or": 2,
    "&&": 3,
    "and": 3,
    "==": 4,
    "!=": 4,
    "<": 5,
    "<=": 5,
    ">": 5,
    ">=": 5,
    "+": 6,
    "-": 6,
    "*": 7,
    "/": 7,
    "%": 7,
}
_CONSTANTS: dict[str, Value] = {"true": True, "false": False, "null": None}


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokens(source)
        self.pos = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self, text: str | None = None) -> _Token:
        token = self.tokens[self.pos]
        if text is not None and token.text != text:
            raise ExprError(f"expected {text!r} at {token.at}, found {token.text or 'the end'!r}")
        self.pos += 1
        return token

    def parse(self) -> Node:
        node = self.expression(0, 0)
        if self.peek().kind != "end":
            raise ExprError(f"unexpected {self.peek().text!r} at {self.peek().at}")
        return node

    def expression(self, power: int, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise ExprError(f"expression nested deeper than {MAX_DEPTH}")
        left = self.prefix(depth)
        while True:
            token = self.peek()
            if token.text == "?" and power == 0:
                self.take()
                then = self.expression(0, depth + 1)
                self.take(":")
                otherwise = self.expression(0, depth + 1)
                left = Conditional(left, then, otherwise)
                continue
            op = token.text if token.kind in ("op", "name") else ""
            bp = _BINARY.get(op, 0)
            if bp <= power:
                return left
            self.take()
            right = self.expression(bp, depth + 1)
            left = Binary({"and": "&&", "or": "||"}.get(op, op), left, right)

    def prefix(self, depth: int) -> Node:
        token = self.take()
        if token.kind == "number":
            number: Value = (
                float(token.text) if any(c in token.text for c in ".eE") else int(token.text)
            )
            return self.postfix(Literal(number), depth)
        if token.kind == "string":
            return self.postfix(Literal(_unquote(token.text)), depth)
        if token.text in ("-", "!", "not"):
            return Unary("!" if token.text == "not" else token.text, self.expression(8, depth + 1))
        if token.text == "(":
            node = self.expression(0, depth + 1)
            self.take(")")
            return self.postfix(node, depth)
        if token.kind == "name":
            if token.text in _CONSTANTS:
                return self.postfix(Literal(_CONSTANTS[token.text]), depth)
            if self.peek().text == "(":
                self.take()
                args: list[Node] = []
                if self.peek().text != ")":
                    while True:
                        args.append(self.expression(0, depth + 1))
                        if self.peek().text != ",":
                            break
                        self.take()
                self.take(")")
                if token.text not in FUNCTIONS:
                    raise ExprError(f"unknown function {token.text!r} at {token.at}")
                return self.postfix(Call(token.text, tuple(args)), depth)
            return self.postfix(Name(token.text), depth)
        raise ExprError(f"unexpected {token.text or 'end'!r} at {token.at}")

    def postfix(self, node: Node, depth: int) -> Node:
        while self.peek().text == "[":
            self.take()
            index = self.expression(0, depth + 1)
            self.take("]")
            node = Index(node, index)
        return node


def parse(source: str) -> Node:
    """The syntax tree of an expression, or ExprError saying what is wrong where."""
    if len(source) > MAX_SOURCE:
        raise ExprError(f"expression longer than {MAX_SOURCE} characters")
    return _Parser(source).parse()


# --- evaluation ------------------------------------------------------------------------------


@dataclass
class Scope:
    """What an expression may read. `param` returns None for a parameter that exists
    with no value and raises Unknown for one never read; `first` resolves wildcards."""

    variables: Mapping[str, Any] = field(default_factory=dict)
    param: Callable[[str], Value] = lambda path: None
    first: Callable[[Sequence[str]], Value] = lambda paths: None
    secret: Callable[[str], str] = lambda purpose: ""
    steps: int = 0


def _truthy(value: Value) -> bool:
    return value not in (None, False, 0, "", "false", "0")


def _number(value: Value, what: str = "value") -> int | float:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ExprError(f"{what} {value!r} is not a number") from None
        if number.is_finite():
            return int(number) if number == number.to_integral_value() else float(number)
    raise ExprError(f"{what} {value!r} is not a number")


def text_of(value: Value) -> str:
    """A value as text: how templates and string functions see it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _checked(value: Value) -> Value:
    if isinstance(value, str) and len(value) > MAX_STRING:
        raise ExprError(f"string result longer than {MAX_STRING} characters")
    if isinstance(value, float) and not math.isfinite(value):
        raise ExprError("numeric result is not finite")
    return value


def _add(left: Value, right: Value) -> Value:
    if isinstance(left, str) or isinstance(right, str) or left is None or right is None:
        return text_of(left) + text_of(right)
    return _number(left) + _number(right)


def _divide(left: Value, right: Value) -> Value:
    divisor = _number(right)
    if divisor == 0:
        raise ExprError("division by zero")
    result = _number(left) / divisor
    return int(result) if result.is_integer() else result


def _modulo(left: Value, right: Value) -> Value:
    divisor = _number(right)
    if divisor == 0:
        raise ExprError("division by zero")
    return _number(left) % divisor


def _compare(op: str, left: Value, right: Value) -> bool:
    if op in ("==", "!="):
        if isinstance(left, int | float) != isinstance(right, int | float) and None not in (
            left,
            right,
        ):
            equal = text_of(left) == text_of(right)
        else:
            equal = left == right
        return equal if op == "==" else not equal
    try:
        a: Any = _number(left)
        b: Any = _number(right)
    except ExprError:
        a, b = text_of(left), text_of(right)
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


_ARITHMETIC: dict[str, Callable[[Value, Value], Value]] = {
    "+": _add,
    "-": lambda a, b: _number(a) - _number(b),
    "*": lambda a, b: _number(a) * _number(b),
    "/": _divide,
    "%": _modulo,
}


def _substr(text: Value, start: Value, length: Value = None) -> Value:
    s = text_of(text)
    begin = int(_number(start, "start"))
    if begin < 0:
        begin = max(0, len(s) + begin)
    if length is None:
        return s[begin:]
    return s[begin : begin + max(0, int(_number(length, "length")))]


def _round(value: Value, digits: Value = 0) -> Value:
    result = round(_number(value), int(_number(digits, "digits")))
    return int(result) if float(result).is_integer() else result


def _num(value: Value) -> Value:
    try:
        return _number(value)
    except ExprError:
        return None


def _int(value: Value) -> Value:
    number = _num(value)
    return None if number is None else int(number)


def _replace(text: Value, old: Value, new: Value) -> Value:
    if text_of(old) == "":
        raise ExprError("replace() needs a non-empty string to replace")
    return text_of(text).replace(text_of(old), text_of(new))


def _hex(value: Value) -> Value:
    return format(int(_number(value)), "x")


def _pad(value: Value, width: Value, fill: Value = "0") -> Value:
    filler = text_of(fill)[:1] or "0"
    return text_of(value).rjust(min(int(_number(width, "width")), 256), filler)


# Functions that take evaluated arguments. `param`, `first` and `secret` are special
# forms (below): they read the scope.
FUNCTIONS: dict[str, Callable[..., Value]] = {
    "concat": lambda *parts: "".join(text_of(p) for p in parts),
    "upper": lambda v: text_of(v).upper(),
    "lower": lambda v: text_of(v).lower(),
    "trim": lambda v: text_of(v).strip(),
    "len": lambda v: len(text_of(v)),
    "substr": _substr,
    "replace": _replace,
    "contains": lambda v, part: text_of(part) in text_of(v),
    "startswith": lambda v, part: text_of(v).startswith(text_of(part)),
    "endswith": lambda v, part: text_of(v).endswith(text_of(part)),
    "str": text_of,
    "num": _num,
    "int": _int,
    "round": _round,
    "min": lambda *values: min(_number(v) for v in values),
    "max": lambda *values: max(_number(v) for v in values),
    "abs": lambda v: abs(_number(v)),
    "hex": _hex,
    "pad": _pad,
    "param": lambda path: None,  # special form; never called
    "first": lambda *paths: None,  # special form; never called
    "secret": lambda purpose: None,  # special form; never called
}
_SPECIAL = frozenset({"param", "first", "secret"})


def evaluate(node: Node, scope: Scope) -> Value:
    """The value of an expression; ExprError for a type or range problem, Unknown when
    a parameter it reads has never been read from the device."""
    scope.steps += 1
    if scope.steps > MAX_STEPS:
        raise ExprError(f"expression took more than {MAX_STEPS} steps")
    match node:
        case Literal(value):
            return value
        case Name(name):
            if name not in scope.variables:
                raise ExprError(f"unknown name {name!r}")
            return scope.variables[name]
        case Index(target, index):
            container = evaluate(target, scope)
            position = evaluate(index, scope)
            if not isinstance(container, list | tuple | str):
                raise ExprError("only lists and strings can be indexed")
            i = int(_number(position, "index"))
            return container[i] if -len(container) <= i < len(container) else None
        case Unary("-", operand):
            return _checked(-_number(evaluate(operand, scope)))
        case Unary(_, operand):
            return not _truthy(evaluate(operand, scope))
        case Binary("&&", left, right):
            first = evaluate(left, scope)
            return evaluate(right, scope) if _truthy(first) else first
        case Binary("||", left, right):
            first = evaluate(left, scope)
            return first if _truthy(first) else evaluate(right, scope)
        case Binary("??", left, right):
            first = evaluate(left, scope)
            return evaluate(right, scope) if first in (None, "") else first
        case Binary(op, left, right) if op in _ARITHMETIC:
            return _checked(_ARITHMETIC[op](evaluate(left, scope), evaluate(right, scope)))
        case Binary(op, left, right):
            return _compare(op, evaluate(left, scope), evaluate(right, scope))
        case Conditional(test, then, otherwise):
            return evaluate(then if _truthy(evaluate(test, scope)) else otherwise, scope)
        case Call(name, args) if name in _SPECIAL:
            values = [text_of(evaluate(a, scope)) for a in args]
            if name == "param":
                if len(values) != 1:
                    raise ExprError("param() takes one path")
                return scope.param(values[0])
            if name == "secret":
                return scope.secret(values[0] if values else "")
            return scope.first(values)
        case Call(name, args):
            try:
                return _checked(FUNCTIONS[name](*(evaluate(a, scope) for a in args)))
            except TypeError:
                raise ExprError(f"{name}() called with {len(args)} arguments") from None
    raise ExprError("unsupported expression")  # pragma: no cover


def parameter_paths(node: Node) -> set[str]:
    """The literal paths an expression reads with param() and first() (for planning which
    values to read, and for virtual parameters' dependency graph)."""
    out: set[str] = set()
    stack: list[Node] = [node]
    while stack:
        item = stack.pop()
        match item:
            case Call(name, args) if name in ("param", "first"):
                out.update(
                    a.value for a in args if isinstance(a, Literal) and isinstance(a.value, str)
                )
                stack.extend(args)
            case Call(_, args):
                stack.extend(args)
            case Index(target, index):
                stack.extend((target, index))
            case Unary(_, operand):
                stack.append(operand)
            case Binary(_, left, right):
                stack.extend((left, right))
            case Conditional(test, then, otherwise):
                stack.extend((test, then, otherwise))
    return out


# --- templates: "${...}" inside strings -------------------------------------------------------

_TEMPLATE = re.compile(r"\$\$|\$\{")


@dataclass(frozen=True, slots=True)
class Template:
    """A string with `${expr}` parts; `$$` is a literal dollar sign."""

    parts: tuple[str | Node, ...]

    @property
    def constant(self) -> bool:
        return all(isinstance(p, str) for p in self.parts)

    def render(self, scope: Scope) -> Value:
        if len(self.parts) == 1 and not isinstance(self.parts[0], str):
            return evaluate(self.parts[0], scope)  # a lone expression keeps its type
        return _checked(
            "".join(p if isinstance(p, str) else text_of(evaluate(p, scope)) for p in self.parts)
        )

    def paths(self) -> set[str]:
        out: set[str] = set()
        for part in self.parts:
            if not isinstance(part, str):
                out |= parameter_paths(part)
        return out


def template(text: str) -> Template:
    """Parse a provision string: literal text with `${...}` expressions."""
    parts: list[str | Node] = []
    literal: list[str] = []
    pos = 0
    while True:
        match = _TEMPLATE.search(text, pos)
        if match is None:
            literal.append(text[pos:])
            break
        literal.append(text[pos : match.start()])
        if match.group() == "$$":
            literal.append("$")
            pos = match.end()
            continue
        end = _closing_brace(text, match.end())
        if literal and "".join(literal):
            parts.append("".join(literal))
        literal = []
        try:
            parts.append(parse(text[match.end() : end]))
        except ExprError as exc:
            raise ExprError(f"in ${{...}} at {match.start()}: {exc}") from None
        pos = end + 1
    if "".join(literal):
        parts.append("".join(literal))
    return Template(tuple(parts) or ("",))


def closing(text: str, start: int, closer: str) -> int | None:
    """The index of `closer` at or after `start`, skipping quoted strings ('...' or "..."
    with backslash escapes); None if there is none."""
    quote = ""
    i = start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == closer:
            return i
        i += 1
    return None


def _closing_brace(text: str, start: int) -> int:
    end = closing(text, start, "}")
    if end is None:
        raise ExprError(f"unclosed ${{ at {start - 2}")
    return end
