"""Build and tear down one session in Neovim: the assembled peer (peer.py), its driver, the buffer bridge.

Everything here runs on pynvim's loop thread (trio is a guest there), so the
node and its pycrdt Doc are only ever touched by one thread.  The socket,
ids, machines and candidates come from ``covim_p2p.peer``, shared with the
headless ``python -m covim_p2p`` and the tests.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import peer as assembly
from ..io.natclass import classify_in_thread
from ..io.udp import UdpDriver
from ..proto.invite import InviteWaiter
from ..proto.natclass import NatReport
from ..proto.node import PeerNode
from ..proto.token import PeerToken, SessionToken
from ..editor.edits import TextEdit
from ..editor.seam import _hunks
from ..proto.document import SharedDocument
from .bridge import BufferBridge
from .trio_host import TrioHost

Report = Callable[[str, str], None]


@dataclass(frozen=True)
class TokenReady:
    """Gathering is over: the token (with its server-reflexive candidates) can be shown."""
    text: str


@dataclass(frozen=True)
class ReplyToken:
    """The host has not answered: the token to send it for :CoVim add (also in g:covim_reply_token)."""
    text: str


@dataclass
class Session:
    role: str
    name: str
    peer: assembly.Peer
    node: PeerNode
    driver: UdpDriver
    bridge: BufferBridge | None = None
    scope: Any = None
    stopped: bool = False
    extra: dict = field(default_factory=dict)
    nat: NatReport | None = None  # set when the STUN check (g:covim_stun) has an answer

    @property
    def token(self) -> SessionToken:
        return self.peer.token  # type: ignore[return-value]

    @property
    def token_text(self) -> str:
        return self.peer.token_text


@dataclass
class Offline:
    """What :CoVim disconnect keeps, so that :CoVim connect <same token> in the same Neovim
    reuses the buffer and its document (same author key and ledger, so same client id): the
    WANT/SIGNED sync then merges what both sides typed apart (ledger.py signs ours under a new
    seq), and the offline edits go in as minimal hunks."""
    session: int
    secret: bytes
    buf: int
    document: SharedDocument
    base: list[str]  # the buffer's text as the document last knew it
    pending: list[TextEdit]  # remote edits taken for the buffer but not shown in it yet

    def matches(self, token: SessionToken) -> bool:
        return token.session == self.session and token.secret == self.secret


@dataclass
class Waiting:
    """A peer that ran ``:CoVim start`` and waits for the host's ``:CoVim add``."""
    name: str
    peer: assembly.Peer
    waiter: InviteWaiter
    driver: UdpDriver
    scope: Any = None
    stopped: bool = False
    accepted: bool = False
    role: str = "waiting"

    @property
    def token(self) -> PeerToken:
        return self.peer.token  # type: ignore[return-value]

    @property
    def token_text(self) -> str:
        return self.peer.token_text


class SessionFactory:
    def __init__(self, nvim, trio_host: TrioHost, report: Report, on_event: Callable[[Session, Any], None]) -> None:
        self.nvim = nvim
        self.trio = trio_host
        self.report = report
        self.on_event = on_event

    def settings(self) -> assembly.Settings:
        return assembly.Settings.from_vars(self.nvim.vars.get)

    def host(self, buf: int, port: int, name: str) -> Session:
        settings = self.settings()
        tick, lines = self._attach(buf)
        with self._undone_on_failure(buf) as undo:
            peer = assembly.host(settings, port, name, "\n".join(lines))
            undo.append(peer.sock.close)
            return self._start(peer, buf, tick, lines)

    def connect(self, buf: int, token: SessionToken, name: str, waiting: "Waiting | None" = None,
                offline: Offline | None = None) -> Session:
        """Join ``token``'s session; ``waiting``: keep the socket of a peer that ran :CoVim start;
        ``offline``: rejoin with the buffer and document a disconnect kept (``buf`` is that buffer)."""
        settings = self.settings()
        tick, lines = self._attach(buf)
        with self._undone_on_failure(buf) as undo:
            peer = assembly.join(settings, token, name, waiting=waiting.peer if waiting else None,
                                 document=offline.document if offline else None)
            if waiting is None:
                undo.append(peer.sock.close)
            if offline is None:
                return self._start(peer, buf, tick, lines, scope=waiting.scope if waiting else None)
            return self._rejoin(peer, buf, tick, lines, offline)

    def _rejoin(self, peer: assembly.Peer, buf: int, tick: int, lines: list[str], offline: Offline) -> Session:
        """The edits made while disconnected become minimal local hunks (never one wide diff,
        which would delete and re-insert what others changed meanwhile in between)."""
        node = peer.node
        assert node is not None
        base = "\n".join(offline.base)
        if not offline.pending and str(node.document) == base:
            hunks = [edit for edit, _ in _hunks(offline.base, list(lines) or [""])]
            if hunks:
                node.local_edits(hunks, time.monotonic())
            session = self._start(peer, buf, tick, lines)
        else:  # the document is ahead of the buffer: let the seam rebase the hunks over what it must show
            node.document.requeue_remote_edits(offline.pending)
            session = self._start(peer, buf, tick, offline.base)
            assert session.bridge is not None
            session.bridge.on_reload(tick, lines)
        session.extra["reused_buffer"] = True
        return session

    def offline(self, session: Session) -> Offline | None:
        """What to keep at a joiner's disconnect, or None if the buffer's state is not known exactly
        (an apply was in flight: Lua may or may not have shown it)."""
        bridge = session.bridge
        if session.role != "peer" or bridge is None or bridge.closed:
            return None
        if not (session.node.synced or session.extra.get("reused_buffer")) or bridge.seam._inflight is not None:
            return None
        return Offline(session.token.session, session.token.secret, bridge.buf, session.node.document,
                       list(bridge.seam.shadow.lines), list(bridge.seam.pending))

    def wait_for_invite(self, port: int, name: str) -> Waiting:
        """``:CoVim start``: a socket and a peer token; ``:CoVim add`` on the host brings the invitation."""
        peer = assembly.wait_for_invite(self.settings(), port, name)
        self._report_problems(peer)
        waiter = peer.waiter
        assert waiter is not None
        waiting: Waiting | None = None

        def activity() -> None:
            if waiting is None:
                return
            if peer.poll():
                self.on_event(waiting, TokenReady(peer.token_text))
            if waiter.invited is not None and not waiting.accepted:
                waiting.accepted = True
                self.on_event(waiting, waiter.invited)

        driver = peer.make_driver(activity)
        waiting = Waiting(name, peer, waiter, driver)
        waiting.scope = self.trio.spawn(peer.run, "network driver")
        return waiting

    @contextlib.contextmanager
    def _undone_on_failure(self, buf: int):
        """A setup that fails half way leaves nothing behind: no mappings, autocmds or attach."""
        undo: list[Callable[[], None]] = [lambda: self.nvim.exec_lua("require('covim').detach(...)", buf)]
        try:
            yield undo
        except BaseException:
            for step in reversed(undo):
                try:
                    step()
                except Exception:  # noqa: BLE001 - the original error is the one to report
                    pass
            raise

    def _attach(self, buf: int) -> tuple[int, list[str]]:
        return self.nvim.exec_lua("return require('covim').attach(...)", buf, self.nvim.channel_id)

    def _report_problems(self, peer: assembly.Peer) -> None:
        for problem in peer.problems:
            self.report(problem, "WarningMsg")
        if peer.note:
            self.report(peer.note, "WarningMsg")

    def _start(self, peer: assembly.Peer, buf: int, tick: int, lines: list[str], scope: Any = None) -> Session:
        self._report_problems(peer)
        node = peer.node
        assert node is not None
        session: Session | None = None

        def activity() -> None:
            if session is not None:
                self._drain(session)

        reuse = peer.driver is not None
        if peer.driver is not None:  # the waiting peer's driver, socket and tasks carry on with the session's machine
            driver = peer.driver
            driver._on_activity = activity
        else:
            driver = peer.make_driver(activity)
        session = Session(peer.role, peer.name, peer, node, driver)
        session.extra["introducer"] = peer.introducer
        session.bridge = BufferBridge(self.nvim, buf, node, driver.poke, self.report, tick, lines)
        if peer.role != "host":
            session.bridge.locked = True
            self.nvim.api.set_option_value("modifiable", False, {"buf": buf})
        session.scope = scope if reuse else self.trio.spawn(peer.run, "network driver")
        driver.poke()
        if peer.stun:
            session.extra["nat_scope"] = self._check_nat(session, peer.sock.getsockname()[0], peer.stun[0])
        return session

    def _check_nat(self, session: Session, local_ip: str, server: tuple[str, int]) -> Any:
        """In the background: the answer is news for :messages and CoVimStatus, never a wait."""
        async def check() -> None:
            session.nat = await classify_in_thread(local_ip, server)
            if not session.stopped:
                self.on_event(session, session.nat)

        return self.trio.spawn(check, "NAT check")

    def _drain(self, session: Session) -> None:
        node = session.node
        while (event := node.next_event()) is not None:
            self.on_event(session, event)
        introducer = session.extra.get("introducer")
        while introducer is not None and introducer.events:
            self.on_event(session, introducer.events.pop(0))
        if session.peer.poll():
            self.on_event(session, TokenReady(session.peer.token_text))
        reply = session.peer.reply_token_due(time.monotonic())
        if reply is not None:
            self.on_event(session, ReplyToken(reply))
        bridge = session.bridge
        if bridge is None or bridge.closed:
            return
        if node.remote_cursors_changed or node.document.has_remote_edits():
            # pycrdt may panic, and a panic inside a pynvim greenlet kills the host:
            # resolve cursors here, in trio, and hand the bridge plain offsets.
            node.remote_cursors_changed = False
            bridge.cursors = node.cursors()
            bridge.cursors_dirty = True
        if bridge.wants_flush():
            bridge.schedule_flush()

    def stop(self, session: "Session | Waiting") -> None:
        if session.stopped:
            return
        session.stopped = True
        if isinstance(session, Waiting):
            self.trio.cancel(session.scope)
            return
        session.node.leave(time.monotonic())
        try:
            session.driver.flush()  # the goodbyes leave now, not on the next tick
        except OSError:
            pass
        if session.bridge is not None:
            session.bridge.close()
        if session.scope is not None:
            self.trio.cancel(session.scope)
        if session.extra.get("nat_scope") is not None:
            self.trio.cancel(session.extra["nat_scope"])
