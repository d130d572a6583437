"""A model world for the editor seam: a fake Neovim (buffer + the Lua half), the seam over a real
pycrdt document, and 1-3 remote peers with their own documents, joined by ordered queues.  Each
document has its ledger (ledger.py), as in a node: every change travels as a signed record.

Every character anyone inserts is unique, so at the end we can say exactly what must be there:
the initial characters and every inserted one, minus those someone deliberately deleted, each
exactly once, with the surviving initial characters in their original order.
"""

from __future__ import annotations

from collections import deque
from itertools import count, islice

from covim_p2p.editor.edits import TextEdit, apply_edit_to_str
from covim_p2p.editor.seam import Apply, Seam
from covim_p2p.proto.authorship import AuthorKey
from covim_p2p.proto.document import SharedDocument
from covim_p2p.proto.keys import SessionKeys
from covim_p2p.proto.ledger import Ledger

SESSION = 0x5EA4
KEYS = SessionKeys.from_roots(SESSION, write_root=b"seam model write")
AUTHORS = [AuthorKey(bytes([i + 1]) * 32) for i in range(4)]  # the seam's document, then the peers


def unique_chars():
    """Characters of 2, 3 and 4 UTF-8 bytes, never one twice (positions are bytes: mix them)."""
    for n in count():
        if n % 4 == 0:
            yield chr(0x20000 + n)  # 4 bytes
        elif n % 4 == 1 and n < 0x700:
            yield chr(0x100 + n)  # 2 bytes
        else:
            yield chr(0x4E00 + n)  # 3 bytes


def byte_edit(text: str, a: int, b: int, insert: str) -> TextEdit:
    """Characters [a, b) of ``text`` replaced by ``insert``, in UTF-8 bytes."""
    return TextEdit(len(text[:a].encode()), len(text[a:b].encode()), insert)


class FakeNeovim:
    """The buffer and the Lua half of the seam: on_lines events, apply-if-unseen-nothing, ordered answers."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = list(lines)
        self.tick = 2
        self.last_tick = self.tick
        self.queued: list[list] = []  # events of this loop turn, not sent yet
        self.out: deque[tuple] = deque()  # to Python, in order
        self.applies: deque[Apply] = deque()  # from Python, in order

    def text(self) -> str:
        return "\n".join(self.lines)

    def user_edit(self, edit: TextEdit, widen: bool = False, bump: int = 1) -> None:
        old = self.lines
        new = apply_edit_to_str(self.text(), edit).split("\n")
        first = 0
        while first < min(len(old), len(new)) - 1 and old[first] == new[first]:
            first += 1
        lo, ln = len(old), len(new)
        while lo > first + 1 and ln > first + 1 and old[lo - 1] == new[ln - 1]:
            lo, ln = lo - 1, ln - 1
        if widen and first > 0:
            first -= 1  # Neovim sometimes reports a wider range than it must
        self.lines = new
        self.tick += bump
        self.last_tick = self.tick
        self.queued.append([self.tick, first, lo, new[first:ln], -1, -1])

    def silent_bump(self) -> None:
        """A changedtick bump with no change and no event (``:set ff=dos`` does this)."""
        self.tick += 1

    def end_turn(self) -> None:
        if self.queued:
            self.out.append(("lines", self.queued))
            self.queued = []

    def reload(self, lines: list[str]) -> None:
        self.end_turn()
        self.lines = list(lines) or [""]
        self.tick += 1
        self.last_tick = self.tick
        self.out.append(("reload", self.tick, list(self.lines)))

    def process_apply(self) -> None:
        apply = self.applies.popleft()
        self.end_turn()  # Lua flushes its events before it answers
        if self.last_tick != apply.tick:
            self.out.append(("refused", apply.seq, self.last_tick))
            return
        for srow, scol, erow, ecol, ins in apply.calls:
            head = self.lines[srow].encode()[:scol].decode()
            tail = self.lines[erow].encode()[ecol:].decode()
            rows = list(ins)
            rows[0] = head + rows[0]
            rows[-1] = rows[-1] + tail
            self.lines[srow : erow + 1] = rows
            self.tick += 1
        self.last_tick = self.tick
        self.out.append(("applied", apply.seq, self.tick))


class World:
    """The seam, its document, a fake Neovim, and ``peers`` remote documents."""

    def __init__(self, rows: list[int], peers: int) -> None:
        self._fresh = unique_chars()
        initial = "\n".join(self.fresh(n) for n in rows)
        self.initial = initial
        self.nvim = FakeNeovim(initial.split("\n"))
        self.ledgers = [Ledger(SESSION, KEYS, SharedDocument(a.client_id, initial if i == 0 else ""), a)
                        for i, a in enumerate(AUTHORS[: 1 + peers])]
        self.docs = [ledger.document for ledger in self.ledgers]
        for ledger in self.ledgers[1:]:  # a joiner's WANT, answered by the seam's side
            ledger.receive(self.ledgers[0].answer(ledger.want(set())))
            assert str(ledger.document) == initial
        self.links: dict[tuple[int, int], deque] = {  # signed Materials, in order
            (a, b): deque() for a in range(len(self.docs)) for b in range(len(self.docs)) if a != b}
        self.seam = Seam(_Port(self), list(self.nvim.lines), self.nvim.tick)
        self.inserted: set[str] = set()
        self.deleted: set[str] = set()

    def fresh(self, n: int) -> str:
        return "".join(islice(self._fresh, n))

    # ---- actions ----------------------------------------------------------------

    def user_edit(self, a: int, b: int, insert: str, widen: bool = False, bump: int = 1) -> None:
        text = self.nvim.text()
        a, b = min(a, len(text)), min(b, len(text))
        a, b = min(a, b), max(a, b)
        self._intent(text[a:b], insert)
        self.nvim.user_edit(byte_edit(text, a, b, insert), widen, bump)

    def user_reload(self, a: int, b: int, insert: str) -> None:
        """The file on disk differs from the buffer by one region (``:e!``)."""
        text = self.nvim.text()
        a, b = min(a, len(text)), min(b, len(text))
        a, b = min(a, b), max(a, b)
        new = apply_edit_to_str(text, byte_edit(text, a, b, insert))
        if new or not text:  # a reload that empties the buffer is undone by the seam, not shared
            self._intent(text[a:b], insert)
        self.nvim.reload(new.split("\n"))

    def peer_edit(self, peer: int, a: int, b: int, insert: str) -> None:
        doc = self.docs[peer]
        text = str(doc)
        a, b = min(a, len(text)), min(b, len(text))
        a, b = min(a, b), max(a, b)
        self._intent(text[a:b], insert)
        self.broadcast(peer, doc.local_edits([byte_edit(text, a, b, insert)]))

    def broadcast(self, src: int, changes) -> None:
        """``src``'s transactions ((deps, update) pairs, just made), signed, onto every link from it."""
        material = self.ledgers[src].sign(changes)
        if material is None:
            return
        for dst in range(len(self.docs)):
            if dst != src:
                self.links[(src, dst)].append(material)

    def deliver(self, src: int, dst: int) -> bool:
        link = self.links[(src, dst)]
        if not link:
            return False
        self.ledgers[dst].receive([link.popleft()])
        return True

    def python_receive(self, n: int) -> bool:
        """Feed up to ``n`` of Lua's messages to the seam, in order."""
        out = self.nvim.out
        if not out:
            return False
        for _ in range(min(n, len(out))):
            message = out.popleft()
            kind = message[0]
            if kind == "lines":
                self.seam.buffer_events(message[1])
            elif kind == "reload":
                self.seam.reload(message[1], message[2])
            elif kind == "applied":
                self.seam.applied(message[1], message[2])
            else:
                self.seam.refused(message[1], message[2])
        return True

    def python_flush(self) -> bool:
        apply = self.seam.flush()
        if apply is not None:
            self.nvim.applies.append(apply)
        return apply is not None

    def nvim_process(self) -> bool:
        if not self.nvim.applies:
            return False
        self.nvim.process_apply()
        return True

    def settle(self, rounds: int = 10_000) -> None:
        """Deliver everything until nothing moves (bounded)."""
        for _ in range(rounds):
            moved = self.nvim.queued and (self.nvim.end_turn() or True)
            for (src, dst) in self.links:
                while self.deliver(src, dst):
                    moved = True
            moved = self.python_receive(1_000) or moved
            moved = self.python_flush() or moved
            while self.nvim_process():
                moved = True
            if not moved:
                return
        raise AssertionError("the world did not settle")

    # ---- the model ---------------------------------------------------------------

    def _intent(self, removed: str, inserted: str) -> None:
        self.deleted |= set(removed) - {"\n"}
        self.inserted |= set(inserted) - {"\n"}

    def check(self) -> None:
        buffer = self.nvim.text()
        texts = [str(d) for d in self.docs]
        assert buffer == texts[0], "the buffer differs from its document"
        for i, ledger in enumerate(self.ledgers):
            assert ledger.pending() == 0 and ledger.drops.total == 0, f"ledger {i}: {dict(ledger.drops.by_reason)}"
        for i, t in enumerate(texts[1:], 1):
            assert t == texts[0], f"peer {i} differs"
        chars = [c for c in buffer if c != "\n"]
        assert len(chars) == len(set(chars)), f"duplicated: {sorted({c for c in chars if chars.count(c) > 1})}"
        want = (set(self.initial) - {"\n"} | self.inserted) - self.deleted
        missing, extra = want - set(chars), set(chars) - want
        assert not missing and not extra, f"lost {len(missing)}: {sorted(missing)[:10]}; unexpected {sorted(extra)[:10]}"
        survivors = [c for c in self.initial if c in set(chars)]
        assert [c for c in chars if c in set(survivors)] == survivors, "original text was reordered"


class _Port:
    def __init__(self, world: World) -> None:
        self.world = world
        self.doc = world.docs[0]

    def take_remote_edits(self):
        return self.doc.take_remote_edits()

    def has_remote_edits(self) -> bool:
        return self.doc.has_remote_edits()

    def commit(self, edits) -> None:
        self.world.broadcast(0, self.doc.local_edits(edits))  # signed there, as a node signs

    def undo(self, redo: bool) -> bool:
        changes = self.doc.undo(redo)
        self.world.broadcast(0, changes)
        return bool(changes)
