"""One peer of the mesh: joins through the introducer, links to every other peer, syncs the document.

Rules of the machine:

* Joining, and staying a member, is membership.py's: ``state`` is
  ``joining``, ``joined``, ``failed`` or ``left``.  Which links exist (made
  for every member the introducer names, up, dropped, probed again after a
  loss) is lifecycle.py's; each link's own upkeep is link.py's.
* What an up link's channel carries for the document (signed records,
  WANT, awareness) is docsync.py's: the node tells it which links came up,
  went down, or completed messages.
* Peer datagrams from a peer we have no link to are answered with BYE unless
  they carry HELLO (a new link), so a stale link is torn down and rebuilt.
* With a TURN client (``turn``), membership.py offers the relayed address;
  we permit every member's addresses on the relay, datagrams the relay brings
  are handled like direct ones, and a link that came up through the relay
  answers through it (``Link.via_relay``).  Forwarding through a mesh peer
  (FORWARD frames, and probes through one for a link that stays down) is
  forwarding.py's.
* Every link has an epoch (link.py).  A datagram from an older epoch of the
  peer's side is dropped; a newer one restarts our channel and resyncs; DATA
  and ACK addressed to an older epoch of ours are ignored.
* Bounded state (security v4): cheap checks (session id, not from
  ourselves, rendezvous only from the introducer's address) come before the
  seal opens anything, and the seal rate-limits key derivations for unknown
  senders.  A HELLO from a peer the introducer has not named yet makes a
  link only within lifecycle.py's limits.  Every refusal is counted in
  ``drops`` by reason.

No clock, no sockets: ``now`` is passed in, datagrams go out through
``datagrams_to_send``.  Inputs from the editor are ``local_edits`` and
``set_cursor``; outputs for the editor are ``next_event()``,
``document.take_remote_edits()`` and ``cursors()``.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from typing import Any

from ..editor.edits import TextEdit
from .authorship import AuthorKey
from .channel import ChannelError
from .codec import DecodeError, Refused
from .docsync import DocumentSync
from .drops import Drops
from .document import SharedDocument
from .events import Event
from .forwarding import Forwarding, via_of
from .framing import KIND_HANDSHAKE, KIND_RENDEZVOUS, Ack, Addr, Bye, Data, Forward, Frame, Hello, \
    decode_datagram_untrusted, decode_peer_body_untrusted
from .ledger import Ledger
from .lifecycle import LinkLifecycle
from .link import Link
from .membership import JOIN_TIMEOUT, Membership
from .presence import Presence
from .registration import Registration
from .rendezvous import Introducer
from .rendezvous_messages import Member, Message, decode_message_untrusted
from .token import SessionToken
from .handshake import Keys
from .turn import TurnClient
from .wire import PeerWire


class PeerNode:
    def __init__(self, *, name: str, token: SessionToken, peer_id: int, client_id: int,
                 now: float, initial_text: str = "", introducer: Introducer | None = None,
                 join_timeout: float = JOIN_TIMEOUT, candidates: tuple[Addr, ...] = (),
                 turn: TurnClient | None = None, random_bytes: Callable[[int], bytes] = os.urandom,
                 register: Registration | None = None, document: SharedDocument | None = None) -> None:
        self.name = name
        self.token = token
        self.peer_id = peer_id
        # ``document``: the one a disconnected session kept (same author key, so same client id,
        # and its ledger), so a rejoin merges what was typed apart.  ``client_id`` is ignored: it
        # is derived from the author key (authorship.py).
        self.author: AuthorKey = getattr(document, "author", None) or AuthorKey(random_bytes(32))
        if document is None:
            document = SharedDocument(self.author.client_id, initial_text)
        document.author = self.author
        self.links: dict[int, Link] = {}
        self.drops = Drops()
        self._now = now
        self._events: deque[Event] = deque()
        self.wire = PeerWire(token, peer_id, turn, random_bytes, author=self.author, drops=self.drops)
        # The host's document is the session's first state.  A host that registers with a public
        # introducer (``register``: the REGISTER datagram, introduction.py) holds it too.
        self.sync = DocumentSync(document=document, session=token.session, keys=self.wire.keys, author=self.author,
                                 drops=self.drops, name=name, now=now, links=self.links, events=self._events,
                                 synced=introducer is not None or register is not None)
        self._forwarding = Forwarding(self.links, self.drops, self._send_frames, self._receive)
        self.wire.forward = self._forwarding.out  # forwarding.py: paths through a mesh peer
        # Whom the introducer names gets a link: lifecycle.py's, made next (it reads our membership).
        self.membership = Membership(name=name, token=token, peer_id=peer_id, wire=self.wire, now=now,
                                     join_timeout=join_timeout, candidates=candidates, introducer=introducer,
                                     register=register, named=lambda *named: self.lifecycle.named(*named),
                                     events=self._events, drops=self.drops)
        self.lifecycle = LinkLifecycle(self.links, peer_id=peer_id, wire=self.wire, membership=self.membership,
                                       sync=self.sync, drops=self.drops, events=self._events)

    # ---- membership (membership.py) ------------------------------------------

    @property
    def state(self) -> str:
        return self.membership.state

    @property
    def join_timeout(self) -> float:
        return self.membership.join_timeout

    @join_timeout.setter
    def join_timeout(self, value: float) -> None:  # peer.py: a joiner still waiting for the host's reply
        self.membership.join_timeout = value

    @property
    def candidates(self) -> tuple[Addr, ...]:
        return self.membership.candidates

    @property
    def observed(self) -> Addr | None:
        return self.membership.observed

    @property
    def is_host(self) -> bool:
        return self.membership.is_host

    @property
    def dropped(self) -> int:
        return self.drops.total

    @dropped.setter
    def dropped(self, value: int) -> None:  # ``dropped += 1`` still counts, as "other"
        self.drops.add("other", value - self.drops.total)

    # ---- editor inputs -----------------------------------------------------

    # The document, its ledger and our presence are docsync.py's; these are the editor's ways in.

    @property
    def document(self) -> SharedDocument:
        return self.sync.document

    @property
    def ledger(self) -> Ledger:
        return self.sync.ledger

    @property
    def presence(self) -> Presence:
        return self.sync.presence

    @property
    def synced(self) -> bool:
        """We hold the whole document (docsync.py says when)."""
        return self.sync.synced

    @property
    def read_only(self) -> bool:
        """Joined with a read-only token: every peer refuses our edits (keys.py), so we make none."""
        return self.sync.read_only

    def local_edits(self, edits: list[TextEdit], now: float) -> None:
        self._now = now
        self.sync.local_edits(edits, now)

    def undo(self, now: float, redo: bool = False) -> bool:
        """Undo our own last change (never another peer's); False if there was none."""
        self._now = now
        return self.sync.undo(now, redo)

    def set_meta(self, **values: str) -> None:
        """The host's file name and filetype (document.py), signed and shared like an edit."""
        self.sync.set_meta(**values)

    def set_cursor(self, anchor: int, head: int, now: float) -> None:
        self.presence.set_cursor(anchor, head, now)

    def leave(self, now: float) -> None:
        if self.state in ("left", "failed"):
            return
        self._now = now
        for link in self.links.values():
            for _ in range(2):
                self._send_frames([Bye("left the session")], link.addr, link)
        self.membership.leave()
        self.wire.close(now)
        self.links.clear()

    # ---- editor outputs ----------------------------------------------------

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def cursors(self) -> list[tuple[int, str, int | None, int | None]]:
        return self.presence.cursors()

    @property
    def remote_cursors_changed(self) -> bool:
        return self.presence.changed

    @remote_cursors_changed.setter
    def remote_cursors_changed(self, value: bool) -> None:
        self.presence.changed = value

    def peers_status(self) -> list[dict[str, Any]]:
        names = {l.peer_id: l.name for l in self.links.values()}
        return [{"name": link.name, "addr": f"via {names.get(link.path.via, '?')}" if link.path.via else
                 f"[{link.addr[0]}]:{link.addr[1]}" if ":" in link.addr[0] else f"{link.addr[0]}:{link.addr[1]}",
                 "path": link.path.kind,
                 "rtt_ms": link.rtt_ms(), "up": link.up}
                for link in self.links.values()]

    # ---- network inputs ----------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        self._now = now
        if self.membership.take_key_reply(data, addr, now):
            return
        for datagram, sender_addr, via_relay in self.wire.arrivals(data, addr, now):
            self._receive(datagram, sender_addr, now, via_relay)
        self.membership.check_relay(now)

    def _receive(self, data: bytes, addr: Addr, now: float, via_relay: bool) -> None:
        try:
            try:
                header, _ = decode_datagram_untrusted(data)  # cheap checks first: no crypto yet
            except DecodeError:
                raise Refused("garbled") from None
            if header.session != self.token.session:
                raise Refused("other session")
            if header.sender == self.peer_id:
                raise Refused("from ourselves")
            if header.kind == KIND_RENDEZVOUS and (via_relay or header.sender != Introducer.ID
                                                   or not self.membership.is_introducer(addr)):
                raise Refused("not from our introducer")
            if header.kind == KIND_RENDEZVOUS:
                header, body = self.wire.open_rendezvous(data, now)
                self.membership.on_rendezvous(decode_message_untrusted(body), addr, now)
            elif header.kind == KIND_HANDSHAKE:
                if self.state != "joined":
                    raise Refused("not joined")
                for peer_id in self.wire.receive_handshake(data, addr, now, via_relay):
                    link = self.links.get(peer_id)
                    if link is not None:
                        link.hello_reply_due = True  # new keys: say HELLO at once, the link comes up
            else:
                header, body, keys = self.wire.open_peer(data, now)
                self._on_peer_datagram(header.sender, *decode_peer_body_untrusted(body), addr, now, via_relay, keys)
        except DecodeError as exc:
            self.drops.add_error(exc)

    def on_local_rendezvous(self, msg: Message) -> None:
        """The host's in-process introducer talks to us here."""
        self.membership.on_rendezvous(msg, self.membership.introducer_addr, self._now)

    def _on_peer_datagram(self, sender: int, src_epoch: int, dst_epoch: int, frames: list[Frame],
                          addr: Addr, now: float, via_relay: bool = False, keys: Keys | None = None) -> None:
        if self.state != "joined":
            self.drops.add("not joined")
            return
        link = self.links.get(sender)
        if link is None:
            hello = next((f for f in frames if isinstance(f, Hello)), None)
            if hello is None or src_epoch == 0:
                if not any(isinstance(f, Bye) for f in frames):
                    self.wire.send_frames([Bye("no such link")], addr, sender)
                self.drops.add("no such link")
                return
            link = self.lifecycle.ensure(Member(sender, hello.name[:64], addr), addr, now, introduced=False)
            if link is None:
                return
        if src_epoch < link.peer_epoch or (src_epoch == 0 and not all(isinstance(f, Bye) for f in frames)):
            self.drops.add("stale epoch")  # from an older incarnation of the peer's side, delayed or duplicated
            return
        if src_epoch > link.peer_epoch:
            restarted = link.peer_epoch != 0
            link.peer_epoch = src_epoch
            if restarted:  # the peer rebuilt its side: its stream starts again at 0, and so must ours
                link.restart_channel()
                if link.up:
                    self.sync.start(link)
        current = dst_epoch == link.epoch  # DATA/ACK for an older incarnation of ours are meaningless
        via = via_of(addr)
        if not link.heard(addr, via_relay, via, now):  # paths.py: a relay on a new link waits RELAY_HOLD
            self.drops.add("relay held")
            return
        if keys is not None:  # what the handshake proved: who this is, and whether it may write
            link.client_id, link.writer, link.author = keys.client_id, keys.writer, keys.author
        if not link.up:
            self.lifecycle.up(link, now)
        for frame in frames:
            if isinstance(frame, (Data, Ack)) and not current:
                continue
            if isinstance(frame, Forward):
                if not via:  # a forwarded datagram's own FORWARD frames are ignored: no chains
                    self._forwarding.on_frame(link, frame, now)
            elif isinstance(frame, Bye):
                if dst_epoch not in (0, link.epoch):
                    continue
                self.lifecycle.drop(link, frame.reason or "closed the link", now,
                                    reprobe=frame.reason == "no such link")
                return
            else:
                try:
                    link.on_frame(frame, now)
                except ChannelError as exc:
                    self.lifecycle.drop(link, f"protocol error: {exc}", now)
                    return
        malformed = self.sync.deliver(link, now)
        if malformed is not None:
            self.lifecycle.drop(link, malformed, now)

    # ---- timers --------------------------------------------------------------

    def get_timer(self) -> float | None:
        if self.state in ("left", "failed"):
            return None
        times = [link.next_wakeup() for link in self.links.values()]
        times += self.membership.timers()
        times.append(self.presence.get_timer())
        relay = self.wire.get_timer()
        if relay is not None:
            times.append(relay)
        return min(times)

    def handle_timer(self, now: float) -> None:
        self._now = now
        if self.state in ("left", "failed"):
            return
        if self.membership.gave_up(now):
            return
        self.wire.handle_timer(now)
        self.membership.handle_timer(now)
        self.presence.handle_timer(now)
        for link in list(self.links.values()):
            if now >= link.deadline():
                self.lifecycle.drop(link, "stopped answering" if link.up else
                                    f"could not be reached at {link.addr[0]}:{link.addr[1]}", now, reprobe=True)
            elif link.up:
                if link.tick(now):  # link.py: did our NAT rebind?
                    self.membership.join_soon(now)  # the introducer sees where we are now
                self.sync.resync(link, now)
            elif link.take_held_relay(now):
                self.lifecycle.up(link, now)
            elif now >= link.next_hello:
                self._forwarding.choose(link, now)  # the last resort, for a link probing long
                link.probe(now)

    # ---- network outputs -----------------------------------------------------

    def _send_frames(self, frames: list[Frame], addr: Addr, link: Link) -> None:
        self.wire.send_frames(frames, addr, link.peer_id, (link.epoch, link.peer_epoch), link.via_relay, self._now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        self._now = now
        if self.state == "joined":
            self.sync.flush_awareness()
        for link in self.links.values():
            frames = link.frames_to_send(self.name, self.document.client_id, now)
            if frames:
                self._send_frames(frames, link.addr, link)
                if not link.up:
                    for addr in (*link.candidates, *link.forwarders):
                        self._send_frames(frames, addr, link)
            if link.upgrade_probe_due:  # up on a relay: does a direct path answer yet? (paths.py)
                link.upgrade_probe_due = False
                for addr in link.direct:
                    self.wire.send_frames([Hello(self.name, self.document.client_id, True)], addr, link.peer_id,
                                          (link.epoch, link.peer_epoch))
        return self.wire.take()
