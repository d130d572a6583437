"""Put an ambiguous edit where the user actually typed.

A text diff cannot tell ``end`` -> ``eend`` apart from ``e|nd`` and ``|end``:
both are "insert e".  For a CRDT the difference matters, because text typed
concurrently by others sits exactly between such positions.  A pure insert or
delete within one line can slide over a range of equivalent positions; we
pick the one at the cursor that Neovim reported with the change.
"""

from __future__ import annotations

from .textdiff import common_prefix, common_suffix



def slide_to_cursor(old: str, new: str, cursor_byte: int) -> tuple[int, int, str] | None:
    """For a one-line pure insert/delete, (byte start, bytes deleted, inserted) at the cursor.

    ``cursor_byte`` is the cursor's byte column in ``new``.  Returns None when
    the change is not a pure insert/delete or the cursor is not at a position
    equivalent to the minimal diff's (then the caller keeps its own diff).
    """
    return slide(old, new, common_prefix(old, new), common_suffix(old, new, min(len(old), len(new))), cursor_byte)


def slide(old: str, new: str, prefix: int, suffix: int, cursor_byte: int) -> tuple[int, int, str] | None:
    """:func:`slide_to_cursor` given the lines' common prefix and (unbounded) common suffix."""
    lo, ln = len(old), len(new)
    if lo == ln or cursor_byte < 0:
        return None
    shorter = min(lo, ln)
    k_min, k_max = max(0, shorter - suffix), min(prefix, shorter)
    if k_min > k_max:
        return None  # not a pure insert/delete
    try:
        cursor = len(new.encode("utf-8")[:cursor_byte].decode("utf-8"))
    except UnicodeDecodeError:
        return None  # the cursor is inside a character: no opinion
    size = abs(ln - lo)
    candidates = [cursor, cursor - size] if ln > lo else [cursor]
    for k in candidates:
        if k_min <= k <= k_max:
            start = len(new[:k].encode("utf-8"))
            if ln > lo:
                return start, 0, new[k:k + size]
            return start, len(old[k:k + size].encode("utf-8")), ""
    return None
