"""A live mesh against an attacker on the path: replays across receivers, floods, forgeries.

Each test is written as the attack of issue 9 (security v4) and was run
against protocol v3 first, where it succeeded.
"""

from __future__ import annotations

from dataclasses import replace

import random
import resource
import sys
from pathlib import Path

import pytest
from pycrdt import Awareness, Doc, Text

from covim_p2p.editor.edits import TextEdit
from covim_p2p.proto.authorship import CHANGE, Material, client_id_of, sign_record
from covim_p2p.proto.codec import DecodeError
from covim_p2p.proto.events import Problem
from covim_p2p.proto.framing import (KIND_HANDSHAKE, KIND_PEER, KIND_RENDEZVOUS, decode_datagram_untrusted,
                                     encode_datagram)
from covim_p2p.proto.handshake import REKEY_AFTER
from covim_p2p.proto.link import LINK_TIMEOUT, PROBE_TIMEOUT, RESYNC_INTERVAL
from covim_p2p.proto.document import decode_state_vector_untrusted
from covim_p2p.proto.messages import AwarenessUpdate, Signed, SyncStep2, encode_session_message
from covim_p2p.proto.node import PeerNode
from covim_p2p.proto.noise import HandshakeState
from covim_p2p.proto.seal import DatagramSeal, session_seal

sys.path.insert(0, str(Path(__file__).parent))  # the helpers, whatever the import mode
from test_node import HOST_ADDR, HOST_ID, SESSION, TOKEN, build, peer_addr  # noqa: E402

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


def hostile_datagrams(rng: random.Random, recorded: list[bytes], victim: int, member: int, n: int):
    """What an attacker can send, and a member-shaped forger too: random bytes, our header over
    garbage, made-up senders, well-sealed datagrams under another secret, handshake-shaped
    datagrams (made-up senders, and a real member's id with garbage), and replays."""
    foreign = session_seal(SESSION, b"\xee" * 16, bytes(16))
    hs_seal = DatagramSeal(TOKEN.keys().handshake, b"handshake" + SESSION.to_bytes(8, "big"), bytes(range(16)))
    for i in range(n):
        r = i % 8
        if r == 0:
            yield rng.randbytes(rng.randrange(0, 1300))
        elif r == 1:
            yield encode_datagram(rng.choice([KIND_PEER, KIND_RENDEZVOUS, KIND_HANDSHAKE]), SESSION,
                                  rng.getrandbits(64), rng.randbytes(rng.randrange(0, 80)))
        elif r == 2:  # transport-shaped, from a made-up sender
            yield encode_datagram(KIND_PEER, SESSION, rng.getrandbits(64), rng.randbytes(rng.randrange(28, 200)))
        elif r == 3:
            yield foreign.seal(KIND_RENDEZVOUS, SESSION, 0, b"\x02junk", victim)
        elif r == 4:  # a token holder's first handshake message from a made-up peer
            yield hs_seal.seal(KIND_HANDSHAKE, SESSION, rng.getrandbits(64), bytes([1]) + bytes(4) + rng.randbytes(32),
                               victim)
        elif r == 5:  # handshake-shaped, claiming a real member, under no key
            yield encode_datagram(KIND_HANDSHAKE, SESSION, member, rng.randbytes(16) + (i + 1).to_bytes(8, "big")
                                  + rng.randbytes(rng.randrange(16, 120)))
        elif r == 6:
            yield rng.choice(recorded)
        else:
            yield encode_datagram(KIND_PEER, SESSION + 1, member, rng.randbytes(60))


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
    for i, data in enumerate(hostile_datagrams(rng, recorded, HOST_ID, p1.peer_id, n)):
        if i % 1000 == 0:
            t += 0.01  # 100,000 datagrams in 1 s of the victim's time
        stack.receive_datagram(data, ATTACKER, t)
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - maxrss
    assert host.dropped + mesh.introducer.dropped - dropped == n  # every one counted, none acted on
    by = dict(host.drops.by_reason)
    assert by["unintroduced"] >= n // 8  # made-up handshakes: refused before any Diffie-Hellman
    assert by["no keys"] >= n // 8  # made-up transport: refused before any decryption
    assert set(host.links) == {p1.peer_id} and set(host.wire.security.pairs) == {p1.peer_id}
    assert len(host.wire.seal._streams) <= 4 and len(host.wire.security._seal._streams) <= 4
    assert str(host.document) == before_doc
    assert grown_kb < 50_000, f"memory grew by {grown_kb} kB"
    assert not any(a == ATTACKER for _, a in stack.datagrams_to_send(t))  # not one answer
    mesh.net.now = t
    mesh.editors["p1"].insert(0, "b", t)
    mesh.settle(5.0)
    assert str(host.document) == "bakeep me\n"


def test_handshakes_from_3000_made_up_members_make_no_state():
    """A member (it has the token) invents sender ids: v3 gave the host 3,000 links, re-probed for
    300 s.  v4 answers only peers the introducer named, before any Diffie-Hellman."""
    mesh = build(1)
    host, p1 = mesh.nodes["host"], mesh.nodes["p1"]
    stack = mesh.net.machines[HOST_ADDR]
    hs_seal = DatagramSeal(TOKEN.keys().handshake, b"handshake" + SESSION.to_bytes(8, "big"), bytes(range(16)))
    t = mesh.net.now
    for i in range(3000):
        t += 0.01
        first = HandshakeState("XXpsk3", True, static=bytes(32), ephemeral=i.to_bytes(32, "big"),
                               psk=TOKEN.keys().psk).write_message()
        stack.receive_datagram(hs_seal.seal(KIND_HANDSHAKE, SESSION, 1 + i, bytes([1]) + (1).to_bytes(4, "big") + first,
                                            HOST_ID), ATTACKER, t)
    mesh.net.now = t
    assert host.drops.by_reason["unintroduced"] == 3000
    assert set(host.links) == {p1.peer_id} and set(host.wire.security.pairs) == {p1.peer_id}
    assert not any(a == ATTACKER for _, a in stack.datagrams_to_send(t))
    mesh.run(t + PROBE_TIMEOUT + LINK_TIMEOUT + 5.0)
    assert set(host.links) == {p1.peer_id} and host.links[p1.peer_id].up


def _their_edit(doc_state: bytes, client_id: int, text: str) -> tuple[bytes, bytes, int]:
    """(deps, update, end): ``text`` inserted as if by Yjs client ``client_id`` on top of ``doc_state``."""
    doc = Doc(client_id=client_id)
    doc.apply_update(doc_state)
    before = doc.get_state()
    doc.get("content", type=Text).insert(0, text)
    return before, doc.get_update(before), decode_state_vector_untrusted(doc.get_state())[client_id]


def _forgeries(forger, victim, doc_state: bytes, text: str) -> list[Signed]:
    """The ways a writer can try to pass ``text`` off as ``victim``'s (authorship.py)."""
    deps, update, end = _their_edit(doc_state, victim.author.client_id, text)
    session = forger.token.session
    victim_cert = victim.ledger.cert  # public: it travels with every record the victim signs
    # 1. under the victim's key and certificate, signed with the forger's own key
    known = forger.ledger.authors[victim.author.public].known if victim.author.public in forger.ledger.authors else 0
    mine = sign_record(forger.author, session, known + 1, CHANGE, deps, update, end)  # the victim's next seq
    as_victim = Material(victim.author.public, victim_cert, (replace(mine, author=victim.author.public),))
    # 2. as itself, honestly signed, but adding items under the victim's client id
    as_itself = Material(forger.author.public, forger.ledger.cert,
                         (sign_record(forger.author, session, forger.ledger.own.known + 1, CHANGE, deps, update, end),))
    return [Signed((as_victim,)), Signed((as_itself,)), Signed((as_victim,), reply=True)]


def test_a_member_cannot_forge_another_members_edit_or_cursor():
    """p1 holds the token and a proven link to the host, and tries to speak as p2."""
    mesh = build(2, initial_text="base\n")
    host, p1, p2 = mesh.nodes["host"], mesh.nodes["p1"], mesh.nodes["p2"]
    # p2 has typed already, so a forgery adds items after its first ones: v4's check read the
    # clocks of an update with pycrdt's get_state, which gives none unless they start at 0, and
    # so let exactly this through
    mesh.editors["p2"].insert(0, "p2 typed first ", mesh.net.now)
    mesh.settle()
    to_host = p1.links[HOST_ID].channel
    for forged in _forgeries(p1, p2, host.document.doc.get_update(), "p2 never typed this "):
        to_host.send(encode_session_message(forged))
    deps, update, _ = _their_edit(host.document.doc.get_update(), p2.author.client_id, "p2 never typed this ")
    to_host.send(encode_session_message(SyncStep2(update)))  # y-protocols' unsigned resync
    spoofed = Awareness(Doc(client_id=p2.document.client_id))
    spoofed.set_local_state({"user": {"name": "p2"}, "cursor": {"anchor": {"offset": 0}, "head": {"offset": 0}}})
    to_host.send(encode_session_message(AwarenessUpdate(spoofed.encode_awareness_update([p2.document.client_id]))))
    before = dict(host.drops.by_reason)
    mesh.run(mesh.net.now + 1.0)
    assert host.drops.by_reason["forged edit"] - before.get("forged edit", 0) == 3
    assert host.drops.by_reason["unsigned"] - before.get("unsigned", 0) == 1
    assert host.drops.by_reason["forged cursor"] - before.get("forged cursor", 0) == 1
    assert "never typed" not in str(host.document)
    # p1 may still edit as itself, and p2's real edits still count
    mesh.editors["p1"].insert(0, "p1 typed this ", mesh.net.now)
    mesh.editors["p2"].insert(0, "p2 typed this ", mesh.net.now)
    mesh.settle(10.0)
    assert "p1 typed this " in str(host.document) and "p2 typed this " in str(host.document)
    assert "never typed" not in str(host.document)


def test_a_member_cannot_put_words_in_the_mouth_of_a_peer_who_left():
    """The v4 gap: p2 types and leaves; p3 joins later and gets p2's work relayed.  p1 (a writer)
    tries to slip invented text under p2's client id to p3, live and in its answer to p3's WANT.
    Every try is refused, and p2's real words still reach p3."""
    mesh = build(2, initial_text="base\n")
    host, p1, p2 = mesh.nodes["host"], mesh.nodes["p1"], mesh.nodes["p2"]
    mesh.editors["p2"].insert(0, "p2 was here ", mesh.net.now)
    mesh.settle()
    state = host.document.doc.get_update()
    p2.leave(mesh.net.now)
    mesh.run(mesh.net.now + 1.0)
    mesh.vanish("p2")
    mesh.settle()
    p3 = mesh.join("p3", 4)
    forgeries = _forgeries(p1, p2, state, "p2 never typed this ")
    real_answer = p1.ledger.answer

    def lying_answer(vector):  # p1 answers p3's WANT with the forgeries mixed in
        return [*real_answer(vector), *(m for f in forgeries for m in f.materials)]

    p1.ledger.answer = lying_answer
    mesh.settle(10.0)
    assert p3.peer_id in p1.links and p1.links[p3.peer_id].up
    for forged in forgeries:
        p1.links[p3.peer_id].channel.send(encode_session_message(forged))
    mesh.run(mesh.net.now + 2 * RESYNC_INTERVAL)
    assert "p2 was here base" in str(p3.document)
    assert "never typed" not in str(p3.document) and "never typed" not in str(host.document)
    assert p3.drops.by_reason["forged edit"] >= len(forgeries)


def test_a_read_only_guest_reads_and_points_but_every_peer_refuses_its_edits():
    mesh = build(1, initial_text="read me\n")
    host, p1 = mesh.nodes["host"], mesh.nodes["p1"]
    guest = mesh.join("guest", 3, token=TOKEN.read_only_token())
    other = mesh.join("lurker", 4, token=TOKEN.read_only_token())
    mesh.settle()
    assert str(guest.document) == "read me\n" and guest.read_only and not host.read_only
    assert not host.links[guest.peer_id].writer and host.links[p1.peer_id].writer
    assert guest.links[HOST_ID].writer  # a guest verifies writers with the public key in its token
    # a guest has an author key too (no certificate): the client id its handshake proves is derived from it
    assert host.links[guest.peer_id].client_id == guest.author.client_id == guest.document.client_id
    guest.set_cursor(2, 2, mesh.net.now)
    mesh.run(mesh.net.now + 1.0)
    assert "guest" in [name for _, name, _, _ in host.cursors()]  # its cursor is shown
    guest.local_edits([TextEdit(0, 0, "polite try ")], mesh.net.now)  # the unpatched node refuses
    assert str(guest.document) == "read me\n" and isinstance(mesh.editors["guest"].node.next_event(), Problem)
    # patched: it changes its own document and sends the update anyway
    changes = guest.document.local_edits([TextEdit(0, 0, "vandal ")])
    end = guest.document.have()[guest.author.client_id]
    records = tuple(sign_record(guest.author, TOKEN.session, 1 + i, CHANGE, deps, update, end)
                    for i, (deps, update) in enumerate(changes))
    guest.sync.broadcast(Signed((Material(guest.author.public, b"", records),)))  # no certificate
    lifted = host.ledger.cert  # a writer's certificate, lifted: it certifies the host's key, not the guest's
    guest.sync.broadcast(Signed((Material(guest.author.public, lifted, records),)))
    mesh.run(mesh.net.now + 2 * RESYNC_INTERVAL)
    for node in (host, p1, other):
        assert str(node.document) == "read me\n", node.name
        assert node.drops.by_reason["read-only"] >= 1
    mesh.editors["p1"].insert(0, "writers still write ", mesh.net.now)
    mesh.run(mesh.net.now + 1.0)
    assert str(other.document) == "writers still write read me\n"


def test_every_link_knows_its_peer_by_the_client_id_of_its_author_key():
    """v5: a node's Yjs client id is derived from its author key and proven by the handshake;
    the ``client_id`` a caller passes is ignored, and a kept document keeps its author key."""
    mesh = build(2)
    nodes = list(mesh.nodes.values())
    for node in nodes:
        assert node.document.client_id == node.author.client_id == client_id_of(node.author.public)
        assert node.document.author is node.author
        for other in nodes:
            if other is not node:
                assert node.links[other.peer_id].client_id == other.author.client_id
    p1 = mesh.nodes["p1"]
    again = PeerNode(name="p1", token=TOKEN, peer_id=p1.peer_id, client_id=12345, now=mesh.net.now, document=p1.document)
    assert again.author is p1.author and again.document.client_id == p1.author.client_id != 12345


def test_a_whole_session_on_the_wire_shows_no_text_name_or_key_and_the_token_opens_no_recorded_edit():
    """Record everything a session sends (a writer, a read-only guest, edits, cursors, a rekey),
    then look at it as someone who got the token afterwards."""
    net_wire: list[bytes] = []
    mesh = build(0, initial_text="top secret plan\n")
    mesh.net.intercept = lambda data, src, dst, now: net_wire.append(data) or True
    mesh.join("agent-nine", 1)
    mesh.join("observer", 2, token=TOKEN.read_only_token())
    mesh.settle()
    mesh.editors["agent-nine"].insert(0, "hunter2 ", mesh.net.now)
    mesh.nodes["agent-nine"].set_cursor(3, 3, mesh.net.now)
    mesh.run(mesh.net.now + REKEY_AFTER + 5.0)  # every pair rekeys once
    mesh.editors["host"].insert(0, "after rekey ", mesh.net.now)
    mesh.settle()
    assert str(mesh.nodes["observer"].document) == "after rekey hunter2 top secret plan\n"
    keys = TOKEN.keys()
    ro = TOKEN.read_only_token()
    secrets_ = [TOKEN.secret, ro.secret, keys.introduction, keys.handshake, keys.psk]
    secrets_ += [node.wire.security._static for node in mesh.nodes.values()]
    for data in net_wire:
        for needle in (b"hunter2", b"secret plan", b"after rekey", b"agent-nine", b"observer", *secrets_):
            assert needle not in data
    assert {pair.cur.gen for node in mesh.nodes.values() for pair in node.wire.security.pairs.values()} >= {2}
    # Later, with the token: every key it yields, tried on every recorded peer datagram, opens none
    # (traffic keys came from ephemeral keys that no machine keeps once a handshake is done).
    assert all(pair.hs is None for node in mesh.nodes.values() for pair in node.wire.security.pairs.values())
    peer = [d for d in net_wire if decode_datagram_untrusted(d)[0].kind == KIND_PEER]
    assert len(peer) > 50
    for data in peer:
        for secret in secrets_[:5]:
            for receiver in (HOST_ID, HOST_ID + 1, HOST_ID + 2):
                with pytest.raises(DecodeError):
                    session_seal(SESSION, secret, bytes(16)).open_untrusted(data, receiver, 0.0)


def test_peers_that_leave_take_their_keys_with_them():
    """A long session sees many peers come and go; the host keeps keys only for those still around."""
    mesh = build(1)
    host = mesh.nodes["host"]
    for i in range(2, 6):
        mesh.join(f"visitor{i}", i)
        mesh.settle()
        node = mesh.nodes[f"visitor{i}"]
        node.leave(mesh.net.now)
        mesh.run(mesh.net.now + 0.1)  # its goodbyes go out
        mesh.vanish(f"visitor{i}")
        mesh.run(mesh.net.now + 1.0)
        assert node.peer_id not in host.wire.security.pairs
    assert set(host.wire.security.pairs) == {mesh.nodes["p1"].peer_id}
    mesh.join("late", 9)
    mesh.settle()
