"""A peer waiting to be admitted (``:CoVim start``), Enhanced CoVim's invite flow.

The waiting peer prints a peer token naming its socket and a random nonce;
the host runs ``:CoVim add <token>``, and its introducer sends INVITE with the
session token.  Rules: an INVITE carrying our nonce is answered with
INVITE_ACK (every time: the host retries until it hears one) and the session
token is kept; anything else is dropped and counted.  The plugin then joins
the session over this same socket, as ``:CoVim connect`` would.
"""

from __future__ import annotations

import hmac
from dataclasses import replace
import os
from collections.abc import Callable

from .codec import DecodeError
from .framing import KIND_RENDEZVOUS, Addr
from .drops import Drops
from .seal import INSTANCE_LEN, invite_seal
from .rendezvous import Introducer
from .rendezvous_messages import Invite, InviteAck, decode_message_untrusted, encode_message
from .token import BadToken, SessionToken


class InviteWaiter:
    def __init__(self, nonce: bytes, peer_id: int, random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self.nonce = nonce
        # The invitation carries the session token: never in clear.  Each invitation (and our
        # answer) is sealed under its sender's own random instance (seal.py): no key is reused.
        self._seal = invite_seal(nonce, random_bytes(INSTANCE_LEN))
        self.peer_id = peer_id
        self.invited: SessionToken | None = None
        self.inviter: Addr | None = None
        self.drops = Drops()
        self._out: list[tuple[bytes, Addr]] = []

    @property
    def dropped(self) -> int:
        return self.drops.total

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> bool:
        """True if it was our invitation (answered with INVITE_ACK)."""
        try:
            header, body = self._seal.open_untrusted(data, Introducer.ID, now)
            if header.kind != KIND_RENDEZVOUS or header.sender != Introducer.ID:
                raise DecodeError("not an invitation")
            msg = decode_message_untrusted(body)
            if not isinstance(msg, Invite) or not hmac.compare_digest(msg.nonce, self.nonce):
                raise DecodeError("not our invitation")
            token = SessionToken.decode(msg.session_token)
        except DecodeError as exc:
            self.drops.add_error(exc)
            return False
        except BadToken:
            self.drops.add("bad invitation")
            return False
        ack = encode_message(InviteAck(self.nonce))
        self._out.append((self._seal.seal(KIND_RENDEZVOUS, header.session, self.peer_id, ack, Introducer.ID), addr))
        if self.invited is None:
            # The host's introducer answered from ``addr``: that address certainly works.
            addrs = (addr, *[a for a in token.addrs if a != addr])[:8]
            self.invited = replace(token, addrs=addrs)  # a read-only token stays one
            self.inviter = addr
        return True

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        pass
