from hypothesis import given, settings
from hypothesis import strategies as st

from covim_p2p.editor.edits import apply_edit_to_str
from covim_p2p.editor.textdiff import common_prefix, common_suffix, diff_texts

TEXT = st.text(alphabet="ab中😀\n", max_size=400)


def naive_prefix(a: str, b: str) -> int:
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    return i


@settings(max_examples=300, deadline=None)
@given(TEXT, TEXT, st.integers(0, 400))
def test_scans_agree_with_a_character_loop(a, b, cut):
    b = a[:cut] + b[:5] + a[cut:]  # long common ends, the interesting case
    assert common_prefix(a, b) == naive_prefix(a, b)
    for limit in (0, 7, min(len(a), len(b))):
        assert common_suffix(a, b, limit) == min(limit, naive_prefix(a[::-1], b[::-1]))


@settings(max_examples=300, deadline=None)
@given(TEXT, TEXT, st.integers(0, 400))
def test_diff_texts_is_one_edit_reproducing_the_new_text(old, new, cut):
    new = old[:cut] + new[:7] + old[cut + 3:]
    edit = diff_texts(old, new)
    if old == new:
        assert edit is None
    else:
        assert apply_edit_to_str(old, edit) == new
        deleted = old.encode()[edit.offset : edit.offset + edit.delete].decode()
        if deleted and edit.insert:  # minimal: the ends differ, or they would have been cut off
            assert deleted[0] != edit.insert[0] and deleted[-1] != edit.insert[-1]


def test_megabyte_texts_differing_in_the_middle():
    old = "x" * 1_000_000 + "a" + "y" * 1_000_000
    new = "x" * 1_000_000 + "bb" + "y" * 1_000_000
    assert common_prefix(old, new) == 1_000_000
    assert common_suffix(old, new, 1_000_000) == 1_000_000
    edit = diff_texts(old, new, base=5)
    assert (edit.offset, edit.delete, edit.insert) == (1_000_005, 1, "bb")
