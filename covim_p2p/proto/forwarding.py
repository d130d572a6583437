"""Forwarding through a mesh peer: the last resort when neither a hole nor TURN joins two peers.

A peer behind a symmetric NAT and one behind port-dependent filtering can
never punch (RFC 4787), and without ``g:covim_turn`` they had no link: their
edits crossed only in the host's 5 s resync.  But each has a direct link to
the host (and often to others), so a mesh peer with up links to both carries
their datagrams: FORWARD_TO (to the forwarder: "give this to C") and
FORWARDED (from the forwarder: "this came from A"), framing.py.  The carried
datagram is sealed end to end for its receiver by the pair's own keys, so
the forwarder carries bytes it cannot open.

Rules:

* A link still probing ``FORWARD_AFTER`` after it was made also sends its
  probes through up to ``MAX_FORWARDERS`` up, introduced links (the host's
  first).  Such a path is the address ``pseudo(C, B)`` ("to C, through B"):
  the node and the wire treat it as any address, and the wire hands
  datagrams for it to the node, which wraps them in FORWARD_TO for B.
* A forwarder passes FORWARD_TO on only between two up, introduced links,
  at most ``RATE`` datagrams per second (burst ``BURST``); else it drops and
  counts.  What arrives FORWARDED is handled as a datagram from its sender
  at ``pseudo(sender, forwarder)``; a forwarded datagram's own FORWARD
  frames are ignored (no chains).
* paths.py ranks a forwarded path like a relayed one: direct probing goes on
  gently and the link upgrades when a hole opens; ``path`` is "forwarded".

``Forwarding`` is the node's side of these rules, over the node's links.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .drops import Drops
from .framing import Addr, Forward, Frame
from .link import Link

FORWARD_AFTER = 3.0
MAX_FORWARDERS = 2
RATE = 400.0
BURST = 200.0
PREFIX = "fwd:"


def pseudo(dest: int, via: int) -> Addr:
    return (f"{PREFIX}{dest}", via)


def parse(addr: Addr) -> tuple[int, int] | None:
    """(destination, forwarder) of a forwarded path's address, or None for a real address."""
    if isinstance(addr[0], str) and addr[0].startswith(PREFIX):
        return int(addr[0][len(PREFIX):]), addr[1]
    return None


def via_of(addr: Addr) -> int:
    parsed = parse(addr)
    return parsed[1] if parsed else 0


class Budget:
    """A token bucket for what we forward for others."""

    def __init__(self) -> None:
        self.tokens = BURST
        self.at = 0.0

    def take(self, now: float) -> bool:
        self.tokens = min(BURST, self.tokens + max(0.0, now - self.at) * RATE)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Forwarding:
    def __init__(self, links: Mapping[int, Link], drops: Drops, send: Callable[[list[Frame], Addr, Link], None],
                 receive: Callable[[bytes, Addr, float, bool], None]) -> None:
        self.links = links  # the node's: read only
        self.drops = drops
        self.send = send  # the node's: frames to an address on a link (its epochs, its relay)
        self.receive = receive  # the node's: a datagram as if it had come straight from that address
        self.budget = Budget()

    def on_frame(self, link: Link, frame: Forward, now: float) -> None:
        """Pass FORWARD_TO on between two up, introduced links; open FORWARDED."""
        if not frame.outbound:
            self.receive(frame.datagram, pseudo(frame.peer, link.peer_id), now, False)
            return
        target = self.links.get(frame.peer)
        if (target is None or not target.up or not target.introduced or not link.introduced
                or parse(target.addr) is not None or not self.budget.take(now)):
            self.drops.add("not forwarded")
            return
        self.send([Forward(link.peer_id, frame.datagram, False)], target.addr, target)

    def out(self, datagram: bytes, addr: Addr) -> None:
        """The wire has a datagram for "C through B": FORWARD_TO B, if B's link is up."""
        dest, via = parse(addr) or (0, 0)
        forwarder = self.links.get(via)
        if forwarder is None or not forwarder.up or parse(forwarder.addr) is not None:
            self.drops.add("no forwarder")
            return
        self.send([Forward(dest, datagram, True)], forwarder.addr, forwarder)

    def choose(self, link: Link, now: float) -> None:
        """Before a probe: a link still probing ``FORWARD_AFTER`` after it was made probes through
        up to ``MAX_FORWARDERS`` up, introduced links too, the host's first (the last resort)."""
        if now >= link.created + FORWARD_AFTER and link.introduced:
            helpers = sorted((l for l in self.links.values() if l.up and l.introduced and l is not link
                              and parse(l.addr) is None), key=lambda l: not l.is_host)
            link.forwarders = tuple(pseudo(link.peer_id, l.peer_id) for l in helpers[:MAX_FORWARDERS])
