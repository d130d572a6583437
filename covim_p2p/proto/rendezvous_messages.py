"""Rendezvous messages: what peers and the introducer say inside RENDEZVOUS datagrams.

Why apart from rendezvous.py: the introducer machine is one speaker of this
format; members (membership.py), the waiting peer (invite.py) and the node
speak it too.  Each sealed RENDEZVOUS body (framing.py, seal.py) is exactly
one message, starting with one type byte (docs/protocol.md section 5)::

    JOIN        0x01 | credential:blob | name:text | candidates | relays:uint | static:blob
    WELCOME     0x02 | observed:addr | n:uint | n x member
    REJECT      0x03 | reason:text
    PEER_JOINED 0x04 | member
    PEER_LEFT   0x05 | peer_id:u64
    LEAVE       0x06
    INVITE      0x07 | session_token:text | nonce:blob
    INVITE_ACK  0x08 | nonce:blob
    CHECK       0x09

    member     = peer_id:u64 | name:text | has_addr:u8 | [addr] | candidates | relays:uint | static:blob
    candidates = n:uint | n x addr

Rules of the format:

* Decoding is untrusted: every count and length is bounded before anything
  is read (``MAX_CANDIDATES`` addresses, ``MAX_MEMBERS`` members in a
  WELCOME, a name in ``MAX_NAME`` * 4 bytes: ``MAX_NAME`` characters of UTF-8),
  and ``relays`` may not exceed the candidates it counts.  An unknown type
  or trailing bytes -> ``DecodeError``.
* ``relays`` says how many of the *last* candidates are relayed (TURN)
  addresses; a member without an address (``has_addr`` 0) shares the
  introducer's address (the host's own peer).
* Whether a message is acceptable (the credential, a free name, who may send
  what) is the introducer's and the member's business, not the codec's.
"""

from __future__ import annotations

from dataclasses import dataclass

from .codec import DecodeError, Reader, Writer
from .framing import Addr, read_addr, write_addr

R_JOIN, R_WELCOME, R_REJECT, R_PEER_JOINED, R_PEER_LEFT, R_LEAVE, R_INVITE, R_INVITE_ACK = 1, 2, 3, 4, 5, 6, 7, 8
R_CHECK = 9
MAX_MEMBERS = 64
MAX_NAME = 64
MAX_CANDIDATES = 5


@dataclass(frozen=True, slots=True)
class Member:
    peer_id: int
    name: str
    addr: Addr | None  # None: the member shares the introducer's address
    candidates: tuple[Addr, ...] = ()  # its LAN addresses, then its TURN relay address, if any
    relays: int = 0  # how many of the last candidates are relayed addresses (paths.py ranks them last)
    static: bytes = b""  # v4: its X25519 static key for this session, which its handshakes prove


@dataclass(frozen=True, slots=True)
class Join:
    secret: bytes  # v4: the introduction credential (keys.py), never the token's secret
    name: str
    candidates: tuple[Addr, ...] = ()
    relays: int = 0
    static: bytes = b""


@dataclass(frozen=True, slots=True)
class Welcome:
    observed: Addr
    members: tuple[Member, ...]


@dataclass(frozen=True, slots=True)
class Reject:
    reason: str


@dataclass(frozen=True, slots=True)
class PeerJoined:
    member: Member


@dataclass(frozen=True, slots=True)
class PeerLeft:
    peer_id: int


@dataclass(frozen=True, slots=True)
class Leave:
    pass


@dataclass(frozen=True, slots=True)
class Check:
    """Introducer -> member: someone holding the token claims your name; JOIN now if you are here."""


@dataclass(frozen=True, slots=True)
class Invite:
    session_token: str
    nonce: bytes


@dataclass(frozen=True, slots=True)
class InviteAck:
    nonce: bytes


Message = Join | Welcome | Reject | PeerJoined | PeerLeft | Leave | Invite | InviteAck | Check


def _write_addrs(w: Writer, addrs: tuple[Addr, ...]) -> None:
    w.uint(len(addrs))
    for addr in addrs:
        write_addr(w, addr)


def _read_addrs(r: Reader) -> tuple[Addr, ...]:
    n = r.uint()
    if n > MAX_CANDIDATES:
        raise DecodeError(f"{n} candidate addresses (at most {MAX_CANDIDATES})")
    return tuple(read_addr(r) for _ in range(n))


def _read_relays(r: Reader, candidates: tuple[Addr, ...]) -> int:
    relays = r.uint()
    if relays > len(candidates):
        raise DecodeError(f"{relays} relayed candidates out of {len(candidates)}")
    return relays


def _write_member(w: Writer, m: Member) -> None:
    w.u64(m.peer_id).text(m.name)
    if m.addr is None:
        w.u8(0)
    else:
        w.u8(1)
        write_addr(w, m.addr)
    _write_addrs(w, m.candidates)
    w.uint(m.relays)
    w.blob(m.static)


def _read_member(r: Reader) -> Member:
    peer_id, name = r.u64(), r.text(MAX_NAME * 4)
    addr = read_addr(r) if r.u8() else None
    candidates = _read_addrs(r)
    return Member(peer_id, name, addr, candidates, _read_relays(r, candidates), r.blob(32))


def encode_message(msg: Message) -> bytes:
    w = Writer()
    if isinstance(msg, Join):
        w.u8(R_JOIN).blob(msg.secret).text(msg.name)
        _write_addrs(w, msg.candidates)
        w.uint(msg.relays)
        w.blob(msg.static)
    elif isinstance(msg, Welcome):
        w.u8(R_WELCOME)
        write_addr(w, msg.observed)
        w.uint(len(msg.members))
        for m in msg.members:
            _write_member(w, m)
    elif isinstance(msg, Reject):
        w.u8(R_REJECT).text(msg.reason)
    elif isinstance(msg, PeerJoined):
        w.u8(R_PEER_JOINED)
        _write_member(w, msg.member)
    elif isinstance(msg, PeerLeft):
        w.u8(R_PEER_LEFT).u64(msg.peer_id)
    elif isinstance(msg, Leave):
        w.u8(R_LEAVE)
    elif isinstance(msg, Check):
        w.u8(R_CHECK)
    elif isinstance(msg, Invite):
        w.u8(R_INVITE).text(msg.session_token).blob(msg.nonce)
    elif isinstance(msg, InviteAck):
        w.u8(R_INVITE_ACK).blob(msg.nonce)
    else:  # pragma: no cover
        raise TypeError(msg)
    return w.bytes()


def decode_message_untrusted(body: bytes) -> Message:
    r = Reader(body)
    t = r.u8()
    if t == R_JOIN:
        secret, name, candidates = r.blob(64), r.text(MAX_NAME * 4), _read_addrs(r)
        msg: Message = Join(secret, name, candidates, _read_relays(r, candidates), r.blob(32))
    elif t == R_WELCOME:
        observed = read_addr(r)
        n = r.uint()
        if n > MAX_MEMBERS:
            raise DecodeError(f"welcome lists {n} members")
        msg = Welcome(observed, tuple(_read_member(r) for _ in range(n)))
    elif t == R_REJECT:
        msg = Reject(r.text(1024))
    elif t == R_PEER_JOINED:
        msg = PeerJoined(_read_member(r))
    elif t == R_PEER_LEFT:
        msg = PeerLeft(r.u64())
    elif t == R_LEAVE:
        msg = Leave()
    elif t == R_CHECK:
        msg = Check()
    elif t == R_INVITE:
        msg = Invite(r.text(512), r.blob(64))
    elif t == R_INVITE_ACK:
        msg = InviteAck(r.blob(64))
    else:
        raise DecodeError(f"unknown rendezvous message {t}")
    if not r.at_end():
        raise DecodeError("trailing bytes in rendezvous message")
    return msg
