"""The datagram header and the frames inside peer datagrams.

Layout of every covim datagram (see docs/protocol.md)::

    magic "CV" | version u8 | kind u8 | session u64 | sender u64 | body

``kind`` separates rendezvous traffic (peer <-> introducer) from peer traffic
(peer <-> peer), so one UDP socket can carry both and a STUN packet (which
starts with 0x00/0x01) can never be mistaken for ours.  The body of a PEER
datagram is a sequence of frames; the future crypto layer seals exactly that
body (header as associated data), so nothing here changes when it lands.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .codec import DecodeError, Reader, Writer

MAGIC = b"CV"
VERSION = 2
KIND_RENDEZVOUS = 1
KIND_PEER = 2
HEADER_LEN = 2 + 1 + 1 + 8 + 8
# Payload budget that survives IPv6 minimum MTU, tunnels and the crypto overhead to come.
MAX_DATAGRAM = 1200

Addr = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Header:
    kind: int
    session: int
    sender: int


def encode_datagram(kind: int, session: int, sender: int, body: bytes) -> bytes:
    return Writer().raw(MAGIC).u8(VERSION).u8(kind).u64(session).u64(sender).raw(body).bytes()


def decode_datagram_untrusted(data: bytes) -> tuple[Header, bytes]:
    if len(data) < HEADER_LEN:
        raise DecodeError(f"datagram of {len(data)} bytes is shorter than the header")
    if data[:2] != MAGIC:
        raise DecodeError("not a covim datagram (bad magic)")
    r = Reader(data, 2)
    version = r.u8()
    if version != VERSION:
        raise DecodeError(f"unsupported protocol version {version}")
    kind = r.u8()
    if kind not in (KIND_RENDEZVOUS, KIND_PEER):
        raise DecodeError(f"unknown datagram kind {kind}")
    return Header(kind, r.u64(), r.u64()), data[HEADER_LEN:]


def write_addr(w: Writer, addr: Addr) -> None:
    ip = ipaddress.ip_address(addr[0])
    w.u8(ip.version).raw(ip.packed).u16(addr[1])


def read_addr(r: Reader) -> Addr:
    version = r.u8()
    if version == 4:
        ip = ipaddress.IPv4Address(r.raw(4))
    elif version == 6:
        ip = ipaddress.IPv6Address(r.raw(16))
    else:
        raise DecodeError(f"bad address family {version}")
    return (str(ip), r.u16())


# ---- peer frames -------------------------------------------------------------

F_HELLO, F_DATA, F_ACK, F_PING, F_PONG, F_BYE = 1, 2, 3, 4, 5, 6


@dataclass(frozen=True, slots=True)
class Hello:
    """Sent unreliably until the peer answers; doubles as the hole-punch probe."""
    name: str
    client_id: int
    reply: bool


@dataclass(frozen=True, slots=True)
class Data:
    """One chunk of the reliable stream; ``fin`` ends a message."""
    seq: int
    fin: bool
    payload: bytes


@dataclass(frozen=True, slots=True)
class Ack:
    """``next_seq``: everything below is received; ``ranges``: (start, end) received above it."""
    next_seq: int
    ranges: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Ping:
    nonce: int


@dataclass(frozen=True, slots=True)
class Pong:
    nonce: int


@dataclass(frozen=True, slots=True)
class Bye:
    reason: str = ""


Frame = Hello | Data | Ack | Ping | Pong | Bye
MAX_ACK_RANGES = 32


def encode_frames(frames: list[Frame]) -> bytes:
    w = Writer()
    for f in frames:
        if isinstance(f, Data):
            w.u8(F_DATA).uint(f.seq).u8(1 if f.fin else 0).blob(f.payload)
        elif isinstance(f, Ack):
            w.u8(F_ACK).uint(f.next_seq).uint(len(f.ranges))
            prev = f.next_seq
            for start, end in f.ranges:  # gaps and lengths, ascending, so numbers stay small
                w.uint(start - prev).uint(end - start)
                prev = end
        elif isinstance(f, Hello):
            w.u8(F_HELLO).text(f.name).uint(f.client_id).u8(1 if f.reply else 0)
        elif isinstance(f, Ping):
            w.u8(F_PING).uint(f.nonce)
        elif isinstance(f, Pong):
            w.u8(F_PONG).uint(f.nonce)
        elif isinstance(f, Bye):
            w.u8(F_BYE).text(f.reason)
        else:  # pragma: no cover - programming error
            raise TypeError(f"not a frame: {f!r}")
    return w.bytes()


def frame_size(f: Frame) -> int:
    return len(encode_frames([f]))


def _flag(r: Reader) -> bool:
    value = r.u8()
    if value > 1:
        raise DecodeError(f"bad flag {value}")
    return value == 1


def decode_frames_untrusted(body: bytes) -> list[Frame]:
    r = Reader(body)
    frames: list[Frame] = []
    while not r.at_end():
        t = r.u8()
        if t == F_DATA:
            frames.append(Data(r.uint(), _flag(r), r.blob(MAX_DATAGRAM)))
        elif t == F_ACK:
            next_seq = r.uint()
            n = r.uint()
            if n > MAX_ACK_RANGES:
                raise DecodeError(f"ack with {n} ranges")
            ranges = []
            prev = next_seq
            for _ in range(n):
                start = prev + r.uint()
                end = start + r.uint()
                ranges.append((start, end))
                prev = end
            frames.append(Ack(next_seq, tuple(ranges)))
        elif t == F_HELLO:
            frames.append(Hello(r.text(256), r.uint(), _flag(r)))
        elif t == F_PING:
            frames.append(Ping(r.uint()))
        elif t == F_PONG:
            frames.append(Pong(r.uint()))
        elif t == F_BYE:
            frames.append(Bye(r.text(256)))
        else:
            raise DecodeError(f"unknown frame type {t}")
    return frames



# ---- peer bodies ---------------------------------------------------------------

def encode_peer_body(src_epoch: int, dst_epoch: int, frames: list[Frame]) -> bytes:
    """``src_epoch``: the incarnation of the sender's link; ``dst_epoch``: the
    receiver's, as the sender knows it (0 = not yet).  A link rebuilt on one side
    gets a higher epoch, which tells the other side to restart its channel too."""
    return Writer().uint(src_epoch).uint(dst_epoch).bytes() + encode_frames(frames)


def decode_peer_body_untrusted(body: bytes) -> tuple[int, int, list[Frame]]:
    r = Reader(body)
    src, dst = r.uint(), r.uint()
    return src, dst, decode_frames_untrusted(body[r.pos:])
