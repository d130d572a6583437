"""The session's pycrdt document: local edits in, remote edits out, causal delivery.

Rules:

* One ``Y.Text`` named ``content`` holds the buffer as ``"\\n".join(lines)``;
  indices are UTF-8 bytes (pycrdt 0.14.13, pinned; a test pins the unit).
* A ``Y.Map`` named ``meta`` beside it carries the host's file ``name`` (a
  base name) and ``filetype``, as plain strings: Yjs peers read and write it
  as any map.  Receivers treat it as untrusted (``meta_untrusted``).
* Every local transaction yields its update and our state vector from just
  before it (its *dependencies*); the ledger (ledger.py) signs them, and
  gives us others' updates only once we hold their dependencies: pycrdt
  diverges on out-of-causal-order updates (DESIGN.md section 3).
* Remote changes are observed without calling out (we may be inside a
  pycrdt transaction): they are queued as TextEdits for the editor to take.
* Undo is the CRDT's, not Neovim's: Neovim's ``u`` would also revert other
  people's edits.  An UndoManager tracks only our own origin; what it undoes
  reaches the buffer like a remote edit and the peers like a local one.
* Deleted text is gone from what we send.  An UndoManager keeps the items it
  may restore alive, so on the shared Doc it made ``get_update`` ship every
  deleted word to every later joiner.  The shared Doc therefore has none: it
  garbage-collects deleted text.  The UndoManager lives on a *mirror*, a
  local-only Doc holding the same text (our edits applied to both, everyone
  else's replayed into it from the shared Doc's events).  An undo runs on the
  mirror, and its delta is applied to the shared Doc as a new change.  The
  mirror never leaves this process.
* Each local transaction is sent as *its own* update, captured from the
  document's update event, not ``get_update(before)``: the latter carries the
  whole document's delete set, ~10 KB per keystroke late in a real trace.
* A big insert is one transaction: cutting a 13 MB paste into 16 KB pieces
  made it 100x slower in pycrdt (4.4 s instead of 0.04 s), since every piece
  pays for finding its position.  The channel fragments the update anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pycrdt import Awareness, Doc, Map, StickyIndex, Text, UndoManager
from pycrdt._transaction import hash_origin

from ..editor.edits import TextEdit, coalesce, delta_to_edits
from .codec import DecodeError, write_varuint

LOCAL = "covim-local"
UNDO = "covim-undo"  # an undo, applied to the shared Doc: it must reach the buffer, not the mirror again
TEXT_NAME = "content"
META_NAME = "meta"  # a Y.Map beside the text: the host's file "name" (a base name) and "filetype"
META_MAX = 255  # bytes per meta value; longer or non-string values are ignored
ALL = 2**53 - 1  # a clock no client reaches: "I have all of it"
UNDO_CAPTURE_MS = 500  # keystrokes closer than this undo together, like one insert in Neovim


def decode_state_vector_untrusted(sv: bytes) -> dict[int, int]:
    """Decode a Yjs state vector (count, then client/clock varuint pairs).

    Called for every update received (its dependencies and our own state), so
    it is a tight loop rather than codec.Reader calls: ~3x faster on the replay
    of real editing traces.
    """
    numbers: list[int] = []
    value = shift = 0
    for byte in sv:
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            numbers.append(value)
            value = shift = 0
        else:
            shift += 7
            if shift > 63:
                raise DecodeError("varuint longer than 10 bytes in a state vector")
    if shift or not numbers:
        raise DecodeError("truncated state vector")
    n = numbers[0]
    if len(numbers) != 1 + 2 * n:
        raise DecodeError(f"state vector claims {n} clients but holds {(len(numbers) - 1) / 2:g}")
    return dict(zip(numbers[1::2], numbers[2::2]))


def encode_state_vector(vector: dict[int, int]) -> bytes:
    """The lib0 encoding Yjs uses (count, then client/clock varuint pairs); a WANT's too (ledger.py)."""
    out = bytearray()
    write_varuint(out, len(vector))
    for client, clock in vector.items():
        write_varuint(out, client)
        write_varuint(out, clock)
    return bytes(out)


def covers(have: dict[int, int], need: dict[int, int]) -> bool:
    return all(have.get(client, 0) >= clock for client, clock in need.items())


class ClockedAwareness(Awareness):
    """pycrdt's Awareness reads time.time(); ours takes the clock from the machine."""

    def __init__(self, doc: Doc) -> None:
        self.now_ms = 0
        super().__init__(doc)

    def _get_time(self) -> int:
        return self.now_ms


def _apply(doc: Doc, text: Text, edits: list[TextEdit], origin: str) -> None:
    """``edits`` in sequence, as one transaction."""
    with doc.transaction(origin=origin):
        for edit in edits:
            if edit.delete:
                del text[edit.offset : edit.offset + edit.delete]
            if edit.insert:
                text.insert(edit.offset, edit.insert)


class SharedDocument:
    def __init__(self, client_id: int, initial_text: str = "") -> None:
        self.doc: Doc = Doc(client_id=client_id)  # GC on and no UndoManager: deleted text is really gone
        # Set by the node that first holds it, and kept with it across a rejoin: the author key
        # its client id derives from, and the ledger of signed changes behind it (ledger.py).
        self.author: Any = None
        self.ledger: Any = None
        self.text: Text = self.doc.get(TEXT_NAME, type=Text)
        self.awareness = ClockedAwareness(self.doc)
        self._remote_edits: list[TextEdit] = []
        self.now_ms = 0  # set by the node before local changes: the undo manager's clock
        self._local_origin = hash_origin(LOCAL)
        self._undo_origin = hash_origin(UNDO)
        self._sub = self.text.integrated.observe(self._on_text_event)
        # The mirror: local-only, same text; the only place deleted text of ours lives on (for undo).
        self._mirror_doc = Doc()
        self._mirror: Text = self._mirror_doc.get(TEXT_NAME, type=Text)
        self._mirror_backlog: list[TextEdit] = []  # others' changes not yet replayed into the mirror
        self._undone: list[TextEdit] | None = None  # the mirror's delta while an undo runs
        self._mirror_sub = self._mirror.integrated.observe(self._on_mirror_event)
        self.undo_manager = UndoManager(scopes=[self._mirror], capture_timeout_millis=UNDO_CAPTURE_MS,
                                        timestamp=lambda: self.now_ms)
        self.undo_manager.include_origin(LOCAL)
        if initial_text:
            self.local_edits([TextEdit(0, 0, initial_text)])
            self.undo_manager.clear()  # like a file just opened in Vim: its content is not an undoable change

    @property
    def client_id(self) -> int:
        return self.doc.client_id

    def __str__(self) -> str:
        return str(self.text)

    def byte_len(self) -> int:
        return len(self.text)

    # ---- local side ------------------------------------------------------

    def local_edits(self, edits: list[TextEdit]) -> list[tuple[bytes, bytes]]:
        """Apply the editor's edits; returns (dependencies, update) pairs to broadcast.

        Offsets must fall on UTF-8 character boundaries (pycrdt silently appends or
        truncates otherwise).  The shadow buffer guarantees that by construction and
        its property tests pin it; checking here would cost a copy of the whole text
        per keystroke.
        """
        # A burst (a macro, a paste, fast typing) becomes one transaction and one
        # update: per-transaction costs (state vector, encoding, a message per peer)
        # dominated the replay of real editing traces.  The caller bounds the burst.
        length = len(self.text)
        for edit in edits:  # validate all first: pycrdt cannot roll a transaction back
            if edit.offset < 0 or edit.delete < 0 or edit.offset + edit.delete > length:
                raise ValueError(f"edit {edit.offset}+{edit.delete} outside a text of {length} bytes")
            length += len(edit.insert.encode("utf-8")) - edit.delete
        text = self.text
        edits = coalesce(edits)

        self._catch_up_mirror()
        _apply(self._mirror_doc, self._mirror, edits, LOCAL)  # the undo manager records it here
        return self._capture(lambda: _apply(self.doc, text, edits, LOCAL))

    def undo(self, redo: bool = False) -> list[tuple[bytes, bytes]]:
        """Undo (or redo) our own last change on the mirror; returns what to broadcast."""
        self._catch_up_mirror()
        self._undone = []
        try:
            (self.undo_manager.redo if redo else self.undo_manager.undo)()
            edits, self._undone = self._undone, None
        finally:
            self._undone = None
        if not edits:
            return []
        return self._capture(lambda: _apply(self.doc, self.text, edits, UNDO))

    def _on_mirror_event(self, event: Any) -> None:
        if self._undone is not None:
            self._undone.extend(delta_to_edits(event.delta))

    def _catch_up_mirror(self) -> None:
        """Replay the others' changes into the mirror, in the order the shared Doc saw them."""
        if self._mirror_backlog:
            backlog, self._mirror_backlog = self._mirror_backlog, []
            _apply(self._mirror_doc, self._mirror, backlog, "covim-remote")

    def _capture(self, change: Callable[[], Any]) -> list[tuple[bytes, bytes]]:
        """Run ``change``; (dependencies, update) for each transaction it made, the
        dependencies being the state vector just before that transaction."""
        changes: list[tuple[bytes, bytes]] = []
        sub = self.doc.observe(lambda event: changes.append((event.before_state, event.update)))
        try:
            change()
        finally:
            self.doc.unobserve(sub)
        return changes

    # ---- the session's file: name and filetype ---------------------------

    def set_meta(self, **values: str) -> list[tuple[bytes, bytes]]:
        """The host says what the shared text is (name=, filetype=); returns what to broadcast."""
        meta = self.doc.get(META_NAME, type=Map)

        def change() -> None:
            with self.doc.transaction(origin=LOCAL):
                for key, value in values.items():
                    meta[key] = str(value)
        return self._capture(change)

    def meta_untrusted(self) -> dict[str, str]:
        """The meta map as a peer wrote it: string values of at most META_MAX bytes only."""
        try:
            items = dict(self.doc.get(META_NAME, type=Map))
        except Exception:  # noqa: BLE001 - a peer put another type under that name
            return {}
        return {k: v for k, v in items.items()
                if isinstance(k, str) and isinstance(v, str) and len(v.encode("utf-8")) <= META_MAX}

    # ---- remote side -----------------------------------------------------

    def _on_text_event(self, event: Any) -> None:
        # Remote changes and undo/redo must reach the buffer; our own edits are in it already.
        origin = event.transaction.origin()
        if origin != self._local_origin:
            edits = delta_to_edits(event.delta)
            self._remote_edits.extend(edits)
            if origin != self._undo_origin:  # an undo came from the mirror: it has it already
                self._mirror_backlog.extend(edits)

    def requeue_remote_edits(self, edits: list[TextEdit]) -> None:
        """Remote edits taken but never shown (a session ended first): the next taker gets them first."""
        self._remote_edits[:0] = edits

    def has_remote_edits(self) -> bool:
        return bool(self._remote_edits)

    def take_remote_edits(self) -> list[TextEdit]:
        if len(self._mirror_backlog) > 256:  # a reader who never types: keep the backlog small
            self._catch_up_mirror()
        edits, self._remote_edits = self._remote_edits, []
        return edits

    def state_vector(self) -> bytes:
        return self.doc.get_state()

    def have(self) -> dict[int, int]:
        """Client id -> clock: what the document holds (a decoded state vector)."""
        return decode_state_vector_untrusted(self.doc.get_state())

    def apply_verified(self, update: bytes) -> None:
        """An update the ledger (ledger.py) verified, whose dependencies we hold."""
        if update != b"\x00\x00":
            self.doc.apply_update(update)

    def items_of(self, client: int) -> bytes:
        """A Yjs update with ``client``'s items only (deleted ones as bare ranges) and every
        deletion we know of: the body of that author's checkpoint (ledger.py)."""
        vector = dict.fromkeys(self.have(), ALL)
        vector[client] = 0
        return self.doc.get_update(encode_state_vector(vector))

    # ---- cursors ---------------------------------------------------------

    def sticky(self, offset: int) -> dict:
        """Our cursor for the awareness state, as a plain UTF-8 byte offset.

        pycrdt 0.14.13 counts a StickyIndex in bytes across items but in UTF-16
        units inside the item holding the position (found by our tests), so it is
        wrong after any non-ASCII character, and it panics at the very end and in
        an empty text.  A byte offset is exact when sent and is refreshed on every
        cursor move; receivers clamp it and round it down to a character.
        """
        return {"offset": max(0, min(offset, len(self.text)))}

    def resolve_sticky(self, data: Any) -> int | None:
        """Resolve a peer's cursor, or None.  Validated first: pycrdt panics on an item
        we do not have, and a panic inside a pynvim greenlet kills the whole host."""
        if not isinstance(data, dict):
            return None
        if isinstance(data.get("offset"), int):
            return max(0, min(data["offset"], len(self.text)))
        item = data.get("item")
        if not isinstance(item, dict) or data.get("assoc") not in (0, -1):
            return None
        client, clock = item.get("client"), item.get("clock")
        if not (isinstance(client, int) and isinstance(clock, int)) or clock < 0:
            return None
        if clock >= self.have().get(client, 0):
            return None
        try:
            return StickyIndex.from_json(data, self.text).get_index()
        except BaseException as exc:  # noqa: BLE001 - belt and braces; see docstring
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return None
