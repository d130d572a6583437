"""The Noise Protocol Framework (revision 34), as much of it as covim uses.

Why our own ~200 lines and not a package: the `noiseprotocol` package on
PyPI has had no release since 2020; this is the spec's pseudo-code
(sections 5 and 7-9), built only from standard primitives: X25519 and
ChaCha20-Poly1305 from ``cryptography``, BLAKE2s / SHA-256 and HMAC from the
standard library.  Nothing here is invented: tests/proto/test_noise.py
checks every handshake and transport message against the published
cacophony test vectors (tests/proto/data/noise_vectors.json).

Supported: the patterns NN, XX, NNpsk0 and XXpsk3; DH 25519; cipher
ChaChaPoly; hash BLAKE2s or SHA256.  Ephemeral keys come in from the caller
(this module reads no randomness): ``ephemeral`` is 32 random bytes.

Transport over datagrams (spec section 11.4, "out-of-order transport
messages"): ``CipherState.encrypt_at``/``decrypt_at`` take an explicit
nonce, which the sender writes in the clear and the receiver checks
against its replay window, as WireGuard does.  The AEAD object is made once
per key, so a datagram costs one encryption and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

DHLEN = 32
HASHLEN = 32
MAX_NONCE = 2**64 - 1  # reserved by the spec: never used to encrypt a message
_LE64 = struct.Struct("<Q")

PATTERNS: dict[str, tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]] = {
    # name: (pre-messages, message patterns); initiator writes the even ones
    "NN": ((), (("e",), ("e", "ee"))),
    "XX": ((), (("e",), ("e", "ee", "s", "es"), ("s", "se"))),
    "NNpsk0": ((), (("psk", "e"), ("e", "ee"))),
    "XXpsk3": ((), (("e",), ("e", "ee", "s", "es"), ("s", "se", "psk"))),
}
HASHES = {"BLAKE2s": hashlib.blake2s, "SHA256": hashlib.sha256}


class NoiseError(ValueError):
    """A handshake or transport message that does not authenticate, or a misuse."""


def public_key(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def dh(private: bytes, public: bytes) -> bytes:
    try:
        shared = X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:  # a low-order point gives all zeros: refuse it
        raise NoiseError("invalid public key") from None
    return shared


class CipherState:
    __slots__ = ("k", "n", "_aead")

    def __init__(self, k: bytes | None = None) -> None:
        self.initialize_key(k)

    def initialize_key(self, k: bytes | None) -> None:
        self.k = k
        self.n = 0
        self._aead = ChaCha20Poly1305(k) if k is not None else None

    def has_key(self) -> bool:
        return self.k is not None

    def encrypt_at(self, n: int, ad: bytes, plaintext: bytes) -> bytes:
        if self._aead is None:
            return plaintext
        if n >= MAX_NONCE:
            raise NoiseError("nonce exhausted: rekey first")
        return self._aead.encrypt(b"\0\0\0\0" + _LE64.pack(n), plaintext, ad)

    def decrypt_at(self, n: int, ad: bytes, ciphertext: bytes) -> bytes:
        if self._aead is None:
            return ciphertext
        if n >= MAX_NONCE:
            raise NoiseError("nonce exhausted")
        try:
            return self._aead.decrypt(b"\0\0\0\0" + _LE64.pack(n), ciphertext, ad)
        except InvalidTag:
            raise NoiseError("does not authenticate") from None

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        out = self.encrypt_at(self.n, ad, plaintext)
        if self._aead is not None:
            self.n += 1
        return out

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        out = self.decrypt_at(self.n, ad, ciphertext)
        if self._aead is not None:
            self.n += 1
        return out

    def rekey(self) -> None:
        """REKEY(k) = the first 32 bytes of ENCRYPT(k, maxnonce, zerolen, zeros) (spec 4.2); n is kept."""
        assert self._aead is not None
        n = self.n
        self.initialize_key(self._aead.encrypt(b"\0\0\0\0" + _LE64.pack(MAX_NONCE), bytes(32), b"")[:32])
        self.n = n


class SymmetricState:
    def __init__(self, protocol_name: bytes, hash_name: str) -> None:
        self._hash = HASHES[hash_name]
        self.h = protocol_name.ljust(HASHLEN, b"\0") if len(protocol_name) <= HASHLEN else self._H(protocol_name)
        self.ck = self.h
        self.cipher = CipherState()

    def _H(self, data: bytes) -> bytes:
        return self._hash(data).digest()

    def _hkdf(self, ikm: bytes, n: int) -> list[bytes]:
        temp = hmac.new(self.ck, ikm, self._hash).digest()
        out, prev = [], b""
        for i in range(1, n + 1):
            prev = hmac.new(temp, prev + bytes([i]), self._hash).digest()
            out.append(prev)
        return out

    def mix_key(self, ikm: bytes) -> None:
        self.ck, temp_k = self._hkdf(ikm, 2)
        self.cipher.initialize_key(temp_k[:32])

    def mix_hash(self, data: bytes) -> None:
        self.h = self._H(self.h + data)

    def mix_key_and_hash(self, ikm: bytes) -> None:
        self.ck, temp_h, temp_k = self._hkdf(ikm, 3)
        self.mix_hash(temp_h)
        self.cipher.initialize_key(temp_k[:32])

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        k1, k2 = self._hkdf(b"", 2)
        return CipherState(k1[:32]), CipherState(k2[:32])


class HandshakeState:
    """One side of a handshake.  ``write_message``/``read_message`` alternate as the
    pattern says; once ``complete``, ``split()`` gives (initiator->responder,
    responder->initiator) cipher states and ``handshake_hash`` binds the session."""

    def __init__(self, pattern: str, initiator: bool, *, prologue: bytes = b"", static: bytes | None = None,
                 ephemeral: bytes | None = None, psk: bytes | None = None, hash_name: str = "BLAKE2s",
                 remote_static: bytes | None = None) -> None:
        if pattern not in PATTERNS:
            raise ValueError(f"unsupported Noise pattern {pattern}")
        self.pattern = pattern
        self.protocol_name = f"Noise_{pattern}_25519_ChaChaPoly_{hash_name}"
        self.ss = SymmetricState(self.protocol_name.encode("ascii"), hash_name)
        self.ss.mix_hash(prologue)
        self.initiator = initiator
        self.s = static
        self.e = ephemeral
        self.rs = remote_static
        self.re: bytes | None = None
        self.psk = psk
        self._psk_mode = "psk" in pattern
        if self._psk_mode and (psk is None or len(psk) != 32):
            raise ValueError("a psk pattern needs a 32-byte psk")
        self._messages = PATTERNS[pattern][1]
        self._index = 0

    @property
    def complete(self) -> bool:
        return self._index >= len(self._messages)

    @property
    def my_turn(self) -> bool:
        return not self.complete and (self._index % 2 == 0) == self.initiator

    @property
    def handshake_hash(self) -> bytes:
        return self.ss.h

    def _dh(self, token: str) -> bytes:
        local, remote = (token[0], token[1]) if self.initiator else (token[1], token[0])
        priv = self.e if local == "e" else self.s
        pub = self.re if remote == "e" else self.rs
        if priv is None or pub is None:
            raise NoiseError(f"missing key for {token}")
        return dh(priv, pub)

    def write_message(self, payload: bytes = b"") -> bytes:
        if not self.my_turn:
            raise NoiseError("not our turn to write")
        out = bytearray()
        for token in self._messages[self._index]:
            if token == "e":
                if self.e is None:
                    raise NoiseError("no ephemeral key")
                pub = public_key(self.e)
                out += pub
                self.ss.mix_hash(pub)
                if self._psk_mode:
                    self.ss.mix_key(pub)
            elif token == "s":
                if self.s is None:
                    raise NoiseError("no static key")
                out += self.ss.encrypt_and_hash(public_key(self.s))
            elif token == "psk":
                assert self.psk is not None
                self.ss.mix_key_and_hash(self.psk)
            else:
                self.ss.mix_key(self._dh(token))
        out += self.ss.encrypt_and_hash(payload)
        self._index += 1
        return bytes(out)

    def read_message(self, message: bytes) -> bytes:
        if self.complete or self.my_turn:
            raise NoiseError("not expecting a handshake message")
        pos = 0
        for token in self._messages[self._index]:
            if token == "e":
                if len(message) < pos + DHLEN:
                    raise NoiseError("handshake message too short")
                self.re = bytes(message[pos:pos + DHLEN])
                pos += DHLEN
                self.ss.mix_hash(self.re)
                if self._psk_mode:
                    self.ss.mix_key(self.re)
            elif token == "s":
                n = DHLEN + (16 if self.ss.cipher.has_key() else 0)
                if len(message) < pos + n:
                    raise NoiseError("handshake message too short")
                self.rs = self.ss.decrypt_and_hash(bytes(message[pos:pos + n]))
                pos += n
            elif token == "psk":
                assert self.psk is not None
                self.ss.mix_key_and_hash(self.psk)
            else:
                self.ss.mix_key(self._dh(token))
        payload = self.ss.decrypt_and_hash(bytes(message[pos:]))
        self._index += 1
        return payload

    def split(self) -> tuple[CipherState, CipherState]:
        if not self.complete:
            raise NoiseError("handshake not complete")
        return self.ss.split()
