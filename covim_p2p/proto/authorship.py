"""Who wrote what, provably: each peer signs its own document changes (protocol v5).

Why: per-pair keys (handshake.py) prove who sent a datagram, but not who
wrote what a datagram relays.  A late joiner gets the text of peers who
already left from whoever is still there; before v5 that relay was
trusted, so any writer could invent text under a departed peer's client
id.  Now every change carries its author's signature, and nobody can make
one for someone else.

Rules:

* **An author key per document.**  Each peer makes an Ed25519 key with its
  document and keeps it across a rejoin; its Yjs client id is *derived*
  from the public key (``client_id_of``: 53 bits of BLAKE2b, the most a
  Yjs client id holds), so a client id names one key.  To take another
  peer's client id a forger must find an Ed25519 key hashing to it
  (~2**53 key generations).
* **A writer certificate per author** (keys.py ``writer_cert``): the
  session's writer key signs the author's public key.  A read-only guest
  has an author key (its client id, for its cursor) but no certificate.
* **A record** is one signed change: ``author seq kind end deps update sig``.
  ``seq`` counts the author's records from 1; ``deps`` is the author's
  Yjs state vector from before the change (its causal dependencies);
  ``kind`` is ``CHANGE`` (one transaction) or ``CHECKPOINT`` (all of the
  author's items and the deletions it knew of, as of its record ``seq``:
  it replaces the records up to ``seq``); ``end`` is the author's Yjs
  clock after it (a Yjs update tells its clocks only when it starts at 0).  The signature covers the
  session id and every field (``_signed``), so a record means one thing in
  one session.
* Checks that need no public-key operation come first (sizes, the author's
  client only in ``update``): ``*_untrusted`` decoders never verify, the
  ledger (ledger.py) does, once per record it does not hold yet.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .codec import DecodeError, Reader, Writer

CLIENT_BITS = 53
PUBLIC_LEN = 32
SIG_LEN = 64
CHANGE, CHECKPOINT = 0, 1
MAX_UPDATE = 1 << 30
MAX_DEPS = 1 << 20
_U64 = struct.Struct("!Q")
_RECORD_LABEL = b"covim-p2p v5 record"
_LINK_LABEL = b"covim-p2p v5 link"


def client_id_of(author_public: bytes) -> int:
    """The Yjs client id of an author key (never 0)."""
    digest = hashlib.blake2b(author_public, digest_size=8, person=b"covim-client-id").digest()
    return (int.from_bytes(digest, "big") & ((1 << CLIENT_BITS) - 1)) or 1


def verify(public: bytes, signature: bytes, message: bytes) -> bool:
    if len(public) != PUBLIC_LEN or len(signature) != SIG_LEN:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


class AuthorKey:
    """Our signing key for one document; ``seed`` comes from the caller's randomness."""

    def __init__(self, seed: bytes) -> None:
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        self.public = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.client_id = client_id_of(self.public)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def link_proof(self, session: int, static_public: bytes) -> bytes:
        """Signed into a handshake (handshake.py): this author key speaks through that static key."""
        return self.sign(link_message(session, static_public))


def link_message(session: int, static_public: bytes) -> bytes:
    return _LINK_LABEL + _U64.pack(session) + static_public


@dataclass(frozen=True, slots=True)
class Record:
    author: bytes  # the author's Ed25519 public key
    seq: int
    kind: int
    deps: bytes  # a Yjs state vector
    update: bytes  # a Yjs v1 update holding items of the author's client id only
    end: int  # the author's clock after it (Yjs can tell only from 0: ledger.py checks it)
    sig: bytes

    @property
    def checkpoint(self) -> bool:
        return self.kind == CHECKPOINT

    def size(self) -> int:
        return len(self.deps) + len(self.update) + PUBLIC_LEN + SIG_LEN + 16


def _signed(session: int, author: bytes, seq: int, kind: int, deps: bytes, update: bytes, end: int) -> bytes:
    return (Writer().raw(_RECORD_LABEL).u64(session).raw(author).uint(seq).u8(kind).uint(end).blob(deps).bytes()
            + hashlib.blake2b(update, digest_size=32).digest())


def sign_record(key: AuthorKey, session: int, seq: int, kind: int, deps: bytes, update: bytes, end: int) -> Record:
    return Record(key.public, seq, kind, deps, update, end,
                  key.sign(_signed(session, key.public, seq, kind, deps, update, end)))


def record_signed(record: Record, session: int) -> bool:
    """The signature check (~50 us): the author made exactly this record for this session."""
    return verify(record.author, record.sig, _signed(session, record.author, record.seq, record.kind, record.deps,
                                                     record.update, record.end))


def write_record(w: Writer, record: Record) -> None:
    """Inside a bundle the author is written once, so a record is the rest."""
    w.uint(record.seq).u8(record.kind).uint(record.end).blob(record.deps).blob(record.update).raw(record.sig)


def read_record_untrusted(r: Reader, author: bytes) -> Record:
    seq, kind, end = r.uint(), r.u8(), r.uint()
    if seq < 1:
        raise DecodeError("record sequence number 0")
    if kind not in (CHANGE, CHECKPOINT):
        raise DecodeError(f"unknown record kind {kind}")
    deps, update = r.blob(MAX_DEPS), r.blob(MAX_UPDATE)
    if end >= 1 << CLIENT_BITS:
        raise DecodeError("a record's clock beyond 2**53")
    return Record(author, seq, kind, deps, update, end, r.raw(SIG_LEN))


MAX_AUTHORS_PER_BUNDLE = 1024
MAX_RECORDS_PER_AUTHOR = 1 << 20


@dataclass(frozen=True, slots=True)
class Material:
    """One author's records in a bundle, with the certificate that makes them a writer's."""
    author: bytes
    cert: bytes
    records: tuple[Record, ...]


def encode_bundle(materials: list[Material]) -> bytes:
    """``n | n x (author:32 | cert:blob | m | m x record)``; the body of a SIGNED message."""
    w = Writer().uint(len(materials))
    for m in materials:
        w.raw(m.author).blob(m.cert).uint(len(m.records))
        for record in m.records:
            write_record(w, record)
    return w.bytes()


def decode_bundle_untrusted(data: bytes) -> list[Material]:
    r = Reader(data)
    n = r.uint()
    if n > MAX_AUTHORS_PER_BUNDLE:
        raise DecodeError(f"a bundle of {n} authors")
    out = []
    for _ in range(n):
        author, cert, m = r.raw(PUBLIC_LEN), r.blob(SIG_LEN), r.uint()
        if m > MAX_RECORDS_PER_AUTHOR:
            raise DecodeError(f"{m} records of one author in a bundle")
        out.append(Material(author, cert, tuple(read_record_untrusted(r, author) for _ in range(m))))
    if not r.at_end():
        raise DecodeError("trailing bytes in a bundle")
    return out
