"""SharedDocument: causal delivery, bounded local transactions, remote edits, cursors.

pycrdt diverges when one writer's updates arrive out of causal order (DESIGN.md
section 3: 51/100 shuffles gave the wrong text); SharedDocument holds an update
back until its dependencies are covered, so it must converge every time.
"""

from __future__ import annotations

import random

import pytest
from pycrdt import Doc, Text

from covim_p2p.editor.edits import TextEdit, apply_edit_to_str
from covim_p2p.proto import document as document_mod
from covim_p2p.proto.codec import DecodeError
from covim_p2p.proto.document import (SharedDocument, covers,
                                      decode_state_vector_untrusted)

WORDS = ["ab", "é", "世界", "🙂", "x\n", "naïve ", "👩‍👩‍👧", "\u0301"]  # last: a lone combining mark


def sync(dst: SharedDocument, src: SharedDocument) -> None:
    dst.apply_sync(src.diff_since(dst.state_vector()))


def boundaries(text: str) -> list[int]:
    return [len(text[:k].encode()) for k in range(len(text) + 1)]


def random_edit(rng: random.Random, text: str) -> TextEdit:
    b = boundaries(text)
    if len(text) and rng.random() < 0.35:
        k = rng.randrange(len(text))
        j = rng.randint(k + 1, min(k + 4, len(text)))
        return TextEdit(b[k], b[j] - b[k], rng.choice(["", "", rng.choice(WORDS)]))
    return TextEdit(rng.choice(b), 0, rng.choice(WORDS))


def single_writer_updates(seed: int, n: int = 20) -> tuple[str, list[tuple[bytes, bytes]]]:
    rng = random.Random(seed)
    writer = SharedDocument(1)
    updates: list[tuple[bytes, bytes]] = []
    for _ in range(n):
        updates += writer.local_edits([random_edit(rng, str(writer))])
    return str(writer), updates


# ---- the unit ------------------------------------------------------------------

def test_offsets_are_utf8_bytes():
    doc = SharedDocument(1, "a世🙂")
    assert doc.byte_len() == 1 + 3 + 4
    doc.local_edits([TextEdit(4, 0, "|")])  # just after 世
    assert str(doc) == "a世|🙂"


# ---- causal delivery -----------------------------------------------------------

def test_update_waits_for_its_dependency_from_a_third_peer():
    a, b, c = SharedDocument(1), SharedDocument(2), SharedDocument(3)
    (a_deps, a_update), = a.local_edits([TextEdit(0, 0, "hello")])
    b.receive_update(a_deps, a_update)
    assert str(b) == "hello"
    (b_deps, b_update), = b.local_edits([TextEdit(5, 0, " wörld")])
    assert covers(decode_state_vector_untrusted(b_deps), {1: 5})  # B's update depends on A's

    c.receive_update(b_deps, b_update)  # B's arrives first
    assert c.waiting_updates() == 1
    assert str(c) == ""
    assert not c.has_remote_edits()

    c.receive_update(a_deps, a_update)
    assert c.waiting_updates() == 0
    assert str(c) == str(b) == "hello wörld"
    edits = c.take_remote_edits()
    assert [e.insert for e in edits] == ["hello", " wörld"]  # applied in causal order


def test_duplicate_update_is_harmless():
    a, b = SharedDocument(1), SharedDocument(2)
    (deps, update), = a.local_edits([TextEdit(0, 0, "x")])
    for _ in range(3):
        b.receive_update(deps, update)
    assert str(b) == "x" and b.waiting_updates() == 0


@pytest.mark.parametrize("seed", range(100))
def test_shuffled_single_writer_updates_converge(seed):
    final, updates = single_writer_updates(seed)
    order = updates[:]
    random.Random(seed + 1000).shuffle(order)
    reader = SharedDocument(2)
    for deps, update in order:
        reader.receive_update(deps, update)
    assert reader.waiting_updates() == 0
    assert str(reader) == final


def test_raw_pycrdt_diverges_on_the_same_shuffles():
    """The contrast that makes the test above meaningful (pins pycrdt 0.14.13's
    behaviour, DESIGN.md section 3): applying the same shuffled updates directly
    gives the wrong text in a good share of runs."""
    wrong = 0
    for seed in range(100):
        final, updates = single_writer_updates(seed)
        order = updates[:]
        random.Random(seed + 1000).shuffle(order)
        raw = Doc(client_id=2)
        text = raw.get("content", type=Text)
        for _, update in order:
            raw.apply_update(update)
        wrong += str(text) != final
    assert wrong >= 10, f"raw pycrdt diverged in only {wrong}/100 shuffles: has pycrdt changed?"


def test_apply_sync_heals_a_held_back_queue():
    a, b, c = SharedDocument(1), SharedDocument(2), SharedDocument(3)
    (a_deps, a_update), = a.local_edits([TextEdit(0, 0, "base")])
    b.receive_update(a_deps, a_update)
    held = []
    for i in range(3):
        held += b.local_edits([TextEdit(b.byte_len(), 0, f"-{i}")])
    for deps, update in reversed(held):
        c.receive_update(deps, update)
    assert c.waiting_updates() == 3 and str(c) == ""

    sync(c, a)  # A's SyncStep2 brings the missing dependency: the queue drains
    assert c.waiting_updates() == 0
    assert str(c) == str(b) == "base-0-1-2"


def test_full_sync_from_the_writer_also_heals():
    final, updates = single_writer_updates(7)
    writer_doc = SharedDocument(9)
    for deps, update in updates:
        writer_doc.receive_update(deps, update)
    reader = SharedDocument(2)
    for deps, update in updates[1:]:
        reader.receive_update(deps, update)  # the first one was lost
    assert reader.waiting_updates() == len(updates) - 1
    sync(reader, writer_doc)
    assert reader.waiting_updates() == 0 and str(reader) == final


def test_too_many_held_back_updates_are_forgotten_then_resynced(monkeypatch):
    monkeypatch.setattr(document_mod, "MAX_HELD_BACK", 4)
    a, b = SharedDocument(1), SharedDocument(2)
    updates = [u for i in range(7) for u in a.local_edits([TextEdit(a.byte_len(), 0, str(i))])]
    for deps, update in updates[1:]:
        b.receive_update(deps, update)
    assert b.held_back_dropped == 4
    assert b.waiting_updates() == 2
    assert str(b) == ""
    sync(b, a)
    assert str(b) == "0123456" and b.waiting_updates() == 0


def test_empty_sync_is_a_no_op():
    a, b = SharedDocument(1, "same"), SharedDocument(2)
    sync(b, a)
    sync(b, a)  # now the diff is empty (b"\x00\x00")
    assert str(b) == "same" and b.waiting_updates() == 0


def test_garbage_state_vectors_raise_decode_error_not_panic():
    doc = SharedDocument(1, "x")
    for garbage in (b"\x05", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", b"\x01\x01"):
        with pytest.raises(DecodeError):
            doc.diff_since(garbage)
        with pytest.raises(DecodeError):
            doc.receive_update(garbage, b"\x00\x00")
    with pytest.raises(DecodeError, match="claims"):
        decode_state_vector_untrusted(b"\xff\xff\xff\x7f")
    assert str(doc) == "x"


# ---- local edits ------------------------------------------------------------------

def test_large_insert_is_one_transaction_and_one_update():
    big = "".join(f"line {i} 世界🙂\n" for i in range(12_000))  # ~250 KB, multi-byte throughout
    doc = SharedDocument(1, "<>")
    ((deps, update),) = doc.local_edits([TextEdit(1, 0, big)])
    assert str(doc) == "<" + big + ">"
    assert len(big.encode()) < len(update) < len(big.encode()) + 1024

    receiver = SharedDocument(4)
    sync(receiver, SharedDocument(1, "<>"))
    receiver.receive_update(deps, update)
    assert receiver.waiting_updates() == 0 and str(receiver) == str(doc)
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
        receiver.receive_update(d, u)
    assert receiver.waiting_updates() == 0 and str(receiver) == str(doc)


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
                    other.receive_update(deps, update)
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
        b.receive_update(deps, update)
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
