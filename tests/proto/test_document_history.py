"""No history leak: text deleted before a peer joins is in nothing that peer receives.

An UndoManager on the shared Doc keeps deleted items alive (DESIGN.md section 3),
so get_update shipped every deleted secret to every later joiner.  The wire Doc
now garbage-collects deleted text, and undo works on a local-only mirror.  These
tests type, paste and delete secrets, let a peer join over the fake network, and
search every byte the joiner opens (and every sync payload it applies).
"""

from __future__ import annotations

import random

import pytest
import sys
from pathlib import Path

from covim_p2p.editor.edits import TextEdit
from covim_p2p.proto.document import SharedDocument

sys.path.insert(0, str(Path(__file__).parent))
from test_node import Mesh, char_offset  # noqa: E402
from fakenet import FakeNetwork  # noqa: E402

IN_FILE, TYPED, PASTED = "filekey=7f3a9b21", "typedpw:92c1x0q8", "pastetok@e4d0k5m3"
SECRETS = [IN_FILE, TYPED, PASTED]


def leaks(blob: bytes) -> list[str]:
    """Secrets (or any 8-byte piece of one) found in ``blob``."""
    found = []
    for secret in SECRETS:
        raw = secret.encode()
        if any(raw[i : i + 8] in blob for i in range(len(raw) - 7)):
            found.append(secret)
    return found


def write_secrets(doc: SharedDocument, commit=None, now_ms: int = 0) -> None:
    """The file holds one secret; type another key by key, paste a third; then delete all three.

    ``commit(edits, now_ms)``: how the edits go in (default: straight into ``doc``)."""
    def default(edits, ms):
        doc.now_ms = ms
        doc.local_edits(edits)
    commit = commit or default

    def end() -> int:
        return len(str(doc).encode())

    for ch in TYPED:
        now_ms += 100
        commit([TextEdit(end(), 0, ch)], now_ms)
    now_ms += 1000
    commit([TextEdit(end(), 0, " " + PASTED + " tail")], now_ms)
    for secret in SECRETS:
        now_ms += 1000
        commit([TextEdit(str(doc).encode().index(secret.encode()), len(secret), "")], now_ms)


def test_a_fresh_sync_carries_no_deleted_text():
    doc = SharedDocument(1, f"keep {IN_FILE} keep\n")
    write_secrets(doc)
    assert str(doc) == "keep  keep\n  tail"
    assert leaks(doc.diff_since(b"\x00")) == []
    joiner = SharedDocument(2)
    joiner.apply_sync(doc.diff_since(joiner.state_vector()))
    assert str(joiner) == str(doc)


def test_undo_still_restores_deleted_text_and_the_restored_text_travels():
    doc = SharedDocument(1, f"keep {IN_FILE} keep\n")
    write_secrets(doc)
    assert len(doc.undo()) == 1
    assert PASTED in str(doc)
    doc.take_remote_edits()
    joiner = SharedDocument(2)
    joiner.apply_sync(doc.diff_since(joiner.state_vector()))
    assert str(joiner) == str(doc)
    assert leaks(doc.diff_since(b"\x00")) == [PASTED]  # it is in the text again: of course it travels


@pytest.mark.parametrize("seed", range(6))
def test_undo_mirrors_remote_edits_and_touches_only_mine(seed):
    """The mirror sees remote edits too, so undo positions stay right after others typed."""
    rng = random.Random(seed)
    mine, theirs = SharedDocument(1, "0123456789\n"), SharedDocument(2)
    theirs.apply_sync(mine.diff_since(theirs.state_vector()))
    now = 0
    for step in range(60):
        now += 600
        mine.now_ms = theirs.now_ms = now
        for doc in (mine, theirs):
            text = str(doc)
            k = rng.randrange(len(text) + 1)
            if text and rng.random() < 0.3:
                edit = TextEdit(char_offset(text, k), len(text[k : k + 2].encode()), "")
            else:
                edit = TextEdit(char_offset(text, k), 0, "ab"[doc is theirs] * rng.randint(1, 3))
            for deps, update in doc.local_edits([edit]):
                (theirs if doc is mine else mine).receive_update(deps, update)
        if step % 7 == 6:
            for deps, update in mine.undo(redo=rng.random() < 0.3):
                theirs.receive_update(deps, update)
        mine._catch_up_mirror()
        assert str(mine) == str(theirs) == str(mine._mirror)
    # undoing everything of mine leaves no 'a' of mine, on both sides
    for _ in range(200):
        changes = mine.undo()
        if not changes:
            break
        for deps, update in changes:
            theirs.receive_update(deps, update)
    mine._catch_up_mirror()
    assert str(mine) == str(theirs) == str(mine._mirror)
    assert "a" not in str(mine) and "b" in str(mine)


def test_a_late_joiner_receives_no_deleted_secret_over_the_network():
    net = FakeNetwork(3)
    mesh = Mesh(net, initial_text=f"notes\n{IN_FILE}\nmore\n")
    mesh.join("early", 1)
    mesh.settle()
    host = mesh.nodes["host"]
    write_secrets(host.document, lambda edits, ms: host.local_edits(edits, ms / 1000), int(net.now * 1000))
    mesh.settle()
    received: list[bytes] = []
    late = mesh.join("late", 2)
    opened = late.wire.open_peer

    def spy(data: bytes, *args):
        header, body, keys = opened(data, *args)
        received.append(body)
        return header, body, keys
    late.wire.open_peer = spy
    applied: list[bytes] = []
    for name in ("apply_sync", "receive_update"):
        real = getattr(late.document, name)
        setattr(late.document, name, lambda *a, real=real: (applied.append(a[-1]), real(*a))[1])
    mesh.settle()
    assert str(late.document) == str(host.document) == "notes\n\nmore\n  tail"
    assert received and applied
    assert leaks(b"".join(received)) == [] and leaks(b"".join(applied)) == []
