"""Real SNMP agents on 127.0.0.1 for the driver's tests: snmpsim and net-snmp's snmpd.

- `snmpsim_peer`: snmpsim (PyPI) serving the recordings of ../shared/data/snmp (real
  device walks), decompressed into a temporary data directory. The community of a
  recording is its file name without extension ("huawei-s5720").
- `snmpd_peer`: net-snmp's snmpd with a generated configuration: a v2c community, a v3
  authPriv user (createUser), and a few `override` values the table tests read.

Both run on free UDP ports, answer before the fixture yields, are skipped with the
reason when their program is missing, and are always stopped. Import the fixture into
the one test module that uses it (a session fixture imported into two modules would
start two agents).
"""

from __future__ import annotations

import bz2
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agents.snmp import ber
from tests.conftest import SHARED_DATA

SNMP_DATA = SHARED_DATA / "snmp"
SNMPD = shutil.which("snmpd") or ("/usr/sbin/snmpd" if Path("/usr/sbin/snmpd").exists() else None)
# The recordings the tests serve: small enough for snmpsim to index in a few seconds
# (ruijie-m18000 takes a minute and is left to the benchmark-minded).
RECORDINGS = ("huawei-s5720",)

V2C_COMMUNITY = "chronos-test-community"
V3_USER = "chronos"
V3_AUTH_KEY = "auth-pass-phrase-1"
V3_PRIV_KEY = "priv-pass-phrase-1"
# Values snmpd serves through `override`, for table-group tests: an optical-power-like
# column in hundredths of dBm, with 2147483647 as "no reading" (a Huawei habit).
TABLE_ROOT = (1, 3, 6, 1, 4, 1, 99999, 1, 1, 2)
TABLE_ROWS = {1: -2350, 2: -1875, 3: 2147483647, 7: -3000}
NAME_ROOT = (1, 3, 6, 1, 4, 1, 99999, 1, 1, 1)


@dataclass
class Peer:
    host: str
    port: int
    communities: list[str] = field(default_factory=list)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(port: int, community: str, wait: float = 0.2) -> bool:
    """Whether an agent on `port` answers a GET of sysUpTime.0 with `community`."""
    request = ber.encode_request(
        ber.V2C, community.encode(), ber.GET, 1, [(1, 3, 6, 1, 2, 1, 1, 3, 0)]
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(wait)
        s.sendto(request, ("127.0.0.1", port))
        try:
            data, _ = s.recvfrom(65535)
        except OSError:
            return False
    return ber.decode_message(data).pdu.request_id == 1


def wait_until_answering(
    proc: subprocess.Popen[bytes], port: int, community: str, seconds: float, log: Path
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"agent exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}"
            )
        if answers(port, community):
            return
    raise RuntimeError(f"agent on port {port} did not answer within {seconds} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def parse_snmprec(path: Path) -> list[tuple[ber.Oid, int, ber.Value]]:
    """A recording's lines as (oid, tag, value), the way an agent would send them.

    snmprec: `oid|tag|value`, tag in decimal (BER tag numbers of SNMP's types), an `x`
    after the tag when the value is hex."""
    out = []
    opener = bz2.open if path.suffix == ".bz2" else open
    with opener(path, "rt", encoding="utf-8", errors="surrogateescape") as f:
        for raw_line in f:
            line = raw_line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            oid_text, tag_text, value_text = line.split("|", 2)
            hexed = tag_text.endswith("x")
            tag = int(tag_text.rstrip("x"))
            raw = (
                bytes.fromhex(value_text)
                if hexed
                else value_text.encode("utf-8", "surrogateescape")
            )
            value: ber.Value
            if tag in (ber.INTEGER, *ber.UNSIGNED_TAGS):
                value = int(raw)
            elif tag == ber.OBJECT_IDENTIFIER:
                value = ber.parse_oid(raw.decode())
            elif tag == ber.IP_ADDRESS and not hexed:
                value = socket.inet_aton(raw.decode())
            elif tag == ber.NULL:
                value = None
            else:
                value = raw
            out.append((ber.parse_oid(oid_text), tag, value))
    return out


@pytest.fixture(scope="session")
def snmpsim_peer() -> Iterator[Peer]:
    """snmpsim serving RECORDINGS (community = recording name) on a free port."""
    responder = Path(sys.executable).parent / "snmpsim-command-responder"
    if not responder.exists():
        pytest.skip("snmpsim is not installed (pip install -e '.[test]')")
    base = Path(tempfile.mkdtemp(prefix="chronos-snmpsim-"))
    data, cache = base / "data", base / "cache"
    data.mkdir()
    cache.mkdir()
    for name in RECORDINGS:
        with (
            bz2.open(SNMP_DATA / f"{name}.snmprec.bz2") as src,
            open(data / f"{name}.snmprec", "wb") as dst,
        ):
            shutil.copyfileobj(src, dst)
    port = free_udp_port()
    env = dict(os.environ)
    if os.geteuid() == 0:
        # snmpsim refuses to run as root unless told to drop privileges or allowed to
        # keep them; dropping them would need the interpreter readable by nobody.
        env["SNMPSIM_ALLOW_ROOT"] = "true"
    log = base / "snmpsim.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(responder),
                f"--data-dir={data}",
                f"--cache-dir={cache}",
                f"--agent-udpv4-endpoint=127.0.0.1:{port}",
                "--logging-method=stderr",
                "--log-level=error",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_answering(proc, port, RECORDINGS[0], 120, log)
        yield Peer("127.0.0.1", port, list(RECORDINGS))
    finally:
        stop(proc)
        shutil.rmtree(base, ignore_errors=True)


def snmpd_config(port: int) -> str:
    lines = [
        f"agentaddress udp:127.0.0.1:{port}",
        f"rocommunity {V2C_COMMUNITY} 127.0.0.1",
        f'createUser {V3_USER} SHA "{V3_AUTH_KEY}" AES "{V3_PRIV_KEY}"',
        f"rouser {V3_USER} priv",
    ]
    dotted = ber.dotted
    for index, value in TABLE_ROWS.items():
        lines.append(f"override .{dotted((*TABLE_ROOT, index))} integer {value}")
        lines.append(f'override .{dotted((*NAME_ROOT, index))} octet_str "onu-{index}"')
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def snmpd_peer() -> Iterator[Peer]:
    """net-snmp's snmpd: community V2C_COMMUNITY, v3 user V3_USER (SHA/AES authPriv)."""
    if SNMPD is None:
        pytest.skip("net-snmp snmpd is not installed (apt-get install snmpd)")
    base = Path(tempfile.mkdtemp(prefix="chronos-snmpd-"))
    port = free_udp_port()
    conf = base / "snmpd.conf"
    conf.write_text(snmpd_config(port))
    env = {
        **os.environ,
        # Its persistent state (engine boots, localized v3 keys) stays in our folder,
        # not in /var/lib/snmp; no system snmp.conf is read.
        "SNMP_PERSISTENT_DIR": str(base / "persist"),
        "SNMPCONFPATH": str(base),
        "MIBS": "",
    }
    log = base / "snmpd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [SNMPD, "-f", "-Lo", "-C", "-c", str(conf), "-p", str(base / "snmpd.pid")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_answering(proc, port, V2C_COMMUNITY, 30, log)
        yield Peer("127.0.0.1", port, [V2C_COMMUNITY])
    finally:
        stop(proc)
        shutil.rmtree(base, ignore_errors=True)
