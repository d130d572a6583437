"""Session tokens: what a host prints and a joiner pastes.

A token names the introducer's addresses, the session id and a 16-byte
session secret, as ``covim1-`` + unpadded URL-safe base64 of a small binary
record.  The secret proves membership to the introducer today and is the
pre-shared key the encryption layer will derive its keys from.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from .codec import DecodeError, Reader, Writer
from .framing import Addr, read_addr, write_addr

PREFIX = "covim1-"
SECRET_LEN = 16


class BadToken(ValueError):
    """The text the user gave is not a covim token."""


@dataclass(frozen=True, slots=True)
class SessionToken:
    addrs: tuple[Addr, ...]
    session: int
    secret: bytes

    def encode(self) -> str:
        w = Writer().u8(len(self.addrs))
        for addr in self.addrs:
            write_addr(w, addr)
        w.u64(self.session).raw(self.secret)
        return PREFIX + base64.urlsafe_b64encode(w.bytes()).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str) -> "SessionToken":
        text = text.strip()
        if not text.startswith(PREFIX):
            raise BadToken(f"not a covim token (it should start with {PREFIX!r})")
        body = text[len(PREFIX):]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            r = Reader(raw)
            n = r.u8()
            if not 1 <= n <= 8:
                raise DecodeError(f"{n} addresses")
            addrs = tuple(read_addr(r) for _ in range(n))
            session = r.u64()
            secret = r.raw(SECRET_LEN)
            if not r.at_end():
                raise DecodeError("trailing bytes")
        except (binascii.Error, ValueError) as exc:
            raise BadToken(f"damaged covim token ({exc})") from None
        return cls(addrs, session, secret)
