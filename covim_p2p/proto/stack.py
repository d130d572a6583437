"""The machines that share one session socket, and which datagram goes to which.

One socket, because every address we hand out must be the one traffic
really uses: the STUN mapping belongs to this socket, the host's introducer
answers from it, and peers punch to it.  Demultiplexing, in order:

* STUN carrying one of the gatherer's transaction ids -> the gatherer
  (our server-reflexive address);
* other STUN (the TURN server's answers and relayed data) -> the inner
  machine, whose wire unwraps it; the host's own TURN client lives there too;
* a covim rendezvous datagram not sent by an introducer -> our introducer,
  if we run one (we host);
* an introducer's datagram our invitation ``waiter`` opens (a joiner that
  handed out a reply token: the host's ``:CoVim add`` answers it) -> the
  waiter, which acknowledges it; the INVITE has opened the host's NAT
  towards us, and our next JOIN gets through;
* everything else -> the inner machine: the peer node, or the invitation
  waiter of ``:CoVim start`` until the session replaces it.
"""

from __future__ import annotations

from typing import Any

from .codec import DecodeError
from .framing import KIND_RENDEZVOUS, Addr, decode_datagram_untrusted
from .gather import StunGatherer
from .rendezvous import Introducer
from .stun import looks_like_stun


class Stack:
    def __init__(self, inner: Any, introducer: Introducer | None = None,
                 gatherer: StunGatherer | None = None) -> None:
        self.inner = inner
        self.introducer = introducer
        self.gatherer = gatherer
        self.waiter: Any = None  # InviteWaiter for a joiner's reply token

    def _parts(self) -> list[Any]:
        return [m for m in (self.gatherer, self.introducer, self.waiter, self.inner) if m is not None]

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        if looks_like_stun(data):
            if self.gatherer is not None and self.gatherer.wants(data):
                self.gatherer.receive_datagram(data, addr, now)
            else:
                self.inner.receive_datagram(data, addr, now)
            return
        if self.introducer is not None or self.waiter is not None:
            try:
                header, _ = decode_datagram_untrusted(data)
            except DecodeError:
                header = None  # garbage: the inner machine drops and counts it
            if header is not None and header.kind == KIND_RENDEZVOUS:
                if header.sender != Introducer.ID and self.introducer is not None:
                    self.introducer.receive_datagram(data, addr, now)
                    return
                if header.sender == Introducer.ID and self.waiter is not None and self.waiter.invited is None:
                    if self.waiter.receive_datagram(data, addr, now):
                        return
        self.inner.receive_datagram(data, addr, now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        out: list[tuple[bytes, Addr]] = []
        for part in self._parts():
            out += part.datagrams_to_send(now)
        return out

    def get_timer(self) -> float | None:
        timers = [t for t in (p.get_timer() for p in self._parts()) if t is not None]
        return min(timers) if timers else None

    def handle_timer(self, now: float) -> None:
        for part in self._parts():
            part.handle_timer(now)
