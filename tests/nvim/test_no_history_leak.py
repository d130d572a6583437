"""End to end: what a Neovim host typed, pasted or had in its file and deleted before a peer
joined is in none of the bytes that peer opens (it is a python peer over real UDP, so every
datagram body can be searched after unsealing)."""

from __future__ import annotations

import time

from covim_peers import host, status, type_keys
from nvim_harness import wait_for
from test_python_peer import LoopbackPeer

IN_FILE, TYPED, PASTED = "filekey=7f3a9b21", "typedpw:92c1x0q8", "pastetok@e4d0k5m3"


def _leaks(blob: bytes) -> list[str]:
    return [s for s in (IN_FILE, TYPED, PASTED) if any(s.encode()[i : i + 8] in blob for i in range(len(s) - 7))]


def test_a_late_joiner_receives_no_text_deleted_before_it_joined(nvim_factory):
    a = nvim_factory()
    token = host(a, "alice", ["notes", f"password {IN_FILE}", "end"])
    type_keys(a, f"GA {TYPED}<Esc>")  # typed key by key
    time.sleep(0.6)  # its own undo step
    a.funcs.setreg("a", PASTED)
    type_keys(a, 'gg"ap')  # pasted
    time.sleep(0.6)
    type_keys(a, "ggdd")  # the paste goes with the first line
    type_keys(a, "0wD")  # the secret from the file ("password " stays)
    type_keys(a, "G$" + "x" * (len(TYPED) + 1))  # the typed one, and its space
    expected = ["password ", "end"]
    assert a.current.buffer[:] == expected
    type_keys(a, "u")  # undo still works on the host (the deletions were one step: all come back) ...
    restored = [f"notes{PASTED}", f"password {IN_FILE}", f"end {TYPED}"]
    wait_for(lambda: a.current.buffer[:] == restored, 5, what="undo bringing the deleted text back")
    type_keys(a, "<C-r>")  # ... and redo deletes them again
    wait_for(lambda: a.current.buffer[:] == expected, 5, what="redo deleting it again")
    peer = LoopbackPeer(token, "late")
    opened: list[bytes] = []  # every datagram body the peer opens (rendezvous and peer traffic)
    wire = peer.node.wire
    for name in ("open_rendezvous", "open_peer"):
        real = getattr(wire, name)

        def spy(*args, real=real):
            result = real(*args)
            opened.append(result[1])
            return result
        setattr(wire, name, spy)
    try:
        peer.pump_until(lambda: peer.node.synced and str(peer.node.document) == "\n".join(expected))
        peer.pump(0.3)
        assert status(a)["peers"]
        assert opened
        assert _leaks(b"".join(opened)) == []
    finally:
        peer.close()
