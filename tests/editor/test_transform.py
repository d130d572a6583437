from hypothesis import given, settings, strategies as st

from covim_p2p.editor.edits import TextEdit, apply_edit_to_str
from covim_p2p.editor.textdiff import diff_texts
from covim_p2p.editor.transform import map_offset, transform_local, transform_pair

ALPHABET = st.sampled_from(list("ab\n\té中😀") + ["e\u0301"])
TEXT = st.lists(ALPHABET, max_size=12).map("".join)


def _edit(draw, text: str) -> TextEdit:
    chars = list(text)
    i = draw(st.integers(0, len(chars)))
    j = draw(st.integers(i, len(chars)))
    ins = draw(TEXT)
    pre = "".join(chars[:i]).encode()
    mid = "".join(chars[i:j]).encode()
    return TextEdit(len(pre), len(mid), ins)


@st.composite
def base_and_edits(draw):
    base = draw(TEXT)
    local = _edit(draw, base)
    pending, doc = [], base
    for _ in range(draw(st.integers(0, 3))):
        e = _edit(draw, doc)
        pending.append(e)
        doc = apply_edit_to_str(doc, e)
    return base, local, pending, doc


@settings(max_examples=400, deadline=None)
@given(base_and_edits())
def test_rebased_local_and_pending_reach_the_same_text(case):
    base, local, pending, doc = case
    local2, pending2 = transform_local(local, pending)
    doc_after = apply_edit_to_str(doc, local2)          # must be a valid edit of the document
    buffer_after = apply_edit_to_str(base, local)
    if pending2 is not None:
        for e in pending2:
            buffer_after = apply_edit_to_str(buffer_after, e)
        assert buffer_after == doc_after
    else:  # overlap: the caller reconciles with a diff, which must then match
        fix = diff_texts(buffer_after, doc_after)
        assert fix is not None or buffer_after == doc_after
        if fix is not None:
            assert apply_edit_to_str(buffer_after, fix) == doc_after
    assert local.insert in doc_after


def test_disjoint_edits_shift_past_each_other():
    local, remote = TextEdit(0, 0, "ab"), TextEdit(5, 1, "")
    assert transform_pair(local, remote) == (local, TextEdit(7, 1, ""))
    assert transform_pair(TextEdit(6, 0, "x"), TextEdit(1, 2, "中")) == (TextEdit(7, 0, "x"), TextEdit(1, 2, "中"))


def test_overlap_is_reported_and_mapped():
    assert transform_pair(TextEdit(2, 4, "x"), TextEdit(3, 1, "y")) is None
    assert map_offset(4, TextEdit(3, 2, "ab")) == 5
    assert map_offset(9, TextEdit(3, 2, "ab")) == 9


def test_diff_texts_is_minimal_on_characters():
    assert diff_texts("héllo", "hèllo") == TextEdit(1, 2, "è")
    assert diff_texts("same", "same") is None
