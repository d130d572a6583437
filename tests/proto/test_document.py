"""SharedDocument: bounded local transactions, remote edits, cursors.

Causal delivery (an update waits for what it builds on) and sync are the
ledger's (ledger.py, tests/proto/test_ledger.py); here updates move between
documents directly, each only once its receiver holds its dependencies.
"""

from __future__ import annotations

import random

import pytest

from covim_p2p.editor.edits import TextEdit, apply_edit_to_str
from covim_p2p.proto.document import SharedDocument, covers, decode_state_vector_untrusted

WORDS = ["ab", "é", "世界", "🙂", "x\n", "naïve ", "👩‍👩‍👧", "\u0301"]  # last: a lone combining mark


def sync(dst: SharedDocument, src: SharedDocument) -> None:
    """What ``dst`` lacks of ``src``, straight from document to document."""
    dst.doc.apply_update(src.doc.get_update(dst.state_vector()))


def deliver(dst: SharedDocument, deps: bytes, update: bytes) -> None:
    """One transaction of a peer, as the ledger hands it over: only once its dependencies are held."""
    assert covers(dst.have(), decode_state_vector_untrusted(deps))
    dst.apply_verified(update)


def boundaries(text: str) -> list[int]:
    return [len(text[:k].encode()) for k in range(len(text) + 1)]


def random_edit(rng: random.Random, text: str) -> TextEdit:
    b = boundaries(text)
    if len(text) and rng.random() < 0.35:
        k = rng.randrange(len(text))
        j = rng.randint(k + 1, min(k + 4, len(text)))
        return TextEdit(b[k], b[j] - b[k], rng.choice(["", "", rng.choice(WORDS)]))
    return TextEdit(rng.choice(b), 0, rng.choice(WORDS))


# ---- the unit ------------------------------------------------------------------

def test_offsets_are_utf8_bytes():
    doc = SharedDocument(1, "a世🙂")
    assert doc.byte_len() == 1 + 3 + 4
    doc.local_edits([TextEdit(4, 0, "|")])  # just after 世
    assert str(doc) == "a世|🙂"


# ---- local edits ------------------------------------------------------------------

def test_large_insert_is_one_transaction_and_one_update():
    big = "".join(f"line {i} 世界🙂\n" for i in range(12_000))  # ~250 KB, multi-byte throughout
    doc = SharedDocument(1, "<>")
    ((deps, update),) = doc.local_edits([TextEdit(1, 0, big)])
    assert str(doc) == "<" + big + ">"
    assert len(big.encode()) < len(update) < len(big.encode()) + 1024

    receiver = SharedDocument(4)
    sync(receiver, SharedDocument(1, "<>"))
    deliver(receiver, deps, update)
    assert str(receiver) == str(doc)
    shown = ""  # the sync of "<>" was a remote edit too
    for edit in receiver.take_remote_edits():
        shown = apply_edit_to_str(shown, edit)
    assert shown == str(doc)


def test_large_insert_with_a_deletion():
    doc = SharedDocument(1, "keep|delete me|keep")
    big = "é" * (64 * 1024)
    (_,) = doc.local_edits([TextEdit(5, 9, big)])
    assert str(doc) == "keep|" + big + "|keep"


def test_an_update_carries_only_its_own_transaction():
    """Not the whole document's delete set: late in a real trace that was ~10 KB a keystroke."""
    doc = SharedDocument(1, "x" * 2000)
    receiver = SharedDocument(2)
    sync(receiver, doc)
    updates = []
    for i in range(0, 1000, 2):  # 500 separate deletions: 500 delete-set ranges
        updates += doc.local_edits([TextEdit(i // 2 + 1, 1, "")])
    ((deps, update),) = doc.local_edits([TextEdit(0, 0, "y")])
    assert len(update) < 40
    assert len(doc.doc.get_update(deps)) > 1000  # what get_update(before) would have sent
    for d, u in updates + [(deps, update)]:
        deliver(receiver, d, u)
    assert str(receiver) == str(doc)


def test_the_initial_text_is_not_undoable():
    doc = SharedDocument(1, "opened file")
    assert doc.undo() == []
    doc.local_edits([TextEdit(0, 0, "> ")])
    assert len(doc.undo()) == 1 and str(doc) == "opened file"
    assert doc.undo() == [] and str(doc) == "opened file"


def test_small_insert_is_one_transaction():
    doc = SharedDocument(1)
    assert len(doc.local_edits([TextEdit(0, 0, "x" * 1000)])) == 1
    assert len(doc.local_edits([TextEdit(0, 3, "")])) == 1  # a pure deletion too
    assert doc.byte_len() == 997


def test_several_edits_apply_in_sequence():
    doc = SharedDocument(1, "abc")
    doc.local_edits([TextEdit(0, 1, "X"), TextEdit(3, 0, "世"), TextEdit(1, 0, "-")])
    assert str(doc) == "X-bc世"


@pytest.mark.parametrize("edit", [
    TextEdit(-1, 0, "x"), TextEdit(0, -1, ""), TextEdit(6, 0, "x"), TextEdit(4, 2, ""), TextEdit(0, 7, ""),
])
def test_edits_outside_the_text_raise_value_error(edit):
    doc = SharedDocument(1, "hello")
    with pytest.raises(ValueError, match="outside a text of 5 bytes"):
        doc.local_edits([edit])
    assert str(doc) == "hello"


def test_local_edits_are_not_reported_as_remote():
    doc = SharedDocument(1, "abc")
    doc.local_edits([TextEdit(1, 1, "Z")])
    assert not doc.has_remote_edits()
    assert doc.take_remote_edits() == []


# ---- remote edits -----------------------------------------------------------------

@pytest.mark.parametrize("seed", range(8))
def test_take_remote_edits_replays_to_the_same_text(seed):
    rng = random.Random(seed)
    writers = [SharedDocument(10 + i, "") for i in range(2)]
    reader = SharedDocument(1)
    shown = str(reader)  # what the editor shows
    for step in range(60):
        w = rng.choice(writers)
        for deps, update in w.local_edits([random_edit(rng, str(w))]):
            for other in [*writers, reader]:
                if other is not w:
                    deliver(other, deps, update)
        if rng.random() < 0.3 or step == 59:  # the editor takes edits in batches
            for edit in reader.take_remote_edits():
                shown = apply_edit_to_str(shown, edit)
            assert shown == str(reader)
    assert str(reader) == str(writers[0]) == str(writers[1])
    assert any(ord(ch) > 0xFFFF for ch in shown) or any(ord(ch) > 0x7F for ch in shown)


def test_remote_replace_with_cjk_and_emoji_replays():
    a = SharedDocument(1, "hello 世界 🙂 bye")
    b = SharedDocument(2)
    sync(b, a)
    shown = "".join(apply_edit_to_str("", e) for e in b.take_remote_edits())
    assert shown == str(a)
    for deps, update in a.local_edits([TextEdit(6, 6, "🌍🌏"), TextEdit(0, 5, "こんにちは")]):
        deliver(b, deps, update)
    for edit in b.take_remote_edits():
        shown = apply_edit_to_str(shown, edit)
    assert shown == str(b) == "こんにちは 🌍🌏 🙂 bye"


# ---- cursors --------------------------------------------------------------------

def test_sticky_round_trip_start_middle_end():
    doc = SharedDocument(1, "hello world")
    for offset in (0, 5, 11):
        assert doc.resolve_sticky(doc.sticky(offset)) == offset


def test_sticky_clamps_out_of_range():
    doc = SharedDocument(1, "abc")
    assert doc.resolve_sticky(doc.sticky(99)) == 3
    assert doc.resolve_sticky(doc.sticky(-5)) == 0


def test_sticky_on_empty_text():
    doc = SharedDocument(1)
    assert doc.sticky(0) == {"offset": 0}
    assert doc.resolve_sticky(doc.sticky(0)) == 0
    assert doc.resolve_sticky(doc.sticky(10)) == 0


def test_yjs_style_relative_positions_resolve_on_ascii_text():
    """Yjs peers send item-based positions; ours are byte offsets (see sticky's docstring)."""
    from pycrdt import Assoc, StickyIndex
    a = SharedDocument(1, "hello")
    b = SharedDocument(2)
    sync(b, a)
    position = StickyIndex.new(a.text, 2, Assoc.AFTER).to_json()
    b.local_edits([TextEdit(0, 0, "XYZ")])
    assert b.resolve_sticky(position) == 5  # follows the concurrent insert before it


@pytest.mark.parametrize("text", ["héllo wörld", "世界世界", "a🙂b🙂c", "🙂", "e\u0301e\u0301"])
def test_sticky_with_multibyte_text_resolves_to_the_same_offset(text):
    """Every character boundary round-trips exactly, also on another replica and
    after an edit elsewhere (pycrdt's StickyIndex mixes bytes and UTF-16 units
    inside one item, so SharedDocument must not trust it there)."""
    a = SharedDocument(1, text)
    b = SharedDocument(2)
    sync(b, a)
    b.local_edits([TextEdit(b.byte_len(), 0, "!")])  # an edit after every cursor
    for offset in boundaries(text):
        cursor = a.sticky(offset)
        assert a.resolve_sticky(cursor) == offset, cursor
        assert b.resolve_sticky(cursor) == offset, cursor


def test_offsets_are_passed_through_clamped():
    """O(1) on the keystroke path: rounding to a character happens on the receiver's line."""
    doc = SharedDocument(1, "a世b")
    assert doc.sticky(2) == {"offset": 2}
    assert doc.resolve_sticky({"offset": 3}) == 3
    assert doc.resolve_sticky({"offset": 99}) == 5


def test_resolve_on_a_doc_lacking_the_item_returns_none():
    from pycrdt import Assoc, StickyIndex
    a = SharedDocument(1, "hello")
    cursor = StickyIndex.new(a.text, 3, Assoc.AFTER).to_json()
    assert "item" in cursor
    stranger = SharedDocument(2, "other text")
    assert stranger.resolve_sticky(cursor) is None
    assert SharedDocument(3).resolve_sticky(cursor) is None


@pytest.mark.parametrize("garbage", [
    None, 3, "x", [], {}, {"offset": "3"}, {"item": None}, {"item": {"client": 1}, "assoc": 0},
    {"item": {"client": "1", "clock": 0}, "assoc": 0}, {"item": {"client": 1, "clock": -1}, "assoc": 0},
    {"item": {"client": 1, "clock": 0}, "assoc": 5}, {"garbage": 1},
    {"item": {"client": 1, "clock": 10**30}, "assoc": 0},
])
def test_resolve_garbage_returns_none_never_panics(garbage):
    doc = SharedDocument(1, "hello")
    assert doc.resolve_sticky(garbage) is None
