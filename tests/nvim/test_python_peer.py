"""A peer without Neovim (the library alone, over a real UDP socket) in a real session.

It proves that the wire protocol is the whole contract: a plain PeerNode joins
Neovims, real Yjs decodes the session's document to exactly the buffer text,
and hostile session messages from a member never take a Neovim down.
"""

from __future__ import annotations

import secrets
import select
import socket
import sys
import time
from pathlib import Path

from covim_peers import connect, host, messages, shared_lines, status, type_keys, wait_converged
from nvim_harness import wait_for

from covim_p2p.editor.edits import TextEdit
from covim_p2p.proto.authorship import CHANGE, Material, sign_record
from covim_p2p.proto.messages import AwarenessUpdate, Signed, SyncStep2, Want, encode_session_message
from covim_p2p.proto.node import PeerNode
from covim_p2p.proto.token import SessionToken

sys.path.insert(0, str(Path(__file__).parent.parent))
from test_yjs_compat import YjsTool  # noqa: E402


class LoopbackPeer:
    """Drives a PeerNode over a real socket with a bounded, synchronous loop."""

    def __init__(self, token: str, name: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.node = PeerNode(name=name, token=SessionToken.decode(token), peer_id=secrets.randbits(64) | 1,
                             client_id=secrets.randbits(32), now=time.monotonic())
        self.deaf_until = 0.0  # drop what arrives before this time, as a one-way outage would

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (now := time.monotonic()) < end:
            for data, addr in self.node.datagrams_to_send(now):
                self.sock.sendto(data, addr)
            timer = self.node.get_timer()
            wait = max(0.0, min(end, timer if timer is not None else end) - now)
            if select.select([self.sock], [], [], min(wait, 0.05))[0]:
                data, addr = self.sock.recvfrom(65536)
                if time.monotonic() >= self.deaf_until:
                    self.node.receive_datagram(data, addr, time.monotonic())
            now = time.monotonic()
            if timer is not None and timer <= now:
                self.node.handle_timer(now)

    def pump_until(self, predicate, seconds: float = 10) -> None:
        end = time.monotonic() + seconds
        while not predicate():
            assert time.monotonic() < end, "timed out pumping the python peer"
            self.pump(0.05)

    def send_raw(self, message) -> None:
        for link in self.node.links.values():
            link.channel.send(encode_session_message(message))

    def close(self) -> None:
        self.node.leave(time.monotonic())
        self.pump(0.05)
        self.sock.close()


def test_python_peer_and_yjs_read_the_session_document(nvim_factory):
    a, b = nvim_factory(), nvim_factory()
    lines = ["# café ☕", "\tindented with a tab", "日本語 and 👩‍👩‍👧 and e\u0301", ""]
    token = host(a, "alice", lines)
    connect(b, token, "bob")
    peer = LoopbackPeer(token, "py")
    try:
        peer.pump_until(lambda: peer.node.synced and len([l for l in peer.node.links.values() if l.up]) == 2)
        peer.pump_until(lambda: all(len(status(v)["peers"]) == 2 and status(v)["synced"] for v in (a, b)))
        type_keys(b, "ggA — bob was here<Esc>")
        expected = wait_converged([a, b])
        peer.pump_until(lambda: str(peer.node.document) == "\n".join(expected))
        peer.node.local_edits([TextEdit(0, 0, "from python\n")], time.monotonic())
        peer.pump_until(lambda: shared_lines(a)[0] == shared_lines(b)[0] == "from python")
        final = wait_converged([a, b])
        assert final[0] == "from python"
        peer.pump_until(lambda: str(peer.node.document) == "\n".join(final))
        yjs = YjsTool()
        try:
            assert yjs.decode(peer.node.document.doc.get_update()) == "\n".join(shared_lines(a))
        finally:
            yjs.close()
    finally:
        peer.close()


def test_hostile_session_messages_never_take_neovim_down(nvim_factory):
    a = nvim_factory()
    token = host(a, "alice", ["still fine"])
    peer = LoopbackPeer(token, "mallory")
    try:
        peer.pump_until(lambda: peer.node.synced)
        node = peer.node
        garbage = [(b"\x00", b"\x01\x02 not an update", 5), (b"\xff\xff\xff", b"\x00\x00", 0)]  # signed junk
        records = tuple(sign_record(node.author, node.token.session, node.ledger.own.known + 1 + i, CHANGE, deps,
                                    update, end) for i, (deps, update, end) in enumerate(garbage))
        peer.send_raw(Signed((Material(node.author.public, node.ledger.cert, records),)))
        peer.send_raw(SyncStep2(b"\xff" * 40))  # unsigned: refused whatever it holds
        peer.send_raw(Want(b"\xff\xff\xff"))  # a garbage vector: a malformed message
        peer.send_raw(AwarenessUpdate(b"\x01\xff\xff\xff\xff\x0f"))
        peer.pump(0.5)
        wait_for(lambda: "could not apply" in messages(a) or status(a)["peers"] == [], 5,
                 what="alice to refuse mallory's garbage")
        text = messages(a)
        assert "Traceback" not in text
        type_keys(a, "A and typing works<Esc>")
        assert a.current.buffer[:] == ["still fine and typing works"]
        assert status(a)["state"] == "joined"
    finally:
        peer.close()


def test_a_link_rebuilt_on_one_side_only_carries_edits_again(nvim_factory, monkeypatch):
    """The python peer stops hearing alice long enough to drop its link and rebuild it
    (probing again, and from the introducer's WELCOME), while alice (10 s timeout)
    keeps hers up.  Alice
    must restart her side of the link: her edits reach the peer directly again."""
    import covim_p2p.proto.link as link_module
    import covim_p2p.proto.membership as membership_module
    monkeypatch.setattr(link_module, "LINK_TIMEOUT", 1.0)  # in this process only: the python peer
    monkeypatch.setattr(membership_module, "REFRESH_INTERVAL", 0.3)  # read there, by the JOIN keepalive
    a = nvim_factory()
    token = host(a, "alice", ["before"])
    peer = LoopbackPeer(token, "py")
    try:
        peer.pump_until(lambda: peer.node.synced and any(l.up for l in peer.node.links.values()))
        (old,) = peer.node.links.values()
        peer.deaf_until = time.monotonic() + 1.5
        peer.pump_until(lambda: peer.node.links.get(old.peer_id) is not old, 5)
        peer.pump_until(lambda: any(l.up and l.epoch > old.epoch for l in peer.node.links.values()), 5)
        assert [p["name"] for p in status(a)["peers"]] == ["py"]  # alice never lost the link
        type_keys(a, "Aafter<Esc>")
        peer.pump_until(lambda: str(peer.node.document) == "beforeafter", 3)  # < the 5 s resync
        peer.node.local_edits([TextEdit(0, 0, "py: ")], time.monotonic())
        peer.pump_until(lambda: shared_lines(a) == ["py: beforeafter"], 3)
    finally:
        peer.close()
