"""End-to-end encryption of every covim datagram, keyed by the session token (protocol v4).

Trust model: the token is the capability.  Whoever holds it may join, so it
holds the key: the 16-byte secret in the token (and, for ``:CoVim start``
invitations, the 16-byte nonce in the waiting peer's token) never travels in
clear, and nobody without it can read a keystroke, inject an edit or replay
a datagram.  What this does not give: forward secrecy (a leaked token opens
recorded traffic), or protection between members (they share the key, so a
member could forge another's sender id).

Layout: the 20-byte header stays in clear (the introducer and the host's
peer share a socket and demultiplex on it); the body becomes

    instance:16 | counter:u64 | ChaCha20-Poly1305(key[sender, instance], nonce = 0:u32 | counter, body,
                                                  aad = header | instance | counter | receiver:u64)

Rules:

* **No (key, nonce) pair twice, by construction.**  Every seal object draws
  16 random bytes, its *instance*, when it is made (the caller passes them in:
  this module reads no randomness), and the key is
  HKDF(master, salt = instance, info = "sender" | sender).  So two seals never
  share a key, whatever else they share: two introducers of one session (both
  speak as sender 0), a restarted peer, two invitations for one peer token.
  Within one seal the counter only grows (from 1; 2^64 datagrams never come).
* **Receiver binding.**  The receiver's peer id (0 for the introducer and
  for invitations) is in the associated data: a datagram sealed for Z does
  not open at Y, so a recorded datagram replayed to another member diverts
  nothing.
* **Replay.**  Receivers keep, per (sender, instance), the highest counter
  seen and a window of the 1024 below it, and drop anything older or seen
  before.
* **Cheap rejection, caches that do not churn.**  Opening a datagram from a
  (sender, instance) we have not authenticated yet costs a key derivation;
  those are rate-limited (``DERIVE_RATE``/s, burst ``DERIVE_BURST``, clock
  passed in), and a key enters the cache only once a datagram opened with it.
  The cache is bounded (``MAX_STREAMS``, ``MAX_PER_SENDER``) and refuses new
  entries when full rather than evicting authenticated ones.
* Every refusal is a :class:`SealError` (a DecodeError) naming its reason,
  so the machines count drops by reason.
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .codec import DecodeError
from .framing import HEADER_LEN, Header, decode_datagram_untrusted, encode_datagram

INSTANCE_LEN = 16
OVERHEAD = INSTANCE_LEN + 8 + 16  # instance + counter + tag
WINDOW = 1024
MAX_STREAMS = 1024  # authenticated (sender, instance) pairs a receiver remembers
MAX_PER_SENDER = 4  # instances per sender id (several introducers may speak as sender 0)
DERIVE_RATE = 200.0  # new-key derivations per second (~7 µs each), for datagrams from unknown streams
DERIVE_BURST = 128.0  # >= MAX_MEMBERS: a whole session may join at once
_U64 = struct.Struct("!Q")
_PREFIX = HEADER_LEN + INSTANCE_LEN + 8


class SealError(DecodeError):
    """A datagram the seal refuses; ``reason`` is the short key drops are counted under."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason


def _hkdf(key: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


class _Stream:
    __slots__ = ("aead", "top", "bits")

    def __init__(self, aead: ChaCha20Poly1305) -> None:
        self.aead = aead
        self.top = 0
        self.bits = 0


class DatagramSeal:
    """Seals what one socket's machines send and opens what they receive."""

    def __init__(self, secret: bytes, context: bytes, instance: bytes) -> None:
        """``context``: what the key is for (the session id, or "invite"), so keys never mix;
        ``instance``: 16 fresh random bytes, never given to another seal."""
        if len(instance) != INSTANCE_LEN:
            raise ValueError(f"a seal instance is {INSTANCE_LEN} random bytes")
        self._master = _hkdf(secret, context, b"covim-p2p datagram key v4")
        self.instance = bytes(instance)
        self._own: dict[int, ChaCha20Poly1305] = {}  # sender id we seal as -> key
        self._sent: dict[int, int] = {}  # sender -> last counter used
        self._streams: dict[tuple[int, bytes], _Stream] = {}
        self._per_sender: dict[int, int] = {}
        self._tokens = DERIVE_BURST
        self._last: float | None = None

    def _derive(self, sender: int, instance: bytes) -> ChaCha20Poly1305:
        return ChaCha20Poly1305(_hkdf(self._master, instance, b"sender" + _U64.pack(sender)))

    def seal(self, kind: int, session: int, sender: int, body: bytes, receiver: int) -> bytes:
        key = self._own.get(sender)
        if key is None:
            key = self._own[sender] = self._derive(sender, self.instance)
        counter = self._sent.get(sender, 0) + 1
        self._sent[sender] = counter
        count = _U64.pack(counter)
        head = encode_datagram(kind, session, sender, self.instance + count)
        return head + key.encrypt(bytes(4) + count, body, head + _U64.pack(receiver))

    def knows(self, data: bytes) -> bool:
        """Opening this would not cost a key derivation (its stream is authenticated already)."""
        if len(data) < _PREFIX:
            return False
        return (_U64.unpack_from(data, 12)[0], data[HEADER_LEN:HEADER_LEN + INSTANCE_LEN]) in self._streams

    def _allow_derivation(self, now: float) -> bool:
        if self._last is not None:
            self._tokens = min(DERIVE_BURST, self._tokens + max(0.0, now - self._last) * DERIVE_RATE)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def open_untrusted(self, data: bytes, receiver: int, now: float) -> tuple[Header, bytes]:
        """The header and the plaintext body; SealError for anything forged, garbled, replayed or
        sealed for someone else."""
        header, sealed = decode_datagram_untrusted(data)
        if len(sealed) < OVERHEAD:
            raise SealError("garbled", "sealed body too short")
        instance = sealed[:INSTANCE_LEN]
        count = sealed[INSTANCE_LEN:INSTANCE_LEN + 8]
        counter = _U64.unpack(count)[0]
        if counter == 0:
            raise SealError("garbled", "counter 0 is never sent")
        key = (header.sender, instance)
        stream = self._streams.get(key)
        if stream is None:
            if len(self._streams) >= MAX_STREAMS or self._per_sender.get(header.sender, 0) >= MAX_PER_SENDER:
                raise SealError("too many senders", "no room for another sender's key")
            if not self._allow_derivation(now):
                raise SealError("rate", "too many datagrams from unknown senders")
            fresh = _Stream(self._derive(header.sender, instance))
            top, bits, aead = 0, 0, fresh.aead
        else:
            fresh = None
            top, bits, aead = stream.top, stream.bits, stream.aead
        if counter + WINDOW <= top or (counter <= top and bits >> (top - counter) & 1):
            raise SealError("replayed", "replayed or too old")
        try:
            body = aead.decrypt(bytes(4) + count, sealed[INSTANCE_LEN + 8:], data[:_PREFIX] + _U64.pack(receiver))
        except InvalidTag:
            raise SealError("forged", "does not open with this session's key (or was sealed for another peer)") \
                from None
        if counter > top:
            bits = (bits << (counter - top) | 1) & ((1 << WINDOW) - 1)
            top = counter
        else:
            bits |= 1 << (top - counter)
        if fresh is not None:
            stream = self._streams[key] = fresh
            self._per_sender[header.sender] = self._per_sender.get(header.sender, 0) + 1
        assert stream is not None
        stream.top, stream.bits = top, bits
        return header, body


def session_seal(session: int, secret: bytes, instance: bytes) -> DatagramSeal:
    return DatagramSeal(secret, _U64.pack(session), instance)


def invite_seal(nonce: bytes, instance: bytes) -> DatagramSeal:
    """Invitations: keyed by the waiting peer's nonce; each invitation is a seal of its own."""
    return DatagramSeal(nonce, b"invite", instance)
