"""Connectivity: time to the first direct link, and the relay fallback.

Through NATs these need the NAT lab (network namespaces, nftables routers,
coturn), which does not exist yet: those rows say so. On loopback we measure
the time from ``:CoVim connect`` until the joiner lists the host as a peer
(the first direct packet answered), and until it is synced.
"""

from __future__ import annotations

import time

from .common import Config, connect, fmt_ms, host, peers, status, wait_until


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
    for what in ["time to first direct packet through NATs", "relay (TURN) fallback time"]:
        cfg.add(group, what, "not measured: NAT traversal, the relay and the NAT lab to test them are not built yet", "", None)
    up, synced = loopback(cfg, cfg.n(10, 3))
    up.sort()
    synced.sort()
    cfg.add(group, f"loopback: :CoVim connect → first peer up / synced (median of {len(up)}, max)",
            f"{fmt_ms(up[len(up) // 2])} / {fmt_ms(synced[len(synced) // 2])} (max {fmt_ms(up[-1])} / "
            f"{fmt_ms(synced[-1])})")
