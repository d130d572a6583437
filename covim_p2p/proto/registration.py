"""REGISTER, sealed: how a host hands a public covim-rendezvous its session's introduction credential.

Why sealed: the credential (introduction.py, keys.py) opens every
rendezvous message of the session (names, addresses, static keys) and lets
its holder JOIN.  Sent in clear, any eavesdropper on the host's path learned
it.  The server must end up holding it, so it cannot be sealed with itself:
it is sealed to the server's X25519 key instead (an ECIES-style box), so an
on-path observer learns neither the credential nor the session id.

Rules of the exchange (client side: ``Registration``; server side:
public_introducer.py):

* The host sends KEY? until it knows the server's public key; the server
  answers KEY! with it.  KEY? is padded to be longer than KEY!, so the
  server amplifies nothing.
* The host then sends REGISTER = ``"CVRG" | e:32 | AEAD(k, 0, session:u64 |
  credential:16, ad = "CVRG" | e)`` with a fresh ephemeral key ``e`` and
  ``k = HKDF(X25519(e, S), salt = e | S, "covim-p2p v4 register")``; it
  repeats the same bytes as keepalive.
* A REGISTER that does not open (a forgery, or sealed to a key this server
  no longer has, say after a restart) is dropped and counted, and answered
  with KEY!, so a host whose server restarted re-registers by itself.  The
  host takes the latest KEY! from its introducer's address.

What this does not stop: an active man in the middle who answers KEY? with
its own key (trust on first use; nothing in a token pins the server's key).
Pure: the ephemeral key comes in from the caller.
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .codec import DecodeError
from .introduction import CREDENTIAL_LEN, is_public

KEY_REQUEST = b"CVRK"
KEY_REPLY = b"CVRP"
REGISTER_MAGIC = b"CVRG"
KEY_LEN = 32
KEY_REQUEST_LEN = 48  # longer than KEY_REPLY (36): no amplification
_BODY = struct.Struct("!Q16s")
REGISTER_LEN = 4 + KEY_LEN + _BODY.size + 16
_NONCE = bytes(12)


def public_key(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _key(shared: bytes, eph_public: bytes, server_public: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=eph_public + server_public,
                info=b"covim-p2p v4 register").derive(shared)


def encode_key_request() -> bytes:
    return KEY_REQUEST + bytes(KEY_REQUEST_LEN - len(KEY_REQUEST))


def encode_key_reply(server_public: bytes) -> bytes:
    return KEY_REPLY + server_public


def decode_key_reply_untrusted(data: bytes) -> bytes:
    if len(data) != len(KEY_REPLY) + KEY_LEN or not data.startswith(KEY_REPLY):
        raise DecodeError("not a KEY! datagram")
    return data[len(KEY_REPLY):]


def seal_register(session: int, credential: bytes, server_public: bytes, ephemeral: bytes) -> bytes:
    private = X25519PrivateKey.from_private_bytes(ephemeral)
    eph_public = public_key(ephemeral)
    shared = private.exchange(X25519PublicKey.from_public_bytes(server_public))
    head = REGISTER_MAGIC + eph_public
    box = ChaCha20Poly1305(_key(shared, eph_public, server_public)).encrypt(
        _NONCE, _BODY.pack(session, credential), head)
    return head + box


def open_register_untrusted(data: bytes, server_private: bytes) -> tuple[int, bytes]:
    """(session, credential) from a sealed REGISTER, or DecodeError."""
    if len(data) != REGISTER_LEN or not data.startswith(REGISTER_MAGIC):
        raise DecodeError("not a REGISTER datagram")
    eph_public = data[4:4 + KEY_LEN]
    try:
        shared = X25519PrivateKey.from_private_bytes(server_private).exchange(
            X25519PublicKey.from_public_bytes(eph_public))
        body = ChaCha20Poly1305(_key(shared, eph_public, public_key(server_private))).decrypt(
            _NONCE, data[4 + KEY_LEN:], data[:4 + KEY_LEN])
    except (InvalidTag, ValueError):  # ValueError: a low-order point (all-zero shared secret)
        raise DecodeError("REGISTER does not open") from None
    session, credential = _BODY.unpack(body)
    if not is_public(session):
        raise DecodeError("REGISTER for a session that names no public introducer")
    return session, credential


class Registration:
    """The host's side: what to send the server now, and the server's key when it tells us."""

    def __init__(self, session: int, credential: bytes, ephemeral: bytes) -> None:
        if len(credential) != CREDENTIAL_LEN or not is_public(session):
            raise ValueError("a REGISTER needs a public session and a 16-byte credential")
        self.session, self._credential, self._ephemeral = session, credential, ephemeral
        self.server_public: bytes | None = None
        self._sealed = b""

    def datagram(self) -> bytes:
        """KEY? until the server's key is known, then the sealed REGISTER (the same bytes each time)."""
        if self.server_public is None:
            return encode_key_request()
        if not self._sealed:
            self._sealed = seal_register(self.session, self._credential, self.server_public, self._ephemeral)
        return self._sealed

    def receive_key_reply_untrusted(self, data: bytes) -> bool:
        """The server's key (the caller checked it came from our introducer's address); True if new."""
        key = decode_key_reply_untrusted(data)
        if key == self.server_public:
            return False
        self.server_public, self._sealed = key, b""
        return True
