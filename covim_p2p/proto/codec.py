"""Bounds-checked readers and writers for the little binary formats on the wire.

Every byte we parse may come from an attacker or a confused program on the
same port, so readers never trust a length: they raise :class:`DecodeError`
(a :class:`ValueError`) instead of IndexError, and callers drop and count the
datagram.  Integers are LEB128 varuints, the encoding Yjs uses, so our
envelopes and Yjs payloads read the same way.

Every edit is encoded and decoded here, so the readers peer frames use are
plain functions over ``(data, pos)`` returning ``(value, new_pos)``: a method
call per field cost more than the parsing.  :class:`Reader` wraps the same
functions for the colder formats (rendezvous, tokens), where methods read better.
"""

from __future__ import annotations

import struct


class DecodeError(ValueError):
    """Raised for any malformed input; the datagram carrying it is dropped."""


class Refused(DecodeError):
    """Well-formed input a machine will not take: ``reason`` is its drop count's key (drops.py)."""

    def __init__(self, reason: str, text: str = "") -> None:
        super().__init__(text or reason)
        self.reason = reason


MAX_VARUINT_BYTES = 10
_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")


def truncated(wanted: int, pos: int, size: int) -> DecodeError:
    return DecodeError(f"truncated: wanted {wanted} bytes at offset {pos}, have {size - pos}")


def write_varuint(out: bytearray, value: int) -> None:
    if 0 <= value < 0x80:  # most varuints on the wire are one byte
        out.append(value)
        return
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


def read_varuint(data: bytes, pos: int) -> tuple[int, int]:
    try:
        byte = data[pos]
        if byte < 0x80:
            return byte, pos + 1
        result = byte & 0x7F
        shift = 7
        while shift < 7 * MAX_VARUINT_BYTES:
            pos += 1
            byte = data[pos]
            if byte < 0x80:
                return result | (byte << shift), pos + 1
            result |= (byte & 0x7F) << shift
            shift += 7
    except IndexError:  # pos is the byte we wanted
        raise truncated(1, pos, len(data)) from None
    raise DecodeError("varuint longer than 10 bytes")


def read_blob(data: bytes, pos: int, limit: int) -> tuple[bytes, int]:
    """A slice of ``data``: bytes in, bytes out, so callers with bytes copy once."""
    n, pos = read_varuint(data, pos)
    if n > limit:
        raise DecodeError(f"field of {n} bytes exceeds limit {limit}")
    end = pos + n
    if end > len(data):
        raise truncated(n, pos, len(data))
    return data[pos:end], end


def read_text(data: bytes, pos: int, limit: int) -> tuple[str, int]:
    chunk, pos = read_blob(data, pos, limit)
    try:
        return str(chunk, "utf-8"), pos
    except UnicodeDecodeError as exc:
        raise DecodeError(f"invalid UTF-8: {exc.reason}") from None


class Writer:
    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def u8(self, value: int) -> "Writer":
        self.buf.append(value)
        return self

    def u16(self, value: int) -> "Writer":
        self.buf += _U16.pack(value)
        return self

    def u64(self, value: int) -> "Writer":
        self.buf += _U64.pack(value)
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
            raise truncated(n, self.pos, len(self.data))
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return bytes(chunk)

    def u8(self) -> int:
        return self.raw(1)[0]

    def u16(self) -> int:
        return _U16.unpack(self.raw(2))[0]

    def u64(self) -> int:
        return _U64.unpack(self.raw(8))[0]

    def uint(self) -> int:
        value, self.pos = read_varuint(self.data, self.pos)
        return value

    def blob(self, limit: int = 1 << 30) -> bytes:
        chunk, self.pos = read_blob(self.data, self.pos, limit)
        return bytes(chunk)

    def text(self, limit: int = 4096) -> str:
        value, self.pos = read_text(self.data, self.pos, limit)
        return value

    def rest(self) -> bytes:
        return self.raw(self.remaining())
