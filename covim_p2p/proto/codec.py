"""Bounds-checked readers and writers for the little binary formats on the wire.

Every byte we parse may come from an attacker or a confused program on the
same port, so readers never trust a length: they raise :class:`DecodeError`
(a :class:`ValueError`) instead of IndexError, and callers drop and count the
datagram.  Integers are LEB128 varuints, the encoding Yjs uses, so our
envelopes and Yjs payloads read the same way.
"""

from __future__ import annotations

import struct


class DecodeError(ValueError):
    """Raised for any malformed input; the datagram carrying it is dropped."""


MAX_VARUINT_BYTES = 10


def write_varuint(out: bytearray, value: int) -> None:
    if value < 0:
        raise ValueError("varuint cannot be negative")
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)


def varuint(value: int) -> bytes:
    out = bytearray()
    write_varuint(out, value)
    return bytes(out)


class Writer:
    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def u8(self, value: int) -> "Writer":
        self.buf.append(value)
        return self

    def u16(self, value: int) -> "Writer":
        self.buf += struct.pack("!H", value)
        return self

    def u64(self, value: int) -> "Writer":
        self.buf += struct.pack("!Q", value)
        return self

    def uint(self, value: int) -> "Writer":
        write_varuint(self.buf, value)
        return self

    def blob(self, data: bytes) -> "Writer":
        write_varuint(self.buf, len(data))
        self.buf += data
        return self

    def text(self, value: str) -> "Writer":
        return self.blob(value.encode("utf-8"))

    def raw(self, data: bytes) -> "Writer":
        self.buf += data
        return self

    def bytes(self) -> bytes:
        return bytes(self.buf)


class Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def raw(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DecodeError(f"truncated: wanted {n} bytes at offset {self.pos}, have {self.remaining()}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return bytes(chunk)

    def u8(self) -> int:
        return self.raw(1)[0]

    def u16(self) -> int:
        return struct.unpack("!H", self.raw(2))[0]

    def u64(self) -> int:
        return struct.unpack("!Q", self.raw(8))[0]

    def uint(self) -> int:
        result = 0
        for i in range(MAX_VARUINT_BYTES):
            byte = self.u8()
            result |= (byte & 0x7F) << (7 * i)
            if byte < 0x80:
                return result
        raise DecodeError("varuint longer than 10 bytes")

    def blob(self, limit: int = 1 << 30) -> bytes:
        n = self.uint()
        if n > limit:
            raise DecodeError(f"field of {n} bytes exceeds limit {limit}")
        return self.raw(n)

    def text(self, limit: int = 4096) -> str:
        try:
            return self.blob(limit).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"invalid UTF-8: {exc.reason}") from None

    def rest(self) -> bytes:
        return self.raw(self.remaining())
