"""A TURN client (RFC 5766) for peers no hole punch can reach: the relay fallback.

Rules of the machine:

* ``allocating``: ALLOCATE goes to the server; the expected 401 brings REALM
  and NONCE, and the request is repeated with the long-term credentials.
  Success gives the relayed address -> ``ready``.  Any other error, or no
  answer after ``TRIES`` sends (RTO 0.5 s doubling, ~15 s), -> ``failed``,
  with a sentence in ``problem``.
* ``ready``: REFRESH at half the lifetime keeps the allocation; ``permit(ip)``
  sends CREATE_PERMISSION (renewed every 4 minutes: they last 5) so that peer
  may send to the relayed address.  ``wrap(data, peer)`` is a SEND indication
  carrying one of our datagrams to ``peer``; DATA indications from the server
  come out of ``receive`` as (peer address, datagram) for the node to handle
  as if the peer had sent them to us directly.
* A 438 (stale nonce) takes the new nonce and repeats the request.  Responses
  must carry a valid MESSAGE-INTEGRITY once we have a key, and must come from
  the server: anything else is dropped and counted.

Time and randomness (transaction ids) come in from the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import stun
from .codec import DecodeError
from .framing import Addr

RTO = 0.5
TRIES = 5
LIFETIME = 600
PERMISSION_LIFETIME = 300.0
PERMISSION_RENEW = 240.0


@dataclass
class _Request:
    method: int
    attrs: list[tuple[int, bytes]]
    peer_ip: str = ""  # CREATE_PERMISSION: for which peer
    tries: int = 0
    next_send: float = 0.0


class TurnClient:
    def __init__(self, server: Addr, username: str, password: str, random_bytes: Callable[[int], bytes],
                 now: float) -> None:
        self.server = server
        self.username = username
        self.password = password
        self._random = random_bytes
        self.state = "allocating"
        self.problem = ""
        self.relayed: Addr | None = None
        self.mapped: Addr | None = None
        self.dropped = 0
        self._realm = ""
        self._nonce = b""
        self._key: bytes | None = None
        self._pending: dict[bytes, _Request] = {}
        self._permissions: dict[str, float] = {}  # peer ip -> when to renew
        self._wanted: set[str] = set()  # permissions asked for before the allocation was ready
        self._refused: set[str] = set()  # the server will not relay for these (403): never ask again
        self._refresh_at = float("inf")
        self._out: list[bytes] = []
        self._request(stun.ALLOCATE, [(stun.A_REQUESTED_TRANSPORT, bytes([stun.UDP, 0, 0, 0])),
                                      (stun.A_LIFETIME, LIFETIME.to_bytes(4, "big"))], now)

    # ---- requests ------------------------------------------------------------

    def _request(self, method: int, attrs: list[tuple[int, bytes]], now: float, peer_ip: str = "") -> None:
        req = _Request(method, attrs, peer_ip, next_send=now)
        self._pending[self._random(12)] = req
        self._transmit(now)

    def _encode(self, txid: bytes, req: _Request) -> bytes:
        msg = stun.Message(req.method, stun.REQUEST, txid, list(req.attrs))
        if req.method == stun.CREATE_PERMISSION:  # the port is ignored (section 9.1); IPv6 XORs the txid
            msg.add(stun.A_XOR_PEER, stun.xor_addr((req.peer_ip, 0), txid))
        if self._key is None:
            return stun.encode(msg)
        msg.add(stun.A_USERNAME, self.username.encode()).add(stun.A_REALM, self._realm.encode())
        msg.add(stun.A_NONCE, self._nonce)
        return stun.encode(msg, self._key)

    def _transmit(self, now: float) -> None:
        for txid, req in list(self._pending.items()):
            if req.next_send > now:
                continue
            if req.tries >= TRIES:
                del self._pending[txid]
                self._give_up(req, "no answer from the TURN server at "
                                   f"{self.server[0]}:{self.server[1]}")
                continue
            self._out.append(self._encode(txid, req))
            req.next_send = now + RTO * (2 ** req.tries)
            req.tries += 1

    def _give_up(self, req: _Request, why: str) -> None:
        if req.method == stun.CREATE_PERMISSION:
            self._permissions.pop(req.peer_ip, None)  # asked again on the next permit()
            return
        if self.state != "ready" or req.method == stun.REFRESH:
            self.state = "failed"
            self.problem = f"relay unavailable: {why}"

    # ---- inputs --------------------------------------------------------------

    def permit(self, ip: str, now: float) -> None:
        """Let ``ip`` send to our relayed address (idempotent; renewed by the timer)."""
        if self.state == "failed" or ip in self._permissions or ip in self._refused:
            return
        if self.state != "ready":
            self._wanted.add(ip)
            return
        self._permissions[ip] = now + PERMISSION_RENEW
        self._request(stun.CREATE_PERMISSION, [], now, peer_ip=ip)

    def close(self, now: float) -> None:
        """Give the allocation back (REFRESH with lifetime 0), once, without waiting for an answer."""
        if self.state == "ready":
            txid = self._random(12)
            self._out.append(self._encode(txid, _Request(stun.REFRESH, [(stun.A_LIFETIME, bytes(4))])))
        self.state = "failed"
        self.problem = "closed"
        self._pending.clear()

    def wrap(self, data: bytes, peer: Addr) -> bytes:
        """A SEND indication carrying ``data`` to ``peer`` through the relay."""
        txid = self._random(12)
        msg = stun.Message(stun.SEND, stun.INDICATION, txid)
        msg.add(stun.A_XOR_PEER, stun.xor_addr(peer, txid)).add(stun.A_DATA, data)
        return stun.encode(msg)

    def receive(self, data: bytes, now: float) -> list[tuple[Addr, bytes]]:
        """A datagram from the server; returns the peers' datagrams it carried."""
        try:
            msg = stun.decode_untrusted(data)
            if msg.method == stun.DATA and msg.cls == stun.INDICATION:
                payload = msg.get(stun.A_DATA)
                if payload is None:
                    raise DecodeError("DATA indication without DATA")
                return [(stun.read_xor_addr(msg.get(stun.A_XOR_PEER), msg.txid), payload)]
            req = self._pending.get(msg.txid)
            if req is None or msg.cls not in (stun.SUCCESS, stun.ERROR):
                raise DecodeError("not an answer to a request of ours")
            if msg.cls == stun.SUCCESS and self._key is not None and not stun.integrity_ok(data, self._key):
                raise DecodeError("bad MESSAGE-INTEGRITY")
            del self._pending[msg.txid]
            if msg.cls == stun.SUCCESS:
                self._on_success(req, msg, now)
            else:
                self._on_error(req, msg, now)
        except DecodeError:
            self.dropped += 1
        return []

    def _on_success(self, req: _Request, msg: stun.Message, now: float) -> None:
        if req.method == stun.ALLOCATE:
            self.relayed = stun.read_xor_addr(msg.get(stun.A_XOR_RELAYED), msg.txid)
            mapped = msg.get(stun.A_XOR_MAPPED)
            self.mapped = stun.read_xor_addr(mapped, msg.txid) if mapped else None
            self.state = "ready"
            self._refresh_at = now + self._lifetime(msg) / 2
            for ip in sorted(self._wanted):
                self.permit(ip, now)
            self._wanted.clear()
        elif req.method == stun.REFRESH:
            self._refresh_at = now + self._lifetime(msg) / 2

    @staticmethod
    def _lifetime(msg: stun.Message) -> float:
        value = msg.get(stun.A_LIFETIME)
        return float(int.from_bytes(value, "big")) if value and len(value) == 4 else float(LIFETIME)

    def _on_error(self, req: _Request, msg: stun.Message, now: float) -> None:
        code, reason = stun.error_code(msg)
        realm, nonce = msg.get(stun.A_REALM), msg.get(stun.A_NONCE)
        if (code == 401 and self._key is None or code == 438) and realm is not None and nonce is not None:
            self._realm = realm.decode("utf-8", "replace")
            self._nonce = nonce
            self._key = stun.long_term_key(self.username, self._realm, self.password)
            self._request(req.method, req.attrs, now, req.peer_ip)
            return
        if req.method == stun.CREATE_PERMISSION and code == 403:
            self._refused.add(req.peer_ip)  # e.g. a LAN address the server may not reach
        why = f"the TURN server said {code} {reason}".rstrip()
        if code == 401:
            why += " (check the user name and password in g:covim_turn)"
        self._give_up(req, why)

    # ---- timers and outputs ----------------------------------------------------

    def get_timer(self) -> float | None:
        if self.state == "failed":
            return None
        times = [req.next_send for req in self._pending.values()]
        times += [self._refresh_at] + list(self._permissions.values())
        return min(times)

    def handle_timer(self, now: float) -> None:
        if self.state == "failed":
            return
        if now >= self._refresh_at:
            self._refresh_at = float("inf")
            self._request(stun.REFRESH, [(stun.A_LIFETIME, LIFETIME.to_bytes(4, "big"))], now)
        for ip, renew_at in list(self._permissions.items()):
            if now >= renew_at:
                self._permissions[ip] = now + PERMISSION_RENEW
                self._request(stun.CREATE_PERMISSION, [], now, peer_ip=ip)
        self._transmit(now)

    def datagrams_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out
