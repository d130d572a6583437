"""One shared buffer <-> the session document, through the shadow copy of its lines.

Rules:

* User edits arrive as ``on_lines`` events (never ``on_bytes``: DESIGN.md
  section 3), batched by Lua per turn of Neovim's loop.  The shadow turns
  each into one TextEdit for the document.  Lua never sends the events our
  own applies cause.
* Remote edits are applied with ``nvim_buf_set_text`` by Lua, and only at the
  changedtick we last saw: if the user typed in between, Lua refuses, we roll
  the shadow back, take the user's change first (rebased over the remote
  edits, transform.py) and try again.  After repeated refusals with no
  events (something bumped the tick silently) we re-read the buffer.
* While a blocking apply is in flight other notifications can run (pynvim
  greenlets): they are queued and replayed after it, in order.
* Both directions are bounded per turn of the event loop, so neither a burst
  of typing nor a huge remote paste freezes Neovim: at most ``MAX_BATCH``
  buffer events become one document transaction (pycrdt's cost per
  transaction grows faster than its size: an unbounded burst froze the host
  for 35 s), and at most ``MAX_FLUSH_CHARS`` of remote text go into Neovim
  per call; bigger inserts are cut at character boundaries.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

from ..editor.edits import TextEdit, cut_big_inserts
from ..editor.shadow import ShadowBuffer
from ..editor.textdiff import diff_texts
from ..editor.transform import map_offset, transform_local
from ..proto.node import PeerNode

MAX_REFUSALS = 5
MAX_BATCH = 64
MAX_FLUSH_CHARS = 1 << 20
UPDATE_LUA = "return require('covim').update(...)"


class BufferBridge:
    def __init__(self, nvim, buf: int, node: PeerNode, poke: Callable[[], None],
                 report: Callable[[str, str], None], tick: int, lines: list[str]) -> None:
        self.nvim = nvim
        self.buf = buf
        self.node = node
        self.poke = poke
        self.report = report
        self.tick = tick
        self.shadow = ShadowBuffer(lines)
        self.pending: list[TextEdit] = []
        self.busy = False
        self.closed = False
        self.flush_scheduled = False
        self._inbox: deque[list] = deque()
        self.refusals = 0
        self.resyncs = 0
        self.snapshot_tick = -1
        self._queued: list[list] = []
        self._colors: dict[int, int] = {}
        self._marks: dict[int, int] = {}  # client id -> extmark id
        self._next_mark = 0
        self._drawn: set[int] = set()
        self.cursors: list[tuple[int, str, int | None, int | None]] = []  # resolved on the trio side
        self.cursors_dirty = False
        self.locked = False  # a joiner's buffer stays read-only until the document arrives
        self.ns = nvim.api.create_namespace("covim_cursors")

    # ---- user side -------------------------------------------------------------

    def on_lines(self, events: list[list]) -> None:
        """One turn of Neovim's loop worth of ``on_lines``: [tick, first, last_old, lines, crow, ccol] each."""
        if self.closed or not events:
            return
        # Leave pynvim's greenlet before touching pycrdt: a Rust panic unwinding
        # through a greenlet's stack kills the host, on the loop it is an exception.
        # Events that pile up meanwhile (a burst) are handled together.
        was_empty = not self._inbox
        self._inbox.extend(events)
        if was_empty:
            self.nvim.loop.call_soon(self._drain_inbox)

    def _drain_inbox(self) -> None:
        if self.closed:
            return
        inbox = self._inbox
        events = [inbox.popleft() for _ in range(min(MAX_BATCH, len(inbox)))]
        if inbox:
            self.nvim.loop.call_soon(self._drain_inbox)
        if self.busy:
            self._queued.extend(events)
            return
        self._local_changes(events)

    def _local_changes(self, events: list[list]) -> None:
        batch: list[TextEdit] = []
        try:
            for event in events:
                edit = self._edit_from_event(*event)
                if edit is not None:
                    batch = self._rebase_into(batch, edit)
            self._commit(batch)
        except BaseException as exc:  # noqa: BLE001 - pycrdt panics are BaseExceptions
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            self.report(f"could not record a change ({type(exc).__name__}: {exc}); resyncing", "WarningMsg")
            self.schedule_flush(resync=True)

    def _edit_from_event(self, tick: int, first: int, last_old: int, lines: list[str],
                         crow: int = -1, ccol: int = -1) -> TextEdit | None:
        if tick <= self.snapshot_tick:
            return None  # already contained in the snapshot we resynced from
        self.tick = tick
        self.refusals = 0  # events are flowing: a refusal was only a race with typing
        try:
            return self.shadow.on_lines(first, last_old, lines, ccol if crow == first else -1)
        except ValueError:
            self.schedule_flush(resync=True)
            return None

    def _rebase_into(self, batch: list[TextEdit], edit: TextEdit) -> list[TextEdit]:
        """Add a buffer edit to the batch for the document, rebased over pending remote edits."""
        if not self.pending and not self.node.document.has_remote_edits():
            batch.append(edit)
            return batch
        self.pending += self.node.document.take_remote_edits()
        rebased_local, rebased_pending = transform_local(edit, self.pending)
        batch.append(rebased_local)
        if rebased_pending is None:  # overlap: settle the batch, then diff buffer against document
            self._commit(batch)
            batch = []
            fix = diff_texts(self.shadow.text(), str(self.node.document))
            rebased_pending = [fix] if fix else []
        self.pending = rebased_pending
        self.schedule_flush()
        return batch

    def _commit(self, batch: list[TextEdit]) -> None:
        if batch:
            self.node.local_edits(batch, time.monotonic())
            self._move_cursors(batch)
            self.poke()

    def undo(self, redo: bool, count: int) -> None:
        """Our own changes only; what it changes reaches the buffer like a remote edit."""
        self.nvim.loop.call_soon(self._undo_guarded, redo, count)

    def _undo_guarded(self, redo: bool, count: int) -> None:
        if self.closed:
            return
        try:
            done = sum(self.node.undo(time.monotonic(), redo) for _ in range(count))
        except BaseException as exc:  # noqa: BLE001 - pycrdt panics are BaseExceptions
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            self.report(f"could not {'redo' if redo else 'undo'} ({type(exc).__name__}: {exc})", "WarningMsg")
            return
        if not done:
            self.report(f"nothing of yours to {'redo' if redo else 'undo'}", "None")
            return
        self.poke()
        self.schedule_flush()

    def on_cursor(self, row: int, col: int) -> None:
        if self.closed:
            return
        offset = self.shadow.pos_to_offset(row, col)
        for edit in self.pending:
            offset = map_offset(offset, edit)
        self.node.set_cursor(offset, offset, time.monotonic())
        self.poke()

    # ---- remote side -----------------------------------------------------------

    def schedule_flush(self, resync: bool = False) -> None:
        """Thread-safe entry: apply whatever the document has for the buffer, soon."""
        if resync:
            self.refusals = MAX_REFUSALS
        if not self.flush_scheduled and not self.closed:
            self.flush_scheduled = True
            self.nvim.async_call(self.flush)

    def flush(self) -> None:
        """Bring the buffer (text, then cursors) up to the document in one Neovim call."""
        self.flush_scheduled = False
        if self.closed or self.busy:
            return
        self.busy = True
        try:
            if self.refusals >= MAX_REFUSALS:
                self._resync_from_buffer()
            self.pending += self.node.document.take_remote_edits()
            if any(len(edit.insert) > MAX_FLUSH_CHARS for edit in self.pending):
                self.pending = cut_big_inserts(self.pending, MAX_FLUSH_CHARS)
            calls, undo = self._prepare_pending() if self.pending else ([], [])
            ready = len(calls) == len(self.pending)  # no edit is waiting for a retry
            cursors = self._cursor_marks() if self.cursors_dirty and ready else None
            if cursors:
                self.cursors_dirty = False  # before the call: news arriving during it sets it again
            if calls or cursors:
                marks, stale = cursors or ([], [])
                result = self.nvim.exec_lua(UPDATE_LUA, self.buf, self.tick, calls, self.ns, marks, stale)
                if result is None:  # the user typed meanwhile: their change goes first
                    for u in reversed(undo):
                        self.shadow.apply(u)
                    self.refusals += 1
                    self.cursors_dirty = self.cursors_dirty or cursors is not None
                else:
                    self.tick = result
                    self.pending = self.pending[len(calls):]
                    if calls:
                        self.refusals = 0
                    if cursors:
                        for client_id in [c for c in self._marks if c not in self._drawn]:
                            del self._marks[client_id]
            # (the document may have arrived while we were blocked in Neovim: check the queue too)
            if self.locked and self.node.synced and not self.pending and not self.node.document.has_remote_edits():
                self.locked = False
                self.nvim.api.set_option_value("modifiable", True, {"buf": self.buf})
        except BaseException as exc:  # pycrdt panics are BaseExceptions: never let one freeze Neovim
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            self.report(f"could not update the shared buffer ({type(exc).__name__}: {exc}); resyncing", "WarningMsg")
            self.refusals = MAX_REFUSALS
        finally:
            self.busy = False
        queued, self._queued = self._queued, []
        if queued:  # they came before anything still in the inbox
            was_empty = not self._inbox
            self._inbox.extendleft(reversed(queued))
            if was_empty:
                self.nvim.loop.call_soon(self._drain_inbox)
        if self.pending or self.refusals:
            self.nvim.loop.call_later(0.005 * min(self.refusals, 10), self.schedule_flush)
        elif self.cursors_dirty or self.node.document.has_remote_edits() or (self.locked and self.node.synced):
            self.schedule_flush()  # news that arrived while we were blocked in Neovim

    def _prepare_pending(self) -> tuple[list, list[TextEdit]]:
        """Apply pending edits to the shadow; returns the set_text calls and their inverses."""
        undo: list[TextEdit] = []
        calls = []
        budget = MAX_FLUSH_CHARS
        try:
            for edit in self.pending:
                if calls and budget < len(edit.insert):
                    break  # the rest goes in the next call: Neovim stays responsive
                budget -= len(edit.insert)
                deleted = self._slice(edit.offset, edit.delete)
                e = self.shadow.apply(edit)
                undo.append(TextEdit(edit.offset, len(edit.insert.encode("utf-8")), deleted))
                calls.append([e.start_row, e.start_col, e.end_row, e.end_col, e.lines])
        except ValueError:
            for u in reversed(undo):
                self.shadow.apply(u)
            fix = diff_texts(self.shadow.text(), str(self.node.document))
            self.pending = [fix] if fix else []  # applied by the retry flush()
            self.refusals += 1
            return [], []
        return calls, undo

    def _resync_from_buffer(self) -> None:
        """Last resort: the buffer changed without telling us; diff it against the shadow."""
        self.resyncs += 1
        tick, lines = self.nvim.exec_lua("return require('covim').snapshot(...)", self.buf)
        fix = diff_texts(self.shadow.text(), "\n".join(lines or [""]))
        self.shadow = ShadowBuffer(lines)
        self.tick = self.snapshot_tick = tick
        self.refusals = 0
        if fix is not None:
            self._commit(self._rebase_into([], fix))

    def _slice(self, offset: int, length: int) -> str:
        if length == 0:
            return ""
        r1, c1 = self.shadow.offset_to_pos(offset)
        r2, c2 = self.shadow.offset_to_pos(offset + length)
        lines = self.shadow.lines
        if r1 == r2:
            return lines[r1].encode("utf-8")[c1:c2].decode("utf-8")
        head = lines[r1].encode("utf-8")[c1:].decode("utf-8")
        tail = lines[r2].encode("utf-8")[:c2].decode("utf-8")
        return "\n".join([head, *lines[r1 + 1 : r2], tail])

    # ---- cursors ----------------------------------------------------------------

    def _move_cursors(self, edits: list[TextEdit]) -> None:
        """Peers' cursors follow the text between their awareness updates."""
        if not self.cursors:
            return
        moved = []
        for client_id, name, anchor, head in self.cursors:
            for edit in edits:
                anchor = None if anchor is None else map_offset(anchor, edit)
                head = None if head is None else map_offset(head, edit)
            moved.append((client_id, name, anchor, head))
        self.cursors = moved
        self.cursors_dirty = True

    def _color(self, client_id: int) -> int:
        if client_id not in self._colors:
            used = set(self._colors.values())
            free = [i for i in range(1, 9) if i not in used]
            self._colors[client_id] = free[0] if free else (len(self._colors) % 8) + 1
        return self._colors[client_id]

    def _cursor_marks(self) -> tuple[list, list[int]]:
        """Extmarks for the peers' cursors on the shadow (which is what the buffer will hold)."""
        marks = []
        self._drawn = set()
        size = self.shadow.byte_len()
        for client_id, name, _anchor, head in self.cursors:
            if head is None:
                continue
            row, col = self.shadow.offset_to_pos(min(head, size))
            line = self.shadow.lines[row].encode("utf-8")
            while 0 < col < len(line) and (line[col] & 0xC0) == 0x80:
                col -= 1  # a peer's offset may be a little stale: never point inside a character
            end = -1
            if col < len(line):
                end = col + 1
                while end < len(line) and (line[end] & 0xC0) == 0x80:
                    end += 1
            color = self._color(client_id)
            if client_id not in self._marks:
                self._next_mark += 1
                self._marks[client_id] = self._next_mark
            self._drawn.add(client_id)
            marks.append([self._marks[client_id], row, col, end, f"CoVimCursor{color}", name, f"CoVimName{color}"])
        stale = [mark for c, mark in self._marks.items() if c not in self._drawn]
        for c in [c for c in self._colors if c not in self._drawn]:
            del self._colors[c]
        return marks, stale

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.nvim.exec_lua("require('covim').detach(...)", self.buf)
            self.nvim.api.buf_clear_namespace(self.buf, self.ns, 0, -1)
        except Exception:  # noqa: BLE001 - the buffer may be gone already
            pass
