"""Which path a link uses: direct first, relay as a fallback, upgrade when direct opens.

Why a machine of its own: "whichever reply arrives last sets the link's
address" let a relay replace working direct paths at random, and a link up
on a relay never looked for a direct path again (issue 8).  ICE (RFC 8445)
orders candidate pairs host > server-reflexive > relayed; here a path is
*direct* (a host, server-reflexive or peer-reflexive address of the peer,
sent from our own socket) or *relayed* (through our TURN allocation, or to
the peer's relayed address).

Rules of the machine (one per link; ``now`` comes from outside):

* The first path heard becomes current, except a relayed one on a new link:
  that is held until ``hold_until`` (the link's creation + ``RELAY_HOLD``,
  link.py), so every link, also a newcomer's link to a member whose relayed
  candidate was announced long ago, has about a second of direct probing
  before a relay may carry it.  A direct datagram meanwhile wins outright;
  else ``handle_timer`` takes the held relay at ``hold_until`` (node.py
  brings the link up then).  Relayed candidates are also only announced
  ``RELAY_DELAY`` after joining (membership.py).
* A datagram on a direct path while the current one is relayed: upgrade at
  once (it proves the peer's NAT lets us in at that address).  A different
  direct path while on a direct one: take it (peer-reflexive: a rebinding
  NAT gave the peer a new port; answer where packets really come from).
* A datagram on a relayed path while the current one is direct: remembered
  as the fallback, never taken, unless the direct path has been silent for
  ``DIRECT_STALE``; then (in ``heard`` or ``handle_timer``) fall back.  On
  a relayed path we keep sending where we send: relays are asymmetric (we
  send through our TURN, the peer answers to our relayed address through
  none, or the other way round), so any relayed datagram proves the link
  alive.  So a link switches at most once per ``DIRECT_STALE`` and never
  flaps between its copies.
* A path through a forwarding mesh peer (``via``, node.py) ranks as a
  relayed one: the last resort when neither a hole nor TURN exists.
* While current is relayed, ``probe_due`` says every ``UPGRADE_PROBE`` that
  the node should send a HELLO to each of the peer's direct candidates: the
  gentle probing that finds a hole opened later.
"""

from __future__ import annotations

from dataclasses import dataclass

from .framing import Addr

DIRECT_STALE = 3.0
RELAY_HOLD = 1.0
UPGRADE_PROBE = 2.0
INF = float("inf")


@dataclass
class PathChoice:
    addr: Addr | None = None
    via_relay: bool = False  # we send through our own TURN allocation
    relay: bool = False  # the current path is relayed (either side's TURN, or a forwarding peer)
    via: int = 0  # the mesh peer that forwards for us (0: none)
    last_rx: float = -INF  # last datagram on the current path
    fallback: tuple[Addr, bool, int] | None = None  # the last relayed path heard while direct
    fallback_rx: float = -INF
    next_probe: float = INF
    upgrades: int = 0
    switches: int = 0
    downgrades: int = 0
    hold_until: float = -INF  # a new link: no relayed path before this (RELAY_HOLD after it began)
    held: tuple[Addr, bool, int] | None = None  # a relayed path heard during the hold

    @property
    def kind(self) -> str:
        return "forwarded" if self.via else "relay" if self.relay else "direct"

    def heard(self, addr: Addr, via_relay: bool, relay: bool, now: float, via: int = 0) -> bool:
        """A datagram arrived on this path (``via``: forwarded by that mesh peer); True when the
        current path changed."""
        relay = relay or bool(via)
        if self.addr is None and relay and now < self.hold_until:  # direct probing has its second first
            self.held = (addr, via_relay, via)
            return False
        if self.addr is None or (addr, via_relay, via) == (self.addr, self.via_relay, self.via):
            changed = self.addr is None
            self._take(addr, via_relay, relay, now, via)
            return changed
        if not relay:
            if self.relay:
                self.upgrades += 1
            self._take(addr, via_relay, False, now)
            return True
        if self.relay:  # the peer answers on its own choice of relay (ours or its TURN): the link is alive
            self.last_rx = now
            return False
        if now - self.last_rx >= DIRECT_STALE:  # the direct path went quiet: this relay will do
            if not self.relay:
                self.downgrades += 1
            self._take(addr, via_relay, True, now, via)
            return True
        if not self.relay:
            self.fallback, self.fallback_rx = (addr, via_relay, via), now
        return False

    def _take(self, addr: Addr, via_relay: bool, relay: bool, now: float, via: int = 0) -> None:
        if self.addr is not None and (addr, via_relay, via) != (self.addr, self.via_relay, self.via):
            self.switches += 1
        if relay and not self.relay:
            self.next_probe = now + UPGRADE_PROBE
        elif not relay:
            self.next_probe = INF
            self.fallback = None
        self.held = None
        self.addr, self.via_relay, self.relay, self.via, self.last_rx = addr, via_relay, relay, via, now

    def get_timer(self) -> float | None:
        times = [self.next_probe]
        if self.addr is None and self.held is not None:
            times.append(self.hold_until)
        if self.fallback is not None and not self.relay:
            times.append(self.last_rx + DIRECT_STALE)
        t = min(times)
        return None if t == INF else t

    def handle_timer(self, now: float) -> bool:
        """Take a relay held past its hold, or fall back to the relay if direct went silent; True when
        the current path changed."""
        if self.addr is None and self.held is not None and now >= self.hold_until:
            addr, via_relay, via = self.held
            self._take(addr, via_relay, True, now, via)
            return True
        if (self.fallback is not None and not self.relay and now - self.last_rx >= DIRECT_STALE
                and self.fallback_rx > self.last_rx):
            addr, via_relay, via = self.fallback
            self.downgrades += 1
            self._take(addr, via_relay, True, now, via)
            return True
        if self.fallback is not None and not self.relay and now - self.fallback_rx >= DIRECT_STALE:
            self.fallback = None  # the relay went quiet too: nothing to fall back to
        return False

    def probe_due(self, now: float) -> bool:
        """On a relay: time to probe the direct candidates again (then re-armed)."""
        if self.relay and now >= self.next_probe:
            self.next_probe = now + UPGRADE_PROBE
            return True
        return False
