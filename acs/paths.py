"""Path patterns of declarations: literal segments, `*` wildcards and `[Key:Value]` aliases.

    InternetGatewayDevice.LANDevice.1.WLANConfiguration.*.SSID
    Device.IP.Interface.[Alias:wan,Enable:true].IPv4Address.1.IPAddress
    InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANPPPConnection.[Name:internet]

A wildcard matches every instance (child) of the object before it; an alias matches the
instances whose named children hold the given values (keys may be relative paths,
`[X_ISP.Role:voice]`). Values are literal text; quote them to include `,` `]` or `:`.
"""

from __future__ import annotations

from dataclasses import dataclass

from acs.expr import closing

MAX_PATH = 1024


class PathError(ValueError):
    """A malformed path pattern; says where."""


@dataclass(frozen=True, slots=True)
class Wildcard:
    def __str__(self) -> str:
        return "*"


@dataclass(frozen=True, slots=True)
class Alias:
    keys: tuple[tuple[str, str], ...]  # (relative path, value)

    def __str__(self) -> str:
        return "[" + ",".join(f"{k}:{_quote(v)}" for k, v in self.keys) + "]"


Segment = str | Wildcard | Alias


def _quote(value: str) -> str:
    if any(c in value for c in ",]:\"'") or value != value.strip() or value == "":
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


@dataclass(frozen=True, slots=True)
class Pattern:
    """A parsed path pattern. `object` is true for a pattern written with a trailing dot."""

    segments: tuple[Segment, ...]
    object: bool = False

    @property
    def literal(self) -> bool:
        return all(isinstance(s, str) for s in self.segments)

    def literal_prefix(self) -> str:
        """The path up to the first wildcard or alias ("" if it starts with one)."""
        out = []
        for segment in self.segments:
            if not isinstance(segment, str):
                break
            out.append(segment)
        return ".".join(out)

    def __str__(self) -> str:
        return ".".join(str(s) for s in self.segments) + ("." if self.object else "")


def _alias(body: str, at: int) -> Alias:
    keys: list[tuple[str, str]] = []
    i = 0
    while i < len(body):
        colon = body.find(":", i)
        if colon < 0:
            raise PathError(f"alias at {at} needs Key:Value pairs")
        key = body[i:colon].strip()
        if not key or not all(
            part.replace("_", "a").replace("-", "a").isalnum() for part in key.split(".")
        ):
            raise PathError(f"alias key {key!r} at {at} is not a parameter name")
        i = colon + 1
        if i < len(body) and body[i] in "\"'":
            quote = body[i]
            i += 1
            chars = []
            while i < len(body) and body[i] != quote:
                if body[i] == "\\" and i + 1 < len(body):
                    i += 1
                chars.append(body[i])
                i += 1
            if i >= len(body):
                raise PathError(f"unclosed quote in alias at {at}")
            value = "".join(chars)
            i += 1
            while i < len(body) and body[i] == " ":
                i += 1
            if i < len(body) and body[i] != ",":
                raise PathError(f"expected ',' after quoted alias value at {at}")
        else:
            comma = body.find(",", i)
            end = len(body) if comma < 0 else comma
            value = body[i:end].strip()
            i = end
        keys.append((key, value))
        if i < len(body):
            i += 1  # the comma
    if not keys:
        raise PathError(f"empty alias at {at}")
    return Alias(tuple(keys))


def parse(text: str) -> Pattern:
    """Parse a pattern; PathError names the problem and its position."""
    if len(text) > MAX_PATH:
        raise PathError(f"path longer than {MAX_PATH} characters")
    if text == "":
        return Pattern((), True)
    segments: list[Segment] = []
    i = 0
    is_object = text.endswith(".") and not text.endswith("].")
    body = text[:-1] if text.endswith(".") else text
    if text.endswith("]."):
        is_object = True
    while i < len(body):
        if body[i] == "[":
            depth_end = _alias_end(body, i)
            segments.append(_alias(body[i + 1 : depth_end], i))
            i = depth_end + 1
            if i < len(body):
                if body[i] != ".":
                    raise PathError(f"expected '.' after alias at {i}")
                i += 1
                if i == len(body):
                    raise PathError("empty segment at the end")
            continue
        dot = body.find(".", i)
        end = len(body) if dot < 0 else dot
        name = body[i:end]
        if name == "*":
            segments.append(Wildcard())
        elif not name or not name.replace("_", "a").replace("-", "a").isalnum():
            raise PathError(f"bad segment {name!r} at {i}")
        else:
            segments.append(name)
        i = end + 1 if dot >= 0 else end
        if dot >= 0 and i == len(body):
            raise PathError("empty segment at the end")
    return Pattern(tuple(segments), is_object)


def _alias_end(body: str, start: int) -> int:
    end = closing(body, start + 1, "]")
    if end is None:
        raise PathError(f"unclosed '[' at {start}")
    return end


def parent(path: str) -> str:
    """The object a path sits in ("" for a top-level one)."""
    return path.rpartition(".")[0]


def child_name(path: str) -> str:
    return path.rpartition(".")[2]


def join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
