"""The :CoVim command, CoVimStatus() and the notifications from Lua.

Every entry point catches everything (pycrdt panics included, which are
BaseExceptions and would otherwise leave a sync request unanswered and
Neovim frozen) and turns it into one line in :messages.
"""

from __future__ import annotations

import functools
import os
import time
import traceback

from ..editor.utf8 import describe, first_invalid
from ..proto import events as ev
from ..proto import natclass
from ..proto.natclass import NatReport
from ..proto.rendezvous import InviteAnswered, InviteExpired
from ..proto.token import BadToken, PeerToken, SessionToken
from .log import log, open_log
from . import guest
from .status import peer_data, session_data, status_lines, status_of
from .session import Offline, ReplyToken, Session, SessionFactory, TokenReady
from .trio_host import TrioHost

DEFAULT_PORT = 8555
SUBCOMMANDS = ["host", "connect", "start", "add", "token", "disconnect", "quit", "status"]
USAGE = ("usage: :CoVim host [port] [name] | connect <token> [name] | start [port] | add <token> "
         "| token [readonly] | disconnect | quit | status")


class UserError(Exception):
    """A mistake the user can fix; shown as one line."""


def guarded(fn):
    @functools.wraps(fn)
    def wrapper(self, *args):
        try:
            return fn(self, *args)
        except UserError as exc:
            self.error(str(exc))
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            traceback.print_exc()
            self.error(f"internal error in {fn.__name__}: {type(exc).__name__}: {exc}")
        return None
    return wrapper


class CoVimPlugin:
    def __init__(self, nvim) -> None:
        self.nvim = nvim
        self.session: Session | None = None
        self.last_state = "idle"
        self._trio: TrioHost | None = None
        self._factory: SessionFactory | None = None
        self._shutdown_hooked = False
        self._offline: Offline | None = None  # kept by :CoVim disconnect for a rejoin with the same token

    # ---- output -------------------------------------------------------------------

    def _notify(self, text: str, level: str) -> None:
        """One line through vim.notify (lua/covim/notify.lua), which also logs it."""
        def show() -> None:
            try:
                self.nvim.exec_lua("require('covim.notify').notify(...)", text, level, async_=True)
            except Exception:  # noqa: BLE001
                pass
        self.nvim.async_call(show)

    def info(self, text: str) -> None:
        self._notify(text, "info")

    def error(self, text: str) -> None:
        self._notify(text, "error")

    def report(self, text: str, hl: str = "WarningMsg") -> None:
        self._notify(text, {"ErrorMsg": "error", "WarningMsg": "warn"}.get(hl, "info"))

    def _publish(self, event: str | None = None, data: dict | None = None) -> None:
        """The statusline's state and a User autocmd (lua/covim/state.lua), from the loop thread."""
        s = self.session
        if s is None:
            state = {"state": "idle", "role": "", "name": "", "peers": 0, "bufnr": -1}
        elif s.role == "waiting":
            state = {"state": "waiting", "role": "waiting", "name": s.name, "peers": 0, "bufnr": -1}
        else:
            state = {"state": s.node.state, "role": s.role, "name": s.name, "bufnr": s.bridge.buf if s.bridge else -1,
                     "peers": sum(1 for p in s.node.peers_status() if p["up"])}

        def send() -> None:
            try:
                self.nvim.exec_lua("require('covim.state').set(...)", state, event, data or {}, async_=True)
            except Exception:  # noqa: BLE001
                pass
        self.nvim.async_call(send)

    # ---- plumbing -----------------------------------------------------------------

    def _ensure_engine(self) -> SessionFactory:
        if self._factory is None:
            try:
                open_log(self.nvim.funcs.stdpath("log"))
            except Exception:  # noqa: BLE001 - no log is no reason to refuse a session
                pass
            self._trio = TrioHost(self.nvim.loop, lambda text: self.report(text, "ErrorMsg"))
            self._trio.start()
            self._factory = SessionFactory(self.nvim, self._trio, self.report, self._on_event)
        if not self._shutdown_hooked:
            self.nvim.exec_lua("require('covim').setup_shutdown(...)", self.nvim.channel_id)
            self._shutdown_hooked = True
        return self._factory

    def _name(self, given: str | None) -> str:
        name = given or self.nvim.vars.get("covim_name") or os.environ.get("USER") or "peer"
        name = str(name).strip()
        if not name or len(name) > 64:
            raise UserError("a name must be 1 to 64 characters")
        return name

    @staticmethod
    def _port(text: str) -> int:
        if not text.isdigit() or int(text) > 65535:
            raise UserError(f"not a UDP port: {text}")
        return int(text)

    @staticmethod
    def _open(make):
        """Sockets fail in ways a user can fix (port in use): one clear line."""
        try:
            return make()
        except OSError as exc:
            raise UserError(exc.strerror or str(exc)) from None

    @staticmethod
    def _decode(kind, text: str):
        """A token the user pasted: a bad one is one line for them, not a traceback."""
        try:
            return kind.decode(text)
        except BadToken as exc:
            raise UserError(str(exc)) from None

    def _require_idle(self) -> None:
        if self.session is not None and not self.session.stopped:
            raise UserError(f"already in a session as '{self.session.name}': :CoVim disconnect first")

    def _on_event(self, session, event) -> None:
        if session is not self.session:
            return
        if isinstance(event, TokenReady):  # gathering is over (trio side: hop to Neovim)
            self.nvim.async_call(lambda: self._show_token(session))
        elif isinstance(event, ReplyToken):
            def show_reply() -> None:
                self.nvim.vars["covim_reply_token"] = event.text
                self.info(f"if this does not connect, send the host this reply token: {event.text}")
            self.nvim.async_call(show_reply)
        elif isinstance(event, SessionToken):  # a waiting peer was invited (trio side: hop to Neovim)
            self.nvim.async_call(lambda: self._accept_invite(session, event))
        elif isinstance(event, InviteAnswered):
            self.info(f"the peer at {event.addr[0]}:{event.addr[1]} accepted the invitation")
        elif isinstance(event, InviteExpired):
            where = ", ".join(f"{a[0]}:{a[1]}" for a in event.addrs)
            self.error(f"the peer at {where} did not answer the invitation (is it still waiting?)")
        elif isinstance(event, ev.Joined):
            if session.role == "peer":
                self.info(f"joined the session as '{session.name}'")
            self._joined(session)
        elif isinstance(event, ev.Synced):
            self.info("the shared document has arrived; you can edit now")
            self.nvim.async_call(lambda: self._adopt_meta(session))
        elif isinstance(event, ev.JoinFailed):
            log.error("could not join session %016x: %s", session.token.session, event.reason)
            self.error(f"could not join: {event.reason}")
            # We are on the trio side here: Neovim may only be called through async_call.
            self.nvim.async_call(lambda: self._stop() if self.session is session else None)
        elif isinstance(event, ev.PeerUp):
            peer = peer_data(session, event.peer_id)
            log.info("link up: %r at %s (%s path)", event.name, peer.get("addr", "?"), peer.get("path", "?"))
            self.info(f"'{event.name}' is connected")
            self._publish("CoVimPeerJoined", {"peer": event.name, "addr": peer.get("addr", ""),
                                              "path": peer.get("path", ""), **session_data(session)})
        elif isinstance(event, ev.PeerDown):
            log.info("link down: %r %s", event.name, event.reason)
            self.report(f"'{event.name}' {event.reason}", "WarningMsg")
            self._publish("CoVimPeerLeft", {"peer": event.name, "reason": event.reason, **session_data(session)})
        elif isinstance(event, ev.Problem):
            log.warning("%s", event.text)
            self.report(event.text, "WarningMsg")
        elif isinstance(event, NatReport):
            bad = event.kind in ("", natclass.SYMMETRIC, natclass.FIREWALL, natclass.BLOCKED)
            self.report(event.text, "WarningMsg" if bad else "None")

    def _joined(self, session) -> None:
        """Log and announce (User CoVimJoined) a join once; the host's happens as it starts."""
        if not session.extra.get("joined"):
            session.extra["joined"] = True
            log.info("joined session %016x as %r (%s)", session.token.session, session.name, session.role)
            self._publish("CoVimJoined", session_data(session))

    def _stop(self) -> None:
        session = self.session
        if session is not None and self._factory is not None:
            data = None
            if session.role != "waiting" and session.extra.get("joined"):  # CoVimLeft pairs with CoVimJoined
                data = session_data(session)
                log.info("left session %s as %r (%d malformed or foreign datagrams dropped)", data["session"],
                         session.name, session.node.dropped)
            self.last_state = "failed" if getattr(session, "node", None) and session.node.state == "failed" else "idle"
            if session.role == "peer":
                self._offline = self._factory.offline(session)
            self._factory.stop(session)
            self.session = None
            self._publish("CoVimLeft" if data else None, data)
            reused = session.role == "peer" and session.extra.get("reused_buffer")
            if reused and session.bridge is not None and not session.node.synced:
                try:  # the rejoin did not get through: the user's buffer is theirs to edit again
                    self.nvim.api.set_option_value("modifiable", True, {"buf": session.bridge.buf})
                except Exception:  # noqa: BLE001 - the user may have closed it already
                    pass
            elif session.role == "peer" and not session.node.synced and session.bridge is not None:
                # The join never got the document: drop the empty read-only buffer we made.
                try:
                    self.nvim.api.buf_delete(session.bridge.buf, {"force": True})
                except Exception:  # noqa: BLE001 - the user may have closed it already
                    pass

    # ---- entry points -----------------------------------------------------------

    @guarded
    def command(self, args: list[str]) -> None:
        if not args:
            raise UserError(USAGE)
        sub, rest = args[0], args[1:]
        handler = getattr(self, f"_cmd_{sub}", None) if sub in SUBCOMMANDS else None
        if handler is None:
            raise UserError(f"unknown command '{sub}'. {USAGE}")
        handler(rest)

    def _cmd_host(self, rest: list[str]) -> None:
        self._require_idle()
        port, name = DEFAULT_PORT, None
        if rest and rest[0].isdigit():
            port, rest = self._port(rest[0]), rest[1:]
        name = self._name(rest[0] if rest else None)
        buf = self.nvim.current.buffer.number
        bad = first_invalid(self.nvim.api.buf_get_lines(buf, 0, -1, True))
        if bad is not None:  # refused before anything is set up: nothing to undo
            raise UserError(describe(bad))
        factory = self._ensure_engine()
        self.session = self._open(lambda: factory.host(buf, port, name))
        self._share_meta(self.session, buf)
        self._show_token(self.session)
        self._joined(self.session)

    def _show_token(self, session) -> None:
        """The token once its candidates are known (STUN answers take at most ~1 s, never a wait here)."""
        if session is not self.session or session.stopped:
            return
        if not session.peer.token_ready:
            self.info(f"{'hosting' if session.role == 'host' else 'waiting'} as '{session.name}'; "
                      "asking the STUN servers for this machine's public address (at most 1 s)...")
            return
        if session.role == "host":
            self._share_token(f"hosting as '{session.name}'")
        else:
            self._share_token(f"waiting as '{session.name}'; the host runs :CoVim add <token>")

    def _cmd_connect(self, rest: list[str]) -> None:
        waiting = self.session if self.session is not None and self.session.role == "waiting" else None
        if waiting is None:
            self._require_idle()
        if not rest:
            raise UserError("usage: :CoVim connect <token> [name]")
        token = self._decode(SessionToken, rest[0])
        if waiting is not None and self._factory is not None:
            # The seed's order: we ran :CoVim start, the host ran :CoVim add and is probing our
            # socket; joining from that same socket completes the punch.
            waiting.accepted = True
            name = self._name(rest[1] if len(rest) > 1 else waiting.name)
            buf = self._new_shared_buffer(token, name)
            self.session = self._factory.connect(buf.number, token, name, waiting=waiting)
            self.nvim.vars["covim_token"] = rest[0]
            self.info(f"connecting as '{name}' from the socket of :CoVim start...")
            return
        name = self._name(rest[1] if len(rest) > 1 else None)
        factory = self._ensure_engine()
        offline = self._offline if self._offline is not None and self._offline.matches(token) else None
        if offline is not None and self.nvim.api.buf_is_loaded(offline.buf):
            bad = first_invalid(self.nvim.api.buf_get_lines(offline.buf, 0, -1, True))
            if bad is not None:
                raise UserError(describe(bad))
            self.nvim.api.win_set_buf(0, offline.buf)
            self.session = self._open(lambda: factory.connect(offline.buf, token, name, offline=offline))
            self._offline = None
            self.nvim.vars["covim_token"] = rest[0]
            self.info(f"reconnecting as '{name}' with this buffer: what you typed offline merges...")
            self._publish()
            return
        buf = self._new_shared_buffer(token, name)
        self.session = self._open(lambda: factory.connect(buf.number, token, name))
        self.nvim.vars["covim_token"] = rest[0]
        self.info(f"connecting as '{name}' to {', '.join(f'{a[0]}:{a[1]}' for a in token.addrs)}...")
        self._publish()

    def _cmd_start(self, rest: list[str]) -> None:
        """Enhanced CoVim: make my token, then wait until the host runs :CoVim add <it>."""
        self._require_idle()
        port = self._port(rest[0]) if rest else 0
        name = self._name(rest[1] if len(rest) > 1 else None)
        factory = self._ensure_engine()
        self.session = self._open(lambda: factory.wait_for_invite(port, name))
        self._show_token(self.session)
        self._publish()

    def _cmd_add(self, rest: list[str]) -> None:
        """Enhanced CoVim: the host admits a peer that ran :CoVim start."""
        s = self.session
        if s is None or s.role != "host":
            raise UserError("only the host can add a peer: run :CoVim host first")
        if not rest:
            raise UserError("usage: :CoVim add <token from the peer's :CoVim start>")
        peer = self._decode(PeerToken, rest[0])
        s.extra["introducer"].invite(peer.addrs, peer.nonce, s.token_text, time.monotonic())
        s.driver.poke()
        self.info(f"inviting the peer at {', '.join(f'{a[0]}:{a[1]}' for a in peer.addrs)}...")

    def _accept_invite(self, waiting, token: SessionToken) -> None:
        if self.session is not waiting or self._factory is None:
            return
        buf = self._new_shared_buffer(token, waiting.name)
        self.session = self._factory.connect(buf.number, token, waiting.name, waiting=waiting)
        self.info(f"invited by the host at {token.addrs[0][0]}:{token.addrs[0][1]}; joining as '{waiting.name}'...")

    def _new_shared_buffer(self, token: SessionToken, name: str):
        return guest.new_shared_buffer(self.nvim, token, name)

    def _share_meta(self, session, buf: int) -> None:
        guest.share_meta(self.nvim, session, buf)

    def _adopt_meta(self, session) -> None:
        if session is self.session and session.bridge is not None:
            try:
                guest.adopt_meta(self.nvim, session)
            except Exception as exc:  # noqa: BLE001 - the session goes on in the covim:// buffer
                self.report(f"could not name the shared buffer after the host's file: {exc}", "WarningMsg")

    def _share_token(self, intro: str | None, text: str | None = None) -> None:
        """The token into the registers and onto the screen in one line (lua/covim/token.lua)."""
        self.nvim.exec_lua("require('covim.token').share(...)", text or self.session.token_text, intro)

    def _cmd_token(self, rest: list[str]) -> None:
        if self.session is None or self.session.stopped:
            raise UserError("not in a session: :CoVim host makes a token")
        if rest and rest[0] == "readonly":  # guests who may read and point, not edit (keys.py)
            token = getattr(self.session, "token", None)
            if not isinstance(token, SessionToken):
                raise UserError("a read-only token comes from a session: :CoVim host first")
            self._share_token("read-only token (its holders can read and show a cursor; every peer refuses "
                              "their edits)", token.read_only_token().encode())
            return
        if rest:
            raise UserError("usage: :CoVim token [readonly]")
        self._share_token(None)

    def _cmd_disconnect(self, rest: list[str]) -> None:
        if self.session is None:
            raise UserError("not in a session")
        self._stop()
        again = " (:CoVim connect with the same token merges what you type meanwhile)" if self._offline else ""
        self.info(f"disconnected; the buffer stays as it is{again}")

    def _cmd_quit(self, rest: list[str]) -> None:
        self._stop()
        self.nvim.async_call(lambda: self.nvim.command("qall", async_=True))

    def _cmd_status(self, rest: list[str]) -> None:
        self.nvim.api.echo([["\n".join(status_lines(self.status())), "None"]], True, {})

    @guarded
    def status(self) -> dict:
        return status_of(self.session, self.last_state)

    def _bridge_for(self, buf):
        s = self.session
        if s is not None and s.bridge is not None and s.bridge.buf == buf:
            return s.bridge
        return None

    @guarded
    def on_lines(self, buf, events) -> None:
        if (bridge := self._bridge_for(buf)) is not None:
            bridge.on_lines(events)

    @guarded
    def on_cursor(self, buf, row, col) -> None:
        if (bridge := self._bridge_for(buf)) is not None:
            bridge.on_cursor(row, col)

    @guarded
    def on_undo(self, buf, redo, count=1) -> None:
        if (bridge := self._bridge_for(buf)) is not None:
            bridge.undo(bool(redo), max(1, min(int(count), 1000)))

    @guarded
    def on_reload(self, buf, tick, lines, resync=False) -> None:
        if (bridge := self._bridge_for(buf)) is not None:
            (bridge.on_resync if resync else bridge.on_reload)(tick, lines)

    @guarded
    def on_applied(self, buf, seq, tick) -> None:
        if (bridge := self._bridge_for(buf)) is not None:
            bridge.on_applied(seq, tick)

    @guarded
    def on_refused(self, buf, seq, last_tick) -> None:
        if (bridge := self._bridge_for(buf)) is not None:
            bridge.on_refused(seq, last_tick)

    @guarded
    def on_unload(self, buf) -> None:
        """The shared buffer was unloaded or wiped: we can no longer see or show edits, so we leave.

        Leaving is the one safe answer: an unloaded buffer reads as empty, and
        treating that as the user's change would delete the text for everyone."""
        s = self.session
        if s is not None and s.bridge is not None and s.bridge.buf == buf and not s.stopped:
            again = "; :CoVim connect <token> joins again" if s.role == "peer" else ""
            self._stop()
            self.report(f"the shared buffer was closed, so you left the session (the others keep the text){again}",
                        "WarningMsg")

    @guarded
    def shutdown(self) -> None:
        """VimLeavePre: say goodbye to the peers, then let Neovim go (it waits 500 ms at most)."""
        t0 = time.monotonic()
        self._stop()
        if self._trio is not None:
            self._trio.stop()
        try:
            self.nvim.vars["covim_stopped"] = True
        except Exception:  # noqa: BLE001
            pass
        del t0
