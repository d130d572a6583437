"""Server-reflexive candidates: STUN Binding requests sent from the session's own socket.

Why on our own socket: a NAT's mapping belongs to the socket that sent, so
only a Binding request from the very socket peers will reach tells the
public address and port they must use (pystun3 opens its own socket: it can
classify the NAT, not find our mapping).  RFC 5389 section 7.2.1.

Rules of the machine:

* ``start(servers, now)`` sends one Binding request to each server and
  retransmits it at ``RETRANSMITS`` (RFC 5389's doubling, cut short);
  every server has until ``now + DEADLINE`` to answer.
* A success response carrying our transaction id gives a reflexive address
  (XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS); each distinct one is kept in
  the order they arrived.  Anything else is dropped and counted.
* ``done`` once every server answered or the deadline passed: an
  unreachable server delays the token by at most ``DEADLINE``.

Pure: ``now`` and the transaction ids (``random_bytes``) come from outside.
"""

from __future__ import annotations

import ipaddress
from typing import Callable

from . import stun
from .codec import DecodeError
from .framing import Addr

DEADLINE = 1.0
RETRANSMITS = (0.1, 0.3, 0.7)  # seconds after the first send


class StunGatherer:
    def __init__(self, random_bytes: Callable[[int], bytes]) -> None:
        self._random = random_bytes
        self._pending: dict[bytes, Addr] = {}  # transaction id -> server
        self._sends: list[float] = []
        self._started: float | None = None
        self._deadline_passed = False
        self.reflexive: list[Addr] = []
        self.dropped = 0
        self._out: list[tuple[bytes, Addr]] = []

    def start(self, servers: list[Addr], now: float) -> None:
        self._started = now
        self._pending = {self._random(12): server for server in dict.fromkeys(servers)}
        self._sends = [now + t for t in RETRANSMITS]
        self._send_all()

    @property
    def started(self) -> bool:
        return self._started is not None

    @property
    def done(self) -> bool:
        return self._started is not None and (not self._pending or self._deadline_passed)

    def _send_all(self) -> None:
        for txid, server in self._pending.items():
            self._out.append((stun.encode(stun.Message(stun.BINDING, stun.REQUEST, txid)), server))

    def wants(self, data: bytes) -> bool:
        """Is this the answer to one of our requests (by transaction id)?"""
        return len(data) >= 20 and data[8:20] in self._pending

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        try:
            msg = stun.decode_untrusted(data)
            server = self._pending.get(msg.txid)
            if server is None or addr != server or (msg.method, msg.cls) != (stun.BINDING, stun.SUCCESS):
                raise DecodeError("not an answer to our binding request")
            value = msg.get(stun.A_XOR_MAPPED)
            mapped = stun.read_xor_addr(value, msg.txid) if value is not None else _mapped(msg.get(stun.A_MAPPED))
        except DecodeError:
            self.dropped += 1
            return
        del self._pending[msg.txid]
        if mapped not in self.reflexive:
            self.reflexive.append(mapped)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        if self._started is None or self.done:
            return None
        return self._sends[0] if self._sends else self._started + DEADLINE

    def handle_timer(self, now: float) -> None:
        if self._started is None or self.done:
            return
        if now >= self._started + DEADLINE:
            self._deadline_passed = True
            return
        if self._sends and now >= self._sends[0]:
            self._sends = [t for t in self._sends if t > now]
            self._send_all()


def _mapped(value: bytes | None) -> Addr:
    """MAPPED-ADDRESS (RFC 3489 servers): family, port, address, not XORed."""
    if value is None or len(value) < 8 or value[1] not in (1, 2):
        raise DecodeError("no mapped address in the binding response")
    ip = ipaddress.IPv4Address(value[4:8]) if value[1] == 1 else ipaddress.IPv6Address(value[4:20])
    return (str(ip), int.from_bytes(value[2:4], "big"))
