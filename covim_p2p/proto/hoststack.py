"""The host's two machines on one socket: the introducer and the host's own peer.

Sharing the socket makes the host's peer reachable at exactly the address in
the token, which every joiner already knows.  Rendezvous datagrams from peers
go to the introducer; everything else goes to the peer node.
"""

from __future__ import annotations

from .codec import DecodeError
from .framing import KIND_RENDEZVOUS, Addr, decode_datagram_untrusted
from .node import PeerNode
from .rendezvous import Introducer


class HostStack:
    def __init__(self, introducer: Introducer, node: PeerNode) -> None:
        self.introducer = introducer
        self.node = node

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        try:
            header, _ = decode_datagram_untrusted(data)
        except DecodeError:
            self.node.dropped += 1
            return
        if header.kind == KIND_RENDEZVOUS and header.sender != Introducer.ID:
            self.introducer.receive_datagram(data, addr, now)
        else:
            self.node.receive_datagram(data, addr, now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        return self.introducer.datagrams_to_send(now) + self.node.datagrams_to_send(now)

    def get_timer(self) -> float | None:
        timers = [t for t in (self.introducer.get_timer(), self.node.get_timer()) if t is not None]
        return min(timers) if timers else None

    def handle_timer(self, now: float) -> None:
        self.introducer.handle_timer(now)
        self.node.handle_timer(now)
