"""Micro-benchmark of what security v4/v5 costs per datagram, per keystroke and per link, beside the v3 seal.

``.venv/bin/python -m benchmarks.micro_crypto`` times, in one process:
a whole Noise XXpsk3 handshake between two machines (both sides: 3 messages,
what each new link or rekey pays once), a keystroke-sized datagram sealed and
opened under a pair's keys (v4, handshake.py), and the same with a token-keyed
seal of the v3 shape (seal.py, which v4 keeps for rendezvous and handshake
messages), and a keystroke's signed record (v5, ledger.py): what its author
pays to sign it, what a peer pays to take it from its author (signature
checked later, only if passed on) or from anyone else (checked at once),
beside pycrdt's own work for the same keystroke. Not part of
benchmarks.run: CPU per operation, no user-visible time.
"""

from __future__ import annotations

import os
import timeit

from covim_p2p.editor.edits import TextEdit
from covim_p2p.proto.authorship import AuthorKey, decode_bundle_untrusted, encode_bundle
from covim_p2p.proto.document import SharedDocument
from covim_p2p.proto.drops import Drops
from covim_p2p.proto.framing import KIND_PEER
from covim_p2p.proto.handshake import PairSecurity
from covim_p2p.proto.ledger import Ledger
from covim_p2p.proto.seal import session_seal
from covim_p2p.proto.token import SessionToken

TOKEN = SessionToken((("127.0.0.1", 7000),), 0x5EED, bytes(range(16)))
A, B = ("127.0.0.2", 1), ("127.0.0.3", 2)
KEYSTROKE = bytes(60)  # epochs + a DATA frame carrying a one-character Yjs update and an ACK


def machines():
    a = PairSecurity(TOKEN.keys(), 1, os.urandom(32), AuthorKey(os.urandom(32)), os.urandom, Drops())
    b = PairSecurity(TOKEN.keys(), 2, os.urandom(32), AuthorKey(os.urandom(32)), os.urandom, Drops())
    a.expect(2, b.static_public)
    b.expect(1, a.static_public)
    return a, b


def handshake(a: PairSecurity, b: PairSecurity) -> None:
    a.seal(2, b"", 1, B, 0.0)
    for src, dst, addr in ((a, b, A), (b, a, B), (a, b, A)):
        for data, _ in src.take():
            dst.receive_handshake(data, addr, 0.0)


def per_call(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number


def ledger(seed: int, text: str = "") -> Ledger:
    author = AuthorKey(bytes([seed]) * 32)
    return Ledger(TOKEN.session, TOKEN.keys(), SharedDocument(author.client_id, text), author)


def keystrokes(n: int = 2000) -> tuple[float, float, float, float]:
    """Per keystroke: pycrdt alone, signing, taking it from its author, taking it relayed."""
    a, plain = ledger(1, "x" * 2000), SharedDocument(9, "x" * 2000)
    b, c = ledger(2), ledger(3)
    for peer in (b, c):
        peer.receive(decode_bundle_untrusted(encode_bundle(a.answer(peer.want(set())))))
    # the records b and c take, in order (per_call runs each 5 x n times)
    feed = [decode_bundle_untrusted(encode_bundle([a.sign(a.document.local_edits([TextEdit(1000, 0, "z")]))]))
            for _ in range(5 * n)]
    to_b, to_c = iter(feed), iter(feed)
    vouched = per_call(lambda: b.receive(next(to_b), a.author.public), n)
    checked = per_call(lambda: c.receive(next(to_c)), n)
    assert str(b.document) == str(c.document) == str(a.document)
    at = iter(range(10**9))
    doc = per_call(lambda: plain.local_edits([TextEdit(1000 + next(at) % 500, 0, "y")]), n)
    edited = per_call(lambda: a.document.local_edits([TextEdit(1000 + next(at) % 500, 0, "y")]), n)
    signed = per_call(lambda: a.sign(a.document.local_edits([TextEdit(1000 + next(at) % 500, 0, "y")])), n) - edited
    return doc, signed, vouched, checked


def main() -> None:
    setup = per_call(machines, 200)
    hs = per_call(lambda: handshake(*machines()), 200) - setup
    a, b = machines()
    handshake(a, b)
    v4 = per_call(lambda: b.open(a.seal(2, KEYSTROKE, 1, B, 0.0), 0.0), 20000)
    tx, rx = session_seal(0x5EED, bytes(16), os.urandom(16)), session_seal(0x5EED, bytes(16), os.urandom(16))
    v3 = per_call(lambda: rx.open_untrusted(tx.seal(KIND_PEER, 0x5EED, 7, KEYSTROKE, 9), 9, 0.0), 20000)
    print("| what | time |")
    print("|---|---|")
    print(f"| per peer and session: key derivations, static key, writer certificate (two peers) | {setup * 1e3:.2f} ms |")
    print(f"| Noise XXpsk3 handshake, both sides, with the writer check (per new link or rekey) | {hs * 1e3:.2f} ms |")
    print(f"| keystroke datagram sealed + opened, v4 pair keys | {v4 * 1e6:.1f} µs |")
    print(f"| keystroke datagram sealed + opened, token-keyed seal (v3 shape) | {v3 * 1e6:.1f} µs |")
    doc, signed, vouched, checked = keystrokes()
    print(f"| keystroke: pycrdt's own edit (for scale) | {doc * 1e6:.1f} µs |")
    print(f"| keystroke: its author signs the record (v5) | {signed * 1e6:.1f} µs |")
    print(f"| keystroke: a peer takes the record from its author (checked, applied; signature later) | "
          f"{vouched * 1e6:.1f} µs |")
    print(f"| keystroke: a peer takes the record relayed (signature checked at once, applied) | {checked * 1e6:.1f} µs |")


if __name__ == "__main__":
    main()
