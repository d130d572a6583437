"""Who is in the document and where their cursors are: y-protocols awareness.

Why apart from docsync.py: presence has its own clock and its own rules.  Our
state (name, cursor) is renewed every ``AWARENESS_RENEW`` so an idle peer's
cursor stays; a peer's state goes after ``AWARENESS_OUTDATED`` without
renewal, or at once when its link drops.  Cursors travel as UTF-8 byte
offsets (``SharedDocument.sticky``, where the reason is).  The links carry
the updates (docsync.py); this only says what they are and what changed.
"""

from __future__ import annotations

from typing import Any

from .document import SharedDocument

AWARENESS_RENEW = 15.0
AWARENESS_OUTDATED = 30.0


class Presence:
    def __init__(self, document: SharedDocument, name: str, now: float) -> None:
        self.document = document
        self.name = name
        self._cursor: tuple[int, int] | None = None
        self.dirty = True  # our state changed: broadcast it
        self.changed = False  # someone else's changed: their cursors need drawing again
        self._next_renew = now + AWARENESS_RENEW
        self._set_local(now)

    # ---- ours ----------------------------------------------------------------

    def set_cursor(self, anchor: int, head: int, now: float) -> None:
        if self._cursor != (anchor, head):
            self._cursor = (anchor, head)
            self._set_local(now)

    def _set_local(self, now: float) -> None:
        aw = self.document.awareness
        aw.now_ms = int(now * 1000)
        state: dict[str, Any] = {"user": {"name": self.name}}
        if self._cursor is not None:
            state["cursor"] = {"anchor": self.document.sticky(self._cursor[0]),
                               "head": self.document.sticky(self._cursor[1])}
        aw.set_local_state(state)
        self.dirty = True

    def own_update(self) -> bytes:
        return self.document.awareness.encode_awareness_update([self.document.client_id])

    # ---- theirs --------------------------------------------------------------

    def apply(self, update: bytes, origin: int, now: float) -> set[int]:
        """Apply a peer's awareness update; returns the client ids it introduced."""
        aw = self.document.awareness
        aw.now_ms = int(now * 1000)
        before = set(aw.states)
        aw.apply_awareness_update(update, origin)
        self.changed = True
        return set(aw.states) - before - {self.document.client_id}

    def forget(self, client_ids: set[int], why: str) -> None:
        gone = [c for c in client_ids if c in self.document.awareness.states]
        if gone:
            self.document.awareness.remove_awareness_states(gone, why)
            self.changed = True

    def cursors(self) -> list[tuple[int, str, int | None, int | None]]:
        """(client id, name, anchor, head) of every other peer with a known state."""
        out = []
        own = self.document.client_id
        for client_id, state in self.document.awareness.states.items():
            if client_id == own or not isinstance(state, dict):
                continue
            user = state.get("user") or {}
            name = str(user.get("name", "?"))[:64] if isinstance(user, dict) else "?"
            cursor = state.get("cursor")
            anchor = head = None
            if isinstance(cursor, dict):
                anchor = self.document.resolve_sticky(cursor.get("anchor"))
                head = self.document.resolve_sticky(cursor.get("head"))
            out.append((client_id, name, anchor, head))
        return out

    # ---- timer -----------------------------------------------------------------

    def get_timer(self) -> float:
        return self._next_renew

    def handle_timer(self, now: float) -> None:
        if now < self._next_renew:
            return
        self._set_local(now)
        self._next_renew = now + AWARENESS_RENEW
        aw = self.document.awareness
        stale = {c for c, meta in aw.meta.items()
                 if c != aw.client_id and c in aw.states and now * 1000 - meta["lastUpdated"] >= AWARENESS_OUTDATED * 1000}
        self.forget(stale, "timeout")
