"""Total operational transform of text changes, in UTF-8 bytes.

Why: between the buffer and the document there are two copies of the text
that both change at once (the user types while remote edits wait for Neovim
to take them).  A local edit must reach the document as exactly the change
the user made, and the waiting remote edits must reach the buffer exactly
once, wherever the two overlap.  The classic two-party OT (Jupiter, ot.js,
Quill deltas) does that for *every* pair of changes; the earlier
"transform if disjoint, else diff" fell back to whole-region diffs that
deleted and re-inserted other people's text (DESIGN.md section 3).

A delta is a list of components walked over the old text:

* ``int > 0``: retain that many bytes,
* ``int < 0``: delete that many bytes,
* ``str``: insert that text.

Anything after the last component is retained (no trailing retain, no base
length needed).  Inserts never split in a transform, so a transform costs
O(components), however long the inserted text.

Rules of ``transform(x, y, x_first)``:

* Both deltas apply to the same text.  It returns ``x'`` that applies after
  ``y``, and ``y`` then ``x'`` equals ``x`` then ``transform(y, x, not
  x_first)`` (TP1), for every pair.
* Inserts at one position: ``x_first`` decides which goes first.
* An insert inside a range the other side deletes survives (nobody deleted
  it), and the deletion is split around it.
* Text both delete is deleted once.
"""

from __future__ import annotations

from .edits import TextEdit

Delta = list  # list[int | str]

__all__ = ["Delta", "blen", "delta_of", "to_edits", "transform", "transform_edits"]


def blen(text: str) -> int:
    """UTF-8 length (ASCII needs no encoding)."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _push(out: list, comp: int | str) -> None:
    """Append keeping the normal form: runs merged, an insert before a delete at one place."""
    if not comp:
        return
    if out:
        last = out[-1]
        if isinstance(comp, str):
            if isinstance(last, str):
                out[-1] = last + comp
                return
            if last < 0:  # delete then insert == insert then delete: keep inserts first
                if len(out) > 1 and isinstance(out[-2], str):
                    out[-2] = out[-2] + comp
                else:
                    out.insert(len(out) - 1, comp)
                return
        elif not isinstance(last, str) and (last > 0) == (comp > 0):
            out[-1] = last + comp
            return
    out.append(comp)


def _chop(out: list) -> list:
    while out and not isinstance(out[-1], str) and out[-1] > 0:
        out.pop()
    return out


def delta_of(edit: TextEdit) -> Delta:
    out: Delta = []
    _push(out, edit.offset)
    _push(out, edit.insert)
    _push(out, -edit.delete)
    return out


def to_edits(delta: Delta) -> list[TextEdit]:
    """The delta as sequential TextEdits (each relative to the text after the previous ones)."""
    edits: list[TextEdit] = []
    pos = 0
    i, n = 0, len(delta)
    while i < n:
        comp = delta[i]
        if not isinstance(comp, str) and comp > 0:
            pos += comp
            i += 1
            continue
        deleted, inserted = 0, []
        while i < n and (isinstance(delta[i], str) or delta[i] < 0):
            if isinstance(delta[i], str):
                inserted.append(delta[i])
            else:
                deleted -= delta[i]
            i += 1
        text = "".join(inserted)
        edits.append(TextEdit(pos, deleted, text))
        pos += blen(text)
    return edits


def transform(x: Delta, y: Delta, x_first: bool) -> Delta:
    """``x`` rewritten to apply after ``y`` (see the rules above)."""
    out: Delta = []
    xi = yi = 0
    xc = x[0] if x else None
    yc = y[0] if y else None
    while xc is not None:
        if isinstance(xc, str) and (x_first or not isinstance(yc, str)):
            _push(out, xc)
            xi += 1
            xc = x[xi] if xi < len(x) else None
            continue
        if isinstance(yc, str):
            _push(out, blen(yc))  # y's insert: step over it
            yi += 1
            yc = y[yi] if yi < len(y) else None
            continue
        if yc is None:  # the rest of y retains: the rest of x stays as it is
            _push(out, xc)
            for comp in x[xi + 1 :]:
                _push(out, comp)
            break
        n = min(abs(xc), abs(yc))
        if xc < 0 and yc > 0:
            _push(out, -n)  # x deletes what y kept
        elif xc > 0 and yc > 0:
            _push(out, n)
        # x retains what y deleted, or both delete it: nothing left to do for x
        xc = xc - n if xc > 0 else xc + n
        yc = yc - n if yc > 0 else yc + n
        if xc == 0:
            xi += 1
            xc = x[xi] if xi < len(x) else None
        if yc == 0:
            yi += 1
            yc = y[yi] if yi < len(y) else None
    return _chop(out)


def transform_edits(local: Delta, pending: list[TextEdit]) -> tuple[Delta, list[TextEdit]]:
    """Rebase a local change over sequential remote edits, and those over it.

    ``local`` and ``pending[0]`` apply to the same text.  Returns ``local'``
    (applies after all of ``pending``) and ``pending'`` (apply after
    ``local``), with the local change first where both insert at one place.
    """
    rebased: list[TextEdit] = []
    current = local
    for remote in pending:
        theirs = delta_of(remote)
        rebased.extend(to_edits(transform(theirs, current, False)))
        current = transform(current, theirs, True)
    return current, rebased
