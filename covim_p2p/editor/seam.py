"""The editor seam: one Neovim buffer <-> the session document, as a pure machine.

Two copies of the text change at once: the buffer (the user types in Neovim)
and the document (remote edits arrive).  This machine keeps them equal
without ever losing, duplicating or moving a character.  It is the Python
half of a two-party (Jupiter-style) protocol whose other half is Lua, which
runs on Neovim's loop and sees the buffer as it is.

Rules:

* **Messages are ordered.**  Lua sends buffer events (``on_lines``), reloads
  and apply results over one channel, in the order they happened in Neovim;
  the adapter feeds them here in that order.  Lua flushes the events it has
  not sent yet before it answers an apply, so a result always comes after
  every event that preceded it.
* **The shadow is the buffer at ``tick``.**  ``pending`` holds the remote
  edits not yet in the buffer, relative to the shadow: the document is always
  ``shadow + pending``.  (While an apply is in flight the shadow already holds
  it; a refusal rolls it back.)
* **A local change reaches the document as exactly what the user changed**:
  the shadow turns each event into one edit, and delta.transform rebases it
  over ``pending`` (and ``pending`` over it).  The transform is total, so no
  overlap falls back to a diff, and nothing is re-inserted or deleted that
  the user did not touch.  Where both insert at one place, the user's text
  goes first (Lua keeps the cursor before remote text inserted at it).
* **A remote edit reaches the buffer exactly once**: an apply carries the
  tick it was computed for; Lua applies it only if no event happened since
  (a bare tick bump with no event, like ``:set ff``, does not count), and
  otherwise refuses.  A refusal rolls the shadow back, and the retry waits
  until the events Lua reported have been rebased in.  Refusals are
  harmless, so there is no limit on them.
* **Events are never applied to a shadow with an apply in flight**: they
  wait in the inbox, in order, with undo requests, until the result.
* **A reload** (``:e!``, ``:checktime``) replaces the buffer behind the
  event stream: it becomes a list of minimal hunks, each a local edit
  rebased like typing, so text the reload did not change is never touched.
  The same path is the last resort if an event cannot fit the shadow.

Inputs (from the adapter): ``buffer_events``, ``reload``, ``undo``,
``applied``, ``refused``; ``flush`` asks for the next apply.
Outputs: document calls on the ``DocumentPort`` (take remote edits, commit
local ones, undo), ``Apply`` values from ``flush``, and ``next_event()``
news for the user.
"""

from __future__ import annotations

import difflib
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from .delta import blen, delta_of, to_edits, transform_edits
from .edits import TextEdit, cut_big_inserts
from .shadow import BufEdit, ShadowBuffer
from .textdiff import diff_texts
from .transform import map_offset

MAX_APPLY_CHARS = 1 << 20  # remote text per Neovim call: a huge paste never freezes the editor
MAX_COMMIT = 64  # buffer events per document transaction (pycrdt's cost grows faster than a transaction)
MAX_HUNK_DIFF_LINES = 20_000  # larger reloads are diffed by their common ends only


class DocumentPort(Protocol):
    """What the seam needs of the document (the node's SharedDocument, or a test's)."""

    def take_remote_edits(self) -> list[TextEdit]: ...

    def has_remote_edits(self) -> bool: ...

    def commit(self, edits: list[TextEdit]) -> None: ...

    def undo(self, redo: bool) -> bool: ...


@dataclass(frozen=True)
class Apply:
    """Ask Lua to apply ``calls`` (nvim_buf_set_text arguments) if the buffer is still at ``tick``."""

    seq: int
    tick: int
    calls: list[list]


@dataclass(frozen=True)
class Reloaded:
    """The buffer was reloaded; ``removed_lines`` of the shared text are gone with it."""

    removed_lines: int
    resync: bool  # True: a last-resort re-read, not a user's reload
    restored: bool = False  # True: the reload emptied the buffer; the shared text was put back instead


@dataclass(frozen=True)
class NeedSnapshot:
    """An event did not fit the shadow: the adapter should read the buffer and call ``reload``."""


@dataclass(frozen=True)
class NothingToUndo:
    """``u`` (or ``<C-r>``) found none of the user's own changes to revert."""

    redo: bool


@dataclass
class _InFlight:
    seq: int
    edits: list[TextEdit]  # applied to the shadow already
    undo: list[TextEdit]  # inverses, last first


class Seam:
    def __init__(self, document: DocumentPort, lines: list[str], tick: int) -> None:
        self.document = document
        self.shadow = ShadowBuffer(lines)
        self.tick = tick
        self.pending: list[TextEdit] = []
        self._inflight: _InFlight | None = None
        self._inbox: deque[tuple] = deque()
        self._await_tick = -1  # after a refusal: Lua's last event tick, which we must see first
        self._seq = 0
        self._events: deque = deque()
        self.refusals = 0
        self.resyncs = 0
        self.committed = 0  # local edits sent to the document

    # ---- inputs from Lua ----------------------------------------------------

    def buffer_events(self, events: list[list]) -> None:
        """``on_lines`` events, each ``[tick, first, last_old, lines, cursor_row, cursor_col]``."""
        self._inbox.extend(("lines", e) for e in events)
        self._drain()

    def reload(self, tick: int, lines: list[str], resync: bool = False) -> None:
        self._inbox.append(("reload", tick, lines, resync))
        self._drain()

    def undo(self, redo: bool, count: int) -> None:
        self._inbox.append(("undo", redo, count))
        self._drain()

    def applied(self, seq: int, tick: int) -> None:
        flight = self._take_flight(seq)
        if flight is not None:
            self.tick = tick
            self._drain()

    def refused(self, seq: int, last_event_tick: int) -> None:
        flight = self._take_flight(seq)
        if flight is None:
            return
        for inverse in flight.undo:
            self.shadow.apply(inverse)
        self.pending = flight.edits + self.pending
        self.refusals += 1
        self._await_tick = last_event_tick
        self._drain()

    # ---- output to Lua --------------------------------------------------------

    def wants_flush(self) -> bool:
        """True when an apply would go out now (remote edits waiting, nothing in flight)."""
        return self._ready() and bool(self.pending or self._has_remote())

    def idle(self) -> bool:
        """Nothing waits in either direction (cursor marks drawn now are exact)."""
        return self._ready() and not self.pending and not self._inbox and not self._has_remote()

    def flush(self) -> Apply | None:
        """The next apply for Lua, or None (nothing to apply, one in flight, or waiting for events)."""
        if not self._ready():
            return None
        self._take_remote()
        if not self.pending:
            return None
        if any(len(e.insert) > MAX_APPLY_CHARS for e in self.pending):
            self.pending = cut_big_inserts(self.pending, MAX_APPLY_CHARS)
        calls: list[list] = []
        undo: list[TextEdit] = []
        budget = MAX_APPLY_CHARS
        count = 0
        for edit in self.pending:
            if calls and budget < len(edit.insert):
                break  # the rest goes in the next call
            budget -= len(edit.insert)
            removed = self._slice(edit.offset, edit.delete)
            b: BufEdit = self.shadow.apply(edit)
            undo.append(TextEdit(edit.offset, blen(edit.insert), removed))
            calls.append([b.start_row, b.start_col, b.end_row, b.end_col, b.lines])
            count += 1
        self._seq += 1
        undo.reverse()
        self._inflight = _InFlight(self._seq, self.pending[:count], undo)
        self.pending = self.pending[count:]
        return Apply(self._seq, self.tick, calls)

    def next_event(self):
        return self._events.popleft() if self._events else None

    # ---- cursors ----------------------------------------------------------------

    def cursor_offset(self, row: int, col: int) -> int:
        """The user's cursor (buffer row, byte col) as a document offset."""
        offset = self.shadow.pos_to_offset(row, col)
        if self._inflight is None:  # with one in flight the shadow is ahead of the buffer: close enough
            for edit in self.pending:
                offset = map_offset(offset, edit)
        return offset

    # ---- internals --------------------------------------------------------------

    def _ready(self) -> bool:
        return self._inflight is None and not self._inbox and self.tick >= self._await_tick

    def _has_remote(self) -> bool:
        return self.document.has_remote_edits()

    def _take_flight(self, seq: int) -> _InFlight | None:
        flight = self._inflight
        if flight is None or flight.seq != seq:
            return None  # a result for an apply we no longer track: nothing to do
        self._inflight = None
        return flight

    def _take_remote(self) -> None:
        self.pending.extend(self.document.take_remote_edits())

    def _drain(self) -> None:
        """Process the inbox in order; stops while an apply is in flight."""
        batch: list[TextEdit] = []
        events = 0
        while self._inbox and self._inflight is None:
            item = self._inbox.popleft()
            kind = item[0]
            if kind == "lines":
                tick, first, last_old, lines, *cursor = item[1]
                self.tick = tick
                crow, ccol = (cursor + [-1, -1])[:2]
                try:
                    edit = self.shadow.on_lines(first, last_old, lines, ccol if crow == first else -1)
                except ValueError:
                    self._commit(batch)
                    batch = []
                    self._events.append(NeedSnapshot())
                    continue
                if edit is not None:
                    batch.extend(self._rebase(edit))
                events += 1
                if events >= MAX_COMMIT:
                    self._commit(batch)
                    batch, events = [], 0
            elif kind == "reload":
                self._commit(batch)
                batch = []
                self._reload(*item[1:])
            else:  # undo: everything typed before it is in the document first
                self._commit(batch)
                batch = []
                self._take_remote()
                for i in range(item[2]):
                    if not self.document.undo(item[1]):
                        if i == 0:
                            self._events.append(NothingToUndo(item[1]))
                        break
        self._commit(batch)

    def _rebase(self, edit: TextEdit) -> list[TextEdit]:
        self._take_remote()
        if not self.pending:
            return [edit]
        local, self.pending = transform_edits(delta_of(edit), self.pending)
        return to_edits(local)

    def _commit(self, batch: list[TextEdit]) -> None:
        if batch:
            self.document.commit(batch)
            self.committed += len(batch)

    def _reload(self, tick: int, lines: list[str], resync: bool) -> None:
        old = self.shadow.lines
        new = list(lines) or [""]
        if new == [""] and self.shadow.byte_len() and not resync:
            self._restore(tick, len(old))
            return
        removed = 0
        batch: list[TextEdit] = []
        for edit, gone in _hunks(old, new):
            removed += gone
            batch.extend(self._rebase(edit))  # a hunk is a local edit like any other
        self.shadow = ShadowBuffer(new)
        self.tick = tick
        self._commit(batch)
        if resync:
            self.resyncs += 1
        if batch or resync:
            self._events.append(Reloaded(removed, resync))

    def _restore(self, tick: int, lines: int) -> None:
        """A reload that empties the buffer (``:e!`` of a file that is not there, as in a guest's
        buffer, or of an empty one) would wipe the document for everyone: the buffer gets the shared
        text back instead.  (To clear it for everyone, delete the text: ``ggdG``.)"""
        text = self.shadow.text()
        self.shadow = ShadowBuffer([""])
        self.tick = tick
        self.pending = [TextEdit(0, 0, text), *self.pending]
        self._events.append(Reloaded(lines, False, restored=True))

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


def _hunks(old: list[str], new: list[str]):
    """Minimal edits from ``old`` to ``new`` lines, sequential (each after the previous), with the
    number of old lines each one removes.  Lines are matched first, then each changed block is cut
    to its changed characters, so a reload touches only what really changed."""
    if len(old) + len(new) > MAX_HUNK_DIFF_LINES:
        edit = diff_texts("\n".join(old), "\n".join(new))
        if edit is not None:
            yield edit, len(old)
        return
    offsets = [0]
    for line in old:
        offsets.append(offsets[-1] + len(line.encode("utf-8")) + 1)
    shift = 0  # bytes the hunks so far added
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if i2 < len(old):  # rows followed by an unchanged row: each row with its newline
            start = offsets[i1]
            old_text = "".join(line + "\n" for line in old[i1:i2])
            new_text = "".join(line + "\n" for line in new[j1:j2])
        elif i1 > 0 and j1 > 0:  # the last rows, after an unchanged row: each with the newline before it
            start = offsets[i1] - 1
            old_text = "".join("\n" + line for line in old[i1:i2])
            new_text = "".join("\n" + line for line in new[j1:j2])
        else:  # everything
            start, old_text, new_text = 0, "\n".join(old), "\n".join(new)
        edit = diff_texts(old_text, new_text, start + shift)
        if edit is not None:
            yield edit, i2 - i1
            shift += len(edit.insert.encode("utf-8")) - edit.delete
