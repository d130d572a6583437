"""A mirror of one Neovim buffer, translating between lines and byte offsets.

Why a mirror: Neovim reports local changes as ``on_lines`` events ("old lines
[first, last) are now these lines") while the CRDT wants "replace n bytes at
offset o". Turning one into the other needs the old lines, and asking Neovim
for them would race with the user's next keystroke, so we keep our own copy.
(``on_bytes`` would give offsets directly, but fires before ``J`` and ``:s``
have updated the buffer; see DESIGN.md section 3.)

Text model: the document is ``"\\n".join(lines)``. Every line but the last is
followed by a newline; the last one is not, so merging the final lines really
removes a newline from the text. An empty buffer is ``['']``, text ``""``.

Why chunks: the keystroke path must not walk 200k lines. Each line's UTF-8
length plus one (its "width", counting the newline) is kept per row, and rows
are grouped in chunks of about ``_CHUNK`` rows with a width sum per chunk. The
first row and first byte of each chunk are prefix sums over chunks, recomputed
lazily from the first chunk an edit touched. Typing on one line therefore
updates one chunk sum and sums at most one chunk's widths; inserting a line
changes one chunk's row count without shifting any other chunk.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate

from covim_p2p.editor.edits import TextEdit, is_char_boundary
from covim_p2p.editor.slide import slide
from covim_p2p.editor.textdiff import common_prefix, common_suffix, diff_texts

__all__ = ["BufEdit", "ShadowBuffer"]

_CHUNK = 256  # target rows per chunk; a chunk leaving _CHUNK // 4 .. 2 * _CHUNK rows is rebuilt


@dataclass(frozen=True, slots=True)
class BufEdit:
    """Arguments for ``nvim_buf_set_text(buf, start_row, start_col, end_row, end_col, lines)``.

    Rows are 0-based, columns are byte columns, the end is exclusive, and
    ``lines`` is the inserted text split on newlines (``['']`` inserts nothing).
    """

    start_row: int
    start_col: int
    end_row: int
    end_col: int
    lines: list[str]


def _width(line: str) -> int:
    """UTF-8 length of ``line`` plus its newline (ASCII needs no encoding)."""
    return (len(line) if line.isascii() else len(line.encode())) + 1


class ShadowBuffer:
    """Mirror of a Neovim buffer's lines that turns on_lines events into
    TextEdits and TextEdits into nvim_buf_set_text calls.

    ``lines`` is the current mirror (never empty, ``['']`` at least). Treat it
    as read-only: change it only through ``on_lines`` and ``apply``, which keep
    the byte bookkeeping in step.
    """

    __slots__ = (
        "lines", "_w", "_total", "_crows", "_cbytes", "_prow", "_pbyte", "_rows_ok", "_bytes_ok",
        "_known_row", "_known_offset",
    )

    def __init__(self, lines: list[str]):
        self.lines: list[str] = list(lines) or [""]
        _check_lines(self.lines)
        self._w = [_width(line) for line in self.lines]  # per-row UTF-8 length + 1
        self._total = sum(self._w)  # byte_len() + 1
        self._crows: list[int] = []  # rows per chunk
        self._cbytes: list[int] = []  # width sum per chunk
        self._prow: list[int] = []  # first row of each chunk, valid below _rows_ok
        self._pbyte: list[int] = []  # first byte of each chunk, valid below _bytes_ok
        self._rows_ok = self._bytes_ok = 0
        # Typing stays on one row: remember its offset, valid until rows above it change.
        self._known_row, self._known_offset = -1, 0
        self._rechunk(0, -1, 0, len(self.lines))  # chunks 0..-1: none yet, build them all

    # -- queries ---------------------------------------------------------
    def text(self) -> str:
        return "\n".join(self.lines)

    def byte_len(self) -> int:
        return self._total - 1

    def offset_to_pos(self, offset: int) -> tuple[int, int]:
        """(row, byte col), 0-based, of a byte offset in ``0..byte_len()``.

        Raises ValueError out of range. A column inside a character is
        returned as is; ``apply`` is where boundaries are enforced.
        """
        if not 0 <= offset <= self._total - 1:
            raise ValueError(f"offset {offset} out of range 0..{self._total - 1}")
        k = self._bytes_ok
        if k == 0 or offset >= self._pbyte[k - 1] + self._cbytes[k - 1]:
            k = len(self._crows)
            self._fix_bytes(k - 1)
        c = bisect_right(self._pbyte, offset, 0, k) - 1
        self._fix_rows(c)
        first = self._prow[c]
        starts = list(accumulate(self._w[first : first + self._crows[c]], initial=self._pbyte[c]))
        i = bisect_right(starts, offset) - 1
        return first + i, offset - starts[i]

    def pos_to_offset(self, row: int, col: int) -> int:
        """Byte offset of (row, byte col), clamping row to the buffer and col
        to the line; a col inside a character moves back to its start so the
        result is always safe to give pycrdt (e.g. for a cursor)."""
        row = min(max(row, 0), len(self.lines) - 1)
        col = min(max(col, 0), self._w[row] - 1)
        line = self.lines[row]
        if col and not line.isascii():
            data = line.encode()
            while not is_char_boundary(data, col):
                col -= 1
        return self._row_offset(row) + col

    # -- local changes ---------------------------------------------------
    def on_lines(self, first: int, last_old: int, new_lines: list[str], cursor_col: int = -1) -> TextEdit | None:
        """Neovim's on_lines: old rows [first, last_old) were replaced by ``new_lines``.

        Updates the mirror and returns the minimal single edit (common prefix
        and suffix cut on character boundaries) from the old text to the new,
        or None if nothing changed. Raises ValueError if the range does not fit
        the mirror (the caller should resynchronise from the buffer).

        ``cursor_col``: the cursor's byte column when the change is on the
        cursor's row (else -1); an ambiguous one-line insert or delete is
        placed there (slide.py).
        """
        n = len(self.lines)
        if not 0 <= first <= last_old <= n:
            raise ValueError(f"on_lines range [{first}, {last_old}) does not fit a mirror of {n} lines")
        new_lines = list(new_lines)
        _check_lines(new_lines)
        if last_old == first + 1 and len(new_lines) == 1:
            return self._on_line(first, new_lines[0], cursor_col)
        if not new_lines and first == 0 and last_old == n:
            new_lines = [""]  # 'ggdG' may report "all lines deleted"; Neovim keeps one empty line
        old = self.lines[first:last_old]
        if old and new_lines:  # rows replaced by rows: the newlines around them stay
            base, old_mid, new_mid = self._row_offset(first), "\n".join(old), "\n".join(new_lines)
        elif new_lines:  # rows inserted before row `first`, or after the last row
            if first < n:
                base, old_mid, new_mid = self._row_offset(first), "", "\n".join(new_lines) + "\n"
            else:
                base, old_mid, new_mid = self._total - 1, "", "\n" + "\n".join(new_lines)
        elif old:  # rows deleted, not all of them (handled above)
            if last_old < n:
                base, old_mid, new_mid = self._row_offset(first), "\n".join(old) + "\n", ""
            else:  # the last rows: the newline ending the row before goes too
                base, old_mid, new_mid = self._row_offset(first) - 1, "\n" + "\n".join(old), ""
        else:
            return None
        self._replace(first, last_old, new_lines)
        return diff_texts(old_mid, new_mid, base)

    def _on_line(self, row: int, new: str, cursor_col: int) -> TextEdit | None:
        """One row changed (typing): one prefix and one suffix scan serve the diff and the slide."""
        old = self.lines[row]
        shorter = min(len(old), len(new))
        p = common_prefix(old, new)
        if p == len(old) == len(new):
            return None
        su = common_suffix(old, new, shorter)
        base = self._row_offset(row)
        self._replace(row, row + 1, [new])
        if cursor_col >= 0:
            slid = slide(old, new, p, su, cursor_col)
            if slid is not None:
                return TextEdit(base + slid[0], slid[1], slid[2])
        s = min(su, shorter - p)
        return TextEdit(base + len(old[:p].encode()), len(old[p : len(old) - s].encode()), new[p : len(new) - s])

    # -- remote changes --------------------------------------------------
    def apply(self, edit: TextEdit) -> BufEdit:
        """Apply a remote edit to the mirror and return the matching set_text call.

        Raises ValueError (and changes nothing) if the edit is out of range or
        cuts a UTF-8 character, since Neovim and pycrdt would disagree on it.
        """
        if not isinstance(edit.insert, str):
            raise ValueError(f"edit insert must be str, not {type(edit.insert).__name__}")
        end = edit.offset + edit.delete
        if edit.offset < 0 or edit.delete < 0 or end > self._total - 1:
            raise ValueError(
                f"edit {edit.offset}+{edit.delete} out of range for a text of {self._total - 1} bytes"
            )
        sr, sc = self.offset_to_pos(edit.offset)
        if sc + edit.delete < self._w[sr]:  # ends on the same row: no second lookup
            er, ec = sr, sc + edit.delete
        else:
            er, ec = self.offset_to_pos(end)
        head = self.lines[sr].encode()
        tail = head if er == sr else self.lines[er].encode()
        if not is_char_boundary(head, sc) or not is_char_boundary(tail, ec):
            raise ValueError(
                f"edit {edit.offset}+{edit.delete} does not fall on UTF-8 character boundaries"
            )
        ins = edit.insert.split("\n")
        rows = list(ins)
        rows[0] = head[:sc].decode() + rows[0]
        rows[-1] = rows[-1] + tail[ec:].decode()
        self._replace(sr, er + 1, rows)
        return BufEdit(sr, sc, er, ec, ins)

    # -- bookkeeping -----------------------------------------------------
    def _fix_rows(self, c: int) -> None:
        self._rows_ok = _extend_prefix(self._prow, self._crows, self._rows_ok, c)

    def _fix_bytes(self, c: int) -> None:
        self._bytes_ok = _extend_prefix(self._pbyte, self._cbytes, self._bytes_ok, c)

    def _chunk_of_row(self, row: int) -> int:
        k = self._rows_ok
        if k == 0 or row >= self._prow[k - 1] + self._crows[k - 1]:
            k = len(self._crows)
            self._fix_rows(k - 1)
        return bisect_right(self._prow, row, 0, k) - 1

    def _row_offset(self, row: int) -> int:
        """Byte offset of the start of ``row`` (summing at most one chunk)."""
        if row == self._known_row:
            return self._known_offset
        c = self._chunk_of_row(row)
        self._fix_bytes(c)
        offset = self._pbyte[c] + sum(self._w[self._prow[c] : row])
        self._known_row, self._known_offset = row, offset
        return offset

    def _replace(self, a: int, b: int, new_lines: list[str]) -> None:
        """Replace rows [a, b) by ``new_lines``, keeping widths and chunks in step."""
        if a < self._known_row:
            self._known_row = -1
        c0 = self._chunk_of_row(min(a, len(self.lines) - 1))
        c1 = self._chunk_of_row(b - 1) if b > a else c0
        new_w = [_width(line) for line in new_lines]
        old_sum = sum(self._w[a:b])
        new_sum = sum(new_w)
        self.lines[a:b] = new_lines
        self._w[a:b] = new_w
        self._total += new_sum - old_sum
        rows = self._crows[c0] + len(new_lines) - (b - a)
        # The common case: one chunk, adjust its sums. A chunk shrinking below
        # _CHUNK // 4 rows is rebuilt instead, which merges it with a neighbour.
        if c0 == c1 and 0 < rows <= 2 * _CHUNK and (rows >= _CHUNK // 4 or len(self._crows) == 1):
            if rows != self._crows[c0]:
                self._crows[c0] = rows
                self._rows_ok = min(self._rows_ok, c0 + 1)
            self._cbytes[c0] += new_sum - old_sum
            self._bytes_ok = min(self._bytes_ok, c0 + 1)
            return
        self._fix_rows(c0)
        first = self._prow[c0]
        count = sum(self._crows[c0 : c1 + 1]) + len(new_lines) - (b - a)
        self._rechunk(c0, c1, first, count)

    def _rechunk(self, c0: int, c1: int, first: int, count: int) -> None:
        """Rebuild chunks c0..c1, now holding rows [first, first + count), into
        chunks of about ``_CHUNK`` rows; a small remainder absorbs a neighbour
        so that deletions cannot leave many tiny chunks behind."""
        if count < _CHUNK // 2:
            if c1 + 1 < len(self._crows):
                c1 += 1
                count += self._crows[c1]
            elif c0 > 0:
                c0 -= 1
                self._fix_rows(c0)
                first = self._prow[c0]
                count += self._crows[c0]
        parts = max(1, -(-count // _CHUNK))
        bounds = [first + count * i // parts for i in range(parts + 1)]
        crows = [bounds[i + 1] - bounds[i] for i in range(parts)]
        cbytes = [sum(self._w[bounds[i] : bounds[i + 1]]) for i in range(parts)]
        self._crows[c0 : c1 + 1] = crows
        self._cbytes[c0 : c1 + 1] = cbytes
        self._prow[c0 : c1 + 1] = [0] * parts
        self._pbyte[c0 : c1 + 1] = [0] * parts
        self._rows_ok = min(self._rows_ok, c0)
        self._bytes_ok = min(self._bytes_ok, c0)


def _extend_prefix(prefix: list[int], sizes: list[int], ok: int, c: int) -> int:
    """Make ``prefix`` (starts of ``sizes``, valid below ``ok``) valid up to
    index ``c``, at C speed; returns the new valid count."""
    if ok > c:
        return ok
    base = prefix[ok - 1] + sizes[ok - 1] if ok else 0
    prefix[ok : c + 1] = accumulate(sizes[ok:c], initial=base)
    return c + 1


def _check_lines(lines: list[str]) -> None:
    """Neovim lines hold no newline (a NUL byte comes through the API as "\\n",
    which this text model cannot represent): refuse rather than corrupt."""
    for line in lines:
        if not isinstance(line, str) or "\n" in line:
            raise ValueError(f"buffer line {line!r} is not a str without newlines")
