from hypothesis import given, settings, strategies as st

from covim_p2p.editor.slide import slide_to_cursor

CHARS = st.sampled_from(list("aeén日👧\u200d\t"))


def test_typing_before_a_repeated_letter_goes_at_the_cursor():
    # "end" -> "eend" with the cursor before the new "e" (on_lines reports the insert position)
    assert slide_to_cursor("👧end", "👧eend", len("👧".encode())) == (4, 0, "e")
    # typing "e" after "👧e" is the same text change, at the other equivalent position
    assert slide_to_cursor("👧end", "👧eend", len("👧e".encode())) == (5, 0, "e")


def test_backspace_in_a_run_deletes_at_the_cursor():
    assert slide_to_cursor("aaab", "aab", 0) == (0, 1, "")


def test_not_a_pure_insert_or_cursor_elsewhere_keeps_the_diff():
    assert slide_to_cursor("abc", "axc", 1) is None
    assert slide_to_cursor("abc", "abxc", 0) is None  # cursor far from the only position
    assert slide_to_cursor("abc", "abcd", -1) is None


@settings(max_examples=400, deadline=None)
@given(st.lists(CHARS, max_size=10).map("".join), st.lists(CHARS, min_size=1, max_size=3).map("".join),
       st.data())
def test_any_answer_reproduces_the_new_line(old, ins, data):
    k = data.draw(st.integers(0, len(old)))
    new = old[:k] + ins + old[k:]
    cursor_char = data.draw(st.integers(0, len(new)))
    cursor_byte = len(new[:cursor_char].encode())
    result = slide_to_cursor(old, new, cursor_byte)
    # Neovim reports the cursor at the start of the change: then the true position is found
    if cursor_char == k:
        assert result is not None
    if result is not None:
        start, deleted, inserted = result
        raw = old.encode()
        assert deleted == 0
        assert (raw[:start] + inserted.encode() + raw[start:]).decode() == new
        if cursor_char == k:
            assert start == len(new[:k].encode())
