"""End-to-end encryption of every covim datagram, keyed by the session token.

Trust model: the token is the capability.  Whoever holds it may join, so it
holds the key: the 16-byte secret in the token (and, for ``:CoVim start``
invitations, the 16-byte nonce in the waiting peer's token) never travels in
clear, and nobody without it can read a keystroke, inject an edit or replay
a datagram.  What this does not give: forward secrecy (a leaked token opens
recorded traffic), or protection between members (they share the key, so a
member could forge another's sender id).

Layout: the 20-byte header stays in clear (the introducer and the host's
peer share a socket and demultiplex on it); the body becomes

    counter:u64 | ChaCha20-Poly1305(key[sender], nonce = counter, body, aad = header | counter)

Each sender has its own key, HKDF(master, "sender" | sender id), so two
senders never share a (key, nonce) pair, and each numbers its datagrams from
1.  Receivers keep, per sender, the highest counter seen and a window of the
1024 below it, and drop anything older or seen before (a replayed BYE would
otherwise tear a link down).
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .codec import DecodeError
from .framing import HEADER_LEN, Header, decode_datagram_untrusted, encode_datagram

OVERHEAD = 8 + 16  # counter + tag
WINDOW = 1024
MAX_SENDERS = 256
_U64 = struct.Struct("!Q")


def _hkdf(key: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


class DatagramSeal:
    """Seals what one socket's machines send and opens what they receive."""

    def __init__(self, secret: bytes, context: bytes) -> None:
        """``context``: what the key is for (the session id, or "invite"), so keys never mix."""
        self._master = _hkdf(secret, context, b"covim-p2p datagram key v3")
        self._keys: dict[int, ChaCha20Poly1305] = {}
        self._sent: dict[int, int] = {}  # sender -> last counter used
        self._seen: dict[int, tuple[int, int]] = {}  # sender -> (highest counter, bitmap of the window below)

    def _key(self, sender: int) -> ChaCha20Poly1305:
        key = self._keys.get(sender)
        if key is None:
            if len(self._keys) >= MAX_SENDERS:
                self._keys.pop(next(iter(self._keys)))
            key = self._keys[sender] = ChaCha20Poly1305(_hkdf(self._master, b"", b"sender" + _U64.pack(sender)))
        return key

    def seal(self, kind: int, session: int, sender: int, body: bytes) -> bytes:
        counter = self._sent.get(sender, 0) + 1
        self._sent[sender] = counter
        head = encode_datagram(kind, session, sender, b"")
        count = _U64.pack(counter)
        return head + count + self._key(sender).encrypt(bytes(4) + count, body, head + count)

    def open_untrusted(self, data: bytes) -> tuple[Header, bytes]:
        """The header and the plaintext body; DecodeError for anything forged, garbled or replayed."""
        header, sealed = decode_datagram_untrusted(data)
        if len(sealed) < OVERHEAD:
            raise DecodeError("sealed body too short")
        count = sealed[:8]
        counter = _U64.unpack(count)[0]
        top, bits = self._seen.get(header.sender, (0, 0))
        if counter == 0 or counter + WINDOW <= top or (counter <= top and bits >> (top - counter) & 1):
            raise DecodeError("replayed or too old")
        try:
            body = self._key(header.sender).decrypt(bytes(4) + count, sealed[8:], data[:HEADER_LEN] + count)
        except InvalidTag:
            raise DecodeError("does not open with this session's key") from None
        if counter > top:
            bits = (bits << (counter - top) | 1) & ((1 << WINDOW) - 1)
            top = counter
        else:
            bits |= 1 << (top - counter)
        if header.sender not in self._seen and len(self._seen) >= MAX_SENDERS:
            self._seen.pop(next(iter(self._seen)))
        self._seen[header.sender] = (top, bits)
        return header, body


def session_seal(session: int, secret: bytes) -> DatagramSeal:
    return DatagramSeal(secret, _U64.pack(session))


def invite_seal(nonce: bytes) -> DatagramSeal:
    return DatagramSeal(nonce, b"invite")
