"""The signed material behind the shared text: every author's records, and what the document took.

Why: the document (document.py) may only ever hold changes their author
signed (authorship.py), or a writer could put words in a departed peer's
mouth.  The ledger keeps, per author, the records that make its part of the
text, verifies what arrives, feeds the document in causal order, and
answers a peer's WANT with exactly what that peer lacks.

Rules of the machine (one per document; pure, no clock):

* **Authors.**  An author is an Ed25519 public key with a writer
  certificate (keys.py), verified once, when first seen; an author whose
  certificate does not verify is refused ("read-only").  At most
  ``MAX_AUTHORS``; a new one beyond is refused ("too many authors"), and no
  author is ever evicted by what arrives.
* **Records.**  Per author: the newest checkpoint (``cp``) and the records
  after it.  ``known`` is the highest seq up to which we hold everything,
  ``applied`` the highest the document took.  A record at or below
  ``known`` is a duplicate, skipped before any signature check; a change far
  ahead of ``known`` (``MAX_AHEAD``) is dropped and comes again by WANT (a
  checkpoint never is: it replaces all before it, and is what a new peer gets).
  A record must verify ("forged edit"), and its update may add items of its
  author's client id only ("forged edit"); deletions it carries are its
  author's to make.  A record its author sent us itself, over a link whose
  handshake proved that author key (``sender``), is applied at once and its
  signature checked only when we first pass it on (``answer``): that keeps
  Ed25519 verification (~0.1 ms here) off the keystroke path.  One that
  fails then was the author's own doing; it is not passed on.  A newer
  checkpoint replaces the records it covers.
* **Causal delivery.**  pycrdt diverges when it sees an update before the
  items it builds on (DESIGN.md section 3), so an item goes to the document
  only once the document covers its ``deps``.  An author's next item is
  applied when its own deps are covered; a checkpoint can depend on a later
  change of another author whose checkpoint depends on it, so items still
  waiting are then merged and applied at once, for the largest set of
  authors whose needs that set covers (``_release``).
* **Our own.**  ``sign`` turns our transactions into records; ``checkpoint``
  signs all of our items as one (the document's encoding: deleted text is
  gone from it).  A peer that has none of our work gets a fresh checkpoint
  of it (``answer``), never the history, and we broadcast one whenever our
  records since the last outweigh it (``checkpoint_due``), so what others
  keep of us stays bounded.
* **WANT.**  A vector ``client -> seq``, shaped as a Yjs state vector
  (``ALL`` for an author asked elsewhere).  The answer holds, per author,
  the records after the asker's seq, or the checkpoint and all after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pycrdt import get_update, merge_updates

from .authorship import CHANGE, CHECKPOINT, AuthorKey, Material, Record, client_id_of, record_signed, sign_record
from .codec import DecodeError, Refused, read_varuint
from .document import ALL, SharedDocument, covers, decode_state_vector_untrusted, encode_state_vector
from .drops import Drops
from .keys import SessionKeys

MAX_AUTHORS = 1024
MAX_AHEAD = 4096
MAX_BYTES = 768 << 20
CHECKPOINT_MIN_BYTES = 64 << 10


@dataclass(slots=True)
class _Item:
    record: Record
    need: dict[int, int]  # deps, without the author's own client for a checkpoint
    signed: bool = True  # False: came from its author over a proven link, signature not checked yet


@dataclass
class _Author:
    public: bytes
    cert: bytes
    client: int
    cp: _Item | None = None
    records: dict[int, _Item] = field(default_factory=dict)  # seq > cp seq (or ahead of known)
    known: int = 0
    applied: int = 0

    @property
    def cp_seq(self) -> int:
        return self.cp.record.seq if self.cp else 0

    def next_item(self) -> _Item | None:
        if self.applied >= self.known:
            return None
        if self.cp is not None and self.applied < self.cp_seq:
            return self.cp
        return self.records[max(self.applied, self.cp_seq) + 1]

    def pending(self) -> list[_Item]:
        if self.applied >= self.known:
            return []
        items = [self.cp] if self.cp and self.applied < self.cp_seq else []
        start = max(self.applied, self.cp_seq)
        return items + [self.records[s] for s in range(start + 1, self.known + 1)]


def _has_structs(update: bytes, vector: dict[int, int]) -> bool:
    """Does ``update`` hold items beyond ``vector``?  (A v1 update starts with its count of clients.)"""
    try:
        return get_update(update, encode_state_vector(vector))[0] != 0
    except BaseException as exc:  # noqa: BLE001 - pycrdt panics are BaseExceptions
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise DecodeError(f"an update pycrdt cannot read ({type(exc).__name__})") from None


def items_only_of(update: bytes, client: int, start: int, end: int) -> None:
    """DecodeError("forged edit") unless ``update`` adds items of ``client`` only, from ``start``
    to ``end``: nothing of anyone else, nothing past ``end``, something at ``end - 1``, and its
    first item at ``start`` (a v1 update opens with: clients, structs, client, clock)."""
    if end < start or _has_structs(update, {client: end}):
        raise Refused("forged edit")
    if end > start:
        if not _has_structs(update, {client: end - 1}):
            raise Refused("forged edit")
        try:
            pos = 0
            for _ in range(3):
                _, pos = read_varuint(update, pos)
            first, _ = read_varuint(update, pos)
        except DecodeError:
            raise Refused("forged edit") from None
        if first != start:
            raise Refused("forged edit")


class Ledger:
    def __init__(self, session: int, keys: SessionKeys, document: SharedDocument, author: AuthorKey,
                 drops: Drops | None = None) -> None:
        self.session = session
        self.keys = keys
        self.document = document
        self.author = author
        self.drops = drops if drops is not None else Drops()
        self.authors: dict[bytes, _Author] = {}
        self.bytes = 0
        self.unshared = 0  # bytes of our records since we last broadcast a checkpoint
        self.cert = keys.writer_cert(author.public)
        self.own = self._add_author(author.public, self.cert)
        self.checkpoint(fresh=True)  # what the document holds already (a host's file) is ours to sign

    # ---- authors -------------------------------------------------------------

    def _add_author(self, public: bytes, cert: bytes) -> _Author:
        a = _Author(public, cert, client_id_of(public))
        self.authors[public] = a
        return a

    def register(self, public: bytes, cert: bytes) -> _Author | None:
        """An author as a handshake or a bundle names it; None (and counted) if refused."""
        a = self.authors.get(public)
        if a is not None:
            return a
        if not self.keys.is_writer(public, cert):
            self.drops.add("read-only")
            return None
        if len(self.authors) >= MAX_AUTHORS:
            self.drops.add("too many authors")
            return None
        return self._add_author(public, cert)

    # ---- our own work ----------------------------------------------------------

    def sign(self, changes: list[tuple[bytes, bytes]]) -> Material | None:
        """Our transactions ((deps, update) pairs, document.py) as records to broadcast."""
        if not self.cert or not changes:
            return None
        own, records = self.own, []
        ends = [decode_state_vector_untrusted(deps).get(own.client, 0) for deps, _ in changes[1:]]
        ends.append(self.document.have().get(own.client, 0))
        for (deps, update), end in zip(changes, ends):
            record = sign_record(self.author, self.session, own.known + 1, CHANGE, deps, update, end)
            self._store(own, _Item(record, decode_state_vector_untrusted(deps)))
            own.known = own.applied = record.seq
            self.unshared += record.size()
            records.append(record)
        return Material(self.author.public, self.cert, tuple(records))

    def checkpoint(self, fresh: bool = False) -> Material | None:
        """All of our items (and the deletions we know of) as one record; None if we have none.
        ``fresh``: the document may hold changes no record of ours has (made while we were not in
        the session), so the checkpoint takes a new seq, which peers holding our last one accept."""
        if not self.cert:
            return None
        own = self.own
        if own.cp is not None and own.cp_seq == own.known and not fresh:
            return Material(own.public, own.cert, (own.cp.record,))
        have = self.document.have()
        if not have.get(own.client) and own.known == 0 and self.document.byte_len() == 0:
            return None
        update = self.document.items_of(own.client)
        deps = {c: k for c, k in have.items() if c != own.client}
        seq = own.known if own.cp_seq < own.known and not fresh else own.known + 1
        record = sign_record(self.author, self.session, seq, CHECKPOINT, encode_state_vector(deps), update,
                             have.get(own.client, 0))
        self._set_checkpoint(own, _Item(record, deps))
        own.known = own.applied = seq
        return Material(own.public, own.cert, (record,))

    def checkpoint_due(self) -> bool:
        """Do our records since the last checkpoint we broadcast outweigh it and the text?  (What
        every peer keeps of us is then at most about twice the larger of the two.)"""
        own = self.own  # (a paste's record need not be followed by a checkpoint as big)
        return bool(self.cert) and self.unshared >= max(CHECKPOINT_MIN_BYTES, own.cp.record.size() if own.cp else 0,
                                                        self.document.byte_len())

    def shared_checkpoint(self) -> Material | None:
        """A checkpoint to broadcast (checkpoint_due)."""
        self.unshared = 0
        return self.checkpoint()

    # ---- theirs ------------------------------------------------------------------

    def receive(self, materials: list[Material], sender: bytes | None = None) -> None:
        """A decoded bundle: verify what is new, keep it, and give the document what it can take.
        ``sender``: the author key the link it came over proved (its own records need no check yet)."""
        for m in materials:
            a = self.register(m.author, m.cert)
            if a is None or a is self.own:
                continue
            for record in m.records:
                self._receive_record(a, record, record.author == sender)
        self._release()

    def _receive_record(self, a: _Author, record: Record, vouched: bool = False) -> None:
        if record.seq <= a.known and not (record.checkpoint and record.seq > a.cp_seq):
            return  # a duplicate: no signature check for it
        if not record.checkpoint and (record.seq > a.known + MAX_AHEAD or record.seq in a.records):
            self.drops.add("too far ahead" if record.seq > a.known else "duplicate")
            return
        if self.bytes + record.size() > MAX_BYTES:
            self.drops.add("ledger full")
            return
        if not vouched and not record_signed(record, self.session):
            self.drops.add("forged edit")
            return
        try:
            need = decode_state_vector_untrusted(record.deps)
            items_only_of(record.update, a.client, 0 if record.checkpoint else need.get(a.client, 0), record.end)
        except DecodeError as exc:
            self.drops.add_error(exc)
            return
        item = _Item(record, need, signed=not vouched)
        if record.checkpoint:
            need.pop(a.client, None)
            self._set_checkpoint(a, item)
        else:
            self._store(a, item)
        while a.known + 1 in a.records:
            a.known += 1

    def _store(self, a: _Author, item: _Item) -> None:
        a.records[item.record.seq] = item
        self.bytes += item.record.size()

    def _set_checkpoint(self, a: _Author, item: _Item) -> None:
        seq = item.record.seq
        gone = [s for s in a.records if s <= seq]
        freed = sum(a.records.pop(s).record.size() for s in gone) + (a.cp.record.size() if a.cp else 0)
        a.cp = item
        self.bytes += item.record.size() - freed
        a.known = max(a.known, seq)

    # ---- into the document -------------------------------------------------------

    def pending(self) -> int:
        """Items held until the document has what they build on."""
        return sum(len(a.pending()) for a in self.authors.values())

    def _release(self) -> None:
        progress = True
        while progress:
            progress = False
            have = self.document.have()
            for a in self.authors.values():
                while (item := a.next_item()) is not None and covers(have, item.need):
                    self.document.apply_verified(item.record.update)
                    a.applied = item.record.seq
                    have = self.document.have()
                    progress = True
        waiting = [(a, a.pending()) for a in self.authors.values() if a.applied < a.known]
        if not any(items[0].record.checkpoint for _, items in waiting):
            return
        have = self.document.have()
        while waiting:  # the largest set whose needs it covers together with the document
            provided = dict(have)
            for a, items in waiting:
                provided[a.client] = max(provided.get(a.client, 0), *(i.record.end for i in items))
            kept = [(a, items) for a, items in waiting if all(covers(provided, i.need) for i in items)]
            if len(kept) == len(waiting):
                break
            waiting = kept
        if waiting:
            updates = [i.record.update for _, items in waiting for i in items]
            self.document.apply_verified(merge_updates(*updates) if len(updates) > 1 else updates[0])
            for a, items in waiting:
                a.applied = items[-1].record.seq

    # ---- WANT and its answer ---------------------------------------------------------

    def want(self, elsewhere: set[int]) -> bytes:
        """Our vector; ``elsewhere``: clients whose authors we ask themselves (linked peers)."""
        vector = {a.client: a.known for a in self.authors.values() if a.known}
        vector.update(dict.fromkeys(elsewhere, ALL))
        return encode_state_vector(vector)

    def answer(self, vector_bytes: bytes) -> list[Material]:
        """What a peer whose WANT this is lacks (DecodeError if the vector is malformed)."""
        vector = decode_state_vector_untrusted(vector_bytes)
        out = []
        for a in self.authors.values():
            theirs = vector.get(a.client, 0)
            if theirs >= a.known:
                continue
            if a is self.own and theirs < max(a.cp_seq, 1):
                material = self.checkpoint()  # our work, as it is now: never its history
                if material is not None:
                    out.append(material)
                continue
            items = [a.cp] if a.cp and theirs < a.cp_seq else []
            items += [a.records[s] for s in range(max(theirs, a.cp_seq) + 1, a.known + 1)]
            records = []
            for item in items:  # a chain stops at a record that does not verify: the rest needs it
                if not item.signed:
                    if not record_signed(item.record, self.session):
                        self.drops.add("forged edit")
                        break
                    item.signed = True
                records.append(item.record)
            if records:
                out.append(Material(a.public, a.cert, tuple(records)))
        return out

