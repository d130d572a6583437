"""No history leak: text deleted before a peer joins is in nothing that peer receives.

An UndoManager on the shared Doc keeps deleted items alive (DESIGN.md section 3),
so get_update shipped every deleted secret to every later joiner.  The wire Doc
now garbage-collects deleted text, and undo works on a local-only mirror.  These
tests type, paste and delete secrets, let a peer join (through the ledger's
WANT and answer, ledger.py, or over the fake network), and search every byte
the joiner receives (and every bundle and update it takes).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from covim_p2p.editor.edits import TextEdit
from covim_p2p.proto.authorship import AuthorKey, decode_bundle_untrusted, encode_bundle
from covim_p2p.proto.document import SharedDocument
from covim_p2p.proto.keys import SessionKeys
from covim_p2p.proto.ledger import Ledger

sys.path.insert(0, str(Path(__file__).parent))
from fakenet import FakeNetwork  # noqa: E402

SESSION = 0x5E55
KEYS = SessionKeys.from_roots(SESSION, write_root=b"w" * 16)

IN_FILE, TYPED, PASTED = "filekey=7f3a9b21", "typedpw:92c1x0q8", "pastetok@e4d0k5m3"
SECRETS = [IN_FILE, TYPED, PASTED]


def peer(seed: int, text: str = "") -> Ledger:
    author = AuthorKey(bytes([seed]) * 32)
    return Ledger(SESSION, KEYS, SharedDocument(author.client_id, text), author)


def signed(ledger: Ledger):
    """``commit`` for write_secrets: every transaction signed, as a node does (its records stay in
    the ledger: only the answer to a new peer must not hold them)."""
    def commit(edits, ms):
        ledger.document.now_ms = ms
        ledger.sign(ledger.document.local_edits(edits))
    return commit


def join(ledger: Ledger, joiner: Ledger) -> bytes:
    """The late joiner's WANT answered: the bundle bytes it receives, after it took them."""
    bundle = encode_bundle(ledger.answer(joiner.want(set())))
    joiner.receive(decode_bundle_untrusted(bundle))
    return bundle


def send(src: Ledger, dst: Ledger, changes) -> None:
    """``src``'s transactions, signed, to ``dst`` (an edit that changed nothing made none)."""
    material = src.sign(changes)
    if material is not None:
        dst.receive([material])


def char_offset(text: str, k: int) -> int:
    """Byte offset of the k-th character, clamped to the end."""
    return len(text[: max(0, min(k, len(text)))].encode())


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
    host = peer(1, f"keep {IN_FILE} keep\n")
    doc = host.document
    write_secrets(doc, signed(host))
    assert str(doc) == "keep  keep\n  tail"
    assert leaks(doc.doc.get_update()) == []  # the document itself holds none of it
    history = b"".join(i.record.update for i in [host.own.cp, *host.own.records.values()])
    assert leaks(history) == [IN_FILE, PASTED]  # the records it broadcast do: the answer must not be those
    joiner = peer(2)
    bundle = join(host, joiner)
    assert leaks(bundle) == []
    assert str(joiner.document) == str(doc) and joiner.drops.total == 0 and joiner.pending() == 0


def test_undo_still_restores_deleted_text_and_the_restored_text_travels():
    host = peer(1, f"keep {IN_FILE} keep\n")
    doc = host.document
    write_secrets(doc, signed(host))
    changes = doc.undo()
    assert len(changes) == 1
    host.sign(changes)
    assert PASTED in str(doc)
    doc.take_remote_edits()
    joiner = peer(2)
    bundle = join(host, joiner)
    assert str(joiner.document) == str(doc)
    assert leaks(bundle) == [PASTED]  # it is in the text again: of course it travels
    assert leaks(doc.doc.get_update()) == [PASTED]


@pytest.mark.parametrize("seed", range(6))
def test_undo_mirrors_remote_edits_and_touches_only_mine(seed):
    """The mirror sees remote edits too, so undo positions stay right after others typed."""
    rng = random.Random(seed)
    me, them = peer(1, "0123456789\n"), peer(2)
    mine, theirs = me.document, them.document
    join(me, them)
    now = 0
    for step in range(60):
        now += 600
        mine.now_ms = theirs.now_ms = now
        for ledger in (me, them):
            doc = ledger.document
            text = str(doc)
            k = rng.randrange(len(text) + 1)
            if text and rng.random() < 0.3:
                edit = TextEdit(char_offset(text, k), len(text[k : k + 2].encode()), "")
            else:
                edit = TextEdit(char_offset(text, k), 0, "ab"[doc is theirs] * rng.randint(1, 3))
            send(ledger, them if ledger is me else me, doc.local_edits([edit]))
        if step % 7 == 6:
            send(me, them, mine.undo(redo=rng.random() < 0.3))
        mine._catch_up_mirror()
        assert str(mine) == str(theirs) == str(mine._mirror)
        assert me.pending() == them.pending() == 0
    # undoing everything of mine leaves no 'a' of mine, on both sides
    for _ in range(200):
        changes = mine.undo()
        if not changes:
            break
        send(me, them, changes)
    mine._catch_up_mirror()
    assert str(mine) == str(theirs) == str(mine._mirror)
    assert "a" not in str(mine) and "b" in str(mine)
    assert me.drops.total == them.drops.total == 0


def test_a_late_joiner_receives_no_deleted_secret_over_the_network():
    from test_node import Mesh  # noqa: PLC0415 - only this test needs the node mesh
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
    taken: list[bytes] = []  # every bundle the late joiner's ledger receives, re-encoded
    real_receive = late.ledger.receive
    late.ledger.receive = lambda materials, *rest: (taken.append(encode_bundle(list(materials))),
                                                    real_receive(materials, *rest))[1]
    applied: list[bytes] = []  # every update its document takes
    real_apply = late.document.apply_verified
    late.document.apply_verified = lambda update: (applied.append(update), real_apply(update))[1]
    mesh.settle()
    assert str(late.document) == str(host.document) == "notes\n\nmore\n  tail"
    assert received and taken and applied
    assert leaks(b"".join(received)) == [] and leaks(b"".join(taken)) == [] and leaks(b"".join(applied)) == []
