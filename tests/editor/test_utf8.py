from covim_p2p.editor.utf8 import describe, first_invalid


def test_valid_text_has_no_invalid_byte():
    assert first_invalid(["plain", "café 世界 🙂", ""]) is None


def test_the_first_bad_byte_with_its_byte_column():
    lines = ["ok", "caf\udce9 \udcff", "\udcc3"]
    assert first_invalid(lines) == (1, 3, 0xE9)
    assert first_invalid(["é\udce9"]) == (0, 2, 0xE9)
    assert describe((1, 3, 0xE9)).startswith("line 2 is not valid UTF-8 (byte 0xe9 at column 4)")
