"""The one edit between two versions of a text: cut the common ends off.

Used on every keystroke (a changed line) and on resync (whole documents of
megabytes), so the scans compare slices, at C speed, instead of characters
in Python: the slice doubles while the texts agree and halves once they
differ, so finding a change n characters in costs O(log^2 n) slice compares.
Lengths are code points, which never split a UTF-8 character.
"""

from __future__ import annotations

from .edits import TextEdit

_FIRST = 16  # the first slice; most lines differ soon


def common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i, step = 0, _FIRST
    while step:
        if i + step <= n and a[i : i + step] == b[i : i + step]:
            i += step
            step *= 2
        else:
            step //= 2
    return i


def common_suffix(a: str, b: str, limit: int) -> int:
    """Length of the common suffix, at most ``limit`` (so it cannot overlap a prefix)."""
    la, lb = len(a), len(b)
    limit = min(limit, la, lb)
    i, step = 0, _FIRST
    while step:
        if i + step <= limit and a[la - i - step : la - i] == b[lb - i - step : lb - i]:
            i += step
            step *= 2
        else:
            step //= 2
    return i


def diff_texts(old: str, new: str, base: int = 0) -> TextEdit | None:
    """One edit turning ``old`` into ``new`` (offsets in UTF-8 bytes, plus ``base``); None if equal."""
    p = common_prefix(old, new)
    if p == len(old) == len(new):
        return None
    s = common_suffix(old, new, min(len(old), len(new)) - p)
    return TextEdit(base + len(old[:p].encode()), len(old[p : len(old) - s].encode()), new[p : len(new) - s])
