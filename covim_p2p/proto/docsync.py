"""The document over the links: what travels inside a link's reliable channel.

Why apart from node.py: the node decides whom we are linked to and keeps
those links alive; this decides what they carry for the document (signed
records, WANT, awareness) and what we make of what they bring.  It owns the
shared document's ledger (ledger.py) and our presence (presence.py); the
node hands it each link that comes up, goes down, or has messages waiting.

Rules:

* Edits are signed (ledger.py): local edits become SIGNED records on every
  up link, with a checkpoint when our records outweigh the last one, and
  whatever SIGNED brings is verified record by record, whoever relays it.
  With a read-only token every peer would refuse our edits (keys.py), so we
  make none and say so.
* A link that comes up, or whose peer rebuilt its side (link.py, epochs),
  exchanges WANT (answered with SIGNED) and our awareness state; WANT is
  repeated every ``RESYNC_INTERVAL``.  We ask each linked peer for its own
  work and the rest of anyone.
* ``synced``: the host's document is the session's first state (a host
  registered with a public introducer holds it too).  A joiner is synced by
  a SIGNED reply from the host's peer, or, once the host is gone, anyone's:
  another joiner may still be empty itself.
* Unsigned y-protocols sync is dropped ("unsigned"): nothing vouches for who
  wrote it.  An awareness update may speak only for the client id the link's
  handshake proved ("forged cursor").
* A malformed message costs the link (``deliver`` says why, the node drops
  it).  A change the document cannot apply (pycrdt panics are
  BaseExceptions) never escapes: the user is told and we resync by WANT.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from ..editor.edits import TextEdit
from .attribution import awareness_clients_untrusted
from .authorship import AuthorKey, Material
from .codec import DecodeError
from .document import SharedDocument
from .drops import Drops
from .events import Event, Problem, Synced
from .keys import SessionKeys
from .ledger import Ledger
from .link import RESYNC_INTERVAL, Link
from .messages import (AwarenessUpdate, SessionMessage, Signed, SyncStep1, SyncStep2, Want,
                       decode_session_message_untrusted, encode_session_message)
from .presence import Presence


def _is_fatal(exc: BaseException) -> bool:
    return isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit))


class DocumentSync:
    def __init__(self, *, document: SharedDocument, session: int, keys: SessionKeys, author: AuthorKey,
                 drops: Drops, name: str, now: float, links: Mapping[int, Link], events: deque[Event],
                 synced: bool) -> None:
        self.document = document
        self.keys = keys
        self.drops = drops
        self.links = links  # the node's: read only, for who else is up and who is the host
        self.events = events  # the node's: ours go out in order with its own
        self.synced = synced
        ledger = getattr(document, "ledger", None)
        if ledger is not None and ledger.session == session:  # a disconnected session's document
            ledger.drops = drops
            ledger.checkpoint(fresh=True)  # what was typed while we were away gets a seq peers accept
        else:
            ledger = Ledger(session, keys, document, author, drops)
        self.ledger = document.ledger = ledger
        self.presence = Presence(document, name, now)

    # ---- our changes -----------------------------------------------------------

    @property
    def read_only(self) -> bool:
        return not self.keys.can_write

    def local_edits(self, edits: list[TextEdit], now: float) -> None:
        self.document.now_ms = int(now * 1000)
        if self.read_only:
            self.events.append(Problem("this session is read-only for you: your change was not shared"))
            return
        self._share(self.ledger.sign(self.document.local_edits(edits)))

    def undo(self, now: float, redo: bool = False) -> bool:
        self.document.now_ms = int(now * 1000)
        if self.read_only:
            return False  # a read-only guest made no change of its own
        changes = self.document.undo(redo)
        self._share(self.ledger.sign(changes))
        return bool(changes)

    def set_meta(self, **values: str) -> None:
        if not self.read_only:
            self._share(self.ledger.sign(self.document.set_meta(**values)))

    def _share(self, material: Material | None) -> None:
        """Our new records to every up link; a checkpoint when they outweigh the last (ledger.py)."""
        if material is not None:
            self.broadcast(Signed((material,)))
        if self.ledger.checkpoint_due() and (checkpoint := self.ledger.shared_checkpoint()) is not None:
            self.broadcast(Signed((checkpoint,)))

    def broadcast(self, msg: SessionMessage) -> None:
        raw = encode_session_message(msg)
        for link in self.links.values():
            if link.up:
                link.channel.send(raw)

    # ---- links -----------------------------------------------------------------

    def link_up(self, link: Link, now: float) -> None:
        link.next_resync = now + RESYNC_INTERVAL
        self.start(link)

    def start(self, link: Link) -> None:
        """A fresh channel: ask for what we lack, say where we are."""
        link.channel.send(encode_session_message(self.want(link)))
        link.channel.send(encode_session_message(AwarenessUpdate(self.presence.own_update())))

    def link_down(self, link: Link) -> None:
        self.presence.forget(link.client_ids, "peer left")

    def resync(self, link: Link, now: float) -> None:
        """WANT again every ``RESYNC_INTERVAL``: whatever a lost link or a refused record cost us comes back."""
        if now >= link.next_resync:
            link.channel.send(encode_session_message(self.want(link)))
            link.next_resync = now + RESYNC_INTERVAL

    def _others(self, link: Link) -> set[int]:
        """Client ids of the other peers we hold a proven, up link to: we ask them for their own work."""
        return {l.client_id for l in self.links.values() if l is not link and l.up and l.client_id is not None}

    def want(self, link: Link) -> Want:
        return Want(self.ledger.want(self._others(link)))

    # ---- what the links bring ----------------------------------------------------

    def deliver(self, link: Link, now: float) -> str | None:
        """Take every message the link's channel completed; a reason to drop the link if one was malformed."""
        while (raw := link.channel.next_message()) is not None:
            try:
                self.on_message(link, decode_session_message_untrusted(raw), now)
            except DecodeError as exc:
                return f"sent a malformed message ({exc})"
            except BaseException as exc:  # pycrdt panics are BaseExceptions; never let one escape
                if _is_fatal(exc):
                    raise
                self.events.append(Problem(f"could not apply {link.name}'s change ({type(exc).__name__}: {exc}); resyncing"))
                link.channel.send(encode_session_message(self.want(link)))
        return None

    def on_message(self, link: Link, msg: SessionMessage, now: float) -> None:
        if isinstance(msg, Signed):  # ledger.py verifies every record, whoever relays it
            self.ledger.receive(list(msg.materials), link.author)
            # Another joiner may still be empty itself: only the host's peer (or, once
            # the host is gone, anyone) proves we now hold the whole document.
            if msg.reply and not self.synced and (link.is_host or not any(l.is_host for l in self.links.values())):
                self.synced = True
                self.events.append(Synced())
        elif isinstance(msg, Want):
            link.channel.send(encode_session_message(Signed(tuple(self.ledger.answer(msg.vector)), reply=True)))
        elif isinstance(msg, (SyncStep1, SyncStep2)):
            self.drops.add("unsigned")  # y-protocols sync: nothing vouches for who wrote it
        elif isinstance(msg, AwarenessUpdate):
            if any(c != link.client_id for c in awareness_clients_untrusted(msg.update)):
                self.drops.add("forged cursor")
                return
            link.client_ids |= self.presence.apply(msg.update, link.peer_id, now)

    # ---- awareness ---------------------------------------------------------------

    def flush_awareness(self) -> None:
        """Our awareness state to every up link, if it changed (presence.py renews it)."""
        if self.presence.dirty:
            self.presence.dirty = False
            self.broadcast(AwarenessUpdate(self.presence.own_update()))
