"""Path selection (proto/paths.py), alone and in meshes behind fake NATs with a fake TURN server.

Fake routers (fakenet.py) give each joiner the RFC 4787 behaviour it is named
after; the TURN server (faketurn.py) relays.  Direct must win wherever a hole
can be punched, the relay must carry the rest, and a link on the relay must
move to a direct path that opens later, without flapping.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

from covim_p2p.proto.hoststack import HostStack
from covim_p2p.proto.node import PeerNode
from covim_p2p.proto.paths import DIRECT_STALE, RELAY_HOLD, UPGRADE_PROBE, PathChoice
from covim_p2p.proto.rendezvous import Introducer
from covim_p2p.proto.token import SessionToken
from covim_p2p.proto.turn import TurnClient

sys.path.insert(0, str(Path(__file__).parent))
from faketurn import FakeTurn  # noqa: E402
from fakenet import FakeNetwork  # noqa: E402

HOST = ("198.51.100.10", 7000)
TURN = ("198.51.100.40", 3478)
TOKEN = SessionToken((HOST,), 0x51, bytes(range(16)))
KINDS = {  # name -> (mapping, filtering)
    "full-cone": ("eim", "eif"), "restricted": ("eim", "adf"), "port-restricted": ("eim", "apdf"),
    "symmetric": ("apdm", "apdf"),
}
D, R = ("10.0.0.1", 9), ("10.0.0.2", 9)


# ---- the machine alone -----------------------------------------------------------

def test_direct_beats_a_relay_that_answers_later_and_the_path_does_not_flap():
    p = PathChoice()
    assert p.heard(D, False, False, 0.0) and p.kind == "direct"
    for t in (0.1, 0.5, 1.0, 2.0):  # relay copies keep arriving: remembered, never taken
        assert not p.heard(R, True, True, t)
        assert not p.heard(D, False, False, t + 0.01)
    assert (p.addr, p.kind) == (D, "direct") and p.downgrades == 0


def test_a_relay_link_upgrades_the_moment_direct_answers_and_probes_gently_until_then():
    p = PathChoice()
    p.heard(R, True, True, 1.0)
    assert p.kind == "relay" and p.get_timer() == 1.0 + UPGRADE_PROBE
    assert not p.probe_due(2.0) and p.probe_due(3.0) and not p.probe_due(3.5) and p.probe_due(5.0)
    assert p.heard(D, False, False, 5.1) and p.kind == "direct" and p.upgrades == 1
    assert p.get_timer() is None  # no more probing, nothing to fall back to


def test_direct_gone_silent_falls_back_to_a_live_relay_once():
    p = PathChoice()
    p.heard(D, False, False, 0.0)
    p.heard(R, True, True, 1.0)
    assert p.kind == "direct" and p.get_timer() == DIRECT_STALE
    p.heard(R, True, True, DIRECT_STALE - 0.1)
    assert p.handle_timer(DIRECT_STALE) and p.kind == "relay" and p.downgrades == 1
    assert not p.handle_timer(DIRECT_STALE + 1)
    assert p.heard(D, False, False, DIRECT_STALE + 2) and p.kind == "direct"  # and back, when it answers


# ---- meshes behind fake NATs -------------------------------------------------------

class World:
    def __init__(self, kinds: list[str], *, turn: bool, seed: int = 1) -> None:
        self.net = FakeNetwork(seed)
        self.turn = FakeTurn(TURN, self.net) if turn else None
        intro = Introducer(TOKEN.session, TOKEN.keys().introduction)
        self.host = PeerNode(name="host", token=TOKEN, peer_id=1, client_id=1, now=0.0, initial_text="x",
                             introducer=intro)
        intro._local_sink = self.host.on_local_rendezvous
        self.net.attach(HOST, HostStack(intro, self.host))
        self.nodes = {"host": self.host}
        ids = itertools.count(100)
        for i, kind in enumerate(kinds, start=1):
            inner = (f"10.{i}.0.2", 5000)
            mapping, filtering = KINDS[kind]
            self.net.add_nat(f"203.0.113.{i}", {inner[0]}, mapping=mapping, filtering=filtering)
            self.join(f"{kind}-{i}", inner, next(ids))

    def join(self, name: str, inner, pid: int) -> PeerNode:
        relay = TurnClient(TURN, "u", "p", lambda n: bytes(n), self.net.now) if self.turn else None
        node = PeerNode(name=name, token=TOKEN, peer_id=pid, client_id=pid, now=self.net.now, candidates=(inner,),
                        turn=relay)
        self.net.attach(inner, node)
        self.nodes[name] = node
        return node

    def paths(self) -> dict[tuple[str, str], str]:
        names = {n.peer_id: name for name, n in self.nodes.items()}
        return {(name, names[pid]): link.path.kind
                for name, node in self.nodes.items() for pid, link in node.links.items() if link.up}

    def full_mesh(self) -> bool:
        ids = {n.peer_id for n in self.nodes.values()}
        return all({p for p, l in n.links.items() if l.up} == ids - {n.peer_id} for n in self.nodes.values())

    def run(self, seconds: float) -> None:
        self.net.run(until=self.net.now + seconds)


def _punchable(a: str, b: str) -> bool:
    """RFC 4787: a hole opens unless a symmetric NAT meets port-dependent filtering on the other side."""
    sym = {k for k in (a, b) if k == "symmetric"}
    return not sym or (a == "symmetric" and KINDS[b][1] != "apdf") or (b == "symmetric" and KINDS[a][1] != "apdf")


@pytest.mark.parametrize("turn", [False, True], ids=["no-turn", "turn"])
def test_every_pair_of_nat_kinds_links_direct_where_it_can_and_relays_the_rest(turn):
    kinds = list(KINDS) + ["symmetric"]  # two symmetric NATs: only a relay joins them
    world = World(kinds, turn=turn)
    world.run(8.0)
    paths = world.paths()
    for a in world.nodes:
        for b in world.nodes:
            if a == b or "host" in (a, b):
                continue
            ka, kb = a.rsplit("-", 1)[0], b.rsplit("-", 1)[0]
            if _punchable(ka, kb):
                assert paths.get((a, b)) == "direct", (a, b, paths.get((a, b)))
            elif turn:
                assert paths.get((a, b)) == "relay", (a, b, paths.get((a, b)))
            else:  # no relay, no hole: a mesh peer with links to both forwards (forwarding.py)
                assert paths.get((a, b)) == "forwarded", (a, b, paths.get((a, b)))
    switches = {name: {pid: l.path.switches for pid, l in node.links.items()} for name, node in world.nodes.items()}
    world.run(6.0)  # settled links stay where they are: no flapping between copies
    for name, node in world.nodes.items():
        if name != "host":
            assert node.links[1].path.kind == "direct"  # the public host: always direct
            assert all(l.path.downgrades == 0 for l in node.links.values())
        assert {pid: l.path.switches for pid, l in node.links.items()} == switches[name]
    assert world.full_mesh()  # every pair linked, with TURN or without
    if turn:
        assert world.turn.relayed > 0


def test_a_relayed_link_moves_to_direct_when_a_hole_opens_later_and_stays():
    world = World(["port-restricted", "port-restricted"], turn=True)
    a, b = world.nodes["port-restricted-1"], world.nodes["port-restricted-2"]
    blocked = {"203.0.113.1", "203.0.113.2"}

    def firewall(data, src, dst, now):  # something between them drops direct traffic until t = 6 s
        return not (now < 6.0 and src[0] in blocked | {"10.1.0.2", "10.2.0.2"} and dst[0] in blocked)

    world.net.intercept = firewall
    world.run(5.0)
    assert a.links[b.peer_id].up and a.links[b.peer_id].path.kind == "relay"
    assert b.links[a.peer_id].path.kind == "relay"
    world.run(6.0 + 2 * UPGRADE_PROBE + 1 - world.net.now)
    for x, y in ((a, b), (b, a)):
        link = x.links[y.peer_id]
        assert link.path.kind == "direct" and link.path.upgrades == 1 and link.addr[0] in blocked
    world.run(10.0)
    assert a.links[b.peer_id].path.kind == "direct" and a.links[b.peer_id].path.downgrades == 0


def test_forwarded_links_carry_edits_end_to_end_and_upgrade_when_a_hole_opens():
    """Symmetric against port-restricted, no TURN: the public host forwards.  The forwarder carries
    datagrams sealed for the other end; when the pair can reach each other later, they go direct."""
    from covim_p2p.editor.edits import TextEdit
    world = World(["port-restricted", "symmetric"], turn=False)
    a, b = world.nodes["port-restricted-1"], world.nodes["symmetric-2"]
    world.run(4.5)
    ab, ba = a.links[b.peer_id], b.links[a.peer_id]
    assert ab.up and ba.up and ab.path.kind == ba.path.kind == "forwarded"
    assert ab.path.via == ba.path.via == world.host.peer_id
    assert a.peers_status()[-1]["addr"] == "via host" or any(p["addr"] == "via host" for p in a.peers_status())
    b.local_edits([TextEdit(1, 0, " typed behind a symmetric NAT")], world.net.now)
    world.run(0.05)  # well before any 5 s resync: it came over the forwarded link
    assert str(a.document) == "x typed behind a symmetric NAT"
    for nat in world.net.nats:  # the symmetric NAT becomes a full cone: a hole can open now
        nat.mapping, nat.filtering = "eim", "eif"
    world.run(6.0)
    assert ab.path.kind == "direct" and ba.path.kind == "direct" and ab.path.upgrades == 1


# ---- the relay waits per link, not per peer (issue 8, item 5 of the conn2 brief) -------------

def test_a_relayed_path_waits_its_hold_on_a_new_link_then_is_taken_if_direct_never_answers():
    p = PathChoice(hold_until=5.0 + RELAY_HOLD)
    assert not p.heard(R, True, True, 5.1) and p.addr is None  # held: direct probing has its second
    assert p.get_timer() == 5.0 + RELAY_HOLD
    assert not p.handle_timer(5.5)
    assert p.handle_timer(5.0 + RELAY_HOLD) and p.kind == "relay" and p.addr == R
    q = PathChoice(hold_until=5.0 + RELAY_HOLD)
    assert not q.heard(R, True, True, 5.1)
    assert q.heard(D, False, False, 5.4) and q.kind == "direct" and q.upgrades == 0 and q.switches == 0
    assert not q.handle_timer(5.0 + RELAY_HOLD) and q.kind == "direct"


def _late_joiner(block_direct_for: float) -> tuple[World, PeerNode, PeerNode, float]:
    """An old member (relay long announced) and a newcomer whose direct probes are lost for a while."""
    world = World(["port-restricted"], turn=True)
    world.run(5.0)  # the old member's relayed candidate is in its announcement by now
    old = world.nodes["port-restricted-1"]
    assert old.membership.relay_announced
    world.net.add_nat("203.0.113.2", {"10.2.0.2"}, mapping="eim", filtering="apdf")
    joined = world.net.now
    new = world.join("port-restricted-2", ("10.2.0.2", 5000), 200)
    direct = {"203.0.113.1", "203.0.113.2", "10.1.0.2", "10.2.0.2"}

    def slow_hole(data, src, dst, now):  # direct datagrams between the two are lost for a while
        return not (now < joined + block_direct_for and src[0] in direct and dst[0] in direct)

    world.net.intercept = slow_hole
    return world, old, new, joined


def test_an_old_members_relay_does_not_carry_a_new_link_that_punches_within_a_second():
    world, old, new, joined = _late_joiner(0.6)
    world.run(3.0)
    for x, y in ((new, old), (old, new)):
        link = x.links[y.peer_id]
        assert link.up and link.path.kind == "direct", (x.name, link.path)
        assert link.path.upgrades == 0 and link.path.switches == 0, (x.name, link.path)  # never on the relay


def test_a_new_link_takes_the_old_members_relay_about_a_second_after_it_began_when_no_hole_opens():
    world, old, new, joined = _late_joiner(float("inf"))
    world.run(RELAY_HOLD - 0.1)
    assert not any(l.up and l.path.relay for l in new.links.values() if l.peer_id == old.peer_id)
    world.run(1.5)
    link = new.links[old.peer_id]
    assert link.up and link.path.kind == "relay"
