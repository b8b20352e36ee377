"""What the simulated MA5800 prints: its objects and the `display` screens, pure.

Column layouts follow the public ntc-templates samples of Huawei SmartAX output
(../shared/data/olt/huawei/ntc-templates/<command>/*.raw), so the agent's parsers read
the simulator like a device. Every function returns the output without the echo, the
prompt or the pager; lines are joined with "\\n" (the VTY sends "\\r\\n").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tools.sim.olt import OltSimulator

RULE = "  " + "-" * 77
BOARD_RULE = "  " + "-" * 73


@dataclass(slots=True)
class Board:
    slot: int
    name: str
    status: str
    subtype0: str = ""
    subtype1: str = ""
    online: str = ""


@dataclass(slots=True)
class Ont:
    slot: int
    port: int
    ont_id: int
    sn: str  # 16 hex digits
    desc: str
    online: bool
    line_profile: int
    srv_profile: int
    equipment: str
    rx: float  # dBm at the ONT
    tx: float  # dBm from the ONT
    olt_rx: float  # dBm at the OLT from this ONT
    temperature: int  # degrees C
    voltage: int  # mV
    bias: int  # mA
    distance: int  # m


@dataclass(slots=True)
class AutofindOnt:
    slot: int
    port: int
    sn: str
    equipment: str


@dataclass(slots=True)
class ServicePort:
    index: int
    vlan: int
    slot: int
    port: int
    ont_id: int
    gemport: int
    user_vlan: int


def render(sim: OltSimulator, command: str, interface: str) -> str:
    """The output of a display command the VTY accepted (`interface` = "0/1" or "")."""
    words = command.split()
    if words[1] == "board":
        return board(sim)
    if words[1] == "version":
        return version(sim)
    if words[1] == "sysuptime":
        return "  System up time: " + _duration(
            sim.uptime(), "{d} day {h} hour {m} minute {s} second"
        )
    if words[1] == "service-port":
        return service_ports(sim)
    if words[2] == "autofind":
        return autofind(sim)
    if words[2] == "optical-info":
        return optical(sim, int(interface.split("/")[1]), int(words[3]))
    if words[3] == "by-sn":
        ont = next((o for o in sim.ont_list if o.sn == words[4].upper()), None)
        return ont_detail(sim, ont) if ont else "  Failure: The ONT does not exist"
    if words[3] == "summary":
        _, slot, port = (int(x) for x in words[4].split("/"))
        return summary(sim, slot, port)
    slot, port = int(words[4]), int(words[5])
    if len(words) == 7:
        ont = sim.find(slot, port, int(words[6]))
        return ont_detail(sim, ont) if ont else "  Failure: The ONT does not exist"
    return port_table(sim, slot, port)


def board(sim: OltSimulator) -> str:
    lines = [BOARD_RULE, "  SlotID  BoardName  Status          SubType0 SubType1    Online/Offline"]
    lines.append(BOARD_RULE)
    for b in sim.boards:
        if not b.name:
            lines.append(f"  {b.slot:<6}")
            continue
        row = f"  {b.slot:<8}{b.name:<11}{b.status:<16}{b.subtype0:<9}{b.subtype1:<12}{b.online}"
        lines.append(row.rstrip() + " ")
    lines.append(BOARD_RULE)
    return "\n".join(lines)


def version(sim: OltSimulator) -> str:
    area = [
        "  Current Program Area : Area A ",
        "  Current Data Area : Area A",
        " ",
        "  Program Area A Version : MA5800V100R022C10 ",
        "  Program Area B Version : MA5800V100R022C10",
        " ",
        "  Data Area A Version : MA5800V100R022C10 ",
        "  Data Area B Version : MA5800V100R022C10 ",
        "  " + "-" * 50,
        " ",
    ]
    lines = ["", "  VERSION : MA5800V100R022C10", "  PATCH   : SPH206"]
    lines += [f"  PRODUCT : {sim.host_name}", " "]
    for which in ("Active", "Standby"):
        lines += [f"  {which} Mainboard Running Area Information: ", "  " + "-" * 50, *area]
    uptime = _duration(sim.uptime(), "{d} day(s), {h} hour(s), {m} minute(s), {s} second(s)")
    lines.append("  Uptime is " + uptime)
    return "\n".join(lines)


def autofind(sim: OltSimulator) -> str:
    if not sim.autofind_list:
        return "  Failure: The automatically found ONTs do not exist"
    rule = "   " + "-" * 76
    lines = []
    for number, ont in enumerate(sim.autofind_list, start=1):
        fields = [
            ("Number", str(number)),
            ("F/S/P", f"0/{ont.slot}/{ont.port}"),
            ("Ont SN", f"{ont.sn} (HWTC-{ont.sn[8:]})"),
            ("Password", "0x00000000000000000000"),
            ("Loid", ""),
            ("Checkcode", ""),
            ("VendorID", "HWTC"),
            ("Ont Version", "494.B"),
            ("Ont SoftwareVersion", "V5R020C10S115"),
            ("Ont EquipmentID", ont.equipment),
            ("Ont Customized Info", "EUCOMMONEBG4"),
            ("Ont MAC", "1234-ABCD-1234"),
            ("Ont Equipment SN", "123456789ABCDEFGHIJK"),
            ("Ont autofind time", "2024-01-01 00:00:00+00:00"),
            ("Multi channel", "-"),
        ]
        lines.append(rule)
        lines += [f"   {k:<20}:{' ' + v if v else ''}" for k, v in fields]
    lines.append(rule)
    return "\n".join(lines)


def _fsp(slot: int, port: int) -> str:
    return f"0/{slot:>2}/{port}"


def _states(sim: OltSimulator, ont: Ont) -> tuple[str, str, str]:
    if sim.online(ont):
        return "online", "normal", "match"
    return "offline", "initial", "initial"


def port_table(sim: OltSimulator, slot: int, port: int) -> str:
    onts = sorted(
        (o for o in sim.ont_list if (o.slot, o.port) == (slot, port)), key=lambda o: o.ont_id
    )
    if not onts:
        return "  Failure: The ONT does not exist"
    lines = [
        RULE,
        "  F/S/P   ONT         SN         Control     Run      Config   Match    Protect",
        "          ID                     flag        state    state    state    side ",
        RULE,
    ]
    for o in onts:
        run, config, match = _states(sim, o)
        fsp = _fsp(slot, port)
        lines.append(
            f"  {fsp:<8}{o.ont_id:>3}  {o.sn}  {'active':<12}{run:<9}{config:<9}{match:<9}no "
        )
    lines += [RULE, "  F/S/P       ONT  Description  ", "              ID  ", RULE]
    lines += [f"  {_fsp(slot, port):<8}{o.ont_id:>6}   {o.desc}" for o in onts]
    online = sum(sim.online(o) for o in onts)
    lines += [
        RULE,
        f"  In port {_fsp(slot, port)} , the total of ONTs are: {len(onts)}, online: {online}",
        RULE,
    ]
    return "\n".join(lines)


def ont_detail(sim: OltSimulator, ont: Ont) -> str:
    run, config, match = _states(sim, ont)
    up = run == "online"
    fields = [
        ("F/S/P", _fsp(ont.slot, ont.port)),
        ("ONT-ID", str(ont.ont_id)),
        ("Control flag", "active"),
        ("Run state", run),
        ("Config state", config),
        ("Match state", match),
        ("ONT LLID", "-"),
        ("ONT distance(m)", str(ont.distance) if up else "-"),
        ("ONT last distance(m)", str(ont.distance)),
        ("ONT RTT(TQ)", "-"),
        ("Memory occupation", "44" if up else "-"),
        ("CPU occupation", "8" if up else "-"),
        ("Temperature", str(ont.temperature) if up else "-"),
        ("Authentic type", "SN-auth"),
        ("SN", f"{ont.sn} (HWTC-{ont.sn[8:]})"),
        ("Management mode", "OMCI"),
        ("Software work mode", "normal"),
        ("Multicast mode", "IGMP-Snooping"),
        ("Description", ont.desc),
        ("Last down cause", "dying-gasp"),
        ("Last up time", "2024-01-05 08:56:12+00:00"),
        ("Last down time", "2024-01-05 08:55:28+00:00"),
        ("Last dying gasp time", "2024-01-05 08:55:28+00:00"),
        (
            "ONT online duration",
            _duration(
                sim.uptime() % 864000, "{d} day(s), {h} hour(s), {m} minute(s), {s} second(s)"
            )
            if up
            else "-",
        ),
        ("Type D support", "Not support"),
        ("Isolation state", "normal"),
        ("Global ONT-ID", str(ont.ont_id)),
        ("Fiber route", "none"),
    ]
    lines = [RULE, *(f"  {k:<24}: {v}" for k, v in fields), RULE]
    lines += [
        f"  Line profile ID      : {ont.line_profile}",
        f"  Line profile name    : {sim.line_profiles.get(ont.line_profile, '-')}",
        RULE,
        f"  Service profile ID   : {ont.srv_profile}",
        f"  Service profile name : {sim.srv_profiles.get(ont.srv_profile, '-')}",
        RULE,
    ]
    return "\n".join(lines)


def summary(sim: OltSimulator, slot: int, port: int) -> str:
    onts = sorted(
        (o for o in sim.ont_list if (o.slot, o.port) == (slot, port)), key=lambda o: o.ont_id
    )
    online = sum(sim.online(o) for o in onts)
    rule = "  " + "-" * 78
    lines = [
        rule,
        f"  In port 0/{slot}/{port}, the total of ONTs are: {len(onts)}, online: {online}",
        rule,
        "  ONT  Run     Last                Last                Last",
        "  ID   State   UpTime              DownTime            DownCause",
        rule,
    ]
    for o in onts:
        run = _states(sim, o)[0]
        down = "2024-01-05 08:55:28" if not sim.online(o) else "-"
        cause = "LOSi/LOBi" if not sim.online(o) else "-"
        lines.append(f"  {o.ont_id:<5}{run:<8}{'2024-01-05 08:56:12':<20}{down:<20}{cause}")
    lines += [
        rule,
        "  ONT        SN        Type          Distance Rx/Tx power  Description",
        "  ID                                    (m)      (dBm)",
        rule,
    ]
    for o in onts:
        up = sim.online(o)
        power = f"{o.rx:.2f}/{o.tx:.2f}" if up else "-/-"
        distance = str(o.distance) if up else "-"
        lines.append(f"  {o.ont_id:<4}{o.sn:<17}{o.equipment:<17}{distance:<6}{power:<13}{o.desc}")
    lines.append(rule)
    return "\n".join(lines)


def optical(sim: OltSimulator, slot: int, port: int) -> str:
    rule = "  " + "-" * 77 + " "
    lines = [
        rule,
        "  ONT  Rx power  Tx power  OLT Rx ONT  Temperature  Voltage  Current  Distance  ",
        "  ID   (dBm)     (dBm)     power(dBm)  (C)          (V)      (mA)     (m)       ",
        rule,
    ]
    for o in sorted(sim.ont_list, key=lambda o: o.ont_id):
        if (o.slot, o.port) != (slot, port) or not sim.online(o):
            continue  # the OLT lists the ONTs it can measure
        lines.append(
            f"  {o.ont_id:>3}  {o.rx:<10.2f}{o.tx:<10.2f}{o.olt_rx:<12.2f}{o.temperature:<13}"
            f"{o.voltage / 1000:<9.3f}{o.bias:<9}{o.distance:<10}"
        )
    lines.append(rule.rstrip())
    return "\n".join(lines)


def service_ports(sim: OltSimulator) -> str:
    lines = [
        "Switch-Oriented Flow List",
        RULE,
        "   INDEX VLAN VLAN     PORT F/ S/ P VPI  VCI   FLOW  FLOW       RX   TX   STATE",
        "         ID   ATTR     TYPE                    TYPE  PARA",
        RULE,
    ]
    up = 0
    for sp in sorted(sim.service_ports.values(), key=lambda s: s.index):
        ont = sim.find(sp.slot, sp.port, sp.ont_id)
        state = "up" if ont is not None and sim.online(ont) else "down"
        up += state == "up"
        lines.append(
            f"{sp.index:>8} {sp.vlan:<4} {'common':<8} gpon 0/{sp.slot:<2}/{sp.port:<2} "
            f"{sp.ont_id:<4} {sp.gemport:<5} {'vlan':<5} {sp.user_vlan:<10} "
            f"{'-':<4} {'-':<4} {state:<5}"
        )
    total = len(sim.service_ports)
    lines += [
        RULE,
        f"   Total : {total}  (Up/Down :    {up}/{total - up})",
        "   Note : F--Frame, S--Slot, P--Port,",
        "          VPI indicates ONT ID for PON, VCI indicates GEM index for GPON,",
        "          v/e--vlan/encap, pritag--priority-tagged,",
        "          ppp--pppoe, ip--ipoe, ip4--ipv4oe, ip6--ipv6oe, vxl--vxlan.",
    ]
    return "\n".join(lines)


def _duration(seconds: float, pattern: str) -> str:
    s = int(seconds)
    return pattern.format(d=s // 86400, h=s // 3600 % 24, m=s // 60 % 60, s=s % 60)
