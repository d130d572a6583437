"""A public introducer for many sessions at once (the ``covim-rendezvous`` server's machine).

It lets a host behind a NAT be joined: host and joiners all reach it, it
tells each the addresses it saw the others at (plus their announced
candidates), and they punch to each other as joiners always did.  Edits
never pass through it, and it cannot read them: it knows only each
session's introduction credential (introduction.py), never the secret that
keys peer traffic.

Rules of the machine:

* KEY? is answered with KEY! (the server's X25519 public key).  REGISTER is
  sealed to that key (registration.py); one that does not open is dropped,
  counted and answered with KEY!.  An opened REGISTER for an unknown session makes
  an ``Introducer`` for it, if fewer than ``MAX_SESSIONS`` exist and the
  sender's address registered fewer than ``MAX_SESSIONS_PER_SOURCE`` live
  ones; for a known session with the same credential it is a keepalive;
  anything else is dropped and counted.
* A covim rendezvous datagram for a known session goes to its Introducer
  (which checks the seal and the credential in JOIN); one for an unknown
  session is dropped.
* A STUN Binding request is answered with the address it came from
  (XOR-MAPPED-ADDRESS and MAPPED-ADDRESS): the server doubles as the STUN
  server of ``g:covim_stun``.
* Every source address has a token bucket (``RATE`` datagrams per second,
  ``BURST`` at once); over it, datagrams are dropped and counted.  At most
  ``MAX_SOURCES`` buckets are kept (the oldest goes).
* A session with no members ``SESSION_IDLE`` after its last REGISTER or
  member goes away.  One log line per join, leave, session opened and closed
  goes to ``log``.

Pure: ``now`` comes from outside; the trio driver is covim_p2p/rendezvous_server.py.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from . import stun
from .codec import DecodeError
from .drops import Drops
from .framing import KIND_RENDEZVOUS, Addr, decode_datagram_untrusted
from .registration import (KEY_REQUEST, KEY_REQUEST_LEN, REGISTER_MAGIC, encode_key_reply, open_register_untrusted,
                           public_key)
from .rendezvous import Introducer

MAX_SESSIONS = 4096
MAX_SESSIONS_PER_SOURCE = 16
MAX_SOURCES = 16384
RATE = 50.0
BURST = 100.0
SESSION_IDLE = 60.0


@dataclass
class _Session:
    introducer: Introducer
    credential: bytes
    owner: str  # the ip that registered it
    last_active: float
    names: dict[int, str]


class PublicIntroducer:
    def __init__(self, random_bytes: Callable[[int], bytes] = os.urandom, key: bytes | None = None) -> None:
        self._random = random_bytes
        self._key = key if key is not None else random_bytes(32)  # X25519: REGISTERs are sealed to it
        self.public_key = public_key(self._key)
        self.sessions: dict[int, _Session] = {}
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # ip -> (tokens, at)
        self._out: list[tuple[bytes, Addr]] = []
        self.drops = Drops()
        self.log: list[str] = []

    # ---- inputs ----------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        if not self._allow(addr[0], now):
            self.drops.add("rate limited")
            return
        if stun.looks_like_stun(data):
            self._stun(data, addr)
        elif data.startswith(REGISTER_MAGIC):
            self._register(data, addr, now)
        elif data.startswith(KEY_REQUEST) and len(data) == KEY_REQUEST_LEN:
            self._out.append((encode_key_reply(self.public_key), addr))
        else:
            self._rendezvous(data, addr, now)

    def _allow(self, ip: str, now: float) -> bool:
        tokens, at = self._buckets.pop(ip, (BURST, now))
        tokens = min(BURST, tokens + (now - at) * RATE)
        if len(self._buckets) >= MAX_SOURCES:
            self._buckets.popitem(last=False)
        self._buckets[ip] = (tokens - 1, now) if tokens >= 1 else (tokens, now)
        return tokens >= 1

    def _stun(self, data: bytes, addr: Addr) -> None:
        try:
            msg = stun.decode_untrusted(data)
        except DecodeError as exc:
            self.drops.add_error(exc)
            return
        if (msg.method, msg.cls) != (stun.BINDING, stun.REQUEST):
            self.drops.add("not a binding request")
            return
        reply = stun.Message(stun.BINDING, stun.SUCCESS, msg.txid)
        reply.add(stun.A_XOR_MAPPED, stun.xor_addr(addr, msg.txid))
        if ":" not in addr[0]:
            reply.add(stun.A_MAPPED, bytes([0, 1]) + addr[1].to_bytes(2, "big") + bytes(map(int, addr[0].split("."))))
        self._out.append((stun.encode(reply), addr))

    def _register(self, data: bytes, addr: Addr, now: float) -> None:
        try:
            session, credential = open_register_untrusted(data, self._key)
        except DecodeError as exc:
            self.drops.add("register does not open")
            self._out.append((encode_key_reply(self.public_key), addr))  # a host with an old key re-seals
            return
        known = self.sessions.get(session)
        if known is not None:
            if known.credential == credential:
                known.last_active = now
            else:
                self.drops.add("register with another credential")
            return
        if len(self.sessions) >= MAX_SESSIONS:
            self.drops.add("too many sessions")
            return
        if sum(1 for s in self.sessions.values() if s.owner == addr[0]) >= MAX_SESSIONS_PER_SOURCE:
            self.drops.add("too many sessions from one address")
            return
        self.sessions[session] = _Session(Introducer(session, credential, random_bytes=self._random), credential,
                                          addr[0], now, {})
        self.log.append(f"session {session:016x} opened by {addr[0]}:{addr[1]}")

    def _rendezvous(self, data: bytes, addr: Addr, now: float) -> None:
        try:
            header, _ = decode_datagram_untrusted(data)
            if header.kind != KIND_RENDEZVOUS:
                raise DecodeError("peer traffic is not for the introducer")
        except DecodeError as exc:
            self.drops.add_error(exc)
            return
        entry = self.sessions.get(header.session)
        if entry is None:
            self.drops.add("unknown session")
            return
        entry.introducer.receive_datagram(data, addr, now)
        self._note_changes(header.session, entry, now)

    def _note_changes(self, session: int, entry: _Session, now: float) -> None:
        names = {m.peer_id: f"'{m.name}' at {m.addr[0]}:{m.addr[1]}" if m.addr else m.name
                 for m in entry.introducer.members()}
        for pid, text in names.items():
            if pid not in entry.names:
                self.log.append(f"session {session:016x}: {text} joined ({len(names)} members)")
        for pid, text in entry.names.items():
            if pid not in names:
                self.log.append(f"session {session:016x}: {text} left ({len(names)} members)")
        entry.names = names
        if names:
            entry.last_active = now

    # ---- timers and outputs ------------------------------------------------------

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        out, self._out = self._out, []
        for entry in self.sessions.values():
            out += entry.introducer.datagrams_to_send(now)
        return out

    def get_timer(self) -> float | None:
        times = []
        for entry in self.sessions.values():
            t = entry.introducer.get_timer()
            times.append(t if t is not None else entry.last_active + SESSION_IDLE)
            if not entry.names:
                times.append(entry.last_active + SESSION_IDLE)
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        for session, entry in list(self.sessions.items()):
            entry.introducer.handle_timer(now)
            self._note_changes(session, entry, now)
            if not entry.names and now >= entry.last_active + SESSION_IDLE:
                del self.sessions[session]
                self.log.append(f"session {session:016x} closed (no members for {SESSION_IDLE:g} s)")
