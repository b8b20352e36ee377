"""ONT optical levels from HUAWEI-XPON-MIB, as samples: pure code, no I/O.

Per-ONT tables under hwXponDeviceMIB (1.3.6.1.4.1.2011.6.128.1.1.2) are indexed
`ifIndex.ontId`, where a GPON port's ifIndex is `125<<25 | frame<<19 | slot<<13 | port<<8`.
Each reading becomes one sample labelled `{"ont": "F/S/P/ID"}`, the same name the CLI
inventory gives the ONT, so the API joins them. 2147483647 is the MIB's "no value"
(an offline ONT); such readings are left out rather than stored as numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agents.snmp.ber import Oid, VarBind
from agents.snmp.groups import numeric, text
from schemas.frames import Sample

XPON = (1, 3, 6, 1, 4, 1, 2011, 6, 128, 1, 1, 2)
ONT_SN = (*XPON, 43, 1, 3)
RUN_STATUS = (*XPON, 46, 1, 15)  # up(1), down(2), invalid(-1)
_DDM = (*XPON, 51, 1)
NO_VALUE = 2147483647
GPON_IFINDEX_BASE = 125 << 25


@dataclass(frozen=True, slots=True)
class Column:
    oid: Oid
    metric: str
    convert: Callable[[float], float]


# Units per the MIB: temperature in °C, bias in mA, ONT Tx/Rx in 0.01 dBm, voltage in mV,
# the OLT's receive level of the ONT in 0.01 dBm offset by 10000.
COLUMNS = (
    Column((*_DDM, 1), "ont_temperature_c", lambda v: v),
    Column((*_DDM, 2), "ont_bias_ma", lambda v: v),
    Column((*_DDM, 3), "ont_tx_dbm", lambda v: v / 100),
    Column((*_DDM, 4), "ont_rx_dbm", lambda v: v / 100),
    Column((*_DDM, 5), "ont_voltage_v", lambda v: v / 1000),
    Column((*_DDM, 6), "olt_rx_dbm", lambda v: (v - 10000) / 100),
)
WALK_ROOTS: list[Oid] = [RUN_STATUS, *(c.oid for c in COLUMNS)]
LINE_PROFILE = (*XPON, 43, 1, 7)  # hwGponDeviceOntLineProfName
SERVICE_PROFILE = (*XPON, 43, 1, 8)  # hwGponDeviceOntServiceProfName
PROFILE_ROOTS: list[Oid] = [LINE_PROFILE, SERVICE_PROFILE]


def gpon_ifindex(frame: int, slot: int, port: int) -> int:
    """The ifIndex of GPON port F/S/P."""
    return GPON_IFINDEX_BASE | frame << 19 | slot << 13 | port << 8


def port_of(ifindex: int) -> tuple[int, int, int] | None:
    """(frame, slot, port) of a GPON port's ifIndex; None for any other ifIndex."""
    if ifindex >> 25 != 125 or ifindex & 0xFF:
        return None
    return (ifindex >> 19) & 0x3F, (ifindex >> 13) & 0x3F, (ifindex >> 8) & 0x1F


def ont_name(index: tuple[int, ...]) -> str | None:
    """`F/S/P/ID` of a per-ONT table index (ifIndex, ontId); None when it is not one."""
    if len(index) != 2:
        return None
    port = port_of(index[0])
    if port is None or not 0 <= index[1] <= 255:
        return None
    return "{}/{}/{}/{}".format(*port, index[1])


def optical_samples(target: int, columns: dict[Oid, list[VarBind]], now_ms: int) -> list[Sample]:
    """Samples of every ONT reading in a walk of WALK_ROOTS (rows that are not ONTs skipped)."""
    out: list[Sample] = []
    for oid, metric, convert in [
        (RUN_STATUS, "ont_online", lambda v: 1.0 if v == 1 else 0.0),
        *((c.oid, c.metric, c.convert) for c in COLUMNS),
    ]:
        n = len(oid)
        for name, tag, value in columns.get(oid, ()):
            ont = ont_name(tuple(name[n:]))
            raw = numeric(tag, value)
            if ont is None or raw is None or raw == NO_VALUE:
                continue
            if metric == "ont_online" and raw == -1:
                continue  # invalid: the OLT does not know
            out.append(Sample(target, metric, {"ont": ont}, now_ms, round(convert(raw), 4)))
    return out


def profile_names(columns: dict[Oid, list[VarBind]]) -> dict[str, tuple[str, str]]:
    """`F/S/P/ID` -> (line profile name, service profile name) from a walk of PROFILE_ROOTS."""
    out: dict[str, list[str]] = {}
    for position, oid in enumerate(PROFILE_ROOTS):
        n = len(oid)
        for name, tag, value in columns.get(oid, ()):
            ont = ont_name(tuple(name[n:]))
            if ont is not None:
                out.setdefault(ont, ["", ""])[position] = text(tag, value)
    return {ont: (line, service) for ont, (line, service) in out.items()}
