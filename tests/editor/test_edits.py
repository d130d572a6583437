"""TextEdit, the reference string model, and Y.Text deltas -> TextEdits.

The delta tests use real pycrdt documents (the unit is pinned: UTF-8 bytes)
and remote updates, because local transactions are not what the plugin
observes: it reacts to updates arriving from peers.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Text

from covim_p2p.editor.edits import (TextEdit, apply_edit_to_str, coalesce, cut_big_inserts, delta_to_edits,
                                   is_char_boundary)

# Awkward text: tabs, newlines, CJK, 4-byte emoji, ZWJ sequences, flags,
# combining marks (alone and after a base), plus arbitrary encodable characters.
ATOMS = st.one_of(
    st.sampled_from(
        ["a", "b", " ", "\t", "\n", "é", "e\u0301", "\u0301", "中", "文", "😀", "👨‍👩‍👧‍👦", "🇫🇷", "ß", "\r"]
    ),
    st.characters(codec="utf-8"),
)
TEXT = st.lists(ATOMS, max_size=12).map("".join)


def _byte_index(text: str, i: int) -> int:
    return len(text[:i].encode())


# -- apply_edit_to_str ---------------------------------------------------------


def test_apply_edit_to_str_counts_bytes():
    assert apply_edit_to_str("中文", TextEdit(3, 3, "x")) == "中x"
    assert apply_edit_to_str("a😀b", TextEdit(1, 4, "")) == "ab"
    assert apply_edit_to_str("", TextEdit(0, 0, "hi\n")) == "hi\n"
    assert apply_edit_to_str("ab", TextEdit(2, 0, "c")) == "abc"


@pytest.mark.parametrize(
    "edit",
    [TextEdit(-1, 0, ""), TextEdit(0, -1, ""), TextEdit(5, 0, ""), TextEdit(3, 2, ""), TextEdit(0, 7, "")],
)
def test_apply_edit_to_str_rejects_out_of_range(edit):
    with pytest.raises(ValueError, match="out of range"):
        apply_edit_to_str("中a", edit)


@pytest.mark.parametrize("edit", [TextEdit(1, 0, "x"), TextEdit(0, 2, ""), TextEdit(2, 1, "")])
def test_apply_edit_to_str_rejects_mid_character(edit):
    with pytest.raises(ValueError, match="boundaries"):
        apply_edit_to_str("中a", edit)


def test_is_char_boundary():
    data = "a中😀".encode()  # 1 + 3 + 4 bytes
    assert [i for i in range(len(data) + 1) if is_char_boundary(data, i)] == [0, 1, 4, 8]
    assert not is_char_boundary(data, 9)
    assert not is_char_boundary(data, -1)
    assert not is_char_boundary(b"ab", -1)


def test_text_edit_is_frozen():
    with pytest.raises(AttributeError):
        TextEdit(0, 0, "").offset = 1  # type: ignore[misc]


# -- delta_to_edits: hand-made deltas -------------------------------------------


def test_delta_retain_insert_delete():
    delta = [{"retain": 3}, {"insert": "X"}, {"retain": 2}, {"delete": 1}]
    assert delta_to_edits(delta) == [TextEdit(3, 0, "X"), TextEdit(6, 1, "")]
    assert apply_edit_to_str("abcdefg", delta_to_edits(delta)[0]) == "abcXdefg"


def test_delta_merges_delete_and_insert_in_either_order():
    assert delta_to_edits([{"retain": 1}, {"delete": 2}, {"insert": "中"}]) == [TextEdit(1, 2, "中")]
    assert delta_to_edits([{"retain": 1}, {"insert": "中"}, {"delete": 2}]) == [TextEdit(1, 2, "中")]
    # runs of inserts (e.g. split by attributes) and deletes concatenate
    assert delta_to_edits([{"insert": "a"}, {"insert": "😀", "attributes": {"b": 1}}, {"delete": 1}, {"delete": 2}]) == [
        TextEdit(0, 3, "a😀")
    ]


def test_delta_positions_after_insert_count_utf8_bytes():
    # the insert moves the cursor by 4 bytes (one emoji), not by 1 code point
    assert delta_to_edits([{"insert": "😀"}, {"retain": 2}, {"delete": 1}]) == [
        TextEdit(0, 0, "😀"),
        TextEdit(6, 1, ""),
    ]


def test_delta_ignores_empty_ops_and_trailing_retain():
    assert delta_to_edits([]) == []
    assert delta_to_edits([{"retain": 5}]) == []
    assert delta_to_edits([{"retain": 0}, {"insert": ""}, {"delete": 0}, {"retain": 2, "attributes": {}}]) == []


@pytest.mark.parametrize(
    "delta",
    [[{"insert": {"embed": 1}}], [{"retain": -1}], [{"delete": 1.5}], [{"delete": True}], [{"format": 1}]],
)
def test_delta_rejects_malformed_ops(delta):
    with pytest.raises(ValueError):
        delta_to_edits(delta)


# -- delta_to_edits: real pycrdt deltas ------------------------------------------


def test_pycrdt_index_unit_is_utf8_bytes():
    """Pins the unit the whole editor layer relies on (DESIGN.md section 3)."""
    doc = Doc()
    t = doc.get("content", type=Text)
    t += "a中😀"
    assert len(t) == 8
    t.insert(4, "|")
    assert str(t) == "a中|😀"


def _observed(initial: str):
    doc = Doc()
    t = doc.get("content", type=Text)
    t += initial
    deltas: list = []
    t.observe(lambda ev: deltas.append(ev.delta))
    return doc, t, deltas


def _peer(doc: Doc) -> tuple[Doc, Text]:
    other = Doc()
    other.apply_update(doc.get_update())
    return other, other.get("content", type=Text)


# One remote operation: (where, how many code points to delete, what to insert),
# with `where` a fraction so it always lands on a character of the current text.
OPS = st.lists(
    st.tuples(st.floats(0, 1), st.integers(0, 4), TEXT),
    min_size=1,
    max_size=6,
)


def _edit_peer(t: Text, ops) -> None:
    """Apply ops to t at code-point positions converted to byte offsets."""
    for where, n, ins in ops:
        s = str(t)
        i = int(where * len(s))
        j = min(len(s), i + n)
        a, b = _byte_index(s, i), _byte_index(s, j)
        if b > a:
            del t[a:b]
        if ins:
            t.insert(a, ins)


def _replay(before: str, deltas: list) -> str:
    text = before
    for delta in deltas:
        for edit in delta_to_edits(delta):
            text = apply_edit_to_str(text, edit)  # also checks boundaries
    return text


@settings(max_examples=150, deadline=None)
@given(initial=TEXT, ops=OPS, one_transaction=st.booleans())
def test_remote_update_delta_replays_to_same_text(initial, ops, one_transaction):
    doc, t, deltas = _observed(initial)
    other, ot = _peer(doc)
    if one_transaction:
        with other.transaction():
            _edit_peer(ot, ops)
    else:
        _edit_peer(ot, ops)
    doc.apply_update(other.get_update(doc.get_state()))
    assert str(t) == str(ot)
    assert _replay(initial, deltas) == str(t)


@settings(max_examples=150, deadline=None)
@given(initial=TEXT, ops_a=OPS, ops_b=OPS)
def test_concurrent_updates_delta_replays_to_same_text(initial, ops_a, ops_b):
    """Two peers edit the same base concurrently; merging both in one update
    yields a delta with several separated regions."""
    doc, t, deltas = _observed(initial)
    (a, ta), (b, tb) = _peer(doc), _peer(doc)
    with a.transaction():
        _edit_peer(ta, ops_a)
    with b.transaction():
        _edit_peer(tb, ops_b)
    state = doc.get_state()
    doc.apply_update(a.get_update(state))  # first alone: one delta
    doc.apply_update(b.get_update(doc.get_state()))  # then the rest: another
    assert _replay(initial, deltas) == str(t)


def test_delta_of_replace_becomes_one_edit():
    doc, t, deltas = _observed("hello 世界")
    other, ot = _peer(doc)
    with other.transaction():
        del ot[6:9]  # 世
        ot.insert(6, "🌍")
    doc.apply_update(other.get_update(doc.get_state()))
    assert [delta_to_edits(d) for d in deltas] == [[TextEdit(6, 3, "🌍")]]
    assert str(t) == "hello 🌍界"


@given(st.text(alphabet="ab\né🙂", max_size=40), st.data())
def test_cut_big_inserts_makes_the_same_change_in_small_pieces(text, data):
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    insert = data.draw(st.text(alphabet="xy\nü🙂", max_size=30))
    limit = data.draw(st.integers(1, 8))
    edit = TextEdit(len(text[:start].encode()), len(text[start:end].encode()), insert)
    pieces = cut_big_inserts([edit], limit)
    assert all(len(p.insert) <= limit for p in pieces)
    assert "".join(p.insert for p in pieces) == insert
    cut = text
    for p in pieces:
        cut = apply_edit_to_str(cut, p)
    assert cut == apply_edit_to_str(text, edit)


def test_cut_big_inserts_keeps_small_edits_as_they_are():
    edits = [TextEdit(0, 1, "abc"), TextEdit(2, 0, "")]
    assert cut_big_inserts(edits, 3) == edits


@st.composite
def edit_runs(draw):
    """A text and a run of edits, each valid on the text the previous ones left,
    often touching the previous edit (typing, backspace, typo fixes)."""
    text = draw(TEXT)
    current, edits = text, []
    for _ in range(draw(st.integers(0, 12))):
        chars = len(current)
        if edits and draw(st.booleans()):  # near the last edit's end, like typing does
            last = edits[-1]
            end = len(current.encode()[: last.offset + len(last.insert.encode())].decode())
            i = max(0, min(chars, end + draw(st.integers(-2, 1))))
        else:
            i = draw(st.integers(0, chars))
        j = draw(st.integers(i, min(chars, i + 3)))
        edit = TextEdit(_byte_index(current, i), len(current[i:j].encode()), draw(TEXT))
        edits.append(edit)
        current = apply_edit_to_str(current, edit)
    return text, edits, current


@settings(max_examples=500, deadline=None)
@given(edit_runs())
def test_coalesce_makes_the_same_change_in_fewer_edits(run):
    text, edits, expected = run
    merged = coalesce(edits)
    assert len(merged) <= len(edits)
    result = text
    for edit in merged:
        result = apply_edit_to_str(result, edit)
    assert result == expected


def test_coalesce_turns_typing_backspace_and_typo_fixes_into_one_edit():
    typing = [TextEdit(10, 0, "h"), TextEdit(11, 0, "é"), TextEdit(13, 0, "l"), TextEdit(14, 0, "l")]
    assert coalesce(typing) == [TextEdit(10, 0, "héll")]
    backspaces = [TextEdit(9, 1, ""), TextEdit(8, 1, ""), TextEdit(7, 1, "")]
    assert coalesce(backspaces) == [TextEdit(7, 3, "")]
    forward_deletes = [TextEdit(7, 1, ""), TextEdit(7, 2, "")]
    assert coalesce(forward_deletes) == [TextEdit(7, 3, "")]
    typo = [TextEdit(0, 0, "teh"), TextEdit(1, 2, ""), TextEdit(1, 0, "he")]
    assert coalesce(typo) == [TextEdit(0, 0, "the")]
    undone = [TextEdit(5, 0, "x"), TextEdit(5, 1, "")]
    assert coalesce(undone) == []
    apart = [TextEdit(0, 0, "a"), TextEdit(5, 0, "b")]
    assert coalesce(apart) == apart
