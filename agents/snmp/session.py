"""What the SNMP driver asks of a session (GET, GETBULK), its errors, and the walk.

Two sessions implement `Session`: `agents.snmp.v2c` (our BER codec over one shared UDP
socket: the fast path) and `agents.snmp.v3` (pysnmp, for USM security). The walk is
written once, here, on top of `get_bulk`, so both get the same guard against agents that
answer with OIDs that do not increase (real recordings hold such loops): a column whose
next OID is not greater than the last one ends there with a `WalkProblem`, and a walk
never asks for the same OID twice.
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final

from agents.driver import PollError
from agents.snmp.ber import (
    END_OF_MIB_VIEW,
    NO_SUCH_INSTANCE,
    NO_SUCH_OBJECT,
    Oid,
    VarBind,
    dotted,
)

DEFAULT_TIMEOUT: Final = 2.0
DEFAULT_RETRIES: Final = 1
DEFAULT_MAX_REPETITIONS: Final = 25
# A walk stops after this many varbinds: an agent that keeps inventing increasing OIDs
# must not fill the agent's memory (the scheduler's deadline bounds the time).
DEFAULT_MAX_VARBINDS: Final = 1_000_000
# GETBULK asks for at most this many varbinds per request (columns x repetitions), so
# a walk of many columns side by side keeps responses near 4 KB: some agents drop a
# response they cannot fit rather than answer tooBig, which would look like a timeout.
MAX_VARBINDS_PER_REQUEST: Final = 128

# RFC 3416 section 3, error-status values, for messages an operator can read.
ERROR_STATUS: Final = (
    "noError",
    "tooBig",
    "noSuchName",
    "badValue",
    "readOnly",
    "genErr",
    "noAccess",
    "wrongType",
    "wrongLength",
    "wrongEncoding",
    "wrongValue",
    "noCreation",
    "inconsistentValue",
    "resourceUnavailable",
    "commitFailed",
    "undoFailed",
    "authorizationError",
    "notWritable",
    "inconsistentName",
)
TOO_BIG: Final = 1


class SnmpError(PollError):
    """An SNMP exchange that failed. Messages never hold a community or a key."""

    code_name: ClassVar[str] = "snmp_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code=self.code_name)


class SnmpTimeout(SnmpError):
    """No answer within timeout x (retries + 1): unreachable, or wrong community (an
    agent drops a request with a community it does not know, without a word)."""

    code_name = "timeout"


class SnmpAuthError(SnmpError):
    """The agent refused our credentials (SNMPv3 USM report: wrong user, key, digest)."""

    code_name = "auth_failed"


class SnmpProtocolError(SnmpError):
    """The agent answered with something that is not a usable SNMP response."""

    code_name = "malformed"


class SnmpAgentError(SnmpError):
    """The agent answered with an error-status (genErr, noAccess, tooBig, ...)."""

    code_name = "agent_error"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def agent_error(status: int, index: int, oids: Sequence[Oid]) -> SnmpAgentError:
    """The error for a response's error-status and error-index (1-based, 0 = none)."""
    name = ERROR_STATUS[status] if 0 <= status < len(ERROR_STATUS) else f"status {status}"
    where = f" at {dotted(oids[index - 1])}" if 0 < index <= len(oids) else ""
    return SnmpAgentError(f"agent answered {name}{where}", status)


class Session(ABC):
    """One target's SNMP conversation: where to send, with which credentials."""

    description: str  # "v2c 192.0.2.1:161": for messages, never a secret

    @abstractmethod
    async def get(self, oids: Sequence[Oid]) -> list[VarBind]:
        """GET: one varbind per OID, in order (noSuchObject/noSuchInstance as tags)."""

    @abstractmethod
    async def get_bulk(
        self, oids: Sequence[Oid], non_repeaters: int, max_repetitions: int
    ) -> list[VarBind]:
        """GETBULK: the varbinds of one response, in wire order."""

    def close(self) -> None:  # noqa: B027 - sessions without resources
        """Release what this session alone holds (shared sockets stay open)."""


# --- walks -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WalkProblem:
    """Why a column of a walk stopped early (the rows before it are kept)."""

    root: Oid
    oid: Oid
    reason: str

    def detail(self) -> dict[str, str]:
        return {"root": dotted(self.root), "oid": dotted(self.oid), "reason": self.reason}


@dataclass(slots=True)
class Walk:
    """The varbinds under each walked root, in the agent's order, and what went wrong."""

    columns: dict[Oid, list[VarBind]]
    problems: list[WalkProblem] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(rows) for rows in self.columns.values())


async def walk(
    session: Session,
    roots: Sequence[Oid],
    max_repetitions: int = DEFAULT_MAX_REPETITIONS,
    max_varbinds: int = DEFAULT_MAX_VARBINDS,
) -> Walk:
    """Every varbind under each root, with GETBULK, all roots side by side.

    Each request carries one varbind per root still open (the last OID seen in it), so a
    table's columns are walked together. A column ends at endOfMibView, at the first OID
    outside its root, or, with a `WalkProblem`, at an OID not greater than the one
    before: the agent would otherwise answer the same rows forever. An agent that says
    tooBig gets the request again with half the repetitions.
    """
    unique = list(dict.fromkeys(roots))
    out = Walk({root: [] for root in unique})
    last = {root: root for root in unique}
    open_roots = list(unique)
    reps = max(1, max_repetitions)
    total = 0
    while open_roots:
        per_request = max(1, min(reps, MAX_VARBINDS_PER_REQUEST // len(open_roots)))
        request = [last[root] for root in open_roots]
        try:
            varbinds = await session.get_bulk(request, 0, per_request)
        except SnmpAgentError as exc:
            if exc.status != TOO_BIG or per_request == 1:
                raise
            reps = per_request // 2
            continue
        if not varbinds:
            for root in open_roots:
                out.problems.append(WalkProblem(root, last[root], "empty GETBULK response"))
            break
        closed = _take(open_roots, varbinds, last, out)
        total += len(varbinds)
        if total >= max_varbinds:
            for i, root in enumerate(open_roots):
                if not closed[i]:
                    out.problems.append(
                        WalkProblem(root, last[root], f"walk stopped after {total} varbinds")
                    )
            break
        open_roots = [root for i, root in enumerate(open_roots) if not closed[i]]
    return out


_END_TAGS: Final = frozenset({END_OF_MIB_VIEW, NO_SUCH_OBJECT, NO_SUCH_INSTANCE})
_lt = operator.lt


def _take(
    open_roots: list[Oid], varbinds: list[VarBind], last: dict[Oid, Oid], out: Walk
) -> list[bool]:
    """File one GETBULK response's varbinds under their roots; which roots it closed.

    Varbinds come in rows of one per requested root (RFC 3416 4.2.3). A root closes at
    endOfMibView, at the first OID outside it, or at an OID not greater than its last.
    noSuchObject/noSuchInstance are not GETNEXT answers, but some agents send them at a
    table's end: they close the root too.
    """
    width = len(open_roots)
    closed = [False] * width
    end_tags = _END_TAGS
    for col, root in enumerate(open_roots):
        chunk = varbinds if width == 1 else varbinds[col::width]
        if not chunk:
            continue
        n = len(root)
        prev = last[root]
        # The usual response, checked with C-level loops: OIDs strictly increasing from
        # the last one seen, no exception value, the last OID still inside the root (so,
        # being increasing, all of them are: a root's OIDs are one contiguous range).
        oids = [vb[0] for vb in chunk]
        tail = oids[-1]
        if (
            oids[0] > prev
            and tail[:n] == root
            and len(tail) > n
            and all(map(_lt, oids, oids[1:]))
            and end_tags.isdisjoint([vb[1] for vb in chunk])
        ):
            out.columns[root].extend(chunk)
            last[root] = tail
            continue
        append = out.columns[root].append
        for vb in chunk:
            oid = vb[0]
            if oid[:n] != root or len(oid) == n or vb[1] in end_tags:
                closed[col] = True
                break
            if oid <= prev:
                out.problems.append(
                    WalkProblem(root, oid, f"OID not increasing after {dotted(prev)}")
                )
                closed[col] = True
                break
            prev = oid
            append(vb)
        last[root] = prev
    return closed
