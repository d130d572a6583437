"""The datagram header and the frames inside peer datagrams.

Layout of every covim datagram (see docs/protocol.md)::

    magic "CV" | version u8 | kind u8 | session u64 | sender u64 | body

``kind`` separates rendezvous traffic (peer <-> introducer) from peer traffic
(peer <-> peer), so one UDP socket can carry both and a STUN packet (which
starts with 0x00/0x01) can never be mistaken for ours.  On the wire the body
is sealed (seal.py, header as associated data); inside, a PEER body is the
link epochs and a sequence of frames.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from .codec import DecodeError, Reader, Writer, read_blob, read_text, read_varuint, truncated, write_varuint

MAGIC = b"CV"
VERSION = 5  # v5: signed authorship (the handshake payload names an author key); v4: seal instances
KIND_RENDEZVOUS = 1
KIND_PEER = 2
KIND_HANDSHAKE = 3  # v4: Noise messages that make a pair's keys (handshake.py)
_HEADER = struct.Struct("!2sBBQQ")
HEADER_LEN = _HEADER.size
# Payload budget that survives IPv6 minimum MTU, tunnels and the crypto overhead to come.
MAX_DATAGRAM = 1200

Addr = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Header:
    kind: int
    session: int
    sender: int


def encode_datagram(kind: int, session: int, sender: int, body: bytes) -> bytes:
    return _HEADER.pack(MAGIC, VERSION, kind, session, sender) + body


def decode_datagram_untrusted(data: bytes) -> tuple[Header, bytes]:
    if len(data) < HEADER_LEN:
        raise DecodeError(f"datagram of {len(data)} bytes is shorter than the header")
    magic, version, kind, session, sender = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise DecodeError("not a covim datagram (bad magic)")
    if version != VERSION:
        raise DecodeError(f"unsupported protocol version {version}")
    if kind not in (KIND_RENDEZVOUS, KIND_PEER, KIND_HANDSHAKE):
        raise DecodeError(f"unknown datagram kind {kind}")
    return Header(kind, session, sender), data[HEADER_LEN:]


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
F_FORWARD_TO, F_FORWARDED = 7, 8
MAX_FORWARDED = MAX_DATAGRAM + 100  # a whole covim datagram rides inside


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


@dataclass(frozen=True, slots=True)
class Forward:
    """A whole datagram (sealed end to end for its receiver) carried by a mesh peer.

    ``outbound``: sent to the forwarder, ``peer`` is where it goes (FORWARD_TO); else sent by the
    forwarder, ``peer`` is who sent it (FORWARDED)."""
    peer: int
    datagram: bytes
    outbound: bool


Frame = Hello | Data | Ack | Ping | Pong | Bye | Forward
MAX_ACK_RANGES = 32


def _write_frames(out: bytearray, frames: list[Frame]) -> None:
    # Writer's method-per-field costs more than the encoding on the per-edit path.
    append = out.append
    for f in frames:
        if isinstance(f, Data):
            append(F_DATA)
            write_varuint(out, f.seq)
            append(1 if f.fin else 0)
            write_varuint(out, len(f.payload))
            out += f.payload
        elif isinstance(f, Ack):
            append(F_ACK)
            write_varuint(out, f.next_seq)
            write_varuint(out, len(f.ranges))
            prev = f.next_seq
            for start, end in f.ranges:  # gaps and lengths, ascending, so numbers stay small
                write_varuint(out, start - prev)
                write_varuint(out, end - start)
                prev = end
        elif isinstance(f, Hello):
            name = f.name.encode("utf-8")
            append(F_HELLO)
            write_varuint(out, len(name))
            out += name
            write_varuint(out, f.client_id)
            append(1 if f.reply else 0)
        elif isinstance(f, Ping):
            append(F_PING)
            write_varuint(out, f.nonce)
        elif isinstance(f, Pong):
            append(F_PONG)
            write_varuint(out, f.nonce)
        elif isinstance(f, Bye):
            reason = f.reason.encode("utf-8")
            append(F_BYE)
            write_varuint(out, len(reason))
            out += reason
        elif isinstance(f, Forward):
            append(F_FORWARD_TO if f.outbound else F_FORWARDED)
            write_varuint(out, f.peer)
            write_varuint(out, len(f.datagram))
            out += f.datagram
        else:  # pragma: no cover - programming error
            raise TypeError(f"not a frame: {f!r}")


def encode_frames(frames: list[Frame]) -> bytes:
    out = bytearray()
    _write_frames(out, frames)
    return bytes(out)


def frame_size(f: Frame) -> int:
    return len(encode_frames([f]))


def _flag(data: bytes, pos: int) -> tuple[bool, int]:
    if pos >= len(data):
        raise truncated(1, pos, len(data))
    value = data[pos]
    if value > 1:
        raise DecodeError(f"bad flag {value}")
    return value == 1, pos + 1


def decode_frames_untrusted(body: bytes) -> list[Frame]:
    body = bytes(body)  # slices of bytes are the payloads we return; no copy if it already is
    frames: list[Frame] = []
    pos = 0
    end = len(body)
    while pos < end:
        t = body[pos]
        pos += 1
        if t == F_DATA:
            seq, pos = read_varuint(body, pos)
            fin, pos = _flag(body, pos)
            payload, pos = read_blob(body, pos, MAX_DATAGRAM)
            frames.append(Data(seq, fin, payload))
        elif t == F_ACK:
            next_seq, pos = read_varuint(body, pos)
            n, pos = read_varuint(body, pos)
            if n > MAX_ACK_RANGES:
                raise DecodeError(f"ack with {n} ranges")
            ranges = []
            prev = next_seq
            for _ in range(n):
                gap, pos = read_varuint(body, pos)
                length, pos = read_varuint(body, pos)
                prev += gap
                ranges.append((prev, prev + length))
                prev += length
            frames.append(Ack(next_seq, tuple(ranges)))
        elif t == F_HELLO:
            name, pos = read_text(body, pos, 256)
            client_id, pos = read_varuint(body, pos)
            reply, pos = _flag(body, pos)
            frames.append(Hello(name, client_id, reply))
        elif t == F_PING:
            nonce, pos = read_varuint(body, pos)
            frames.append(Ping(nonce))
        elif t == F_PONG:
            nonce, pos = read_varuint(body, pos)
            frames.append(Pong(nonce))
        elif t == F_BYE:
            reason, pos = read_text(body, pos, 256)
            frames.append(Bye(reason))
        elif t in (F_FORWARD_TO, F_FORWARDED):
            peer, pos = read_varuint(body, pos)
            inner, pos = read_blob(body, pos, MAX_FORWARDED)
            frames.append(Forward(peer, inner, t == F_FORWARD_TO))
        else:
            raise DecodeError(f"unknown frame type {t}")
    return frames


# ---- peer bodies ---------------------------------------------------------------

def encode_peer_body(src_epoch: int, dst_epoch: int, frames: list[Frame]) -> bytes:
    """``src_epoch``: the incarnation of the sender's link; ``dst_epoch``: the
    receiver's, as the sender knows it (0 = not yet).  A link rebuilt on one side
    gets a higher epoch, which tells the other side to restart its channel too."""
    out = bytearray()
    write_varuint(out, src_epoch)
    write_varuint(out, dst_epoch)
    _write_frames(out, frames)
    return bytes(out)


def decode_peer_body_untrusted(body: bytes) -> tuple[int, int, list[Frame]]:
    src, pos = read_varuint(body, 0)
    dst, pos = read_varuint(body, pos)
    return src, dst, decode_frames_untrusted(body[pos:])
