"""Which key comes from which secret (labels of protocol v4, certificate of v5), and who holds what.

A session token carries the 16-byte *write root* ``s``; a read-only token
(``:CoVim token readonly``) carries instead the *read root* ``r`` and the
writers' public key ``W``.  Everything else is derived, with HKDF-SHA256
(salt = session id) and the labels below, so no key does two jobs::

    r            = HKDF(s, "covim-p2p v4 read root")[:16]
    introduction = HKDF(r, "covim-p2p v4 introduction")[:16]   rendezvous seal and JOIN credential
    handshake    = HKDF(r, "covim-p2p v4 handshake seal")[:16]  seal around Noise messages
    psk          = HKDF(r, "covim-p2p v4 peer psk")             the Noise XXpsk3 psk
    w            = HKDF(s, "covim-p2p v4 write key")            Ed25519 private key of the writers
    W            = Ed25519 public key of w

Who holds what: a writer everything; a read-only guest ``r`` and ``W`` (so
it handshakes and verifies writers, but cannot certify one); every peer,
writer or guest, its own author key (authorship.py), which no one else
holds; the introducer, embedded or public, only ``introduction``: it can
admit members and pass on their addresses and static keys, but it cannot
complete a Noise handshake (no psk), so it can neither read nor inject peer
traffic.

A writer's right to write is a certificate on its *author* key,
``Ed25519(w, "covim-p2p v5 writer" | session | author public key)``, not on
its static key: its signed records (authorship.py) outlive its links, so a
late joiner checks them against the certificate without ever meeting it.
The certificate alone proves nothing about who shows it: the handshake adds
the author's own signature over the static key (``link_proof``), and the
ledger checks every record's signature, so nobody without the author's
private key can use its certificate.  Traffic keys come from the handshake
alone.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

_U64 = struct.Struct("!Q")
CERT_LEN = 64
WRITER_KEY_LEN = 32


def _derive(root: bytes, session: int, label: str, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=_U64.pack(session),
                info=b"covim-p2p v4 " + label.encode()).derive(root)


def read_root(session: int, write_root: bytes) -> bytes:
    return _derive(write_root, session, "read root", 16)


def writer_public_key(session: int, write_root: bytes) -> bytes:
    private = Ed25519PrivateKey.from_private_bytes(_derive(write_root, session, "write key"))
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _cert_message(session: int, author_public: bytes) -> bytes:
    return b"covim-p2p v5 writer" + _U64.pack(session) + author_public


@dataclass(frozen=True)
class SessionKeys:
    session: int
    introduction: bytes
    handshake: bytes
    psk: bytes
    writer_public: bytes
    write_root: bytes | None  # None: a read-only guest

    @classmethod
    def from_roots(cls, session: int, *, write_root: bytes | None = None, read: bytes | None = None,
                   writer_public: bytes | None = None) -> "SessionKeys":
        if write_root is not None:
            read = read_root(session, write_root)
            writer_public = writer_public_key(session, write_root)
        if read is None or writer_public is None:
            raise ValueError("a read-only key set needs the read root and the writers' public key")
        return cls(session, _derive(read, session, "introduction", 16), _derive(read, session, "handshake seal", 16),
                   _derive(read, session, "peer psk"), writer_public, write_root)

    @property
    def can_write(self) -> bool:
        return self.write_root is not None

    def writer_cert(self, author_public: bytes) -> bytes:
        """The certificate of a writer's author key (b"" for a read-only guest)."""
        if self.write_root is None:
            return b""
        private = Ed25519PrivateKey.from_private_bytes(_derive(self.write_root, self.session, "write key"))
        return private.sign(_cert_message(self.session, author_public))

    def is_writer(self, author_public: bytes, cert: bytes) -> bool:
        if len(cert) != CERT_LEN:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.writer_public).verify(cert, _cert_message(self.session,
                                                                                                author_public))
        except InvalidSignature:
            return False
        return True
