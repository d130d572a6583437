"""How a peer node's datagrams travel: sealed, packed, and through the relay if need be.

Why apart from node.py: the node decides what to say to whom; this decides how
it crosses the network.  Outgoing, frames are packed into datagrams of at
most MAX_DATAGRAM behind the link's epochs, sealed with the keys of that
pair of peers (handshake.py: Noise XXpsk3, one key per direction; until
they exist the handshake goes instead, and doubles as the probe),
rendezvous messages with the introduction credential (seal.py, keys.py),
and wrapped in a TURN SEND indication when the link came up through our
relay (turn.py).  Incoming, the TURN server's messages are told
apart from covim datagrams and what the relay carried is unwrapped, so the
node sees every peer datagram the same way, with where it really came from.
The relay's own upkeep (allocation, permissions, refresh) lives here too; the
node only decides when to offer the relayed address.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .authorship import AuthorKey
from .drops import Drops
from .framing import HEADER_LEN, KIND_RENDEZVOUS, MAX_DATAGRAM, Addr, Frame, Header, encode_frames, \
    encode_peer_body
from .handshake import TRANSPORT_OVERHEAD, Keys, PairSecurity
from .rendezvous_messages import Message, encode_message
from .seal import INSTANCE_LEN, session_seal
from .stun import looks_like_stun
from .token import SessionToken
from .forwarding import parse as parse_forwarded
from .turn import TurnClient

BODY_BUDGET = MAX_DATAGRAM - HEADER_LEN - TRANSPORT_OVERHEAD - 2 * 10  # minus the seal and two epochs (<= 10 B each)


class PeerWire:
    def __init__(self, token: SessionToken, peer_id: int, turn: TurnClient | None,
                 random_bytes: Callable[[int], bytes] = os.urandom, *, author: AuthorKey,
                 drops: Drops | None = None) -> None:
        self.session = token.session
        self.peer_id = peer_id
        self.turn = turn
        self.keys = token.keys()
        self.drops = drops if drops is not None else Drops()
        # Rendezvous only: the introducer, embedded or public (introduction.py), holds the
        # introduction credential (keys.py) and nothing more; JOIN proves membership with it.
        self.join_secret = self.keys.introduction
        self.seal = self.intro_seal = session_seal(token.session, self.join_secret, random_bytes(INSTANCE_LEN))
        self.security = PairSecurity(self.keys, peer_id, random_bytes(32), author, random_bytes, self.drops)
        self._out: list[tuple[bytes, Addr]] = []
        self._relay_reported = False
        self.forward: Callable[[bytes, Addr], None] | None = None  # the node wraps forwarded paths' datagrams

    # ---- in ------------------------------------------------------------------

    def arrivals(self, data: bytes, addr: Addr, now: float) -> list[tuple[bytes, Addr, bool]]:
        """The covim datagrams in what arrived: (datagram, sent from, came through our relay)."""
        if self.turn is not None and addr == self.turn.server and looks_like_stun(data):
            return [(inner, peer, True) for peer, inner in self.turn.receive(data, now)]
        return [(data, addr, False)]

    def open_rendezvous(self, data: bytes, now: float) -> tuple[Header, bytes]:
        """Opens only what the introducer sealed for us (seal.py: receiver binding)."""
        return self.seal.open_untrusted(data, self.peer_id, now)

    def open_peer(self, data: bytes, now: float) -> tuple[Header, bytes, Keys]:
        """Opens only what the sender sealed with the keys of our pair; says what they proved."""
        return self.security.open(data, now)

    def receive_handshake(self, data: bytes, addr: Addr, now: float, via_relay: bool) -> list[int]:
        """A handshake datagram; returns the peers whose new keys are ready (DecodeError if refused)."""
        try:
            self.security.receive_handshake(data, addr, now)
        finally:
            self._take_security(via_relay)
        ready, self.security.ready = self.security.ready, []
        return ready

    def _take_security(self, via_relay: bool) -> None:
        for datagram, to in self.security.take():
            self._emit(datagram, to, via_relay)

    # ---- out -----------------------------------------------------------------

    def send_rendezvous(self, msg: Message, addr: Addr) -> None:
        sealed = self.intro_seal.seal(KIND_RENDEZVOUS, self.session, self.peer_id, encode_message(msg), 0)
        self._out.append((sealed, addr))  # the introducer is 0

    def send_raw(self, data: bytes, addr: Addr) -> None:
        self._out.append((data, addr))

    def send_frames(self, frames: list[Frame], addr: Addr, receiver: int, epochs: tuple[int, int] = (0, 0),
                    via_relay: bool = False, now: float = 0.0) -> None:
        """Frames for peer ``receiver`` (only it can open them) at ``addr``.  Without keys for
        this link (epoch ``epochs[0]``) the handshake message that makes them goes instead, and
        the frames are dropped (the node repeats what matters); epoch 0 never asks for keys."""
        head = encode_peer_body(*epochs, [])
        tag = epochs[0] or None
        body = bytearray()
        chunks: list[bytes] = []
        for frame in frames:
            encoded = encode_frames([frame])
            if body and len(body) + len(encoded) > BODY_BUDGET:
                chunks.append(head + body)
                body = bytearray()
            body += encoded
        if body:
            chunks.append(head + body)
        for chunk in chunks:
            datagram = self.security.seal(receiver, chunk, tag, addr, now)
            if datagram is None:
                break
            self._emit(datagram, addr, via_relay)
        self._take_security(via_relay)

    def _sealed(self, kind: int, body: bytes, receiver: int) -> bytes:
        return self.seal.seal(kind, self.session, self.peer_id, body, receiver)

    def _emit(self, datagram: bytes, addr: Addr, via_relay: bool) -> None:
        if parse_forwarded(addr) is not None:  # "to C, through mesh peer B" (forwarding.py)
            if self.forward is not None:
                self.forward(datagram, addr)
            return
        turn = self.turn
        if via_relay and turn is not None and turn.state == "ready":
            self._out.append((turn.wrap(datagram, addr), turn.server))
        else:
            self._out.append((datagram, addr))

    # ---- the relay -------------------------------------------------------------

    def relayed(self) -> Addr | None:
        """Our relayed address, once the allocation stands."""
        turn = self.turn
        return turn.relayed if turn is not None and turn.state == "ready" else None

    def permit(self, addrs: tuple[Addr, ...], now: float) -> None:
        """Let these addresses' hosts send to us through the relay."""
        if self.turn is not None:
            for ip in {a[0] for a in addrs if parse_forwarded(a) is None}:
                self.turn.permit(ip, now)

    def relay_problem(self) -> str | None:
        """Why the relay failed, the first time it is asked after failing; else None."""
        turn = self.turn
        if turn is None or turn.state != "failed" or turn.problem == "closed" or self._relay_reported:
            return None
        self._relay_reported = True
        return turn.problem

    def get_timer(self) -> float | None:
        return self.turn.get_timer() if self.turn is not None else None

    def handle_timer(self, now: float) -> None:
        if self.turn is not None:
            self.turn.handle_timer(now)

    def close(self, now: float) -> None:
        if self.turn is not None:
            self.turn.close(now)

    def take(self) -> list[tuple[bytes, Addr]]:
        if self.turn is not None:
            self._out += [(d, self.turn.server) for d in self.turn.datagrams_to_send()]
        out, self._out = self._out, []
        return out
