"""A simulated Huawei MA5800 OLT: the SSH CLI (asyncssh server on 127.0.0.1) and XPON SNMP.

The state is one frame 0 with boards, PON ports, registered ONTs generated from a seed
(serials `48575443` + 8 hex), an autofind list, service ports and port enable states.
The CLI answers with the column layouts of the public ntc-templates samples (see
../shared/data/olt/README.md) so the parsers read it; it behaves like the device where
the session code must cope: YES/NO login question, smart prompts `{ <cr>||<K> }:` with a
`Command:` echo block, the `---- More ----` pager erased with ESC[37D, (y/n) confirmations,
modes and their prompts, `% Unknown command` with a caret line.

Faults for tests (attributes, settable while running): `latency` per command,
`busy_next` (the next N commands answer "System is busy"), `disconnect_on` (drop the
connection halfway through the output of the next command starting so),
`max_sessions` (a further login is refused, like a full VTY table), `alarms` (an
unsolicited alarm block inside every long output), `accept_scroll=False` (an OLT that
refuses `scroll`, so it pages). Every login is kept in `logins`; `open_sessions` and
`max_concurrent` count shells open at once.

Command line: `chronos sim olt --port 2222 --onts 64` (or `python -m tools.sim.olt`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import asyncssh

from agents.snmp import ber
from tools.sim.olt_output import AutofindOnt, Board, Ont, ServicePort, render
from tools.sim.snmp import SYS, SnmpSimulator
from tools.sim.snmp import running as snmp_running

log = logging.getLogger("chronos.sim.olt")

PAGER = "---- More ( Press 'Q' to break ) ----"
ERASE = "\x1b[37D" + " " * 37 + "\x1b[37D"
BUSY = "  Failure: System is busy, please retry after a while"
# Commands that set the terminal up or move between modes: never "busy".
_PLUMBING = re.compile(
    r"(enable|disable|config|quit|return|interface |(undo )?smart|scroll|infoswitch)"
)
_GPON_BOARDS = {"H901GPHF": 16, "H805GPFD": 16}
XPON = (1, 3, 6, 1, 4, 1, 2011, 6, 128, 1, 1, 2)
NO_VALUE = 2147483647  # HUAWEI-XPON-MIB "no value" (offline ONTs)


@dataclass(frozen=True, slots=True)
class Login:
    at: float  # time.monotonic()
    source_port: int
    username: str
    accepted: bool


@dataclass(eq=False)
class OltSimulator:
    """One MA5800; serve it with `running()`."""

    host_name: str = "MA5800-X7"
    username: str = "root"
    password: str = "admin123"
    authorized_key: asyncssh.SSHKey | None = None  # public key accepted besides the password
    onts: int = 16
    autofind: int = 2
    ports_used: int = 2  # PON ports per GPON board that carry ONTs
    seed: int = 0
    community: str = "public"
    banner_question: bool = True
    accept_scroll: bool = True
    page_lines: int = 24
    alarms: bool = False
    latency: float = 0.0
    busy_next: int = 0
    disconnect_on: str | None = None
    max_sessions: int = 2
    line_profiles: dict[int, str] = field(default_factory=lambda: {10: "ftth", 500: "new_link"})
    srv_profiles: dict[int, str] = field(default_factory=lambda: {10: "ftth", 500: "new_link"})
    vlans: set[int] = field(default_factory=lambda: {100, 200, 300})  # created on the OLT
    # observations
    logins: list[Login] = field(default_factory=list)
    open_sessions: int = 0
    max_concurrent: int = 0
    commands: list[str] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (command, rendered)
    started: float = field(default_factory=time.monotonic)
    host_key: str = ""  # the public host key, set by running()

    def __post_init__(self) -> None:
        self.boards = [
            Board(0, "H901GPHF", "Normal"),
            Board(1, "H805GPFD", "Normal"),
            Board(2, "", ""),
            Board(8, "H901MPLA", "Active_normal", "CPCF"),
            Board(9, "H901MPLA", "Standby_normal", "CPCF"),
            Board(10, "H901PILA", "Normal"),
        ]
        rng = random.Random(self.seed)
        ports = [(b.slot, p) for b in self.gpon_boards() for p in range(self.ports_used)]
        self.ont_list: list[Ont] = []
        for i in range(self.onts):
            slot, port = ports[i % len(ports)]
            self.ont_list.append(_random_ont(rng, slot, port, i // len(ports), i))
        self.autofind_list = [
            AutofindOnt(*ports[i % len(ports)], _serial(rng), rng.choice(("EG8145X6", "HG8245H")))
            for i in range(self.autofind)
        ]
        self.service_ports: dict[int, ServicePort] = {}
        for ont in self.ont_list:
            index = len(self.service_ports) + 100
            self.service_ports[index] = ServicePort(
                index, 100, ont.slot, ont.port, ont.ont_id, 1, 100
            )
        self.shut_ports: set[tuple[int, int]] = set()
        self.resets: list[tuple[int, int, int]] = []
        self.version = 0  # bumped on every change (the SNMP view re-sorts then)

    def gpon_boards(self) -> list[Board]:
        return [b for b in self.boards if b.name in _GPON_BOARDS]

    def find(self, slot: int, port: int, ont_id: int) -> Ont | None:
        for ont in self.ont_list:
            if (ont.slot, ont.port, ont.ont_id) == (slot, port, ont_id):
                return ont
        return None

    def online(self, ont: Ont) -> bool:
        return ont.online and (ont.slot, ont.port) not in self.shut_ports

    def uptime(self) -> float:
        return 1_000_000 + time.monotonic() - self.started

    # --- SSH -------------------------------------------------------------------------

    def server(self) -> asyncssh.SSHServer:
        return _Server(self)

    async def shell(self, process: asyncssh.SSHServerProcess) -> None:
        """One VTY session, from the banner to logout."""
        peer = process.get_extra_info("peername") or ("", 0)
        conn = process.get_extra_info("connection")
        if self.open_sessions >= self.max_sessions:
            process.stdout.write("  Reenter times have reached the upper limit.\r\n")
            log.info("olt sim login refused: vty full", extra={"source_port": peer[1]})
            process.exit(1)
            return
        # A VTY is taken from login until the shell ends or its TCP connection closes,
        # whichever comes first (a device frees it when the connection drops, even while
        # it is still busy with a command).
        owner = conn.get_owner()
        owner.vty = True
        self.open_sessions += 1
        self.max_concurrent = max(self.max_concurrent, self.open_sessions)
        try:
            await _Vty(self, process, conn).run()
        except (asyncssh.Error, BrokenPipeError, ConnectionError):
            pass
        except Exception:  # a bug here must show, not look like a dropped line
            log.exception("olt sim vty failed")
        finally:
            owner.free_vty()
            with contextlib.suppress(Exception):
                process.exit(0)


class _Server(asyncssh.SSHServer):
    def __init__(self, sim: OltSimulator) -> None:
        self.sim = sim
        self.port = 0
        self.vty = False

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.port = (conn.get_extra_info("peername") or ("", 0))[1]
        self.vty = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.free_vty()

    def free_vty(self) -> None:
        if self.vty:
            self.vty = False
            self.sim.open_sessions -= 1

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        ok = username == self.sim.username and password == self.sim.password
        self.sim.logins.append(Login(time.monotonic(), self.port, username, ok))
        return ok

    def public_key_auth_supported(self) -> bool:
        return self.sim.authorized_key is not None

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        wanted = self.sim.authorized_key
        ok = username == self.sim.username and wanted is not None
        ok = ok and key.public_data == wanted.public_data  # type: ignore[union-attr]
        self.sim.logins.append(Login(time.monotonic(), self.port, username, ok))
        return ok


class _Vty:
    """One terminal: its mode, smart and scroll settings, and the command loop."""

    def __init__(self, sim: OltSimulator, process: asyncssh.SSHServerProcess, conn: object) -> None:
        self.sim, self.process, self.conn = sim, process, conn
        self.level, self.interface = "user", ""  # interface: "0/1"
        self.smart, self.scroll = True, 0  # scroll: 0 = page every sim.page_lines
        self.pending = ""
        self.handlers: list[tuple[re.Pattern[str], set[str], Handler]] = _handlers(self)

    def prompt(self) -> str:
        host = self.sim.host_name
        return {
            "user": f"{host}>",
            "enable": f"{host}#",
            "config": f"{host}(config)#",
            "interface": f"{host}(config-if-gpon-{self.interface})#",
        }[self.level]

    def write(self, text: str) -> None:
        self.process.stdout.write(text)

    async def read_line(self) -> str | None:
        while "\n" not in self.pending:
            data = await self.process.stdin.read(4096)
            if not data:
                return None
            self.pending += data
        line, self.pending = self.pending.split("\n", 1)
        return line.replace("\r", "")

    async def read_key(self) -> str | None:
        if not self.pending:
            data = await self.process.stdin.read(4096)
            if not data:
                return None
            self.pending += data
        key, self.pending = self.pending[0], self.pending[1:]
        return key

    async def ask(self, question: str) -> bool:
        self.write(f"  {question}(y/n)[n]:")
        answer = await self.read_line()
        self.write("\r\n")
        return (answer or "").strip().lower().startswith("y")

    async def run(self) -> None:
        if self.sim.banner_question:
            self.write("\r\n  Warning: The default password is in use. Continue? (YES/NO)[NO]:")
            if await self.read_line() is None:
                return
            self.write("\r\n")
        self.write(f"\r\n  Huawei Integrated Access Software ({self.sim.host_name}).\r\n\r\n")
        self.write(self.prompt())
        while True:
            line = await self.read_line()
            if line is None:
                return
            self.write(line + "\r\n")  # the echo
            command = " ".join(line.split())
            if not command:
                self.write(self.prompt())
                continue
            self.sim.commands.append(command)
            if self.sim.latency:
                await asyncio.sleep(self.sim.latency)
            if await self.execute(command) is False:
                return
            self.write(self.prompt())

    async def execute(self, command: str) -> bool | None:
        """Run one command; False when the session ends."""
        if self.sim.busy_next > 0 and not _PLUMBING.match(command):
            self.sim.busy_next -= 1
            await self.emit(command, BUSY)
            return None
        for pattern, levels, handler in self.handlers:
            found = pattern.fullmatch(command)
            if found and self.level in levels:
                if command.startswith("display") and self.smart:
                    self.write("{ <cr>||<K> }:")
                    if await self.read_line() is None:
                        return False
                    self.write(f"\r\n\r\n  Command:\r\n          {command}\r\n")
                output = await handler(found)
                if output is False:
                    return False
                await self.emit(command, output or "")
                return None
        await self.emit(command, _unknown(len(self.prompt()), command))
        return None

    async def emit(self, command: str, output: str) -> None:
        """Write `output` with the pager when scroll is off; honour `disconnect_on`."""
        self.sim.outputs.append((command, output))
        if not output:
            return
        lines = output.split("\n")
        if self.sim.alarms and len(lines) > 4:
            lines[2:2] = _ALARM_BLOCK
        drop = self.sim.disconnect_on
        cut = len(lines) // 2 if drop is not None and command.startswith(drop) else -1
        page = self.scroll or self.sim.page_lines
        for number, line in enumerate(lines):
            if number == cut:
                self.sim.disconnect_on = None
                log.info("olt sim drops the connection", extra={"command": command})
                self.conn.abort()  # type: ignore[attr-defined]
                raise ConnectionError("dropped on purpose")
            if number and number % page == 0 and self.scroll != -1:
                self.write(PAGER)
                key = await self.read_key()
                self.write(ERASE)
                if key is None or key in "qQ":
                    break
            self.write(line + "\r\n")

    # --- state-changing commands -----------------------------------------------------

    def set_level(self, level: str, interface: str = "") -> str:
        self.level, self.interface = level, interface
        return ""

    async def quit(self, _: re.Match[str]) -> str | bool:
        if self.level == "interface":
            return self.set_level("config")
        if self.level == "config":
            return self.set_level("enable")
        if await self.ask("Are you sure to log out? "):
            self.write("\r\n")
            return False
        return ""

    async def set_scroll(self, found: re.Match[str]) -> str:
        if not self.sim.accept_scroll:
            return _unknown(len(self.prompt()), found.group(0))
        self.scroll = int(found.group(1)) if found.group(1) else -1
        return ""

    async def ont_confirm(self, found: re.Match[str]) -> str:
        verb, port, ont_id = found.group(1), int(found.group(2)), int(found.group(3))
        slot = int(self.interface.split("/")[1])
        ont = self.sim.find(slot, port, ont_id)
        if ont is None:
            return "  Failure: The ONT does not exist"
        question = (
            "Are you sure to delete the ONT? "
            if verb == "delete"
            else ("Are you sure to reset the ONT(s)? ")
        )
        if not await self.ask(question):
            return ""
        if verb == "reset":
            self.sim.resets.append((slot, port, ont_id))
            return ""
        if any(
            (s.slot, s.port, s.ont_id) == (slot, port, ont_id)
            for s in self.sim.service_ports.values()
        ):
            return "  Failure: This configured object has some service virtual ports"
        self.sim.ont_list.remove(ont)
        # The ONT is still on the fibre: unregistered, it shows in autofind again.
        self.sim.autofind_list.append(AutofindOnt(slot, port, ont.sn, ont.equipment))
        self.sim.version += 1
        return "  Number of ONTs that can be deleted: 1, success: 1"

    async def ont_add(self, found: re.Match[str]) -> str:
        return self.sim_add(found, int(self.interface.split("/")[1]))

    def sim_add(self, found: re.Match[str], slot: int) -> str:
        sim = self.sim
        port = int(found["port"])
        sn = found["sn"].upper()
        line, srv = int(found["line"]), int(found["srv"])
        if any(o.sn == sn for o in sim.ont_list):
            return "  Failure: The ONT SN already exists."
        if line not in sim.line_profiles or srv not in sim.srv_profiles:
            return "  Failure: The profile does not exist"
        used = {o.ont_id for o in sim.ont_list if (o.slot, o.port) == (slot, port)}
        ont_id = int(found["id"]) if found["id"] else min(set(range(129)) - used)
        if ont_id in used:
            return "  Failure: The ONT ID already exists"
        waiting = next((a for a in sim.autofind_list if a.sn == sn), None)
        if waiting is not None:
            sim.autofind_list.remove(waiting)
        desc = (found["desc"] or "").strip('"') or "ONT_NO_DESCRIPTION"
        rng = random.Random(sn)
        ont = _random_ont(rng, slot, port, ont_id, len(sim.ont_list))
        ont.sn, ont.desc, ont.online = sn, desc, True
        ont.line_profile, ont.srv_profile = line, srv
        ont.equipment = waiting.equipment if waiting else ont.equipment
        sim.ont_list.append(ont)
        sim.version += 1
        return (
            f"  Number of ONTs that can be added: 1, success: 1\n  PortID :{port}, ONTID :{ont_id}"
        )

    async def shutdown(self, found: re.Match[str]) -> str:
        key = (int(self.interface.split("/")[1]), int(found.group(2)))
        if found.group(1):
            self.sim.shut_ports.discard(key)
        else:
            self.sim.shut_ports.add(key)
        self.sim.version += 1
        return ""

    async def service_port(self, found: re.Match[str]) -> str:
        sim = self.sim
        slot, port, ont_id = int(found["s"]), int(found["p"]), int(found["ont"])
        if sim.find(slot, port, ont_id) is None:
            return "  Failure: The ONT does not exist"
        if int(found["vlan"]) not in sim.vlans:
            return "  Failure: The VLAN does not exist"
        index = int(found["idx"]) if found["idx"] else max(sim.service_ports, default=99) + 1
        if index in sim.service_ports:
            return "  Failure: The service virtual port has existed already"
        sim.service_ports[index] = ServicePort(
            index, int(found["vlan"]), slot, port, ont_id, int(found["gem"]), int(found["uv"])
        )
        return ""

    async def undo_service_port(self, found: re.Match[str]) -> str:
        if self.sim.service_ports.pop(int(found.group(1)), None) is None:
            return "  Failure: The service virtual port does not exist"
        return ""

    async def enter_interface(self, found: re.Match[str]) -> str:
        slot = int(found.group(2))
        if found.group(1) != "0" or all(b.slot != slot for b in self.sim.gpon_boards()):
            return "  Failure: The board does not exist or is not a GPON board"
        return self.set_level("interface", f"0/{slot}")

    async def display(self, found: re.Match[str]) -> str:
        return render(self.sim, found.group(0), self.interface)


Handler = Callable[[re.Match[str]], Awaitable["str | bool"]]
_ALL = {"user", "enable", "config", "interface"}
_PRIV = {"enable", "config", "interface"}
_ADD = re.compile(
    r"ont add (?P<port>\d+)(?: (?P<id>\d+))? sn-auth (?P<sn>[0-9A-Fa-f]{16}) omci"
    r" ont-lineprofile-id (?P<line>\d+) ont-srvprofile-id (?P<srv>\d+)(?: desc (?P<desc>.+))?"
)
_SERVICE_PORT = re.compile(
    r"service-port(?: (?P<idx>\d+))? vlan (?P<vlan>\d+) gpon 0/(?P<s>\d+)/(?P<p>\d+)"
    r" ont (?P<ont>\d+) gemport (?P<gem>\d+) multi-service user-vlan (?P<uv>\d+)"
    r" tag-transform translate"
)


def _handlers(vty: _Vty) -> list[tuple[re.Pattern[str], set[str], Handler]]:
    async def level(level: str) -> str:
        return vty.set_level(level)

    def const(text: str = "") -> Handler:
        async def answer(_: re.Match[str]) -> str:
            return text

        return answer

    def to(name: str) -> Handler:
        return lambda _: level(name)

    async def smart(found: re.Match[str]) -> str:
        vty.smart = not found.group(1)
        return ""

    table: list[tuple[str, set[str], Handler]] = [
        (r"enable", {"user"}, to("enable")),
        (r"disable", {"enable"}, to("user")),
        (r"config", {"enable"}, to("config")),
        (r"return", {"config", "interface"}, to("enable")),
        (r"quit", _ALL, vty.quit),
        (r"(undo )?smart", _ALL, smart),
        (r"scroll(?: (\d+))?", _ALL, vty.set_scroll),
        (r"infoswitch cli (?:OFF|ON)", _PRIV, const()),
        (r"interface gpon (\d+)/(\d+)", {"config", "interface"}, vty.enter_interface),
        (_ADD.pattern, {"interface"}, vty.ont_add),
        (r"ont (delete|reset) (\d+) (\d+)", {"interface"}, vty.ont_confirm),
        (r"(undo )?shutdown (\d+)", {"interface"}, vty.shutdown),
        (_SERVICE_PORT.pattern, {"config"}, vty.service_port),
        (r"undo service-port (\d+)", {"config"}, vty.undo_service_port),
        (r"display ont optical-info \d+ all", {"interface"}, vty.display),
        (
            r"display (?:board 0|version|sysuptime|service-port all|ont autofind all)",
            _PRIV,
            vty.display,
        ),
        (
            r"display ont info (?:\d+ \d+ \d+(?: \d+)?|by-sn [0-9A-Fa-f]{16}|summary \d+/\d+/\d+)",
            _PRIV,
            vty.display,
        ),
    ]
    return [(re.compile(pattern), levels, handler) for pattern, levels, handler in table]


def _unknown(prompt_len: int, command: str) -> str:
    return " " * prompt_len + "^\n  % Unknown command, the error locates at '^'"


_ALARM_BLOCK = [
    "  ! EVENT WARNING 2024-01-01 10:00:00+00:00",
    "  ALARM NAME :The ONT goes online",
    "  PARAMETERS :FrameID: 0, SlotID: 1, PortID: 0, ONT ID: 3",
    "  --- END",
]


def _serial(rng: random.Random) -> str:
    return f"48575443{rng.getrandbits(32):08X}"


def _random_ont(rng: random.Random, slot: int, port: int, ont_id: int, n: int) -> Ont:
    return Ont(
        slot=slot,
        port=port,
        ont_id=ont_id,
        sn=_serial(rng),
        desc=f"cust-{n:04d}",
        online=rng.random() < 0.9,
        line_profile=10,
        srv_profile=10,
        equipment=rng.choice(("EG8145X6", "HG8245H", "HG8310M")),
        rx=round(rng.uniform(-27.0, -17.0), 2),
        tx=round(rng.uniform(1.5, 3.5), 2),
        olt_rx=round(rng.uniform(-28.0, -19.0), 2),
        temperature=rng.randint(30, 60),
        voltage=rng.randint(3200, 3400),
        bias=rng.randint(5, 15),
        distance=rng.randint(100, 20000),
    )


# --- SNMP ---------------------------------------------------------------------------


class XponMib:
    """The OLT's HUAWEI-XPON-MIB view and system group, for `SnmpSimulator(mib=...)`."""

    def __init__(self, sim: OltSimulator) -> None:
        self.sim = sim
        self._version = -1
        self._values: dict[ber.Oid, tuple[int, ber.Value]] = {}
        self._oids: list[ber.Oid] = []

    def _build(self) -> None:
        sim = self.sim
        values: dict[ber.Oid, tuple[int, ber.Value]] = {
            (*SYS, 1, 0): (
                ber.OCTET_STRING,
                b"Huawei Integrated Access Software (simulated MA5800)",
            ),
            (*SYS, 2, 0): (ber.OBJECT_IDENTIFIER, (1, 3, 6, 1, 4, 1, 2011, 2)),
            (*SYS, 5, 0): (ber.OCTET_STRING, sim.host_name.encode()),
        }
        for ont in sim.ont_list:
            index = (gpon_ifindex(0, ont.slot, ont.port), ont.ont_id)
            up = sim.online(ont)
            values[(*XPON, 43, 1, 3, *index)] = (ber.OCTET_STRING, bytes.fromhex(ont.sn))
            line = sim.line_profiles.get(ont.line_profile, "")
            service = sim.srv_profiles.get(ont.srv_profile, "")
            values[(*XPON, 43, 1, 7, *index)] = (ber.OCTET_STRING, line.encode())
            values[(*XPON, 43, 1, 8, *index)] = (ber.OCTET_STRING, service.encode())
            values[(*XPON, 43, 1, 9, *index)] = (ber.OCTET_STRING, ont.desc.encode())
            values[(*XPON, 46, 1, 15, *index)] = (ber.INTEGER, 1 if up else 2)
            optics = (
                ont.temperature,
                ont.bias,
                round(ont.tx * 100),
                round(ont.rx * 100),
                ont.voltage,
                round(ont.olt_rx * 100) + 10000,
            )
            for column, value in enumerate(optics, start=1):
                values[(*XPON, 51, 1, column, *index)] = (ber.INTEGER, value if up else NO_VALUE)
        self._values, self._oids, self._version = values, sorted(values), sim.version

    def oids(self) -> list[ber.Oid]:
        if self._version != self.sim.version:
            self._build()
        return self._oids

    def value(self, device: int, oid: ber.Oid) -> tuple[int, ber.Value] | None:
        if oid == (*SYS, 3, 0):
            return ber.TIMETICKS, int(self.sim.uptime() * 100) % 2**32
        self.oids()
        return self._values.get(oid)


def gpon_ifindex(frame: int, slot: int, port: int) -> int:
    """ifIndex of a GPON port: 125<<25 | frame<<19 | slot<<13 | port<<8."""
    return 125 << 25 | frame << 19 | slot << 13 | port << 8


# --- serving ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ports:
    ssh: int
    snmp: int | None


@contextlib.asynccontextmanager
async def running(
    sim: OltSimulator, port: int = 0, snmp_port: int | None = None
) -> AsyncIterator[Ports]:
    """Serve `sim` over SSH on 127.0.0.1:`port` (0: a free one), and SNMP if asked."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    sim.host_key = key.export_public_key().decode().strip()
    server = await asyncssh.create_server(
        sim.server,
        "127.0.0.1",
        port,
        server_host_keys=[key],
        process_factory=sim.shell,
        line_editor=False,  # the VTY echoes and edits itself, as the OLT does
        encoding="utf-8",
    )
    ssh_port = server.sockets[0].getsockname()[1]
    try:
        if snmp_port is None:
            yield Ports(ssh_port, None)
        else:
            snmp = SnmpSimulator(devices=1, mib=XponMib(sim), communities={sim.community: 1})
            async with snmp_running(snmp, snmp_port) as bound:
                yield Ports(ssh_port, bound)
    finally:
        server.close()
        await server.wait_closed()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=2222)
    parser.add_argument("--onts", type=int, default=64, help="registered ONTs")
    parser.add_argument("--autofind", type=int, default=4, help="ONTs waiting to be registered")
    parser.add_argument("--username", default="root")
    parser.add_argument("--password", default="admin123")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per command")
    parser.add_argument("--snmp-port", type=int, help="also serve XPON SNMP on this UDP port")
    parser.add_argument("--community", default="public")


async def run(args: argparse.Namespace) -> int:
    sim = OltSimulator(
        username=args.username,
        password=args.password,
        onts=args.onts,
        autofind=args.autofind,
        latency=args.latency,
        community=args.community,
    )
    async with running(sim, args.port, args.snmp_port) as ports:
        snmp = f", SNMP udp://127.0.0.1:{ports.snmp}" if ports.snmp else ""
        print(
            f"simulated {sim.host_name} with {args.onts} ONTs on ssh://127.0.0.1:{ports.ssh}"
            f"{snmp}; Ctrl-C stops",
            flush=True,
        )
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tools.sim.olt")
    add_arguments(parser)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(parser.parse_args()))
