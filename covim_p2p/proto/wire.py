"""How a peer node's datagrams travel: sealed, packed, and through the relay if need be.

Why apart from node.py: the node decides what to say to whom; this decides how
it crosses the network.  Outgoing, frames are packed into datagrams of at
most MAX_DATAGRAM behind the link's epochs, sealed with the session's key
(seal.py), and wrapped in a TURN SEND indication when the link came up
through our relay (turn.py).  Incoming, the TURN server's messages are told
apart from covim datagrams and what the relay carried is unwrapped, so the
node sees every peer datagram the same way, with where it really came from.
The relay's own upkeep (allocation, permissions, refresh) lives here too; the
node only decides when to offer the relayed address.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .framing import HEADER_LEN, KIND_PEER, KIND_RENDEZVOUS, MAX_DATAGRAM, Addr, Frame, Header, encode_frames, \
    encode_peer_body
from .introduction import introduction_secret, is_public
from .rendezvous import Message, encode_message
from .seal import INSTANCE_LEN, OVERHEAD, session_seal
from .stun import looks_like_stun
from .token import SessionToken
from .turn import TurnClient

BODY_BUDGET = MAX_DATAGRAM - HEADER_LEN - OVERHEAD - 2 * 10  # minus the seal and two epochs (<= 10 B each)


class PeerWire:
    def __init__(self, token: SessionToken, peer_id: int, turn: TurnClient | None,
                 random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self.session = token.session
        self.peer_id = peer_id
        self.turn = turn
        self.seal = session_seal(token.session, token.secret, random_bytes(INSTANCE_LEN))
        # A public introducer (introduction.py) holds only a credential derived from the secret:
        # rendezvous messages to it are sealed with that, and JOIN proves membership with it.
        self.join_secret = token.secret
        self.intro_seal = self.seal
        if is_public(token.session):
            self.join_secret = introduction_secret(token.secret)
            self.intro_seal = session_seal(token.session, self.join_secret, random_bytes(INSTANCE_LEN))
        self._out: list[tuple[bytes, Addr]] = []
        self._relay_reported = False

    # ---- in ------------------------------------------------------------------

    def arrivals(self, data: bytes, addr: Addr, now: float) -> list[tuple[bytes, Addr, bool]]:
        """The covim datagrams in what arrived: (datagram, sent from, came through our relay)."""
        if self.turn is not None and addr == self.turn.server and looks_like_stun(data):
            return [(inner, peer, True) for peer, inner in self.turn.receive(data, now)]
        return [(data, addr, False)]

    def open_untrusted(self, data: bytes, now: float) -> tuple[Header, bytes]:
        """Opens only what was sealed for us (seal.py: receiver binding)."""
        if self.intro_seal is not self.seal and len(data) > 3 and data[3] == KIND_RENDEZVOUS:
            return self.intro_seal.open_untrusted(data, self.peer_id, now)
        return self.seal.open_untrusted(data, self.peer_id, now)

    # ---- out -----------------------------------------------------------------

    def send_rendezvous(self, msg: Message, addr: Addr) -> None:
        sealed = self.intro_seal.seal(KIND_RENDEZVOUS, self.session, self.peer_id, encode_message(msg), 0)
        self._out.append((sealed, addr))  # the introducer is 0

    def send_raw(self, data: bytes, addr: Addr) -> None:
        self._out.append((data, addr))

    def send_frames(self, frames: list[Frame], addr: Addr, receiver: int, epochs: tuple[int, int] = (0, 0),
                    via_relay: bool = False) -> None:
        """Frames for peer ``receiver`` (only it can open them) at ``addr``."""
        head = encode_peer_body(*epochs, [])
        body = bytearray()
        for frame in frames:
            encoded = encode_frames([frame])
            if body and len(body) + len(encoded) > BODY_BUDGET:
                self._emit(self._sealed(KIND_PEER, head + body, receiver), addr, via_relay)
                body = bytearray()
            body += encoded
        if body:
            self._emit(self._sealed(KIND_PEER, head + body, receiver), addr, via_relay)

    def _sealed(self, kind: int, body: bytes, receiver: int) -> bytes:
        return self.seal.seal(kind, self.session, self.peer_id, body, receiver)

    def _emit(self, datagram: bytes, addr: Addr, via_relay: bool) -> None:
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
            for ip in {a[0] for a in addrs}:
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
