"""Text edits in the one unit both ends of the bridge share: UTF-8 bytes.

Why bytes: pycrdt 0.14.13 indexes Y.Text by UTF-8 byte (``len``, ``insert``,
``del`` and observer deltas alike) and Neovim's columns are byte columns, so
keeping every offset in bytes means no unit conversion on the keystroke path.
The price is that an offset can land inside a multi-byte character, which
pycrdt does not reject (it silently appends, truncates or panics; see
DESIGN.md section 3), so every consumer of a foreign offset must validate it:
``apply_edit_to_str`` here and ``ShadowBuffer.apply`` do.

A Yjs peer written in JavaScript counts UTF-16 units instead; that only
changes *its* deltas, never ours, because each side reads deltas from its own
document.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TextEdit", "apply_edit_to_str", "coalesce", "cut_big_inserts", "delta_to_edits", "is_char_boundary"]


@dataclass(frozen=True, slots=True)
class TextEdit:
    """Replace ``delete`` bytes at byte ``offset`` by ``insert``.

    The offset is relative to the text *before* this edit. A list of edits is
    applied one after another (like a Yjs delta, unlike a diff against one base
    text), so each edit sees the result of the previous ones.
    """

    offset: int  # UTF-8 byte offset in the text before this edit
    delete: int  # number of UTF-8 bytes deleted at offset
    insert: str  # text inserted at offset (after the deletion)


def is_char_boundary(data: bytes, index: int) -> bool:
    """True if ``index`` (0..len) does not fall inside a UTF-8 sequence.

    A position is inside a character exactly when the byte there is a
    continuation byte (0b10xxxxxx); the ends are always boundaries.
    """
    if index == len(data):
        return True
    return 0 <= index < len(data) and (data[index] & 0xC0) != 0x80


def apply_edit_to_str(text: str, edit: TextEdit) -> str:
    """Reference implementation of one edit on a plain string.

    Deliberately naive (encodes the whole text): it is the model the tests
    check the incremental ``ShadowBuffer`` against, and it rejects exactly the
    offsets that would corrupt a pycrdt document.
    """
    data = text.encode()
    end = edit.offset + edit.delete
    if edit.offset < 0 or edit.delete < 0 or end > len(data):
        raise ValueError(
            f"edit {edit.offset}+{edit.delete} out of range for a text of {len(data)} bytes"
        )
    if not is_char_boundary(data, edit.offset) or not is_char_boundary(data, end):
        raise ValueError(
            f"edit {edit.offset}+{edit.delete} does not fall on UTF-8 character boundaries"
        )
    return (data[: edit.offset] + edit.insert.encode() + data[end:]).decode()


def _count(op: dict, key: str) -> int:
    n = op[key]
    if type(n) is not int or n < 0:  # bool is an int subclass: reject it too
        raise ValueError(f"delta op {op!r}: {key} must be a non-negative int")
    return n


def delta_to_edits(delta: list[dict]) -> list[TextEdit]:
    """Turn a Y.Text delta into sequential ``TextEdit`` s.

    A delta walks the old text with a cursor: ``retain`` moves it, ``insert``
    puts text at it (and moves past that text), ``delete`` removes old text
    after it. Every run of inserts and deletes with no retain between them
    touches one position, so it becomes a single edit (a replace); Neovim then
    gets one ``nvim_buf_set_text`` per changed region instead of two.
    Formatting ``attributes`` are ignored: the editor has no rich text.
    Embeds (non-string inserts) cannot be shown in a buffer and are rejected.
    """
    edits: list[TextEdit] = []
    pos = 0  # cursor, in bytes of the partially edited text
    start = 0  # position of the pending run
    deleted = 0
    inserted: list[str] = []

    def flush() -> None:
        nonlocal deleted
        if deleted or inserted:
            edits.append(TextEdit(start, deleted, "".join(inserted)))
            deleted = 0
            inserted.clear()

    for op in delta:
        if "retain" in op:
            n = _count(op, "retain")
            if n:
                flush()
                pos += n
        elif "delete" in op:
            n = _count(op, "delete")
            if n:
                if not (deleted or inserted):
                    start = pos
                deleted += n
        elif "insert" in op:
            s = op["insert"]
            if not isinstance(s, str):
                raise ValueError(f"delta op {op!r}: only text inserts are supported")
            if s:
                if not (deleted or inserted):
                    start = pos
                inserted.append(s)
                pos += len(s.encode())
        else:
            raise ValueError(f"unknown delta op {op!r}")
    flush()
    return edits


def cut_big_inserts(edits: list[TextEdit], limit: int) -> list[TextEdit]:
    """The same change as ``edits``, with no insert longer than ``limit`` characters."""
    out = []
    for edit in edits:
        if len(edit.insert) <= limit:
            out.append(edit)
            continue
        offset, delete = edit.offset, edit.delete
        for start in range(0, len(edit.insert), limit):
            piece = edit.insert[start : start + limit]
            out.append(TextEdit(offset, delete, piece))
            offset += len(piece.encode("utf-8"))
            delete = 0
    return out


MAX_COALESCED_INSERT = 1 << 16


def coalesce(edits: list[TextEdit]) -> list[TextEdit]:
    """The same change as ``edits`` in as few edits as possible.

    Typing, backspacing and fixing a typo make runs of edits that touch the
    previous one; each run becomes one edit.  Inside one CRDT transaction this
    gives the same text and the same items pycrdt would squash them into, but
    costs one position lookup instead of one per keystroke (the lookup is most
    of pycrdt's cost: automerge-paper replays 2.5x faster).
    """
    out: list[TextEdit] = []
    for edit in edits:
        if out:
            merged = _compose(out[-1], edit)
            if merged is not None:
                if merged.delete or merged.insert:
                    out[-1] = merged
                else:
                    out.pop()
                continue
        out.append(edit)
    return out


def _compose(a: TextEdit, b: TextEdit) -> TextEdit | None:
    """One edit doing ``a`` then ``b``, if ``b`` touches what ``a`` inserted; else None."""
    ascii_ = a.insert.isascii()
    ins = a.insert if ascii_ else a.insert.encode()
    n = len(ins)
    lo, hi = a.offset, a.offset + n
    if n > MAX_COALESCED_INSERT or b.offset > hi or b.offset + b.delete < lo:
        return None
    cut_from, cut_to = max(0, b.offset - lo), min(n, b.offset + b.delete - lo)
    if ascii_:
        inserted = ins[:cut_from] + b.insert + ins[cut_to:]
    else:
        inserted = (ins[:cut_from] + b.insert.encode() + ins[cut_to:]).decode()
    delete = max(0, lo - b.offset) + a.delete + max(0, b.offset + b.delete - hi)
    return TextEdit(min(lo, b.offset), delete, inserted)

