"""A live mesh against an attacker on the path: replays across receivers, floods, forgeries.

Each test is written as the attack of issue 9 (security v4) and was run
against protocol v3 first, where it succeeded.
"""

from __future__ import annotations

import sys
from pathlib import Path

from covim_p2p.proto.framing import KIND_PEER, decode_datagram_untrusted

sys.path.insert(0, str(Path(__file__).parent))  # the helpers, whatever the import mode
from test_node import HOST_ADDR, build, peer_addr  # noqa: E402

ATTACKER = ("203.0.113.66", 6666)


def test_a_datagram_recorded_for_one_peer_diverts_nothing_at_another():
    """X->Z recorded and replayed to Y from the attacker's address (no token needed).

    X = p1, Z = p2, Y = the host: p1's link to p2 is newer (higher epoch) than its
    link to the host, so under v3 the host took the replay for a rebuilt link,
    moved it to the attacker and restarted its channel."""
    mesh = build(2)
    host, p1, p2 = mesh.nodes["host"], mesh.nodes["p1"], mesh.nodes["p2"]
    recorded: list[bytes] = []
    sent_to_attacker: list[bytes] = []

    def tap(data, src, dst, now):
        if src == peer_addr(1) and dst == peer_addr(2) and decode_datagram_untrusted(data)[0].kind == KIND_PEER:
            recorded.append(data)
        if dst == ATTACKER:
            sent_to_attacker.append(data)
        return True

    mesh.net.intercept = tap
    mesh.editors["p1"].insert(0, "x", mesh.net.now)
    mesh.run(mesh.net.now + 0.5)
    assert recorded
    link = host.links[p1.peer_id]
    epoch, restarts, dropped = link.peer_epoch, link.restarts, host.dropped
    for data in recorded:
        mesh.net.machines[HOST_ADDR].receive_datagram(data, ATTACKER, mesh.net.now)
    assert host.dropped - dropped == len(recorded)
    assert link.addr == peer_addr(1) and link.peer_epoch == epoch and link.restarts == restarts
    t0 = mesh.net.now
    mesh.editors["p1"].insert(0, "y", t0)
    mesh.run(t0 + 0.2, lambda: str(host.document).startswith("yx"))
    assert str(host.document).startswith("yx") and mesh.net.now - t0 < 0.1  # X's edits reach Y at once
    assert sent_to_attacker == []
    assert host.links[p1.peer_id] is link and link.up
