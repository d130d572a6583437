"""STUN messages (RFC 5389) with the TURN attributes (RFC 5766) the relay needs.

A table-free little codec: messages are (type, transaction id, attributes),
attributes are (type, bytes) in order, and the typed helpers below read and
write the few values we use.  ``decode_untrusted`` takes whatever arrives on
our socket and raises DecodeError for anything that is not a well-formed STUN
message with the magic cookie, so a covim datagram ("CV") is never mistaken
for one.  MESSAGE-INTEGRITY is HMAC-SHA1 over the message up to it, with the
length field counting it (section 15.4); the long-term key is
MD5(username ":" realm ":" password).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import struct
from dataclasses import dataclass, field

from .codec import DecodeError
from .framing import Addr

MAGIC_COOKIE = 0x2112A442
HEADER = struct.Struct("!HHI12s")

# methods | classes (RFC 5389 section 6 packs them into the type)
BINDING, ALLOCATE, REFRESH, SEND, DATA, CREATE_PERMISSION = 0x001, 0x003, 0x004, 0x006, 0x007, 0x008
REQUEST, INDICATION, SUCCESS, ERROR = 0x0000, 0x0010, 0x0100, 0x0110

A_MAPPED, A_USERNAME, A_INTEGRITY, A_ERROR_CODE = 0x0001, 0x0006, 0x0008, 0x0009
A_LIFETIME, A_XOR_PEER, A_DATA, A_REALM, A_NONCE = 0x000D, 0x0012, 0x0013, 0x0014, 0x0015
A_XOR_RELAYED, A_REQUESTED_TRANSPORT, A_XOR_MAPPED = 0x0016, 0x0019, 0x0020
UDP = 17


def message_type(method: int, cls: int) -> int:
    return ((method & 0xF80) << 2) | ((method & 0x070) << 1) | (method & 0x00F) | cls


def split_type(t: int) -> tuple[int, int]:
    method = ((t & 0x3E00) >> 2) | ((t & 0x00E0) >> 1) | (t & 0x000F)
    return method, t & 0x0110


@dataclass
class Message:
    method: int
    cls: int
    txid: bytes
    attrs: list[tuple[int, bytes]] = field(default_factory=list)

    def get(self, attr: int) -> bytes | None:
        return next((v for t, v in self.attrs if t == attr), None)

    def add(self, attr: int, value: bytes) -> Message:
        self.attrs.append((attr, value))
        return self


def looks_like_stun(data: bytes) -> bool:
    """Cheap test for demultiplexing one socket: top two bits 0 and the cookie."""
    return len(data) >= 20 and data[0] < 4 and data[4:8] == b"\x21\x12\xa4\x42"


def long_term_key(username: str, realm: str, password: str) -> bytes:
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).digest()  # noqa: S324 - RFC 5389 says MD5


def _attrs_bytes(attrs: list[tuple[int, bytes]]) -> bytes:
    out = bytearray()
    for t, v in attrs:
        out += struct.pack("!HH", t, len(v)) + v + b"\x00" * (-len(v) % 4)
    return bytes(out)


def encode(msg: Message, key: bytes | None = None) -> bytes:
    body = _attrs_bytes(msg.attrs)
    t = message_type(msg.method, msg.cls)
    if key is None:
        return HEADER.pack(t, len(body), MAGIC_COOKIE, msg.txid) + body
    head = HEADER.pack(t, len(body) + 24, MAGIC_COOKIE, msg.txid)
    mac = hmac.new(key, head + body, hashlib.sha1).digest()
    return head + body + struct.pack("!HH", A_INTEGRITY, 20) + mac


def decode_untrusted(data: bytes) -> Message:
    if len(data) < 20:
        raise DecodeError("shorter than a STUN header")
    t, length, cookie, txid = HEADER.unpack_from(data)
    if t & 0xC000 or cookie != MAGIC_COOKIE:
        raise DecodeError("not a STUN message")
    if length % 4 or 20 + length != len(data):
        raise DecodeError(f"STUN length {length} does not match {len(data) - 20} bytes")
    method, cls = split_type(t)
    msg = Message(method, cls, txid)
    pos = 20
    while pos < len(data):
        if pos + 4 > len(data):
            raise DecodeError("truncated STUN attribute header")
        at, alen = struct.unpack_from("!HH", data, pos)
        end = pos + 4 + alen
        if end > len(data):
            raise DecodeError("truncated STUN attribute")
        msg.attrs.append((at, data[pos + 4:end]))
        pos = end + (-alen % 4)
    return msg


def integrity_ok(data: bytes, key: bytes) -> bool:
    """Check MESSAGE-INTEGRITY of a raw message (the attributes after it, e.g. FINGERPRINT, excluded)."""
    pos = 20
    while pos + 4 <= len(data):
        at, alen = struct.unpack_from("!HH", data, pos)
        if at == A_INTEGRITY and alen == 20 and pos + 24 <= len(data):
            head = bytearray(data[:pos])
            struct.pack_into("!H", head, 2, pos - 20 + 24)
            want = hmac.new(key, bytes(head), hashlib.sha1).digest()
            return hmac.compare_digest(want, data[pos + 4:pos + 24])
        pos += 4 + alen + (-alen % 4)
    return False


def xor_addr(addr: Addr, txid: bytes) -> bytes:
    ip = ipaddress.ip_address(addr[0])
    port = addr[1] ^ (MAGIC_COOKIE >> 16)
    if ip.version == 4:
        return struct.pack("!BBH", 0, 1, port) + (int(ip) ^ MAGIC_COOKIE).to_bytes(4, "big")
    mask = int.from_bytes(struct.pack("!I", MAGIC_COOKIE) + txid, "big")
    return struct.pack("!BBH", 0, 2, port) + (int(ip) ^ mask).to_bytes(16, "big")


def read_xor_addr(value: bytes | None, txid: bytes) -> Addr:
    if value is None or len(value) < 8:
        raise DecodeError("missing or short XOR address")
    family, port = value[1], struct.unpack_from("!H", value, 2)[0] ^ (MAGIC_COOKIE >> 16)
    if family == 1 and len(value) == 8:
        return str(ipaddress.IPv4Address(int.from_bytes(value[4:8], "big") ^ MAGIC_COOKIE)), port
    if family == 2 and len(value) == 20:
        mask = int.from_bytes(struct.pack("!I", MAGIC_COOKIE) + txid, "big")
        return str(ipaddress.IPv6Address(int.from_bytes(value[4:20], "big") ^ mask)), port
    raise DecodeError(f"bad XOR address family {family}")


def error_code(msg: Message) -> tuple[int, str]:
    value = msg.get(A_ERROR_CODE)
    if value is None or len(value) < 4:
        return 0, ""
    return (value[2] & 7) * 100 + value[3], value[4:].decode("utf-8", "replace")
