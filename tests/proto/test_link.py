"""A link over a NAT that forgets its mappings mid-session (proto/link.py, channel.py, node.py).

The fake routers (fakenet.py) flush like ``conntrack -F`` and then map the
client to a new public port (a real NAT reboot may; Linux masquerade in the
NAT lab keeps the port).  Between two port-restricted NATs nothing gets
through then: the peer's NAT filters the new port, ours has no mapping for
the old one.  The way back: after ``SILENT_AFTER`` without a datagram our
node refreshes its JOIN, the introducer sees the new port and tells the
peer, whose HELLO there opens its NAT to it; then the data lost meanwhile
goes out at once (``channel.kick``), not when its backed-off retransmission
timer (up to ``MAX_RTO``) says.  Without these the link died after
``LINK_TIMEOUT`` and the edit waited for a new one.
The NAT-lab twin is tests/natlab/test_nat_timeouts.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

from covim_p2p.editor.edits import TextEdit
import pytest

from covim_p2p.proto.link import PING_INTERVAL, SILENT_AFTER

sys.path.insert(0, str(Path(__file__).parent))
from test_paths import World  # noqa: E402


def _flushed_pair(settle: float):
    world = World(["port-restricted", "port-restricted"], turn=False)
    world.run(settle)
    a, b = world.nodes["port-restricted-1"], world.nodes["port-restricted-2"]
    assert a.links[b.peer_id].path.kind == b.links[a.peer_id].path.kind == "direct"
    return world, a, b


def _delivery_time(world, to, text: str, limit: float) -> float:
    start = world.net.now
    while text not in str(to.document):
        assert world.net.now - start < limit, f"{text!r} not delivered within {limit} s"
        world.run(0.01)
    return world.net.now - start


@pytest.mark.parametrize("settle", [4.0, 5.3, 6.6, 7.9])  # flushes at every phase of the 5 s JOIN refresh
def test_an_edit_across_a_nat_that_rebound_arrives_without_waiting_for_the_link_to_die(settle):
    world, a, b = _flushed_pair(settle)
    old = a.links[b.peer_id].addr
    world.net.nats[1].flush()  # b's router forgets, and maps b to a new port
    a.local_edits([TextEdit(1, 0, " after the flush")], world.net.now)
    took = _delivery_time(world, b, "after the flush", 10.0)
    print(f"flush at {settle:g} s: the edit crossed after {took * 1000:.0f} ms (simulated)")
    assert took <= SILENT_AFTER + PING_INTERVAL + 0.5
    assert a.links[b.peer_id].addr != old and a.links[b.peer_id].path.kind == "direct"  # followed the new port
    assert all(l.up for l in (a.links[b.peer_id], b.links[a.peer_id]))
    b.local_edits([TextEdit(1, 0, " and back")], world.net.now)
    _delivery_time(world, a, "and back", 1.0)
    assert str(a.document) == str(b.document)

