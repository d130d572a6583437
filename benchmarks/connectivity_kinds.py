"""Connectivity by NAT kind (issue 8): punching time per pair kind, a NATed host through covim-rendezvous,
and the relay -> direct upgrade.

Headless peers (``python -m covim_p2p``, the plugin's own assembly) in the NAT
lab: a public ``covim-rendezvous`` introduces them.  For a pair of kinds we
start the first peer, then the second, and time from the second's JOINED
line (it has the member list: probing starts) to its PEER_UP for the first
(a datagram came back through both NATs).  Python start-up is outside the
measured span.  The host behind a port-restricted NAT registers with the
rendezvous; we time a joiner's JOINED -> host up.  The relay -> direct
upgrade cannot be staged with kernel NATs here (a hole that opens later), so
it is measured on the fake network (tests/proto/fakenet.py) in virtual
time, and labelled so.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from .common import REPO, Config, fmt_ms

PAIRS = [("port-restricted", "port-restricted"), ("full-cone", "symmetric"), ("restricted-cone", "symmetric"),
         ("port-restricted", "symmetric")]


def _lines(proc: subprocess.Popen, want, timeout: float = 15.0) -> tuple[dict, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("a headless peer exited early")
        data = json.loads(line)
        if want(data):
            return data, time.monotonic()
    raise RuntimeError("no such line in time")


def _peer(host, *args: str) -> subprocess.Popen:
    return subprocess.Popen(host.argv(sys.executable, "-m", "covim_p2p", *args, "--commands"),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _close(*procs: subprocess.Popen) -> None:
    for p in procs:
        p.stdin.close()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def through_lab(rounds: int) -> dict[str, list[float]]:
    sys.path.insert(0, str(REPO / "tests" / "natlab"))
    from lab import TURN_PASSWORD, TURN_USER, NatLab

    results: dict[str, list[float]] = {}
    with NatLab() as lab:
        server = lab.stun_server(40)
        rv_host = lab.public("rv", 50)
        rv = subprocess.Popen(rv_host.argv(sys.executable, "-m", "covim_p2p.rendezvous_server"),
                              stdout=subprocess.PIPE, text=True)
        rv.stdout.readline()
        rendezvous = f"{rv_host.ip}:8555"
        public = lab.public("pub", 10)
        hosts = {}
        for i, kind in enumerate(sorted({k for pair in PAIRS for k in pair})):
            hosts[kind] = [lab.behind_nat(f"a{i}", kind, 20 + i, i + 1),
                           lab.behind_nat(f"b{i}", kind, 30 + i, i + 11)]
        turn = f"{TURN_USER}:{TURN_PASSWORD}@{server.ip}:3478"
        try:
            for a_kind, b_kind in PAIRS + [("port-restricted", "symmetric+turn")]:
                label = f"{a_kind} <-> {b_kind}"
                extra = ["--turn", turn] if b_kind.endswith("+turn") else []
                b_kind = b_kind.removesuffix("+turn")
                for _ in range(rounds):
                    h = _peer(public, "host", "--name", "h", "--rendezvous", rendezvous, "--stun", rendezvous)
                    token = _lines(h, lambda d: "token" in d)[0]["token"]
                    a = _peer(hosts[a_kind][0], "join", token, "--name", "a", "--stun", rendezvous, *extra)
                    _lines(a, lambda d: d.get("event") == "Joined")
                    b = _peer(hosts[b_kind][1], "join", token, "--name", "b", "--stun", rendezvous, *extra)
                    _, t0 = _lines(b, lambda d: d.get("event") == "Joined")
                    _, t1 = _lines(b, lambda d: d.get("event") == "PeerUp" and d.get("name") == "a")
                    results.setdefault(label, []).append((t1 - t0) * 1000)
                    _close(h, a, b)
            # a host behind a port-restricted NAT, introduced by the rendezvous
            for _ in range(rounds):
                h = _peer(hosts["port-restricted"][0], "host", "--name", "h", "--rendezvous", rendezvous,
                          "--stun", rendezvous)
                token = _lines(h, lambda d: "token" in d)[0]["token"]
                j = _peer(hosts["port-restricted"][1], "join", token, "--name", "j", "--stun", rendezvous)
                _, t0 = _lines(j, lambda d: d.get("event") == "Joined")
                _, t1 = _lines(j, lambda d: d.get("event") == "PeerUp" and d.get("name") == "h")
                results.setdefault("host", []).append((t1 - t0) * 1000)
                _close(h, j)
        finally:
            rv.kill()
            rv.wait()
    return results


def upgrade_on_fakenet() -> float:
    """Virtual ms from the moment a hole can open to the relayed link being direct (both ends)."""
    sys.path.insert(0, str(REPO / "tests" / "proto"))
    from test_paths import World

    world = World(["port-restricted", "port-restricted"], turn=True)
    a, b = world.nodes["port-restricted-1"], world.nodes["port-restricted-2"]
    blocked = {"203.0.113.1", "203.0.113.2", "10.1.0.2", "10.2.0.2"}
    open_at = 6.0
    world.net.intercept = lambda data, src, dst, now: not (now < open_at and src[0] in blocked
                                                            and dst[0] in blocked)
    world.run(open_at)
    assert a.links[b.peer_id].path.kind == "relay"
    while world.net.now < open_at + 10 and not (a.links[b.peer_id].path.kind == b.links[a.peer_id].path.kind
                                                 == "direct"):
        world.run(0.01)
    return (world.net.now - open_at) * 1000


def run(cfg: Config, natlab_missing) -> None:
    group = "6. connectivity"
    why = natlab_missing()
    if why:
        cfg.add(group, "NAT lab by pair kind, and a NATed host through covim-rendezvous", f"not measured: {why}")
    else:
        results = through_lab(cfg.n(3, 1))
        for label, values in results.items():
            values.sort()
            what = ("NAT lab, host behind a port-restricted NAT through covim-rendezvous: joiner (another port-restricted NAT) "
                    "JOINED → host up" if label == "host" else
                    f"NAT lab, {label}: second joiner JOINED → link up "
                    f"({'through the relay' if 'turn' in label else 'forwarded by the host' if label.endswith('port-restricted <-> symmetric') else 'direct'})")
            cfg.add(group, f"{what} (median of {len(values)}, max)",
                    f"{fmt_ms(values[len(values) // 2])} (max {fmt_ms(values[-1])})")
    cfg.add(group, "fake network (virtual time): relay → direct upgrade after a hole opens (UPGRADE_PROBE 2 s)",
            fmt_ms(upgrade_on_fakenet()))
