"""Which links exist: made for the members the introducer names, up, dropped, probed again.

Why apart from node.py: the node reads datagrams and timers and hands each
link what concerns it; this decides when a link is made, comes up or is
taken away, and what the user hears of it.  Besides the node's ``leave``
(which clears them all) nothing else adds or removes one of the node's links.

Rules:

* Links exist only while ``joined`` (membership.py): every member the
  introducer names gets one (link.py), and a newcomer under a name we link
  to replaced whoever held it (a crashed peer rejoined; the introducer
  checked the old one was gone).
* Bounded state (security v4): a HELLO from a peer the introducer has not
  named yet makes a link only while fewer than ``MAX_UNINTRODUCED`` such
  links exist and fewer than ``MAX_LINKS`` in all; a refusal is counted in
  ``drops`` ("too many links").
* A link lost to silence (or to ``BYE "no such link"``) is probed again for
  ``REPROBE_WINDOW``: once introduced, peers find each other again after an
  outage or a laptop's sleep even when the host is gone.  A peer that said
  goodbye, or broke the protocol, is not, and only introduced links are
  chased.  A peer no longer probed has its keys forgotten: a long session
  sees many peers come and go.
* The user hears ``PeerUp`` when a link comes up and ``PeerDown`` once per
  loss: the introducer keeps naming a vanished peer for a while, so the
  probe failing again is no news.
"""

from __future__ import annotations

from collections import deque

from .docsync import DocumentSync
from .drops import Drops
from .events import Event, PeerDown, PeerUp
from .framing import Addr
from .link import PING_INTERVAL, Link
from .membership import Membership
from .rendezvous_messages import MAX_MEMBERS, Member
from .wire import PeerWire

REPROBE_WINDOW = 300.0
MAX_LINKS = MAX_MEMBERS  # links in all (the introducer admits no more members)
MAX_UNINTRODUCED = 8  # links opened by a HELLO before the introducer named the peer


class LinkLifecycle:
    def __init__(self, links: dict[int, Link], *, peer_id: int, wire: PeerWire, membership: Membership,
                 sync: DocumentSync, drops: Drops, events: deque[Event]) -> None:
        self.links = links  # the node's
        self.peer_id = peer_id
        self.wire = wire
        self.membership = membership  # whether we are joined, and our own candidates
        self.sync = sync  # told of every link that comes up or goes down
        self.drops = drops
        self.events = events  # the node's: ours go out in order with its own
        self._last_epoch = 0
        self._reported_down: set[int] = set()  # peers whose loss the user was told about
        self._lost: dict[int, float] = {}  # peer id -> until when we keep probing it again

    def named(self, member: Member, introducer_addr: Addr, now: float, newcomer: bool) -> None:
        """The introducer names a member (membership.py): link to it.  A name is one member's: a
        newcomer under a name we link to replaced a stale member (a crashed peer rejoined; the
        introducer checked the old one was gone)."""
        if newcomer:
            for link in [l for l in self.links.values() if l.name == member.name and l.peer_id != member.peer_id]:
                self.drop(link, "rejoined", now)
        self.ensure(member, introducer_addr, now)

    def ensure(self, member: Member, introducer_addr: Addr, now: float, introduced: bool = True) -> Link | None:
        """The member's link, made if there is none and the limits allow; None if refused (or ourselves)."""
        if member.peer_id == self.peer_id:
            return None
        self.wire.security.expect(member.peer_id, member.static)
        link = self.links.get(member.peer_id)
        if link is None:
            if len(self.links) >= MAX_LINKS or (not introduced and sum(
                    not l.introduced for l in self.links.values()) >= MAX_UNINTRODUCED):
                self.drops.add("too many links")
                return None
            self._last_epoch += 1
            link = Link(member.peer_id, member.name, member.addr or introducer_addr, created=now,
                        next_hello=now, last_rx=now, epoch=self._last_epoch, introduced=introduced)
            self.links[member.peer_id] = link
        link.introduced = link.introduced or introduced
        link.learn(member, self.membership.candidates, now)
        self.wire.permit((link.addr, *member.candidates), now)  # it may have to reach us through our relay
        if member.addr is None:
            link.is_host = True
        return link

    def up(self, link: Link, now: float) -> None:
        link.up = True
        link.hello_reply_due = True
        link.next_ping = now + PING_INTERVAL
        self.sync.link_up(link, now)
        self._reported_down.discard(link.peer_id)
        self._lost.pop(link.peer_id, None)
        self.events.append(PeerUp(link.peer_id, link.name))

    def drop(self, link: Link, reason: str, now: float, reprobe: bool = False) -> None:
        if self.links.pop(link.peer_id, None) is None:
            return
        self.sync.link_down(link)
        # The introducer keeps naming a vanished peer for a while, so we probe it
        # again; that probe failing is no news to the user.
        if link.up or link.peer_id not in self._reported_down:
            self._reported_down.add(link.peer_id)
            self.events.append(PeerDown(link.peer_id, link.name, reason))
        reprobe = reprobe and link.introduced  # a HELLO the introducer never confirmed is not chased
        until = self._lost.setdefault(link.peer_id, now + REPROBE_WINDOW) if reprobe else 0.0
        if now < until and self.membership.state == "joined":
            again = self.ensure(Member(link.peer_id, link.name, link.addr, link.candidates), link.addr, now)
            if again is not None:
                again.is_host = link.is_host
        else:
            self._lost.pop(link.peer_id, None)
            self.wire.security.forget(link.peer_id)  # bounded: a long session sees many peers come and go
