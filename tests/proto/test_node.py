"""PeerNode meshes over the fake network: joining, editing, leaving, failing.

A host is built as covim_p2p/nvim/session.py builds it: an Introducer and the
host's own PeerNode sharing one address through HostStack, the introducer's
``local_sink`` wired to ``node.on_local_rendezvous``.  Joiners are plain
PeerNodes.  Everything runs on FakeNetwork's virtual clock: no sockets, no
sleeps, the same seed gives the same run.

An ``Editor`` stands in for the Neovim bridge: it keeps the text the editor
shows, applies its own edits there directly, and replays
``document.take_remote_edits()`` onto it, as the bridge does.
"""

from __future__ import annotations

import os
import random
import struct
import sys
from pathlib import Path

import pytest

from covim_p2p.editor.edits import TextEdit, apply_edit_to_str
from covim_p2p.proto.framing import (KIND_HANDSHAKE, KIND_PEER, KIND_RENDEZVOUS, Bye, Data, Hello, Ping, decode_datagram_untrusted,
                                     decode_peer_body_untrusted, encode_datagram, encode_peer_body)
from covim_p2p.proto.codec import DecodeError
from covim_p2p.proto.seal import SealError, session_seal
from covim_p2p.proto.hoststack import HostStack
from covim_p2p.proto.link import LINK_TIMEOUT, PING_INTERVAL, PROBE_MAX, PROBE_TIMEOUT, RESYNC_INTERVAL
from covim_p2p.proto.messages import M_SIGNED
from covim_p2p.proto.events import Joined, JoinFailed, PeerDown, PeerUp, Problem
from covim_p2p.proto.lifecycle import REPROBE_WINDOW
from covim_p2p.proto.membership import JOIN_RETRY_FIRST, JOIN_TIMEOUT
from covim_p2p.proto.node import PeerNode
from covim_p2p.proto.rendezvous import Introducer
from covim_p2p.proto.rendezvous_messages import Member, Welcome, decode_message_untrusted, encode_message
from covim_p2p.proto.token import SessionToken

sys.path.insert(0, str(Path(__file__).parent))  # the fakenet helper, whatever the import mode
from fakenet import FakeNetwork  # noqa: E402

SESSION = 0x00C0_FFEE_0000_0001
SECRET = bytes(range(16))
HOST_ADDR = ("127.0.0.1", 7000)
TOKEN = SessionToken((HOST_ADDR,), SESSION, SECRET)
HOST_ID = 0x1000


INTRO = TOKEN.keys().introduction  # what rendezvous traffic is sealed with (keys.py)


def forge(kind: int, sender: int, body: bytes, *, to: int, session: int = SESSION, seal=None, node=None) -> bytes:
    """A datagram as ``sender`` would seal it for peer ``to``.  Rendezvous: with ``seal`` (the
    sender's own, so its counter is new) or a fresh one under the introduction credential.
    Peer traffic: with the keys the real sender ``node`` shares with ``to`` (handshake.py);
    without ``node``, with a key nobody has (what a forger without a handshake can do)."""
    if kind == KIND_PEER and node is not None:
        keys = node.wire.security.pairs[to].cur
        n = keys.send_n
        keys.send_n += 1
        head = encode_datagram(KIND_PEER, session, sender, struct.pack("!IQ", keys.gen, n))
        return head + keys.send.encrypt_at(n, head, body)
    secret = INTRO if kind == KIND_RENDEZVOUS else SECRET
    return (seal or session_seal(SESSION, secret, os.urandom(16))).seal(kind, session, sender, body, to)


PEEK_IDS = (Introducer.ID, HOST_ID, *range(HOST_ID + 1, HOST_ID + 20), 0x2001, 0x3001, 4242)


def peek(data: bytes, node=None):
    """(header, body) of a datagram: rendezvous ones as any member could open them (it knows
    every member's id, so it tries them as the receiver); peer traffic only with the keys of
    its receiver ``node`` (read without touching its replay window)."""
    header, rest = decode_datagram_untrusted(data)
    if header.kind == KIND_PEER:
        if node is None:
            raise DecodeError("peer traffic opens only at its receiver")
        pair = node.wire.security.pairs.get(header.sender)
        gen, n = struct.unpack_from("!IQ", rest)
        for keys in (pair.cur, pair.prev) if pair is not None else ():
            if keys is not None and keys.gen == gen:
                return header, keys.recv.decrypt_at(n, data[:32], data[32:])
        raise DecodeError("no keys for it")
    if header.kind != KIND_RENDEZVOUS:
        raise DecodeError("a handshake message")
    for receiver in PEEK_IDS:
        try:
            return session_seal(SESSION, INTRO, bytes(16)).open_untrusted(data, receiver, 0.0)
        except SealError as exc:
            if exc.reason != "forged":
                raise
    raise DecodeError("not sealed for any member this test knows")


def node_at(mesh, addr):
    machine = mesh.net.machines.get(addr)
    return getattr(machine, "node", machine)


def peer_addr(i: int) -> tuple[str, int]:
    return (f"127.0.0.{i + 1}", 7000 + i)


class Editor:
    """The text an editor shows for one node, kept the way the bridge keeps it."""

    def __init__(self, node: PeerNode) -> None:
        self.node = node
        self.shown = str(node.document)
        self.events: list[tuple[float, object]] = []

    def take_remote(self) -> None:
        for edit in self.node.document.take_remote_edits():
            self.shown = apply_edit_to_str(self.shown, edit)

    def edit(self, edit: TextEdit, now: float) -> None:
        self.take_remote()  # the bridge rebases; here we simply catch up first
        self.node.local_edits([edit], now)
        self.shown = apply_edit_to_str(self.shown, edit)

    def insert(self, offset: int, text: str, now: float) -> None:
        self.edit(TextEdit(offset, 0, text), now)


class Mesh:
    def __init__(self, net: FakeNetwork, *, initial_text: str = "", host: bool = True,
                 secret: bytes = SECRET) -> None:
        self.net = net
        self.nodes: dict[str, PeerNode] = {}
        self.addrs: dict[str, tuple[str, int]] = {}
        self.editors: dict[str, Editor] = {}
        self.introducer: Introducer | None = None
        if host:
            self.introducer = Introducer(SESSION, SessionToken((HOST_ADDR,), SESSION, secret).keys().introduction)
            node = PeerNode(name="host", token=TOKEN, peer_id=HOST_ID, client_id=HOST_ID,
                            now=net.now, initial_text=initial_text, introducer=self.introducer)
            self.introducer._local_sink = node.on_local_rendezvous  # as nvim/session.py does
            net.attach(HOST_ADDR, HostStack(self.introducer, node))
            self._register("host", node, HOST_ADDR)

    def _register(self, name: str, node: PeerNode, addr) -> None:
        self.nodes[name] = node
        self.addrs[name] = addr
        self.editors[name] = Editor(node)

    def join(self, name: str, i: int, *, token: SessionToken = TOKEN, key: str | None = None, **kw) -> PeerNode:
        """A joiner at peer_addr(i), known to the test as ``key`` (default: its name)."""
        node = PeerNode(name=name, token=token, peer_id=HOST_ID + i, client_id=HOST_ID + i, now=self.net.now, **kw)
        self.net.attach(peer_addr(i), node)
        self._register(key or name, node, peer_addr(i))
        return node

    def vanish(self, name: str) -> None:
        self.net.detach(self.addrs[name])
        del self.nodes[name]
        del self.editors[name]

    def poll(self) -> bool:
        """Record every node's events with the time they appeared; for run(condition=...)."""
        for editor in self.editors.values():
            while (event := editor.node.next_event()) is not None:
                editor.events.append((self.net.now, event))
        return False

    def run(self, until: float, condition=None) -> None:
        def check() -> bool:
            self.poll()
            return condition is not None and condition()
        self.net.run(until=until, condition=check)
        self.poll()

    def events(self, name: str, kind=object) -> list:
        return [e for _, e in self.editors[name].events if isinstance(e, kind)]

    def timed(self, name: str, kind) -> list[tuple[float, object]]:
        return [(t, e) for t, e in self.editors[name].events if isinstance(e, kind)]

    def texts(self) -> dict[str, str]:
        return {name: str(node.document) for name, node in self.nodes.items()}

    def converged(self) -> bool:
        texts = set(self.texts().values())
        return len(texts) == 1 and all(n.ledger.pending() == 0 for n in self.nodes.values())

    def full_mesh(self) -> bool:
        ids = {node.peer_id for node in self.nodes.values()}
        return all({pid for pid, link in node.links.items() if link.up} == ids - {node.peer_id}
                   for node in self.nodes.values())

    def settle(self, budget: float = 30.0) -> None:
        self.run(self.net.now + budget, lambda: self.full_mesh() and self.converged())
        assert self.full_mesh(), {n: sorted(node.links) for n, node in self.nodes.items()}
        assert self.converged(), self.texts()


def build(n_joiners: int, *, seed: int = 0, initial_text: str = "hello 世界\n", **net_kw) -> Mesh:
    mesh = Mesh(FakeNetwork(seed, **net_kw), initial_text=initial_text)
    for i in range(1, n_joiners + 1):
        mesh.join(f"p{i}", i)
    mesh.settle()
    return mesh


def char_offset(text: str, k: int) -> int:
    """Byte offset of the k-th character, clamped to the end."""
    return len(text[: max(0, min(k, len(text)))].encode())


# ---- joining ------------------------------------------------------------------------

def test_three_peers_join_into_a_full_mesh_with_the_hosts_text():
    mesh = build(3)
    assert mesh.full_mesh()
    assert set(mesh.texts().values()) == {"hello 世界\n"}
    everyone = {node.peer_id: name for name, node in mesh.nodes.items()}
    for name, node in mesh.nodes.items():
        assert node.state == "joined"
        assert set(node.links) == set(everyone) - {node.peer_id}
        assert all(link.up for link in node.links.values())
        assert mesh.events(name, Joined) == [Joined()]
        assert {e.name for e in mesh.events(name, PeerUp)} == set(everyone.values()) - {name}
        assert mesh.events(name, PeerDown) == [] and mesh.events(name, Problem) == []
    # joiners reach the host at the token's address, each other at observed addresses
    for i in range(1, 4):
        node = mesh.nodes[f"p{i}"]
        assert node.links[HOST_ID].addr == HOST_ADDR
        for j in range(1, 4):
            if j != i:
                assert node.links[HOST_ID + j].addr == peer_addr(j)
    # the editors of the joiners were told about the host's text as remote edits
    for name in ("p1", "p2", "p3"):
        editor = mesh.editors[name]
        editor.take_remote()
        assert editor.shown == "hello 世界\n"
    assert {m.name for m in mesh.introducer.members()} == {"host", "p1", "p2", "p3"}
    mesh.run(mesh.net.now + 2 * PING_INTERVAL)
    for node in mesh.nodes.values():
        assert all(link.rtt_ms() == pytest.approx(2.0, abs=0.5) for link in node.links.values())


def test_peers_status():
    mesh = build(1)
    (status,) = mesh.nodes["p1"].peers_status()
    assert status["name"] == "host" and status["addr"] == "127.0.0.1:7000" and status["up"] is True
    assert status["rtt_ms"] == pytest.approx(2.0, abs=0.5)  # latency 1 ms each way


def test_late_joiner_gets_the_full_current_document():
    mesh = build(2)
    for k, name in enumerate(["host", "p1", "p2"]):
        for r in range(5):
            mesh.editors[name].insert(0, f"[{name}{r}🙂]", mesh.net.now)
            mesh.run(mesh.net.now + 0.01)
    mesh.editors["p1"].edit(TextEdit(0, 3, ""), mesh.net.now)  # and a deletion
    mesh.settle()
    before = mesh.texts()["host"]
    late = mesh.join("late", 9)
    mesh.settle()
    assert str(late.document) == before
    assert len(before.encode()) > 100
    editor = mesh.editors["late"]
    editor.take_remote()
    assert editor.shown == before


def test_a_big_document_reaches_a_late_joiner():
    big = "".join(f"{i:06d} 世界 🙂 some text to fill the line\n" for i in range(5000))  # ~260 KB
    mesh = Mesh(FakeNetwork(3, drop=0.05, reorder=0.1), initial_text=big)
    node = mesh.join("p1", 1)
    mesh.settle(60.0)
    assert str(node.document) == big


# ---- concurrent editing over a terrible network --------------------------------------

WORDS = ["α", "世界", "🙂", "é", "👩‍💻", "ß", "\u0301x", "한"]
TAIL = " and the rest of it"


@pytest.mark.parametrize("seed", range(6))
def test_concurrent_edits_at_the_same_offset_converge_over_a_lossy_network(seed):
    """Everyone inserts at the same place ("hel|lo") in every round, one peer
    deletes from the tail now and then, and each round gets only part-way
    through the network before the next: drop 20 %, duplicate 10 %, reorder 30 %."""
    mesh = build(3, seed=seed, initial_text="hello 世界" + TAIL + "\n", drop=0.2, duplicate=0.1, reorder=0.3)
    rng = random.Random(seed)
    inserted: list[str] = []
    for rnd in range(6):
        for name, editor in mesh.editors.items():
            text = str(editor.node.document)
            offset = len(text[: text.index("lo 世界")].encode())  # the same place for everyone
            word = f"<{name}:{rnd}{rng.choice(WORDS)}>"
            inserted.append(word)
            editor.insert(offset, word, mesh.net.now)
        if rnd % 2:  # and a concurrent deletion in the tail by one peer
            editor = mesh.editors[rng.choice(sorted(mesh.editors))]
            text = str(editor.node.document)
            editor.edit(TextEdit(len(text.encode()) - 2, 1, ""), mesh.net.now)
        mesh.run(mesh.net.now + rng.choice([0.0005, 0.002, 0.05]))  # partial propagation
    mesh.run(mesh.net.now + 60.0, mesh.converged)
    texts = mesh.texts()
    assert len(set(texts.values())) == 1, texts
    final = texts["host"]
    for word in inserted:
        assert word in final, word
    assert final.startswith("hel<") and ">lo 世界 and the rest of" in final and final.endswith("\n")
    for name, editor in mesh.editors.items():
        editor.take_remote()
        assert editor.shown == final, name
    assert mesh.net.stats["dropped"] > 0 and mesh.net.stats["duplicated"] > 0
    assert all(mesh.events(name, PeerDown) == [] for name in mesh.nodes)
    assert len({str(n.document).encode() for n in mesh.nodes.values()}) == 1


# ---- leaving and vanishing ------------------------------------------------------------

def test_host_leaves_and_the_others_go_on():
    mesh = build(3)
    host = mesh.nodes["host"]
    host.leave(mesh.net.now)
    assert host.state == "left" and host.links == {}
    mesh.run(mesh.net.now + 0.01)  # the BYEs go out
    mesh.vanish("host")
    t_left = mesh.net.now
    for name in ("p1", "p2", "p3"):
        (down,) = mesh.events(name, PeerDown)
        assert down == PeerDown(HOST_ID, "host", "left the session")
        assert HOST_ID not in mesh.nodes[name].links
    for k, name in enumerate(["p1", "p2", "p3"]):
        mesh.editors[name].insert(0, f"after-{name}-ü ", mesh.net.now)
    mesh.run(t_left + 5.0, mesh.converged)
    assert mesh.converged()
    final = mesh.texts()["p1"]
    assert all(f"after-{n}-ü " in final for n in ("p1", "p2", "p3"))
    assert final.endswith("hello 世界\n")
    mesh.run(mesh.net.now + 30.0)  # long after: no more PeerDowns, the mesh stays up
    assert mesh.full_mesh()
    assert all(len(mesh.events(n, PeerDown)) == 1 for n in mesh.nodes)
    assert host.get_timer() is None and host.datagrams_to_send(mesh.net.now) == []


def test_with_the_host_gone_peers_find_each_other_again_after_an_outage():
    """No introducer is left to re-introduce anyone: a link lost to silence is probed
    again at the address it last had, and the offline edits merge once it is back."""
    mesh = build(2)
    mesh.nodes["host"].leave(mesh.net.now)
    mesh.run(mesh.net.now + 0.01)
    mesh.vanish("host")
    p1, p2 = mesh.nodes["p1"], mesh.nodes["p2"]
    heal = mesh.net.now + LINK_TIMEOUT + 20.0
    mesh.net.intercept = lambda data, src, dst, now: now >= heal
    mesh.run(mesh.net.now + LINK_TIMEOUT + 1.0)
    assert [d.reason for d in mesh.events("p1", PeerDown)] == ["left the session", "stopped answering"]
    mesh.editors["p1"].insert(0, "p1 alone ", mesh.net.now)
    mesh.editors["p2"].insert(p2.document.byte_len(), " p2 alone", mesh.net.now)
    mesh.run(heal + PROBE_MAX + 0.5, lambda: mesh.full_mesh() and mesh.converged())
    assert mesh.full_mesh() and mesh.converged()
    assert str(p1.document) == "p1 alone hello 世界\n p2 alone"
    assert [d.reason for d in mesh.events("p2", PeerDown)] == ["left the session", "stopped answering"]
    assert not p1.lifecycle._lost and not p2.lifecycle._lost


def test_peer_vanishing_without_bye_is_detected_after_link_timeout():
    mesh = build(3)
    last_sent: dict[tuple, float] = {}

    def intercept(data, src, dst, now):
        if src == peer_addr(3):
            last_sent[dst] = now
        return True

    mesh.net.intercept = intercept
    mesh.run(mesh.net.now + 3.0)  # a few pings
    victim = mesh.nodes["p3"]
    mesh.vanish("p3")
    t_gone = mesh.net.now
    mesh.editors["p1"].insert(0, "while p3 is silent ", mesh.net.now)
    mesh.run(t_gone + LINK_TIMEOUT + PING_INTERVAL + 0.1)
    for name in ("host", "p1", "p2"):
        ((t, down),) = mesh.timed(name, PeerDown)
        assert down == PeerDown(victim.peer_id, "p3", "stopped answering")
        # exactly LINK_TIMEOUT after the last packet from p3 arrived (1 ms after it was sent)
        assert t == pytest.approx(last_sent[mesh.addrs[name]] + mesh.net.latency + LINK_TIMEOUT, abs=1e-9)
        assert t_gone - PING_INTERVAL < last_sent[mesh.addrs[name]] <= t_gone
        assert not mesh.nodes[name].links[victim.peer_id].up  # probed again, in case it comes back
    mesh.editors["p2"].insert(0, "after ", mesh.net.now)
    mesh.editors["host"].insert(mesh.nodes["host"].document.byte_len(), "end", mesh.net.now)
    mesh.run(mesh.net.now + 5.0, mesh.converged)
    assert mesh.converged()
    assert mesh.texts()["p1"] == "after while p3 is silent hello 世界\nend"
    # the others probe p3 again for REPROBE_WINDOW (and the introducer names it for a
    # while): the user heard "stopped answering" once and hears nothing more
    mesh.run(t_gone + LINK_TIMEOUT + REPROBE_WINDOW + PROBE_TIMEOUT + 1.0)
    for name in ("host", "p1", "p2"):
        assert len(mesh.events(name, PeerDown)) == 1
        assert victim.peer_id not in mesh.nodes[name].links  # given up after REPROBE_WINDOW


# ---- join failures ----------------------------------------------------------------------

def test_name_clash_fails_the_join_naming_the_name():
    mesh = build(1)
    clash = mesh.join("p1", 2, key="clash")
    mesh.run(mesh.net.now + 2.0)
    (failed,) = mesh.events("clash", JoinFailed)
    assert failed.reason.startswith("the host refused: ")
    assert "the name 'p1' is already taken" in failed.reason
    assert mesh.events("clash", Joined) == []
    assert clash.state == "failed" and clash.links == {} and clash.get_timer() is None
    assert {m.name for m in mesh.introducer.members()} == {"host", "p1"}
    # the first p1 is untouched
    assert mesh.nodes["p1"].state == "joined" and mesh.events("p1", PeerDown) == []
    assert clash.peer_id not in mesh.nodes["host"].links


def test_the_hosts_name_clashes_too():
    mesh = build(0)
    node = mesh.join("host", 1, key="other")
    mesh.run(2.0)
    (failed,) = mesh.events("other", JoinFailed)
    assert "the name 'host' is already taken" in failed.reason and node.state == "failed"


def test_no_introducer_fails_after_join_timeout_exactly():
    node = PeerNode(name="lonely", token=TOKEN, peer_id=5, client_id=5, now=100.0)
    sent: list[float] = []
    t = 100.0
    while (event := node.next_event()) is None:
        t = node.get_timer()
        assert t is not None
        node.handle_timer(t)
        for data, addr in node.datagrams_to_send(t):
            header, body = decode_datagram_untrusted(data)
            if header.kind == KIND_RENDEZVOUS:
                assert addr == HOST_ADDR
                sent.append(t - 100.0)
    assert isinstance(event, JoinFailed)
    assert t == 100.0 + JOIN_TIMEOUT
    assert event.reason.startswith(f"no answer from the host at 127.0.0.1:7000 after {JOIN_TIMEOUT:g} s (")
    # JOIN is retried with backoff from JOIN_RETRY_FIRST, doubling up to 2 s
    assert sent[:5] == pytest.approx([0.0, JOIN_RETRY_FIRST, 0.75, 1.75, 3.75])
    assert all(b - a <= 2.0 + 1e-9 for a, b in zip(sent, sent[1:]))
    assert node.state == "failed" and node.get_timer() is None


def test_join_timeout_is_configurable_and_timer_is_exact_over_the_network():
    net = FakeNetwork(0)
    mesh = Mesh(net, host=False)
    node = mesh.join("p1", 1, join_timeout=2.5)
    mesh.run(10.0)
    ((t, failed),) = mesh.timed("p1", JoinFailed)
    assert t == 2.5
    assert failed.reason.startswith("no answer from the host at 127.0.0.1:7000 after 2.5 s (")
    assert net.stats["undeliverable"] >= 4  # JOINs went nowhere
    assert node.state == "failed" and node.get_timer() is None


def test_wrong_secret_fails_the_join():
    """Everything is sealed with the token's secret: a wrong one opens nothing, so the
    host cannot even tell who asked; eve's JOINs are dropped and her join times out."""
    mesh = build(0)
    bad = SessionToken((HOST_ADDR,), SESSION, b"\xee" * 16)
    node = mesh.join("eve", 5, token=bad)
    dropped = mesh.introducer.dropped
    mesh.run(mesh.net.now + JOIN_TIMEOUT + 1.0)
    (failed,) = mesh.events("eve", JoinFailed)
    assert "is this its current token?" in failed.reason
    assert mesh.introducer.dropped - dropped >= 5  # every JOIN retry
    assert node.state == "failed" and node.links == {}
    assert mesh.nodes["host"].links == {}
    assert str(node.document) == ""


# ---- garbage ---------------------------------------------------------------------------

def garbage_for(self_id: int, other, seed: int, intro_seal) -> list[bytes]:
    """Garbage for node ``self_id`` from the ``other`` node: random bytes, datagrams that
    do not open, and well-sealed ones (a member with the key) whose insides are wrong."""
    rng = random.Random(seed)
    out = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 100))) for _ in range(50)]
    out += [bytes([0, 1]) + bytes(18)]  # a STUN-looking packet
    other_id = other.peer_id
    out += [
        encode_datagram(KIND_PEER, SESSION, other_id, encode_peer_body(1, 1, [Ping(1)])),  # not sealed at all
        session_seal(SESSION, b"\x01" * 16, os.urandom(16)).seal(KIND_PEER, SESSION, other_id, b"x", self_id),
        forge(KIND_PEER, other_id, b"\xff\x00garbage frames", node=other, to=self_id),  # bad frames
        forge(KIND_PEER, other_id, encode_peer_body(1, 1, [Ping(1)]) + b"\x09", node=other,
              to=self_id),  # one bad frame
        forge(KIND_PEER, other_id, b"\xff" * 11, node=other, to=self_id),  # an epoch longer than 10 bytes
        forge(KIND_PEER, other_id, encode_peer_body(1, 1, [Ping(1)]), session=SESSION + 1, node=other,
              to=self_id),
        forge(KIND_PEER, self_id, encode_peer_body(1, 1, [Ping(1)]), to=self_id),  # "from" ourselves
        forge(KIND_RENDEZVOUS, Introducer.ID, encode_message(Welcome(HOST_ADDR, ())), session=SESSION + 1,
              seal=intro_seal, to=self_id),
    ]
    sealed = out[-7]
    out.append(sealed[:-1] + bytes([sealed[-1] ^ 1]))  # one bit flipped
    return out


def test_garbage_datagrams_are_dropped_and_counted():
    mesh = build(1)
    host, p1 = mesh.nodes["host"], mesh.nodes["p1"]
    now = mesh.net.now
    garbage = garbage_for(p1.peer_id, host, 1, mesh.introducer.seal) + [
        forge(KIND_RENDEZVOUS, 77, encode_message(Welcome(HOST_ADDR, ())), to=p1.peer_id),  # not the introducer
        forge(KIND_RENDEZVOUS, Introducer.ID, b"\x42", seal=mesh.introducer.seal, to=p1.peer_id),  # bad body
    ]
    before = p1.dropped
    for data in garbage:
        p1.receive_datagram(data, HOST_ADDR, now)
    assert p1.dropped - before == len(garbage)
    assert p1.links[HOST_ID].up and p1.next_event() is None

    # a WELCOME from some other address than the introducer's, at a joiner
    fake_welcome = forge(KIND_RENDEZVOUS, Introducer.ID, encode_message(Welcome(HOST_ADDR, ())),
                         seal=mesh.introducer.seal, to=p1.peer_id)
    p1.receive_datagram(fake_welcome, ("127.0.0.66", 1), now)
    assert p1.dropped - before == len(garbage) + 1

    # the same at the host's shared socket: counted by the node or by the introducer
    stack = mesh.net.machines[HOST_ADDR]
    garbage = garbage_for(HOST_ID, p1, 2, mesh.introducer.seal) + [
        forge(KIND_RENDEZVOUS, p1.peer_id, b"\x42", seal=p1.wire.seal, to=Introducer.ID),  # bad body
        forge(KIND_RENDEZVOUS, p1.peer_id, encode_message(Welcome(HOST_ADDR, ())), seal=p1.wire.seal,
              to=Introducer.ID),
    ]
    before_host, before_intro = host.dropped, mesh.introducer.dropped
    for data in garbage:
        stack.receive_datagram(data, peer_addr(1), now)
    assert (host.dropped - before_host) + (mesh.introducer.dropped - before_intro) == len(garbage)
    assert mesh.introducer.dropped - before_intro == 2
    assert host.links[p1.peer_id].up and host.next_event() is None
    mesh.settle(5.0)
    mesh.editors["p1"].insert(0, "still fine ", mesh.net.now)
    mesh.settle(5.0)
    assert mesh.events("p1", PeerDown) == [] and mesh.events("host", PeerDown) == []
    assert mesh.texts()["host"].startswith("still fine ")


def test_random_datagrams_from_a_member_address_never_raise():
    mesh = build(2, seed=4)
    rng = random.Random(9)
    p1 = mesh.nodes["p1"]
    stack = mesh.net.machines[HOST_ADDR]
    forger = session_seal(SESSION, SECRET, os.urandom(16))
    for _ in range(300):
        kind = rng.choice([KIND_PEER, KIND_RENDEZVOUS])
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        sender = rng.choice([HOST_ID, Introducer.ID, HOST_ID + 2, 999])
        to_p1 = forge(kind, sender, body, seal=forger, to=p1.peer_id)  # sealed right: the insides are random
        p1.receive_datagram(to_p1, rng.choice([HOST_ADDR, peer_addr(2)]), mesh.net.now)
        to_host = forge(kind, sender, body, seal=forger, to=Introducer.ID if kind == KIND_RENDEZVOUS else HOST_ID)
        stack.receive_datagram(to_host, peer_addr(2), mesh.net.now)
    mesh.settle(15.0)  # the session survives whatever it heard
    assert mesh.nodes["host"].state == p1.state == "joined"


def test_stray_peer_traffic_is_dropped_unanswered_and_a_member_without_a_link_gets_bye():
    """v4: peer traffic opens only under a pair's handshake keys.  A stranger has none: it is
    dropped and counted, never answered, and cannot open a link.  A member whose link we
    dropped still shares keys with us: it is told BYE "no such link", so it rebuilds."""
    mesh = build(1)
    p1, host = mesh.nodes["p1"], mesh.nodes["host"]
    stranger = ("127.0.0.50", 1)
    before = dict(p1.drops.by_reason)
    for frames in ([Ping(3)], [Bye("x")], [Hello("ghost", 9, True)]):
        p1.receive_datagram(forge(KIND_PEER, 4242, encode_peer_body(1, 0, frames), to=p1.peer_id), stranger,
                            mesh.net.now)
    assert p1.drops.by_reason["no keys"] - before.get("no keys", 0) == 3
    assert [a for _, a in p1.datagrams_to_send(mesh.net.now) if a == stranger] == []
    assert 4242 not in p1.links
    link = p1.links.pop(HOST_ID)  # p1 forgets its link (a freeze, say); the host does not know yet
    ping = forge(KIND_PEER, HOST_ID, encode_peer_body(link.peer_epoch, link.epoch, [Ping(3)]), to=p1.peer_id,
                 node=host)
    p1.receive_datagram(ping, HOST_ADDR, mesh.net.now)
    (out,) = [d for d, a in p1.datagrams_to_send(mesh.net.now) if a == HOST_ADDR and
              decode_datagram_untrusted(d)[0].kind == KIND_PEER]
    assert decode_peer_body_untrusted(peek(out, host)[1]) == (0, 0, [Bye("no such link")])


def test_malformed_session_message_drops_the_link():
    mesh = build(1)
    p1 = mesh.nodes["p1"]
    link = p1.links[HOST_ID]
    seq = link.channel._recv_next
    bad = forge(KIND_PEER, HOST_ID, encode_peer_body(link.peer_epoch, link.epoch, [Data(seq, True, b"\x09junk")]),
                node=mesh.nodes["host"], to=p1.peer_id)
    p1.receive_datagram(bad, HOST_ADDR, mesh.net.now)
    mesh.poll()
    (down,) = mesh.events("p1", PeerDown)
    assert down.peer_id == HOST_ID and down.reason.startswith("sent a malformed message (unknown session message 9")


# ---- awareness -------------------------------------------------------------------------

def cursor_of(node: PeerNode, name: str):
    found = [(anchor, head) for _, n, anchor, head in node.cursors() if n == name]
    return found[0] if found else None


def test_cursor_shows_up_at_the_right_offset_and_disappears_when_the_peer_leaves():
    mesh = build(2, initial_text="hello world\nsecond line 世界 and more\n")
    p1 = mesh.nodes["p1"]
    text = str(p1.document)
    ascii_offset = text.index("world")
    p1.set_cursor(ascii_offset, ascii_offset + 5, mesh.net.now)
    mesh.run(mesh.net.now + 0.1)
    for name in ("host", "p2"):
        assert cursor_of(mesh.nodes[name], "p1") == (ascii_offset, ascii_offset + 5)
        assert any(cid == p1.document.client_id for cid, *_ in mesh.nodes[name].cursors())
        assert mesh.nodes[name].remote_cursors_changed
    # after non-ASCII text, offsets are still bytes, exactly
    far = len(text.encode()) - len(" more\n".encode())
    p1.set_cursor(far, far, mesh.net.now)
    mesh.run(mesh.net.now + 0.1)
    for name in ("host", "p2"):
        assert cursor_of(mesh.nodes[name], "p1") == (far, far)
    # at the very end
    end = len(text.encode())
    p1.set_cursor(end, end, mesh.net.now)
    mesh.run(mesh.net.now + 0.1)
    assert cursor_of(mesh.nodes["p2"], "p1") == (end, end)

    p1.leave(mesh.net.now)
    mesh.run(mesh.net.now + 0.1)
    for name in ("host", "p2"):
        assert cursor_of(mesh.nodes[name], "p1") is None
        assert all(n != "p1" for _, n, _, _ in mesh.nodes[name].cursors())


def test_cursor_of_a_vanished_peer_expires():
    mesh = build(2)
    mesh.nodes["p1"].set_cursor(1, 1, mesh.net.now)
    mesh.run(mesh.net.now + 0.1)
    assert cursor_of(mesh.nodes["p2"], "p1") == (1, 1)
    mesh.vanish("p1")
    mesh.run(mesh.net.now + LINK_TIMEOUT + 2.0)
    assert cursor_of(mesh.nodes["p2"], "p1") is None
    assert cursor_of(mesh.nodes["host"], "p1") is None


def test_awareness_is_renewed_so_idle_cursors_stay():
    mesh = build(1)
    mesh.nodes["p1"].set_cursor(2, 2, mesh.net.now)
    mesh.run(mesh.net.now + 120.0)  # far beyond the 30 s awareness timeout
    assert cursor_of(mesh.nodes["host"], "p1") == (2, 2)
    assert [name for _, name, _, _ in mesh.nodes["p1"].cursors()] == ["host"]


# ---- loss and catching up ----------------------------------------------------------------

def carries_update(data: bytes, node=None) -> bool:
    try:
        header, body = peek(data, node)
        frames = decode_peer_body_untrusted(body)[2] if header.kind == KIND_PEER else []
    except ValueError:
        return False
    return any(isinstance(f, Data) and f.payload[:1] == bytes([M_SIGNED]) for f in frames)


def test_a_lost_update_is_retransmitted():
    mesh = build(2)
    p1, p2 = mesh.nodes["p1"], mesh.nodes["p2"]
    lost: list[float] = []

    def intercept(data, src, dst, now):
        if src == peer_addr(1) and dst == peer_addr(2) and not lost and carries_update(data, p2):
            lost.append(now)
            return False
        return True

    mesh.net.intercept = intercept
    t0 = mesh.net.now
    mesh.editors["p1"].insert(0, "lost once: 🙂 ", t0)
    mesh.run(t0 + 0.1, lambda: "🙂" in str(p2.document))
    assert lost == [t0]
    assert str(p2.document) == str(p1.document)
    arrived = mesh.net.now
    assert arrived > t0 + 0.002  # not the first copy (1 ms latency)...
    assert arrived < t0 + 0.1 and arrived < p2.links[p1.peer_id].next_resync  # ...and not a resync either
    assert p1.links[p2.peer_id].channel.retransmissions >= 1


def test_a_peer_that_missed_everything_catches_up_through_the_periodic_resync(monkeypatch):
    """p1 and p2 cannot reach each other at all (blocked both ways).  p2's edit
    reaches the host, the host's edit on top of it reaches p1, which must hold it
    back (it depends on p2's).  p1's next periodic SyncStep1 to the host heals it.
    (Forwarding through the host, forwarding.py, would link them after 3 s; it is off
    here so that the resync is what heals: test_paths.py tests forwarding.)"""
    import covim_p2p.proto.forwarding as forwarding
    monkeypatch.setattr(forwarding, "FORWARD_AFTER", float("inf"))
    mesh = Mesh(FakeNetwork(5), initial_text="base")
    blocked = {peer_addr(1), peer_addr(2)}
    mesh.net.intercept = lambda data, src, dst, now: not (src in blocked and dst in blocked)
    p1, p2 = mesh.join("p1", 1), mesh.join("p2", 2)
    host = mesh.nodes["host"]
    mesh.run(3.0, lambda: p1.links.get(HOST_ID) is not None and p1.links[HOST_ID].up
             and p2.links.get(HOST_ID) is not None and p2.links[HOST_ID].up
             and str(p1.document) == str(p2.document) == "base")
    assert not p1.links[p2.peer_id].up  # never came up

    mesh.editors["p2"].insert(4, " from p2", mesh.net.now)
    mesh.run(mesh.net.now + 0.05)
    assert str(host.document) == "base from p2"
    mesh.editors["host"].insert(len("base from p2"), " and host", mesh.net.now)
    mesh.run(mesh.net.now + 0.05)
    assert p1.ledger.pending() == 1
    assert str(p1.document) == "base"

    resync_at = p1.links[HOST_ID].next_resync
    assert resync_at > mesh.net.now
    mesh.run(resync_at + RESYNC_INTERVAL, lambda: str(p1.document) == "base from p2 and host")
    assert str(p1.document) == "base from p2 and host"
    assert resync_at <= mesh.net.now <= resync_at + 0.01
    assert p1.ledger.pending() == 0
    mesh.editors["p1"].take_remote()
    assert mesh.editors["p1"].shown == "base from p2 and host"
    # the blocked link gives up after PROBE_TIMEOUT, the rest carries on
    mesh.run(PROBE_TIMEOUT + 1.0)
    (down,) = mesh.events("p1", PeerDown)
    assert down.peer_id == p2.peer_id and down.reason == f"could not be reached at {peer_addr(2)[0]}:{peer_addr(2)[1]}"
    assert p1.links[HOST_ID].up and p2.links[HOST_ID].up


def test_edits_made_before_a_link_is_up_arrive_through_the_first_sync():
    net = FakeNetwork(2)
    mesh = Mesh(net, initial_text="")
    mesh.editors["host"].insert(0, "typed before anyone joined", 0.0)
    node = mesh.join("p1", 1)
    mesh.editors["p1"].insert(0, "joiner typed too|", 0.0)  # before it even reached the host
    mesh.settle()
    assert str(node.document) in {"joiner typed too|typed before anyone joined",
                                  "typed before anyone joined" + "joiner typed too|"}


def test_a_joiner_whose_welcome_is_lost_stays_invisible_until_it_joins():
    """PEER_JOINED about a newcomer can reach a joiner whose own WELCOME was lost.
    It must not open links then: a joining node drops all peer traffic, so the
    newcomer would see it 'up' and then 'stopped answering'."""
    mesh = build(0)
    welcome_until = [1.0]

    def intercept(data, src, dst, now):
        if dst == peer_addr(1) and src == HOST_ADDR and now < welcome_until[0] and \
                decode_datagram_untrusted(data)[0].kind == KIND_RENDEZVOUS:
            header, body = peek(data)
            if header.kind == KIND_RENDEZVOUS and isinstance(decode_message_untrusted(body), Welcome):
                return False
        return True

    mesh.net.intercept = intercept
    t0 = mesh.net.now
    slow = mesh.join("slow", 1)
    mesh.run(t0 + 0.1)
    assert slow.state == "joining"
    fast = mesh.join("fast", 2)
    mesh.run(t0 + 0.9)
    assert slow.state == "joining" and fast.state == "joined"
    assert slow.links == {}  # no links before its own WELCOME
    assert not (fast.links.get(slow.peer_id) and fast.links[slow.peer_id].up)
    assert mesh.events("fast", PeerUp) == [PeerUp(HOST_ID, "host")]
    mesh.settle()
    assert slow.state == "joined" and mesh.full_mesh() and mesh.events("fast", PeerDown) == []


def test_a_signed_update_pycrdt_cannot_read_is_dropped_and_counted():
    """The host's own key signs garbage (a buggy or hostile writer): the record is refused
    before pycrdt applies anything, counted, and the session goes on."""
    mesh = build(1)
    host, p1 = mesh.nodes["host"], mesh.nodes["p1"]
    link = p1.links[HOST_ID]
    from covim_p2p.proto.authorship import CHANGE, Material, sign_record
    from covim_p2p.proto.messages import Signed, encode_session_message
    record = sign_record(host.author, SESSION, host.ledger.own.known + 1, CHANGE, b"\x00", b"not a yjs update", 3)
    payload = encode_session_message(Signed((Material(host.author.public, host.ledger.cert, (record,)),)))
    bad = forge(KIND_PEER, HOST_ID,
                encode_peer_body(link.peer_epoch, link.epoch, [Data(link.channel._recv_next, True, payload)]),
                node=host, to=p1.peer_id)
    text = str(p1.document)
    p1.receive_datagram(bad, HOST_ADDR, mesh.net.now)
    mesh.poll()
    assert p1.drops.by_reason["malformed"] == 1 and str(p1.document) == text
    assert link.up and mesh.events("p1", PeerDown) == []
    # the session goes on (the injected chunk took a sequence number the host will
    # reuse; the channel drops that duplicate and the next resync repairs the gap)
    mesh.editors["host"].insert(0, "still working: ", mesh.net.now)
    mesh.run(mesh.net.now + 2 * RESYNC_INTERVAL, mesh.converged)
    assert mesh.converged() and str(p1.document).startswith("still working: ")


def test_a_link_that_timed_out_on_one_side_only_is_rebuilt_on_both():
    """p2 stops hearing p1 for longer than LINK_TIMEOUT while p1 still hears p2.
    p2 drops the link and rebuilds it from the introducer's WELCOME with a fresh
    channel; p1 must notice the new incarnation and restart its side too, or its
    old sequence numbers would never be delivered again (a silent, permanent stall)."""
    mesh = build(2)
    p1, p2 = mesh.nodes["p1"], mesh.nodes["p2"]
    mesh.editors["p1"].insert(0, "before ", mesh.net.now)
    mesh.settle()
    old_epoch = p2.links[p1.peer_id].epoch
    t_cut = mesh.net.now
    heal = t_cut + LINK_TIMEOUT + 6.0  # long enough for p2's WELCOME refresh to rebuild the link
    mesh.net.intercept = lambda data, src, dst, now: not (src == peer_addr(1) and dst == peer_addr(2) and now < heal)
    mesh.run(heal)
    ((_, down),) = mesh.timed("p2", PeerDown)
    assert down.peer_id == p1.peer_id and down.reason == "stopped answering"
    assert mesh.events("p1", PeerDown) == []  # p1 kept hearing p2's probes
    assert p2.links[p1.peer_id].epoch > old_epoch

    mesh.run(mesh.net.now + 0.5, lambda: p2.links[p1.peer_id].up)
    t0 = mesh.net.now
    mesh.editors["p1"].insert(0, "direct ", t0)
    # well before any periodic resync with the host could carry it
    mesh.run(t0 + 0.5, lambda: str(p2.document).startswith("direct before "))
    assert str(p2.document).startswith("direct before ")
    assert mesh.net.now - t0 < 0.1
    mesh.editors["p2"].insert(0, "back ", mesh.net.now)
    mesh.run(mesh.net.now + 0.1, lambda: str(p1.document).startswith("back direct"))
    assert str(p1.document).startswith("back direct before ")
    mesh.settle()
    mesh.run(mesh.net.now + 1.0)
    assert not p1.links[p2.peer_id].channel.pending() and not p2.links[p1.peer_id].channel.pending()
    assert p1.links[p2.peer_id].restarts == 1


def test_stale_datagrams_from_an_old_link_incarnation_are_ignored():
    mesh = build(1)
    p1 = mesh.nodes["p1"]
    link = p1.links[HOST_ID]
    before = str(p1.document)
    host_seal = mesh.nodes["host"].wire.seal
    stale = forge(KIND_PEER, HOST_ID, encode_peer_body(link.peer_epoch - 1 if link.peer_epoch > 1 else 0, link.epoch,
                                                       [Data(link.channel._recv_next, True, b"\x09junk")]), node=mesh.nodes["host"],
                  to=p1.peer_id)
    dropped = p1.dropped
    p1.receive_datagram(stale, HOST_ADDR, mesh.net.now)
    assert p1.dropped == dropped + 1
    wrong_dst = forge(KIND_PEER, HOST_ID, encode_peer_body(link.peer_epoch, link.epoch + 7,
                                                           [Data(link.channel._recv_next, True, b"\x09junk")]),
                      node=mesh.nodes["host"], to=p1.peer_id)
    p1.receive_datagram(wrong_dst, HOST_ADDR, mesh.net.now)
    assert HOST_ID in p1.links and p1.links[HOST_ID] is link  # the junk was never delivered
    assert str(p1.document) == before


def test_edits_made_offline_merge_when_the_network_comes_back():
    """p2 is cut off from everyone for longer than every timeout: all its links drop,
    everybody keeps typing, and once the network heals the introducer's WELCOME
    rebuilds the links and the state-vector sync merges both sides' offline edits."""
    mesh = build(2, initial_text="shared\n")
    p2 = mesh.nodes["p2"]
    cut_until = mesh.net.now + LINK_TIMEOUT + PROBE_TIMEOUT
    mesh.net.intercept = lambda data, src, dst, now: now >= cut_until or peer_addr(2) not in (src, dst)
    mesh.run(mesh.net.now + LINK_TIMEOUT + 1.0)
    assert not any(link.up for link in p2.links.values())
    mesh.editors["p2"].insert(0, "offline p2 ", mesh.net.now)
    mesh.editors["p1"].insert(len("shared"), " and p1", mesh.net.now)
    mesh.run(cut_until)
    assert str(p2.document) == "offline p2 shared\n"
    mesh.settle(budget=15.0)
    assert set(mesh.texts().values()) == {"offline p2 shared and p1\n"}
    for name in ("host", "p1", "p2"):
        mesh.editors[name].take_remote()
        assert mesh.editors[name].shown == "offline p2 shared and p1\n"
    assert [e.peer_id for e in mesh.events("p2", PeerUp)].count(HOST_ID) == 2  # up, down, up again


def test_a_probing_link_tries_the_peers_lan_addresses_and_keeps_the_one_that_answers():
    node = PeerNode(name="bob", token=TOKEN, peer_id=0x2001, client_id=0x2001, now=0.0,
                    candidates=(("10.0.0.2", 4000),))
    node.handle_timer(0.0)
    joins = [decode_message_untrusted(peek(d)[1]) for d, a in node.datagrams_to_send(0.0)]
    assert joins and all(j.candidates == (("10.0.0.2", 4000),) for j in joins)  # announced in JOIN
    public, lan = ("203.0.113.21", 4000), ("10.0.0.3", 4000)
    real_dave = PeerNode(name="dave", token=TOKEN, peer_id=0x3001, client_id=0x3001, now=0.0)
    real_dave.wire.security.expect(node.peer_id, node.wire.security.static_public)
    dave = Member(0x3001, "dave", public, (lan, ("10.0.0.2", 4000)),  # the second one is our own: skipped
                  static=real_dave.wire.security.static_public)
    welcome = forge(KIND_RENDEZVOUS, Introducer.ID, encode_message(Welcome(public, (dave,))), to=node.peer_id)
    node.receive_datagram(welcome, HOST_ADDR, 0.01)
    node.handle_timer(0.01)
    probes = [(d, a) for d, a in node.datagrams_to_send(0.01) if decode_datagram_untrusted(d)[0].kind == KIND_HANDSHAKE]
    assert {a for _, a in probes} == {public, lan}  # the first handshake message is the probe
    link = node.links[0x3001]
    # the LAN answers; the public address never will (no hairpin)
    real_dave.wire.receive_handshake(next(d for d, a in probes if a == lan), ("10.0.0.2", 4000), 0.015, False)
    (second, _), = real_dave.wire.take()
    node.receive_datagram(second, lan, 0.02)
    assert not link.up  # keys, but nothing on the link yet
    (third, _), = [(d, a) for d, a in node.datagrams_to_send(0.02) if decode_datagram_untrusted(d)[0].kind == KIND_HANDSHAKE]
    real_dave.wire.receive_handshake(third, ("10.0.0.2", 4000), 0.025, False)
    hello = forge(KIND_PEER, 0x3001, encode_peer_body(1, link.epoch, [Hello("dave", 7, False)]), to=node.peer_id,
                  node=real_dave)
    node.receive_datagram(hello, lan, 0.03)
    assert link.up and link.addr == lan and link.candidates == (public,)
    assert link.client_id == real_dave.author.client_id and link.writer  # what its handshake proved
    node.handle_timer(0.5)
    assert {a for d, a in node.datagrams_to_send(0.5) if decode_datagram_untrusted(d)[0].kind == KIND_PEER} == {lan}


def test_nothing_typed_or_named_crosses_the_wire_in_clear():
    mesh = Mesh(FakeNetwork(3), initial_text="top secret plan\n")
    wire: list[bytes] = []
    mesh.net.intercept = lambda data, src, dst, now: wire.append(data) or True
    mesh.join("agent-nine", 1)
    mesh.settle()
    mesh.editors["agent-nine"].insert(0, "hunter2 ", mesh.net.now)
    mesh.settle()
    assert mesh.texts()["host"] == "hunter2 top secret plan\n"
    assert wire and not any(b"hunter2" in d or b"secret plan" in d or b"agent-nine" in d or SECRET in d
                            for d in wire)


# ---- rejoining under the same name ------------------------------------------------

def test_a_crashed_peer_rejoins_under_its_name_within_the_claim_wait():
    from covim_p2p.proto.rendezvous import CLAIM_WAIT
    mesh = build(2)
    stale = mesh.nodes["p1"].peer_id
    mesh.vanish("p1")  # crashed: no LEAVE, no BYE
    start = mesh.net.now
    new = mesh.join("p1", 3)
    mesh.run(start + CLAIM_WAIT + 2.0, lambda: mesh.full_mesh() and mesh.converged())
    assert mesh.full_mesh() and mesh.converged()
    assert new.state == "joined"
    for name in ("host", "p2"):
        assert stale not in mesh.nodes[name].links
        assert any(e.reason == "rejoined" for e in mesh.events(name, PeerDown))
    assert mesh.events("p1", JoinFailed) == []


def test_a_live_member_keeps_its_name():
    mesh = build(1)
    mesh.join("p1", 2, key="impostor")
    mesh.run(mesh.net.now + 5.0)
    (failed,) = mesh.events("impostor", JoinFailed)
    assert "already taken" in failed.reason
    assert mesh.nodes["p1"].state == "joined" and HOST_ID + 1 in mesh.nodes["host"].links
