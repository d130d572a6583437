"""ShadowBuffer against a plain list-of-lines model.

The model is deliberately dumb: Neovim's lines as a Python list, the text as
"\\n".join(lines), and nvim_buf_set_text re-implemented on bytes below. The
property tests shrink the chunk size so that a few dozen lines already span
many chunks, which is where the offset bookkeeping could go wrong.
"""

import random
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from covim_p2p.editor import shadow
from covim_p2p.editor.edits import TextEdit, apply_edit_to_str, is_char_boundary
from covim_p2p.editor.shadow import BufEdit, ShadowBuffer

LINE_ATOMS = st.one_of(
    st.sampled_from(["a", "b", " ", "\t", "é", "e\u0301", "\u0301", "中", "文", "😀", "👨‍👩‍👧‍👦", "🇫🇷", "\r"]),
    st.characters(codec="utf-8", exclude_characters="\n"),
)
LINE = st.lists(LINE_ATOMS, max_size=6).map("".join)
LINES = st.lists(LINE, max_size=5)
TEXT = st.lists(st.one_of(LINE_ATOMS, st.just("\n")), max_size=10).map("".join)


def set_text(lines: list[str], e: BufEdit) -> None:
    """A faithful nvim_buf_set_text on a list of lines (raises where Neovim errors)."""
    assert 0 <= e.start_row <= e.end_row < len(lines), "row out of range"
    head, tail = lines[e.start_row].encode(), lines[e.end_row].encode()
    assert 0 <= e.start_col <= len(head) and 0 <= e.end_col <= len(tail), "col out of range"
    assert e.start_row < e.end_row or e.start_col <= e.end_col, "start after end"
    assert len(e.lines) >= 1 and all("\n" not in s for s in e.lines)
    pieces = [s.encode() for s in e.lines]
    pieces[0] = head[: e.start_col] + pieces[0]
    pieces[-1] = pieces[-1] + tail[e.end_col :]
    lines[e.start_row : e.end_row + 1] = [p.decode() for p in pieces]  # strict: a cut character raises


def minimal_size(old: str, new: str) -> tuple[int, int]:
    """(deleted bytes, inserted bytes) of the smallest single edit, by brute force on code points."""
    p = 0
    while p < min(len(old), len(new)) and old[p] == new[p]:
        p += 1
    s = 0
    while s < min(len(old), len(new)) - p and old[-1 - s] == new[-1 - s]:
        s += 1
    return len(old[p : len(old) - s].encode()), len(new[p : len(new) - s].encode())


def check_consistent(sb: ShadowBuffer, model: list[str]) -> None:
    text = "\n".join(model)
    assert sb.lines == model
    assert sb.text() == text
    assert sb.byte_len() == len(text.encode())
    offset = 0
    for row, line in enumerate(model):  # every row start and end, both directions
        n = len(line.encode())
        assert sb.pos_to_offset(row, 0) == offset
        assert sb.offset_to_pos(offset) == (row, 0)
        assert sb.offset_to_pos(offset + n) == (row, n)
        offset += n + 1
    check_chunks(sb)


def check_chunks(sb: ShadowBuffer) -> None:
    """White box: each chunk's row count and byte sum match the lines it covers.
    (A wrong sum in the last chunk is invisible to offset queries until more
    chunks grow behind it, so check it directly.)"""
    assert all(rows > 0 for rows in sb._crows)
    assert sum(sb._crows) == len(sb.lines)
    row = 0
    for rows, nbytes in zip(sb._crows, sb._cbytes):
        assert nbytes == sum(len(line.encode()) + 1 for line in sb.lines[row : row + rows])
        row += rows


def check_local_edit(old: str, new: str, edit: TextEdit | None) -> None:
    if edit is None:
        assert old == new
        return
    data = old.encode()
    assert is_char_boundary(data, edit.offset)
    assert is_char_boundary(data, edit.offset + edit.delete)
    assert apply_edit_to_str(old, edit) == new
    assert (edit.delete, len(edit.insert.encode())) == minimal_size(old, new)


# -- property tests ------------------------------------------------------------------


@st.composite
def on_lines_ops(draw, n_lines: int):
    first = draw(st.integers(0, n_lines))
    last = draw(st.integers(first, n_lines))
    return first, last, draw(LINES)


@st.composite
def remote_edit(draw, text: str) -> TextEdit:
    i = draw(st.integers(0, len(text)))
    j = draw(st.integers(i, len(text)))
    a = len(text[:i].encode())
    return TextEdit(a, len(text[i:j].encode()), draw(TEXT))


@pytest.mark.parametrize("chunk", [4, 256])
@settings(max_examples=150, deadline=None)
@given(initial=LINES, data=st.data())
def test_on_lines_matches_model(chunk, initial, data):
    with patch.object(shadow, "_CHUNK", chunk):
        sb = ShadowBuffer(initial)
        model = list(initial) or [""]
        for _ in range(data.draw(st.integers(1, 8))):
            first, last, new = data.draw(on_lines_ops(len(model)))
            old = "\n".join(model)
            model = model[:first] + new + model[last:] or [""]
            edit = sb.on_lines(first, last, new)
            check_local_edit(old, "\n".join(model), edit)
            check_consistent(sb, model)


@pytest.mark.parametrize("chunk", [4, 256])
@settings(max_examples=150, deadline=None)
@given(initial=LINES, data=st.data())
def test_apply_round_trips_through_set_text(chunk, initial, data):
    with patch.object(shadow, "_CHUNK", chunk):
        sb = ShadowBuffer(initial)
        nvim = list(initial) or [""]
        for _ in range(data.draw(st.integers(1, 6))):
            old = sb.text()
            edit = data.draw(remote_edit(old))
            set_text(nvim, sb.apply(edit))
            assert nvim == sb.lines
            assert sb.text() == apply_edit_to_str(old, edit)
            check_consistent(sb, nvim)


@settings(max_examples=200, deadline=None)
@given(initial=LINES, data=st.data())
def test_local_and_remote_edits_interleaved(initial, data):
    with patch.object(shadow, "_CHUNK", 4):
        sb = ShadowBuffer(initial)
        nvim = list(initial) or [""]
        peer = sb.text()  # what the CRDT side holds, fed only through TextEdits
        for _ in range(data.draw(st.integers(1, 10))):
            if data.draw(st.booleans()):
                first, last, new = data.draw(on_lines_ops(len(nvim)))
                nvim[first:last] = new
                nvim = nvim or [""]
                edit = sb.on_lines(first, last, new)
                if edit is not None:
                    peer = apply_edit_to_str(peer, edit)
            else:
                edit = data.draw(remote_edit(peer))
                peer = apply_edit_to_str(peer, edit)
                set_text(nvim, sb.apply(edit))
            assert "\n".join(nvim) == peer
        check_consistent(sb, nvim)


@settings(max_examples=100, deadline=None)
@given(lines=LINES, row=st.integers(-3, 8), col=st.integers(-3, 40))
def test_pos_to_offset_clamps_and_snaps_to_characters(lines, row, col):
    sb = ShadowBuffer(lines)
    model = list(lines) or [""]
    r = min(max(row, 0), len(model) - 1)
    data = model[r].encode()
    c = min(max(col, 0), len(data))
    while not is_char_boundary(data, c):
        c -= 1
    expected = sum(len(line.encode()) + 1 for line in model[:r]) + c
    assert sb.pos_to_offset(row, col) == expected
    assert sb.offset_to_pos(expected) == (r, c)


def test_large_buffer_random_edits_default_chunks():
    """Real chunk sizes: big pastes split chunks, big deletes merge them."""
    rng = random.Random(7)
    atoms = ["a", "é", "中", "😀", "\t", " "]

    def line() -> str:
        return "".join(rng.choice(atoms) for _ in range(rng.randint(0, 5)))

    model = [line() for _ in range(3000)]
    sb = ShadowBuffer(model)
    for _ in range(60):
        old = "\n".join(model)
        if rng.random() < 0.6:
            first = rng.randint(0, len(model))
            last = min(len(model), first + rng.choice([0, 1, 2, 700]))
            new = [line() for _ in range(rng.choice([0, 1, 2, 600]))]
            model = model[:first] + new + model[last:] or [""]
            check_local_edit(old, "\n".join(model), sb.on_lines(first, last, new))
        else:
            a = sb.pos_to_offset(rng.randrange(len(model)), rng.randint(0, 20))
            b = min(sb.byte_len(), a + rng.randint(0, 40))
            while not is_char_boundary(old.encode(), b):
                b -= 1
            edit = TextEdit(a, b - a, "\n".join(line() for _ in range(rng.randint(1, 3))))
            set_text(model, sb.apply(edit))
            assert "\n".join(model) == apply_edit_to_str(old, edit)
        assert sb.lines == model
    check_consistent(sb, model)


def test_long_lines_diff_blocks():
    """The prefix/suffix scan compares 64-character blocks: make the suffix
    block reach exactly the end of the common prefix."""
    sb = ShadowBuffer(["a" + "b" * 63])
    assert sb.on_lines(0, 1, ["aca" + "b" * 63]) == TextEdit(1, 0, "ca")
    sb = ShadowBuffer(["a" * 64])
    assert sb.on_lines(0, 1, ["a" * 128]) == TextEdit(64, 0, "a" * 64)


@settings(max_examples=150, deadline=None)
@given(
    old=st.text(alphabet="ab中", max_size=300),
    new=st.text(alphabet="ab中", max_size=300),
    cut=st.integers(0, 300),
)
def test_long_repetitive_lines_give_minimal_edits(old, new, cut):
    new = old[:cut] + new[: len(new) // 3] + old[cut:]  # often long common ends
    sb = ShadowBuffer(["x", old, "y"])
    check_local_edit("\n".join(["x", old, "y"]), "\n".join(["x", new, "y"]), sb.on_lines(1, 2, [new]))


def test_chunks_stay_balanced():
    """Deleting most of a big buffer must not leave a trail of tiny chunks
    (the per-query cost grows with the chunk count)."""
    sb = ShadowBuffer([str(i) for i in range(5000)])
    for _ in range(4990):
        sb.on_lines(3, 4, [])
    check_chunks(sb)
    assert len(sb._crows) == 1
    sb.on_lines(5, 5, ["x"] * 5000)  # one big paste is split into chunks of about _CHUNK rows
    check_chunks(sb)
    assert max(sb._crows) <= 2 * shadow._CHUNK and len(sb._crows) <= 5010 // (shadow._CHUNK // 2)


# -- Neovim edge cases -------------------------------------------------------------


@pytest.mark.parametrize("new_lines", [[], [""]])
def test_ggdG_leaves_one_empty_line(new_lines):
    sb = ShadowBuffer(["one", "two", "中"])
    assert sb.on_lines(0, 3, new_lines) == TextEdit(0, 11, "")
    check_consistent(sb, [""])
    assert sb.on_lines(0, 1, ["x"]) == TextEdit(0, 0, "x")  # typing afterwards


def test_o_on_last_line_then_typing():
    sb = ShadowBuffer(["ab", "cd"])
    assert sb.on_lines(2, 2, [""]) == TextEdit(5, 0, "\n")
    assert sb.on_lines(2, 3, ["x"]) == TextEdit(6, 0, "x")
    check_consistent(sb, ["ab", "cd", "x"])


def test_O_on_first_line():
    sb = ShadowBuffer(["ab"])
    assert sb.on_lines(0, 0, [""]) == TextEdit(0, 0, "\n")
    check_consistent(sb, ["", "ab"])


def test_J_joins_lines():
    sb = ShadowBuffer(["foo", "  bar", "baz"])
    assert sb.on_lines(0, 2, ["foo bar"]) == TextEdit(3, 2, "")  # "\n " goes, " bar" stays
    check_consistent(sb, ["foo bar", "baz"])


def test_J_on_last_two_lines_removes_the_final_newline():
    sb = ShadowBuffer(["x", "foo", "bar"])
    assert sb.on_lines(1, 3, ["foo bar"]) == TextEdit(5, 1, " ")
    check_consistent(sb, ["x", "foo bar"])


def test_dd_on_last_line_and_first_line():
    sb = ShadowBuffer(["a", "b", "c"])
    assert sb.on_lines(2, 3, []) == TextEdit(3, 2, "")  # "\nc"
    check_consistent(sb, ["a", "b"])
    assert sb.on_lines(0, 1, []) == TextEdit(0, 2, "")  # "a\n"
    check_consistent(sb, ["b"])


def test_dd_on_only_line_reported_without_lines():
    sb = ShadowBuffer(["abc"])
    assert sb.on_lines(0, 1, []) == TextEdit(0, 3, "")
    check_consistent(sb, [""])


def test_empty_buffer():
    for sb in (ShadowBuffer([]), ShadowBuffer([""])):
        check_consistent(sb, [""])
        assert sb.byte_len() == 0
        assert sb.on_lines(0, 1, [""]) is None
        assert sb.apply(TextEdit(0, 0, "x\ny")) == BufEdit(0, 0, 0, 0, ["x", "y"])
        check_consistent(sb, ["x", "y"])


def test_final_line_with_and_without_content():
    sb = ShadowBuffer(["a", ""])  # text "a\n": a file ending in a newline, as a shared text
    assert sb.on_lines(1, 2, ["b"]) == TextEdit(2, 0, "b")
    assert sb.on_lines(1, 2, [""]) == TextEdit(2, 1, "")
    assert sb.on_lines(1, 2, []) == TextEdit(1, 1, "")
    check_consistent(sb, ["a"])


def test_multibyte_edits_are_cut_on_character_boundaries():
    sb = ShadowBuffer(["中文"])
    assert sb.on_lines(0, 1, ["中😀文"]) == TextEdit(3, 0, "😀")
    sb = ShadowBuffer(["é"])  # U+00E9 = c3 a9 and U+00E8 = c3 a8 share a lead byte
    assert sb.on_lines(0, 1, ["è"]) == TextEdit(0, 2, "è")
    sb = ShadowBuffer(["中"])  # U+4E2D = e4 b8 ad and U+4E2B = e4 b8 ab
    assert sb.on_lines(0, 1, ["丫"]) == TextEdit(0, 3, "丫")
    sb = ShadowBuffer(["e"])
    assert sb.on_lines(0, 1, ["e\u0301"]) == TextEdit(1, 0, "\u0301")
    sb = ShadowBuffer(["\tx"])
    assert sb.on_lines(0, 1, ["\t\tx"]) == TextEdit(1, 0, "\t")


def test_unchanged_lines_give_no_edit():
    sb = ShadowBuffer(["a", "b"])
    assert sb.on_lines(0, 2, ["a", "b"]) is None
    assert sb.on_lines(1, 1, []) is None
    check_consistent(sb, ["a", "b"])
    for n in (63, 64, 65, 200):  # around the 64-character scan block (_BLOCK)
        sb = ShadowBuffer(["中" * n])
        assert sb.on_lines(0, 1, ["中" * n]) is None


@pytest.mark.parametrize("args", [(-1, 0, []), (2, 1, []), (0, 3, []), (3, 3, ["x"])])
def test_on_lines_rejects_ranges_outside_the_mirror(args):
    sb = ShadowBuffer(["a", "b"])
    with pytest.raises(ValueError, match="does not fit"):
        sb.on_lines(*args)
    check_consistent(sb, ["a", "b"])


def test_lines_with_newlines_are_rejected():
    with pytest.raises(ValueError, match="newline"):
        ShadowBuffer(["a\nb"])
    sb = ShadowBuffer(["a"])
    with pytest.raises(ValueError, match="newline"):
        sb.on_lines(0, 1, ["x\0y".replace("\0", "\n")])
    check_consistent(sb, ["a"])


def test_apply_examples():
    sb = ShadowBuffer(["ab", "cd"])
    assert sb.apply(TextEdit(1, 3, "X\nY")) == BufEdit(0, 1, 1, 1, ["X", "Y"])
    check_consistent(sb, ["aX", "Yd"])
    assert sb.apply(TextEdit(5, 0, "\n")) == BufEdit(1, 2, 1, 2, ["", ""])
    check_consistent(sb, ["aX", "Yd", ""])
    assert sb.apply(TextEdit(2, 4, "")) == BufEdit(0, 2, 2, 0, [""])
    check_consistent(sb, ["aX"])


@pytest.mark.parametrize(
    "edit, message",
    [
        (TextEdit(-1, 0, ""), "out of range"),
        (TextEdit(0, -1, ""), "out of range"),
        (TextEdit(9, 0, "x"), "out of range"),
        (TextEdit(7, 2, ""), "out of range"),
        (TextEdit(2, 0, "x"), "boundaries"),  # inside 中
        (TextEdit(0, 2, ""), "boundaries"),  # ends inside 中
        (TextEdit(3, 2, ""), "boundaries"),  # ends inside 😀 on the next row
    ],
)
def test_apply_rejects_bad_offsets_and_changes_nothing(edit, message):
    sb = ShadowBuffer(["中", "😀"])  # 3 + 1 + 4 = 8 bytes
    with pytest.raises(ValueError, match=message):
        sb.apply(edit)
    check_consistent(sb, ["中", "😀"])


def test_offset_to_pos_rejects_out_of_range():
    sb = ShadowBuffer(["ab"])
    for bad in (-1, 3):
        with pytest.raises(ValueError, match="out of range"):
            sb.offset_to_pos(bad)


def test_typing_on_one_row_uses_the_cursor_and_rows_above_move_the_offsets():
    sb = ShadowBuffer(["top", "end", "tail"])
    # "end" -> "eend" with the cursor at column 0: the new "e" goes first, not after the old one
    assert sb.on_lines(1, 2, ["eend"], cursor_col=0) == TextEdit(4, 0, "e")
    assert sb.on_lines(1, 2, ["eeend"], cursor_col=2) == TextEdit(6, 0, "e")
    assert sb.on_lines(1, 2, ["eeend"], cursor_col=-1) is None
    sb.on_lines(0, 1, ["t😀p"])  # the row above grows: row 1's remembered offset must not survive
    assert sb.on_lines(1, 2, ["eeen"]) == TextEdit(len("t😀p\n".encode()) + 4, 1, "")
    sb.on_lines(0, 0, ["new first"])
    check_consistent(sb, ["new first", "t😀p", "eeen", "tail"])
