"""The pynvim side of one shared buffer: feeds the editor seam, carries out what it asks.

All the logic that keeps buffer and document equal is the pure machine in
editor/seam.py; this file only moves messages:

* Lua's notifications for the buffer (``on_lines`` batches, reloads, apply
  results, undo requests) go into one queue, in the order Neovim sent them,
  and are fed to the seam from the event loop, outside pynvim's greenlet (a
  pycrdt panic unwinding through a greenlet kills the host; on the loop it is
  an exception).
* Applies go to Lua as asynchronous ``exec_lua`` calls; Lua answers with a
  ``covim_applied`` or ``covim_refused`` notification, which comes after
  every buffer event that preceded it.  Nothing here blocks on Neovim.
* Remote cursors are drawn with an apply, or alone when the seam is idle
  (then the shadow they are computed on is exactly the buffer).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

from ..editor.edits import TextEdit
from ..editor.seam import Apply, NeedSnapshot, NothingToUndo, Reloaded, Seam
from ..editor.transform import map_offset
from ..proto.node import PeerNode

MAX_MESSAGES = 64  # queued notifications fed to the seam per turn of the loop
UPDATE_LUA = "require('covim').update(...)"
SNAPSHOT_LUA = "require('covim').resync(...)"


class _NodeDocument:
    """The seam's DocumentPort over the peer node (which broadcasts what we commit)."""

    def __init__(self, bridge: "BufferBridge") -> None:
        self.bridge = bridge
        self.node: PeerNode = bridge.node

    def take_remote_edits(self) -> list[TextEdit]:
        return self.node.document.take_remote_edits()

    def has_remote_edits(self) -> bool:
        return self.node.document.has_remote_edits()

    def commit(self, edits: list[TextEdit]) -> None:
        self.node.local_edits(edits, time.monotonic())
        self.bridge.move_cursors(edits)
        self.bridge.poke()

    def undo(self, redo: bool) -> bool:
        done = self.node.undo(time.monotonic(), redo)
        if done:
            self.bridge.poke()
        return done


class BufferBridge:
    def __init__(self, nvim, buf: int, node: PeerNode, poke: Callable[[], None],
                 report: Callable[[str, str], None], tick: int, lines: list[str]) -> None:
        self.nvim = nvim
        self.buf = buf
        self.node = node
        self.poke = poke
        self.report = report
        self.seam = Seam(_NodeDocument(self), lines, tick)
        self.closed = False
        self.flush_scheduled = False
        self._queue: deque[tuple] = deque()
        self._snapshot_asked = False
        self._colors: dict[int, int] = {}
        self._marks: dict[int, int] = {}  # client id -> extmark id
        self._next_mark = 0
        self._drawn: set[int] = set()
        self.cursors: list[tuple[int, str, int | None, int | None]] = []  # resolved on the trio side
        self.cursors_dirty = False
        self.locked = False  # a joiner's buffer stays read-only until the document arrives
        self.ns = nvim.api.create_namespace("covim_cursors")

    # ---- diagnostics ---------------------------------------------------------------

    @property
    def pending(self) -> list[TextEdit]:
        return self.seam.pending

    @property
    def resyncs(self) -> int:
        return self.seam.resyncs

    # ---- from Lua (notification handlers, in Neovim's order) -----------------------

    def on_lines(self, events: list[list]) -> None:
        self._enqueue(("lines", events))

    def on_reload(self, tick: int, lines: list[str]) -> None:
        self._enqueue(("reload", tick, lines, False))

    def on_resync(self, tick: int, lines: list[str]) -> None:
        self._enqueue(("reload", tick, lines, True))

    def undo(self, redo: bool, count: int) -> None:
        self._enqueue(("undo", redo, count))

    def on_applied(self, seq: int, tick: int) -> None:
        self._enqueue(("applied", seq, tick))

    def on_refused(self, seq: int, last_tick: int) -> None:
        self._enqueue(("refused", seq, last_tick))

    def on_cursor(self, row: int, col: int) -> None:
        self._enqueue(("cursor", row, col))

    def _enqueue(self, message: tuple) -> None:
        if self.closed:
            return
        was_empty = not self._queue
        self._queue.append(message)
        if was_empty:
            self.nvim.loop.call_soon(self._drain)

    def _drain(self) -> None:
        if self.closed:
            return
        queue = self._queue
        try:
            for _ in range(min(MAX_MESSAGES, len(queue))):
                self._handle(queue.popleft())
        except BaseException as exc:  # noqa: BLE001 - pycrdt panics are BaseExceptions
            self._recover(exc, "record a change")
        if queue:
            self.nvim.loop.call_soon(self._drain)
        self._after()

    def _handle(self, message: tuple) -> None:
        kind, seam = message[0], self.seam
        if kind == "lines":
            seam.buffer_events(message[1])
        elif kind == "reload":
            if message[3]:
                self._snapshot_asked = False
            seam.reload(message[1], message[2], resync=message[3])
        elif kind == "applied":
            seam.applied(message[1], message[2])
        elif kind == "refused":
            seam.refused(message[1], message[2])
            self.cursors_dirty = self.cursors_dirty or bool(self.cursors)  # Lua drew none of them
        elif kind == "undo":
            seam.undo(message[1], message[2])
        elif kind == "cursor":
            offset = seam.cursor_offset(message[1], message[2])
            self.node.set_cursor(offset, offset, time.monotonic())
            self.poke()

    def _after(self) -> None:
        while (event := self.seam.next_event()) is not None:
            if isinstance(event, NeedSnapshot):
                self._ask_snapshot()
            elif isinstance(event, NothingToUndo):
                self.report(f"nothing of yours to {'redo' if event.redo else 'undo'}", "None")
            elif isinstance(event, Reloaded) and event.restored:
                self.report("the reload emptied the shared buffer: the shared text is back (ggdG clears it "
                            "for everyone)", "WarningMsg")
            elif isinstance(event, Reloaded) and not event.resync and event.removed_lines:
                self.report(f"the reload replaced {event.removed_lines} shared line(s) for everyone; "
                            "u undoes it", "WarningMsg")
        if self.seam.wants_flush() or (self.cursors_dirty and self.seam.idle()) or self._unlock_due():
            self.schedule_flush()

    def _recover(self, exc: BaseException, doing: str) -> None:
        """One line instead of a traceback, then the last resort: re-read the buffer."""
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise exc
        self.report(f"could not {doing} ({type(exc).__name__}: {exc}); re-reading the buffer", "WarningMsg")
        self._ask_snapshot()

    def _ask_snapshot(self) -> None:
        """Last resort: Lua sends the whole buffer back as a resync (it comes in order, like a reload)."""
        if not self._snapshot_asked and not self.closed:
            self._snapshot_asked = True
            self.nvim.exec_lua(SNAPSHOT_LUA, self.buf, async_=True)

    # ---- to Lua --------------------------------------------------------------------

    def wants_flush(self) -> bool:
        return self.seam.wants_flush() or (self.cursors_dirty and self.seam.idle()) or self._unlock_due()

    def _unlock_due(self) -> bool:
        return self.locked and self.node.synced and self.seam.idle()

    def schedule_flush(self) -> None:
        """Thread-safe entry: apply whatever the document has for the buffer, soon."""
        if not self.flush_scheduled and not self.closed:
            self.flush_scheduled = True
            self.nvim.async_call(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        if self.closed:
            return
        try:
            apply: Apply | None = self.seam.flush()
        except BaseException as exc:  # noqa: BLE001 - pycrdt panics are BaseExceptions
            self._recover(exc, "update the shared buffer")
            return
        marks, stale = [], []
        if self.cursors_dirty and (apply is not None or self.seam.idle()):
            self.cursors_dirty = False
            marks, stale = self._cursor_marks()
        if apply is not None:
            self.nvim.exec_lua(UPDATE_LUA, self.buf, apply.tick, apply.seq, apply.calls, self.ns, marks, stale,
                               async_=True)
        elif marks or stale:
            self.nvim.exec_lua("require('covim').set_cursors(...)", self.buf, self.ns, marks, stale, async_=True)
        if self._unlock_due():
            self.locked = False
            if self.node.read_only:  # a read-only token: the peers would refuse our edits (keys.py)
                self.report("read-only session: you can read along and show your cursor, not edit", "WarningMsg")
            else:
                self.nvim.api.set_option_value("modifiable", True, {"buf": self.buf}, async_=True)

    # ---- cursors ----------------------------------------------------------------

    def move_cursors(self, edits: list[TextEdit]) -> None:
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
        shadow = self.seam.shadow
        size = shadow.byte_len()
        for client_id, name, _anchor, head in self.cursors:
            if head is None:
                continue
            row, col = shadow.offset_to_pos(min(head, size))
            line = shadow.lines[row].encode("utf-8")
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
        for c in [c for c in self._marks if c not in self._drawn]:
            del self._marks[c]
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
