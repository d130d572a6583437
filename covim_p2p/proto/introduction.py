"""What a public introducer may know: a credential derived one-way from the token's secret.

A public ``covim-rendezvous`` introduces the members of sessions it cannot
read.  The token's 16-byte secret keys every peer datagram (seal.py); the
introducer gets only ``introduction_secret(session, secret)`` (keys.py: HKDF
through the read root), from which the secret cannot be computed, and peer
traffic is keyed by per-pair Noise handshakes it cannot complete (no psk).  Members seal their rendezvous messages to a public introducer
with a seal keyed by that credential, and prove membership with it in JOIN.

How a token says its introducer is public: bit 63 of the session id
(``PUBLIC_BIT``); a host picks ids below 2**63 otherwise, so the token
format is unchanged.  The host registers the session with REGISTER, the only
unsealed covim datagram: ``"CVRG" | session:u64 | credential:16``.  Whoever
sees that packet can join the introduction (learn names and addresses, and
announce members that will never answer a sealed HELLO), but can read or
forge no edit.
"""

from __future__ import annotations

import struct

from .codec import DecodeError
from .keys import SessionKeys

PUBLIC_BIT = 1 << 63
REGISTER_MAGIC = b"CVRG"
CREDENTIAL_LEN = 16
_REGISTER = struct.Struct("!4sQ16s")


def introduction_secret(session: int, secret: bytes) -> bytes:
    """keys.py's introduction credential: derived through the read root, so read-only guests
    (who hold only that) can join too; it opens rendezvous traffic and nothing else."""
    return SessionKeys.from_roots(session, write_root=secret).introduction


def is_public(session: int) -> bool:
    return bool(session & PUBLIC_BIT)


def encode_register(session: int, credential: bytes) -> bytes:
    return _REGISTER.pack(REGISTER_MAGIC, session, credential)


def decode_register_untrusted(data: bytes) -> tuple[int, bytes]:
    if len(data) != _REGISTER.size or not data.startswith(REGISTER_MAGIC):
        raise DecodeError("not a REGISTER datagram")
    _, session, credential = _REGISTER.unpack(data)
    if not is_public(session):
        raise DecodeError("REGISTER for a session that names no public introducer")
    return session, credential
