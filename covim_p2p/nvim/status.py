"""What ``CoVimStatus()``, ``:CoVim status`` and the User events say about a session.

Plain functions of the session objects, apart from the command plumbing in
plugin.py: the fields are documented in the README's CoVimStatus table.
"""

from __future__ import annotations

from ..proto.drops import merged


def session_data(session) -> dict:
    """The data of the User events about a session."""
    return {"name": session.name, "role": session.role, "session": f"{session.token.session:016x}",
            "bufnr": session.bridge.buf if session.bridge else -1}


def peer_data(session, peer_id: int) -> dict:
    link = getattr(session.node, "links", {}).get(peer_id)
    if link is None:
        return {}
    return {"addr": f"{link.addr[0]}:{link.addr[1]}", "path": "relay" if link.via_relay else "direct"}


def status_of(s, last_state: str) -> dict:
    """``CoVimStatus()``: ``s`` is the session, the waiting peer of ``:CoVim start``, or None."""
    if s is None:
        return {"state": last_state, "name": "", "token": "", "session": "", "bufnr": -1,
                "peers": [], "role": ""}
    if s.role == "waiting":
        by = merged(s.waiter.drops)
        return {"state": "waiting", "role": "waiting", "name": s.name, "token": s.token_text,
                "session": "", "bufnr": -1, "peers": [], "synced": False,
                "candidates": s.peer.candidate_dicts(), "dropped": sum(by.values()), "dropped_by": by}
    bridge = s.bridge
    introducer = s.extra.get("introducer")
    dropped_by = merged(s.node.drops, introducer.drops if introducer is not None else None)
    return {
        "state": s.node.state, "role": s.role, "name": s.name, "token": s.token_text,
        "session": f"{s.token.session:016x}", "bufnr": bridge.buf if bridge else -1,
        "peers": [{k: p[k] for k in ("name", "addr", "path", "rtt_ms")} for p in s.node.peers_status() if p["up"]],
        "synced": s.node.synced and not (bridge and bridge.locked),
        "pending_remote": len(bridge.pending) if bridge else 0,
        "resyncs": bridge.resyncs if bridge else 0,
        "refusals": bridge.seam.refusals if bridge else 0,  # applies Lua refused (harmless, retried)
        "dropped": sum(dropped_by.values()),  # the introducer's too: it shares the host's socket
        "dropped_by": dropped_by,
        "public_addr": f"{s.node.observed[0]}:{s.node.observed[1]}" if s.node.observed else "",
        "nat": s.nat.kind if s.nat is not None else "",  # pystun3's name; "" until checked (g:covim_stun)
        "candidates": s.peer.candidate_dicts(),  # [{type: host|srflx|relay, addr: "ip:port"}]
    }


def status_lines(status: dict) -> list[str]:
    """``:CoVim status``: the same facts, one line each."""
    lines = [f"{status['state']} as '{status['name']}' ({status['role']})"]
    for peer in status["peers"]:
        rtt = "-" if peer["rtt_ms"] is None else f"{peer['rtt_ms']:.2f} ms"
        lines.append(f"  {peer['name']:<16} {peer['addr']:<22} {peer['path']:<7} rtt {rtt}")
    if not status["peers"]:
        lines.append("  no peers")
    for cand in status.get("candidates", []):
        lines.append(f"  candidate {cand['type']:<6} {cand['addr']}")
    if status.get("public_addr"):
        lines.append(f"  public address {status['public_addr']} (as the host sees it)")
    if status.get("nat"):
        lines.append(f"  NAT type: {status['nat']}")
    if status.get("dropped"):
        why = ", ".join(f"{reason} {n}" for reason, n in status["dropped_by"].items())
        lines.append(f"  dropped {status['dropped']} datagrams ({why})")
    return lines
