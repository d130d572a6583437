"""Connectivity: time to the first direct link, and the relay fallback.

Through NATs (tests/natlab: network namespaces, nftables routers; needs root):
alice hosts from a public address, bob waits behind a port-restricted cone NAT,
and carol, behind another, runs ``:CoVim connect``.  We time until carol lists
alice (first packet answered through her NAT) and until she and bob list each
other (a hole punched through both NATs).  Then carol sits behind a symmetric
NAT with ``g:covim_turn`` set (coturn in the lab), where no hole can be
punched: we time until bob and she are linked through her relay, which by
design waits ``RELAY_DELAY`` (1 s) to give direct holes the first chance.  On loopback we time ``:CoVim connect`` until the joiner lists the host
as a peer, and until it is synced.
"""

from __future__ import annotations

import sys
import time

from . import connectivity_kinds
from .common import LUA, REPO, Config, connect, fmt_ms, host, peers, status, wait_until


def natlab_missing() -> str | None:
    sys.path.insert(0, str(REPO / "tests" / "natlab"))
    from lab import missing
    return missing()


def through_nats(cfg: Config, rounds: int, carol_nat: str = "port-restricted",
                 turn: bool = False) -> tuple[list[float], list[float]]:
    """(connect -> alice up, connect -> bob and carol linked), in ms, per round."""
    sys.path.insert(0, str(REPO / "tests" / "natlab"))
    from lab import TURN_PASSWORD, TURN_USER, NatLab

    first, punched = [], []
    with NatLab() as lab, peers(cfg) as p:
        server = lab.stun_server(40) if turn else None
        where = {"alice": lab.public("alice", 10), "bob": lab.behind_nat("bob", "port-restricted", 21, 1),
                 "carol": lab.behind_nat("carol", carol_nat, 22, 2)}
        nv = {}
        for name, h in where.items():
            nv[name] = p.factory(netns=h.netns)
            nv[name].exec_lua("dofile(...)", str(LUA))
            nv[name].vars["covim_bind"] = h.ip
        a, b, c = nv["alice"], nv["bob"], nv["carol"]
        if server is not None:
            c.vars["covim_turn"] = f"{TURN_USER}:{TURN_PASSWORD}@{server.ip}:3478"
        a.vars["covim_host_addr"] = where["alice"].ip
        token = host(a, "alice", ["through NATs"])
        connect(b, token, "bob")
        wait_until(lambda: status(b).get("synced"), 10, "bob to join through his NAT")
        status(c)  # carol's python host starts first: we time the connection, not the lazy start
        names = lambda v: {q["name"] for q in status(v)["peers"]}  # noqa: E731
        for _ in range(rounds):
            t0 = time.monotonic()
            connect(c, token, "carol")
            wait_until(lambda: "alice" in names(c), 10, "carol's first peer through her NAT", interval=0.0005)
            first.append((time.monotonic() - t0) * 1000)
            wait_until(lambda: "bob" in names(c) and "carol" in names(b), 10, "bob and carol linked",
                       interval=0.0005)
            punched.append((time.monotonic() - t0) * 1000)
            c.command("CoVim disconnect")
            wait_until(lambda: "carol" not in names(a) and "carol" not in names(b), 10, "carol to be gone",
                       interval=0.005)
    return sorted(first), sorted(punched)


def loopback(cfg: Config, rounds: int) -> tuple[list[float], list[float]]:
    up, synced = [], []
    with peers(cfg) as p:
        a, b = p.spawn(2)
        token = host(a, "alice", ["hello", "world"])
        status(b)  # start b's python host first: we time the connection, not the lazy start
        for _ in range(rounds):
            t0 = time.monotonic()
            connect(b, token, "bob")
            wait_until(lambda: status(b)["peers"], 10, "the joiner's first peer", interval=0.0005)
            up.append((time.monotonic() - t0) * 1000)
            wait_until(lambda: status(b).get("synced"), 10, "the joiner to be synced", interval=0.0005)
            synced.append((time.monotonic() - t0) * 1000)
            b.command("CoVim disconnect")
            wait_until(lambda: not status(a)["peers"], 10, "the host to see the joiner leave", interval=0.005)
    return up, synced


def run(cfg: Config) -> None:
    group = "6. connectivity"
    why = natlab_missing()
    if why:
        cfg.add(group, "time to first direct packet through NATs", f"not measured: {why}")
    else:
        first, punched = through_nats(cfg, cfg.n(10, 3))
        cfg.add(group, f"NAT lab, port-restricted cone NATs: carol's :CoVim connect → first packet answered "
                       f"(alice, public) / direct link with bob (a hole through both NATs) (median of {len(first)}, max)",
                f"{fmt_ms(first[len(first) // 2])} / {fmt_ms(punched[len(punched) // 2])} "
                f"(max {fmt_ms(first[-1])} / {fmt_ms(punched[-1])})")
    if why:
        cfg.add(group, "relay (TURN) fallback time", f"not measured: {why}")
    else:
        _, relayed = through_nats(cfg, cfg.n(5, 2), carol_nat="symmetric", turn=True)
        cfg.add(group, f"NAT lab, symmetric NAT + coturn: carol's :CoVim connect → linked with bob through her "
                       f"TURN relay (RELAY_DELAY 1 s by design; median of {len(relayed)}, max)",
                f"{fmt_ms(relayed[len(relayed) // 2])} (max {fmt_ms(relayed[-1])})")
    connectivity_kinds.run(cfg, natlab_missing)
    up, synced = loopback(cfg, cfg.n(10, 3))
    up.sort()
    synced.sort()
    cfg.add(group, f"loopback: :CoVim connect → first peer up / synced (median of {len(up)}, max)",
            f"{fmt_ms(up[len(up) // 2])} / {fmt_ms(synced[len(synced) // 2])} (max {fmt_ms(up[-1])} / "
            f"{fmt_ms(synced[-1])})")
