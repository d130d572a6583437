"""Tokens people paste: session tokens (host -> joiner) and peer tokens (peer -> host).

A session token names the introducer's addresses, the session id and a
16-byte session secret: ``covim1-`` + unpadded URL-safe base64.  The secret
proves membership to the introducer today and is the pre-shared key the
encryption layer will derive its keys from.

A read-only token (``covim1r-``, protocol v4) has the same layout with the
read root in place of the secret, followed by the writers' 32-byte public
key (keys.py): its holder can join, read and show a cursor, and every peer
refuses its edits.

A peer token (``covim1p-``, made by ``:CoVim start``) names a waiting peer's
addresses and a 16-byte invite nonce, for Enhanced CoVim's flow where the
host admits a peer with ``:CoVim add <token>``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from .codec import DecodeError, Reader, Writer
from .framing import Addr, read_addr, write_addr
from .keys import WRITER_KEY_LEN, SessionKeys, read_root, writer_public_key

PREFIX = "covim1-"
PEER_PREFIX = "covim1p-"
READ_ONLY_PREFIX = "covim1r-"
SECRET_LEN = 16


class BadToken(ValueError):
    """The text the user gave is not a covim token."""


def _encode(prefix: str, addrs: tuple[Addr, ...], tail: bytes) -> str:
    w = Writer().u8(len(addrs))
    for addr in addrs:
        write_addr(w, addr)
    w.raw(tail)
    return prefix + base64.urlsafe_b64encode(w.bytes()).decode("ascii").rstrip("=")


def _decode(prefix: str, text: str, tail_len: int) -> tuple[tuple[Addr, ...], bytes]:
    text = text.strip()
    if not text.startswith(prefix):
        raise BadToken(f"not a covim token (it should start with {prefix!r})")
    body = text[len(prefix):]
    try:
        r = Reader(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        n = r.u8()
        if not 1 <= n <= 8:
            raise DecodeError(f"{n} addresses")
        addrs = tuple(read_addr(r) for _ in range(n))
        tail = r.raw(tail_len)
        if not r.at_end():
            raise DecodeError("trailing bytes")
    except (binascii.Error, ValueError) as exc:
        raise BadToken(f"damaged covim token ({exc})") from None
    return addrs, tail


@dataclass(frozen=True, slots=True)
class SessionToken:
    addrs: tuple[Addr, ...]
    session: int
    secret: bytes  # the write root; a read-only token's read root
    writer_public: bytes = b""  # set only in a read-only token

    @property
    def read_only(self) -> bool:
        return bool(self.writer_public)

    def keys(self) -> SessionKeys:
        if self.read_only:
            return SessionKeys.from_roots(self.session, read=self.secret, writer_public=self.writer_public)
        return SessionKeys.from_roots(self.session, write_root=self.secret)

    def read_only_token(self) -> "SessionToken":
        """The token to give guests who may read but not write."""
        if self.read_only:
            return self
        return SessionToken(self.addrs, self.session, read_root(self.session, self.secret),
                            writer_public_key(self.session, self.secret))

    def encode(self) -> str:
        if self.read_only:
            return _encode(READ_ONLY_PREFIX, self.addrs,
                           Writer().u64(self.session).raw(self.secret).raw(self.writer_public).bytes())
        return _encode(PREFIX, self.addrs, Writer().u64(self.session).raw(self.secret).bytes())

    @classmethod
    def decode(cls, text: str) -> "SessionToken":
        if text.strip().startswith(PEER_PREFIX):
            raise BadToken("that is a peer token, not a session covim token: the host admits it with :CoVim add")
        if text.strip().startswith(READ_ONLY_PREFIX):
            addrs, tail = _decode(READ_ONLY_PREFIX, text, 8 + SECRET_LEN + WRITER_KEY_LEN)
            r = Reader(tail)
            return cls(addrs, r.u64(), r.raw(SECRET_LEN), r.raw(WRITER_KEY_LEN))
        addrs, tail = _decode(PREFIX, text, 8 + SECRET_LEN)
        r = Reader(tail)
        return cls(addrs, r.u64(), r.raw(SECRET_LEN))


@dataclass(frozen=True, slots=True)
class PeerToken:
    addrs: tuple[Addr, ...]
    nonce: bytes

    def encode(self) -> str:
        return _encode(PEER_PREFIX, self.addrs, self.nonce)

    @classmethod
    def decode(cls, text: str) -> "PeerToken":
        if not text.strip().startswith(PEER_PREFIX):
            raise BadToken(f"not a peer token (it should start with {PEER_PREFIX!r}; make one with :CoVim start)")
        addrs, nonce = _decode(PEER_PREFIX, text, SECRET_LEN)
        return cls(addrs, nonce)
