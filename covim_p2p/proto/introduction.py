"""What a public introducer may know: a credential derived one-way from the token's secret.

A public ``covim-rendezvous`` introduces the members of sessions it cannot
read.  The token's 16-byte secret keys every peer datagram (seal.py); the
introducer gets only ``introduction_secret(session, secret)`` (keys.py: HKDF
through the read root), from which the secret cannot be computed, and peer
traffic is keyed by per-pair Noise handshakes it cannot complete (no psk).  Members seal their rendezvous messages to a public introducer
with a seal keyed by that credential, and prove membership with it in JOIN.

How a token says its introducer is public: bit 63 of the session id
(``PUBLIC_BIT``); a host picks ids below 2**63 otherwise, so the token
format is unchanged.  The host registers the session with REGISTER, sealed
to the server's X25519 key (registration.py), so an eavesdropper learns
neither the credential nor the session id from it.
"""

from __future__ import annotations

from .keys import SessionKeys

PUBLIC_BIT = 1 << 63
CREDENTIAL_LEN = 16


def introduction_secret(session: int, secret: bytes) -> bytes:
    """keys.py's introduction credential: derived through the read root, so read-only guests
    (who hold only that) can join too; it opens rendezvous traffic and nothing else."""
    return SessionKeys.from_roots(session, write_root=secret).introduction


def is_public(session: int) -> bool:
    return bool(session & PUBLIC_BIT)
