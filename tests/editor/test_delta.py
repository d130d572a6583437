"""The total transform: TP1 and intent for every pair of changes, on text with multi-byte characters."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from covim_p2p.editor.delta import blen, delta_of, to_edits, transform, transform_edits
from covim_p2p.editor.edits import TextEdit, apply_edit_to_str

ALPHABET = "ab\né€😀"


def apply_delta(text: str, delta) -> str:
    for edit in to_edits(delta):
        text = apply_edit_to_str(text, edit)
    return text


@st.composite
def text_and_edits(draw, max_edits: int = 4):
    """A text of unique characters and a sequential list of edits on it (character boundaries only)."""
    text = draw(st.text(alphabet=ALPHABET, max_size=12))
    edits = []
    current = text
    for _ in range(draw(st.integers(0, max_edits))):
        a = draw(st.integers(0, len(current)))
        b = draw(st.integers(a, len(current)))
        ins = draw(st.text(alphabet=ALPHABET, max_size=4))
        edit = TextEdit(blen(current[:a]), blen(current[a:b]), ins)
        edits.append(edit)
        current = apply_edit_to_str(current, edit)
    return text, edits


@given(text_and_edits(max_edits=1), st.data(), st.booleans())
def test_tp1_for_single_edits(base, data, x_first):
    text, edits = base
    x = delta_of(edits[0]) if edits else []
    a = data.draw(st.integers(0, len(text)))
    b = data.draw(st.integers(a, len(text)))
    y = delta_of(TextEdit(blen(text[:a]), blen(text[a:b]), data.draw(st.text(alphabet=ALPHABET, max_size=3))))
    left = apply_delta(apply_delta(text, y), transform(x, y, x_first))
    right = apply_delta(apply_delta(text, x), transform(y, x, not x_first))
    assert left == right


@given(st.data())
@settings(max_examples=300)
def test_transform_edits_converges_and_keeps_intent(data):
    """Local edit vs a sequence of remote edits on the same text: both orders give one text, in which
    every inserted character survives and every character nobody deleted is still there."""
    # Unique characters make intent checkable: number each one.
    size = data.draw(st.integers(0, 10))
    pool = iter(chr(0x4E00 + i) for i in range(10_000))
    text = "".join(next(pool) for _ in range(size))
    local = _random_edit(data, text, pool)
    deleted = set(_deleted(text, local))
    inserted = set(local.insert)
    pending, current = [], text
    for _ in range(data.draw(st.integers(0, 4))):
        edit = _random_edit(data, current, pool)
        deleted |= set(_deleted(current, edit))
        inserted |= set(edit.insert)
        pending.append(edit)
        current = apply_edit_to_str(current, edit)
    local_after, pending_after = transform_edits(delta_of(local), pending)
    doc = apply_delta(current, local_after)  # the document: remote edits, then ours
    buf = apply_edit_to_str(text, local)  # the buffer: ours, then the remote edits
    for edit in pending_after:
        buf = apply_edit_to_str(buf, edit)
    assert buf == doc
    assert sorted(doc) == sorted((set(text) | inserted) - deleted)


def _random_edit(data, text: str, pool) -> TextEdit:
    a = data.draw(st.integers(0, len(text)))
    b = data.draw(st.integers(a, len(text)))
    ins = "".join(next(pool) for _ in range(data.draw(st.integers(0, 3))))
    return TextEdit(blen(text[:a]), blen(text[a:b]), ins)


def _deleted(text: str, edit: TextEdit) -> str:
    data = text.encode()
    return data[edit.offset : edit.offset + edit.delete].decode()


def test_an_insert_inside_a_range_the_other_deletes_survives():
    text = "abcdef"
    x = delta_of(TextEdit(1, 4, ""))  # delete bcde
    y = delta_of(TextEdit(3, 0, "X"))  # insert X between c and d
    assert apply_delta(apply_delta(text, y), transform(x, y, True)) == "aXf"
    assert apply_delta(apply_delta(text, x), transform(y, x, False)) == "aXf"


def test_inserts_at_one_place_follow_the_tie_break():
    x, y = delta_of(TextEdit(1, 0, "L")), delta_of(TextEdit(1, 0, "R"))
    assert apply_delta(apply_delta("ab", y), transform(x, y, True)) == "aLRb"
    assert apply_delta(apply_delta("ab", x), transform(y, x, False)) == "aLRb"


def test_text_deleted_by_both_is_deleted_once():
    x, y = delta_of(TextEdit(0, 3, "")), delta_of(TextEdit(1, 3, ""))
    assert apply_delta(apply_delta("abcdef", y), transform(x, y, True)) == "ef"
    assert transform(x, y, True) == [-1]


def test_to_edits_round_trips_a_replace():
    assert to_edits(delta_of(TextEdit(2, 3, "é"))) == [TextEdit(2, 3, "é")]
    assert to_edits([1, "x", -2, 3, -1]) == [TextEdit(1, 2, "x"), TextEdit(5, 1, "")]
