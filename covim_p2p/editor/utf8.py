"""Text that is not UTF-8: where it is, so we can refuse it with one clear line.

The shared document is UTF-8 text (Y.Text), so a byte like 0xE9 on its own
cannot be carried.  pynvim hands such bytes to Python as lone surrogates
(U+DC80..U+DCFF, the 'surrogateescape' convention); this finds the first one.
Lua replaces them by U+FFFD when they enter a live session (lua/covim/utf8.lua).
"""

from __future__ import annotations


def first_invalid(lines: list[str]) -> tuple[int, int, int] | None:
    """(row, byte column, byte) of the first byte that is not UTF-8, or None.  Rows and columns from 0."""
    for row, line in enumerate(lines):
        try:
            line.encode("utf-8")
        except UnicodeEncodeError as exc:
            head = line[: exc.start].encode("utf-8", "surrogateescape")
            bad = line[exc.start].encode("utf-8", "surrogateescape")
            return row, len(head), bad[0]
    return None


def describe(where: tuple[int, int, int]) -> str:
    row, col, byte = where
    return (f"line {row + 1} is not valid UTF-8 (byte 0x{byte:02x} at column {col + 1}): covim shares UTF-8 text "
            "only; reopen the file in its real encoding (:e ++enc=latin1) or fix the line")
