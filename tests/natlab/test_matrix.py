"""The pair matrix: every NAT kind, the host behind each of them, with and without TURN (issue 8).

Ten headless peers (``python -m covim_p2p``, the plugin's own assembly, no
Neovim) sit in the lab: on the open internet, behind a stateful firewall, a
full cone, a restricted cone, a port-restricted cone and a symmetric NAT, two
behind one hairpinning NAT and two behind one NAT that does not hairpin.  A
public ``covim-rendezvous`` (also their STUN server) introduces them; the
host is each kind in turn.  Every pair's path is read from both ends and
printed as a matrix: D direct, R relay, F forwarded, - none.

Asserted: every pair is linked, with TURN and without; every pair RFC 4787
lets punch is direct, TURN or not (the relay never replaces a working direct
path); the pairs no hole reaches (a symmetric NAT against port-dependent
filtering) go through the relay with TURN, and through a mesh peer that
forwards (forwarding.py) without it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from lab import TURN_PASSWORD, TURN_USER, Host, NatLab, missing  # noqa: E402

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")

SETTLE = 5.0  # seconds after the last peer joined: relays come 1 s after joining, forwarding after 3 s
# name -> (filtering, mapping) in RFC 4787 terms, for the expectation
BEHAVIOUR = {"open": ("EIF", "none"), "firewall": ("APDF", "none"), "full-cone": ("EIF", "EIM"),
             "restricted": ("ADF", "EIM"), "port-restr": ("APDF", "EIM"), "symmetric": ("APDF", "APDM"),
             "hairpin-a": ("ADF", "EIM"), "hairpin-b": ("ADF", "EIM"), "lan-a": ("APDF", "EIM"),
             "lan-b": ("APDF", "EIM")}
POSITIONS = ["open", "firewall", "full-cone", "restricted", "port-restr", "symmetric", "hairpin-a", "lan-a"]


def punchable(a: str, b: str) -> bool:
    if {a, b} in ({"hairpin-a", "hairpin-b"}, {"lan-a", "lan-b"}):
        return True  # one LAN: the LAN candidates (or the hairpin) always work
    fa, ma = BEHAVIOUR[a]
    fb, mb = BEHAVIOUR[b]
    return not ((ma == "APDM" and fb == "APDF") or (mb == "APDM" and fa == "APDF"))


@pytest.fixture(scope="module")
def world():
    with NatLab() as lab:
        server = lab.stun_server(40)  # coturn: TURN only here (the rendezvous answers STUN)
        rv = lab.public("rv", 50)
        hosts: dict[str, Host] = {
            "open": lab.public("open", 10), "firewall": lab.public("fw", 11, firewall=True),
            "full-cone": lab.behind_nat("full", "full-cone", 21, 1),
            "restricted": lab.behind_nat("rcone", "restricted-cone", 22, 2),
            "port-restr": lab.behind_nat("prc", "port-restricted", 23, 3),
            "symmetric": lab.behind_nat("sym", "symmetric", 24, 4),
            "hairpin-a": lab.behind_nat("hpa", "restricted-cone", 25, 5, hairpin=True),
            "lan-a": lab.behind_nat("lana", "port-restricted", 26, 6),
        }
        hosts["hairpin-b"] = lab.neighbour(hosts["hairpin-a"], "hpb")
        hosts["lan-b"] = lab.neighbour(hosts["lan-a"], "lanb")
        proc = subprocess.Popen(rv.argv(sys.executable, "-m", "covim_p2p.rendezvous_server", "--port", "8555"),
                                stdout=subprocess.PIPE, text=True)
        assert "listening" in proc.stdout.readline()
        try:
            yield hosts, f"{rv.ip}:8555", f"{TURN_USER}:{TURN_PASSWORD}@{server.ip}:3478"
        finally:
            proc.kill()
            proc.wait()


def run_session(hosts: dict[str, Host], rendezvous: str, turn: str | None, host_name: str) -> dict[str, dict]:
    """Everyone joins; SETTLE seconds after the last one joined, every peer reports at once."""
    common = ["--stun", rendezvous, "--commands"] + (["--turn", turn] if turn else [])
    cmd = [sys.executable, "-m", "covim_p2p"]
    procs = {host_name: subprocess.Popen(hosts[host_name].argv(*cmd, "host", "--name", host_name, "--rendezvous",
                                                               rendezvous, "--text", "matrix", *common),
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)}
    try:
        token = _wait_line(procs[host_name], "token")["token"]
        for name, h in hosts.items():
            if name != host_name:
                procs[name] = subprocess.Popen(h.argv(*cmd, "join", token, "--name", name, *common),
                                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for name, proc in procs.items():
            if name != host_name:
                _wait_line(proc, "Joined")
        time.sleep(SETTLE)
        for proc in procs.values():
            proc.stdin.write("status\n")
            proc.stdin.flush()
        finals = {name: _wait_line(proc, "status") for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.stdin.close()
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return finals


def _wait_line(proc: subprocess.Popen, event: str, timeout: float = 20.0) -> dict:
    """The next line of ``proc`` with this event (bounded: the peer exits or the deadline passes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"the peer exited before printing {event!r}")
        data = json.loads(line)
        if event in (data.get("event"), *data):
            return data
    raise AssertionError(f"no {event!r} line within {timeout:g} s")


def matrix(finals: dict[str, dict]) -> tuple[dict[tuple[str, str], str], str]:
    names = list(BEHAVIOUR)
    paths = {(a, p["name"]): p["path"][0].upper() for a, f in finals.items() for p in f["peers"]}
    rows = ["".ljust(11) + " ".join(n[:10].rjust(10) for n in names)]
    for a in names:
        rows.append(a.ljust(11) + " ".join(paths.get((a, b), "-" if a != b else ".").rjust(10) for b in names))
    return paths, "\n".join(rows)


@pytest.mark.parametrize("turn", [False, True], ids=["without-turn", "with-turn"])
@pytest.mark.parametrize("host_name", POSITIONS)
def test_pair_matrix(world, capsys, host_name, turn):
    hosts, rendezvous, turn_spec = world
    finals = run_session(hosts, rendezvous, turn_spec if turn else None, host_name)
    paths, table = matrix(finals)
    with capsys.disabled():
        print(f"\n--- host behind {host_name}, {'with' if turn else 'without'} TURN "
              f"(row sees column: D direct, R relay, F forwarded, - none) ---\n{table}")
    wrong = []
    for a in BEHAVIOUR:
        for b in BEHAVIOUR:
            if a == b:
                continue
            got = paths.get((a, b), "-")
            if punchable(a, b) and got != "D":
                wrong.append(f"{a}->{b}: {got}, want D")
            elif not punchable(a, b) and turn and got != "R":
                wrong.append(f"{a}->{b}: {got}, want R")
            elif not punchable(a, b) and not turn and got != "F":
                wrong.append(f"{a}->{b}: {got}, want F (forwarded by a mesh peer)")
    assert not wrong, wrong
    assert all(f["text"] == "matrix" for f in finals.values())
