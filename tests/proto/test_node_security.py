"""A live mesh against an attacker on the path: replays across receivers, floods, forgeries.

Each test is written as the attack of issue 9 (security v4) and was run
against protocol v3 first, where it succeeded.
"""

from __future__ import annotations

import random
import resource
import sys
from pathlib import Path

from covim_p2p.proto.framing import (KIND_PEER, KIND_RENDEZVOUS, Hello, decode_datagram_untrusted, encode_datagram,
                                     encode_peer_body)
from covim_p2p.proto.link import LINK_TIMEOUT, PROBE_TIMEOUT
from covim_p2p.proto.node import MAX_UNINTRODUCED
from covim_p2p.proto.seal import session_seal

sys.path.insert(0, str(Path(__file__).parent))  # the helpers, whatever the import mode
from test_node import HOST_ADDR, HOST_ID, SECRET, SESSION, build, peer_addr  # noqa: E402

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


def hostile_datagrams(rng: random.Random, recorded: list[bytes], victim: int, n: int):
    """What an attacker without the token can send, and a member-shaped forger too: random
    bytes, our header over garbage, sealed-looking datagrams from made-up senders (each
    one a new key to derive), well-sealed ones under another secret, and replays."""
    foreign = session_seal(SESSION, b"\xee" * 16, bytes(16))
    for i in range(n):
        r = i % 6
        if r == 0:
            yield rng.randbytes(rng.randrange(0, 1300))
        elif r == 1:
            yield encode_datagram(rng.choice([KIND_PEER, KIND_RENDEZVOUS, 3]), SESSION, rng.getrandbits(64),
                                  rng.randbytes(rng.randrange(0, 80)))
        elif r == 2:  # a made-up sender and instance every time: each costs a derivation unless limited
            yield encode_datagram(KIND_PEER, SESSION, rng.getrandbits(64), rng.randbytes(16) + (1).to_bytes(8, "big")
                                  + rng.randbytes(rng.randrange(16, 200)))
        elif r == 3:
            yield foreign.seal(KIND_PEER, SESSION, rng.getrandbits(64),
                               encode_peer_body(1, 0, [Hello("mallory", 1, True)]), victim)
        elif r == 4:
            yield rng.choice(recorded)
        else:
            yield encode_datagram(KIND_PEER, SESSION + 1, HOST_ID + 1, rng.randbytes(60))


def test_a_live_peer_survives_100000_hostile_datagrams_with_bounded_state():
    mesh = build(1, initial_text="keep me\n")
    host, p1 = mesh.nodes["host"], mesh.nodes["p1"]
    stack = mesh.net.machines[HOST_ADDR]
    recorded: list[bytes] = []
    mesh.net.intercept = lambda data, src, dst, now: recorded.append(data) or True
    mesh.editors["p1"].insert(0, "a", mesh.net.now)
    mesh.run(mesh.net.now + 1.0)
    mesh.net.intercept = None
    mesh.run(mesh.net.now + 0.1)  # what was recorded has arrived: each copy now is a replay
    before_doc = str(host.document)
    dropped = host.dropped + mesh.introducer.dropped
    rng = random.Random(2026)
    n = 100_000
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = mesh.net.now
    for i, data in enumerate(hostile_datagrams(rng, recorded, HOST_ID, n)):
        if i % 1000 == 0:
            t += 0.01  # 100,000 datagrams in 1 s of the victim's time
        stack.receive_datagram(data, ATTACKER, t)
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - maxrss
    assert host.dropped + mesh.introducer.dropped - dropped == n  # every one counted, none acted on
    by = dict(host.drops.by_reason)
    assert by.get("rate", 0) > 0.9 * n / 6  # made-up senders hit the derivation limit, not HKDF
    assert set(host.links) == {p1.peer_id} and len(host.wire.seal._streams) <= 4
    assert str(host.document) == before_doc
    assert grown_kb < 50_000, f"memory grew by {grown_kb} kB"
    assert not any(a == ATTACKER for _, a in stack.datagrams_to_send(t))  # not one answer
    mesh.net.now = t
    mesh.editors["p1"].insert(0, "b", t)
    mesh.settle(5.0)
    assert str(host.document) == "bakeep me\n"


def test_hellos_from_3000_made_up_members_open_at_most_a_few_links_and_none_is_chased():
    """A member (it has the token) invents sender ids: v3 gave the host 3,000 links, re-probed for 300 s."""
    mesh = build(1)
    host, p1 = mesh.nodes["host"], mesh.nodes["p1"]
    stack = mesh.net.machines[HOST_ADDR]
    forger = session_seal(SESSION, SECRET, bytes(range(16)))
    t = mesh.net.now
    for i in range(3000):
        t += 0.01  # 100/s: under the derivation limit, so each one really opens
        stack.receive_datagram(forger.seal(KIND_PEER, SESSION, 0x7000_0000 + i,
                                           encode_peer_body(1, 0, [Hello(f"m{i}", i, True)]), HOST_ID), ATTACKER, t)
        mesh.net.now = t
    assert len(host.links) <= 1 + MAX_UNINTRODUCED
    assert host.drops.by_reason["too many links"] >= 3000 - MAX_UNINTRODUCED
    assert len(host.wire.seal._streams) <= 2 + MAX_UNINTRODUCED  # nor keys: real newcomers still get in
    mesh.run(t + PROBE_TIMEOUT + LINK_TIMEOUT + 5.0)
    assert set(host.links) == {p1.peer_id}  # the made-up ones went silent and are not probed again
    assert host.get_timer() is not None and host.get_timer() - mesh.net.now < 10.0
