"""The host's two machines on one socket: the introducer and the host's own peer.

Sharing the socket makes the host's peer reachable at exactly the address in
the token, which every joiner already knows.  The demultiplexing lives in
stack.py (it also routes STUN: the host's own TURN client gets its server's
answers there); this name stays for the tests and tools that build a host.
"""

from __future__ import annotations

from .node import PeerNode
from .rendezvous import Introducer
from .stack import Stack


class HostStack(Stack):
    def __init__(self, introducer: Introducer, node: PeerNode) -> None:
        super().__init__(node, introducer)
        self.node = node
