"""Build and tear down one session: socket, machines, trio driver, buffer bridge.

Everything here runs on pynvim's loop thread (trio is a guest there), so the
node and its pycrdt Doc are only ever touched by one thread.
"""

from __future__ import annotations

import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..io.natclass import classify_in_thread
from ..io.udp import UdpDriver, bind_udp
from ..proto.hoststack import HostStack
from ..proto.invite import InviteWaiter
from ..proto.natclass import NatReport
from ..proto.node import JOIN_TIMEOUT, PeerNode
from ..proto.rendezvous import Introducer
from ..proto.token import SECRET_LEN, PeerToken, SessionToken
from ..proto.turn import TurnClient
from .bridge import BufferBridge
from .trio_host import TrioHost

Report = Callable[[str, str], None]


def advertised_ips(bind_host: str, configured: Any) -> list[str]:
    """Addresses to put in the token: configured ones, else this machine's, loopback last."""
    if configured:
        items = configured if isinstance(configured, list) else str(configured).split(",")
        return [str(i).strip() for i in items if str(i).strip()]
    if bind_host not in ("0.0.0.0", ""):
        return [bind_host]
    ips: list[str] = []
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            ip = info[4][0]
            if not ip.startswith("127.") and ip not in ips:
                ips.append(ip)
    except OSError:
        pass
    return ips[:3] + ["127.0.0.1"]


def stun_server(configured: Any) -> tuple[str, int] | None:
    """``g:covim_stun``: "host" or "host:port" (3478), or unset/empty for no NAT check."""
    text = str(configured or "").strip()
    if not text:
        return None
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "3478")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"g:covim_stun must be 'host' or 'host:port', not {text!r}")
    return host, int(port)


def turn_settings(configured: Any) -> tuple[str, str, tuple[str, int]] | None:
    """``g:covim_turn``: "user:password@host[:port]" (3478), or unset/empty for no relay."""
    text = str(configured or "").strip()
    if not text:
        return None
    creds, at, where = text.rpartition("@")
    user, colon, password = creds.partition(":")
    if not at or not colon or not user:
        raise ValueError("g:covim_turn must be 'user:password@host[:port]'")
    host, _, port = where.rpartition(":") if ":" in where else (where, "", "3478")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("g:covim_turn must be 'user:password@host[:port]'")
    try:
        ip = socket.getaddrinfo(host, int(port), socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
    except OSError as exc:
        raise ValueError(f"g:covim_turn: cannot resolve {host} ({exc})") from None
    return user, password, (ip, int(port))


def local_candidates(sock: socket.socket) -> tuple[tuple[str, int], ...]:
    """Where peers on our LAN can reach this socket: its own address, or this machine's."""
    ip, port = sock.getsockname()[:2]
    ips = [ip] if ip not in ("0.0.0.0", "") else [i for i in advertised_ips("0.0.0.0", None) if not i.startswith("127.")]
    return tuple((i, port) for i in ips)


@dataclass
class Session:
    role: str
    name: str
    token: SessionToken
    node: PeerNode
    driver: UdpDriver
    bridge: BufferBridge | None = None
    scope: Any = None
    stopped: bool = False
    extra: dict = field(default_factory=dict)
    nat: NatReport | None = None  # set when the STUN check (g:covim_stun) has an answer

    @property
    def token_text(self) -> str:
        return self.token.encode()


@dataclass
class Waiting:
    """A peer that ran ``:CoVim start`` and waits for the host's ``:CoVim add``."""
    name: str
    token: PeerToken
    waiter: InviteWaiter
    driver: UdpDriver
    scope: Any = None
    stopped: bool = False
    accepted: bool = False
    role: str = "waiting"

    @property
    def token_text(self) -> str:
        return self.token.encode()


class SessionFactory:
    def __init__(self, nvim, trio_host: TrioHost, report: Report, on_event: Callable[[Session, Any], None]) -> None:
        self.nvim = nvim
        self.trio = trio_host
        self.report = report
        self.on_event = on_event

    def host(self, buf: int, port: int, name: str) -> Session:
        bind_host = str(self.nvim.vars.get("covim_bind", "0.0.0.0"))
        sock = bind_udp(bind_host, port)
        real_port = sock.getsockname()[1]
        ips = advertised_ips(bind_host, self.nvim.vars.get("covim_host_addr"))
        token = SessionToken(tuple((ip, real_port) for ip in ips),
                             secrets.randbits(63) | 1, secrets.token_bytes(SECRET_LEN))
        return self._start("host", buf, sock, token, name, host=True)

    def connect(self, buf: int, token: SessionToken, name: str, waiting: "Waiting | None" = None) -> Session:
        """Join ``token``'s session; ``waiting``: keep the socket of a peer that ran :CoVim start."""
        if waiting is not None:
            return self._start("peer", buf, waiting.driver.sock, token, name, host=False,
                               driver=waiting.driver, scope=waiting.scope)
        sock = bind_udp(str(self.nvim.vars.get("covim_bind", "0.0.0.0")), 0)
        return self._start("peer", buf, sock, token, name, host=False)

    def wait_for_invite(self, port: int, name: str) -> Waiting:
        """``:CoVim start``: a socket and a peer token; ``:CoVim add`` on the host brings the invitation."""
        bind_host = str(self.nvim.vars.get("covim_bind", "0.0.0.0"))
        sock = bind_udp(bind_host, port)
        ips = advertised_ips(bind_host, self.nvim.vars.get("covim_host_addr"))
        nonce = secrets.token_bytes(SECRET_LEN)
        token = PeerToken(tuple((ip, sock.getsockname()[1]) for ip in ips), nonce)
        waiter = InviteWaiter(nonce, secrets.randbits(64) | 1)
        waiting: Waiting | None = None

        def activity() -> None:
            if waiting is not None and waiter.invited is not None and not waiting.accepted:
                waiting.accepted = True
                self.on_event(waiting, waiter.invited)

        driver = UdpDriver(waiter, sock, activity)
        waiting = Waiting(name, token, waiter, driver)
        waiting.scope = self._spawn(driver)
        return waiting

    def _spawn(self, driver: UdpDriver):
        """Run the driver as a supervised trio task; the socket closes with it."""
        async def run() -> None:
            try:
                await driver.run()
            finally:
                driver.sock.close()

        return self.trio.spawn(run, "network driver")

    def _start(self, role: str, buf: int, sock: socket.socket, token: SessionToken, name: str, *, host: bool,
               driver: UdpDriver | None = None, scope: Any = None) -> Session:
        tick, lines = self.nvim.exec_lua("return require('covim').attach(...)", buf, self.nvim.channel_id)
        now = time.monotonic()
        introducer = Introducer(token.session, token.secret) if host else None
        relay = self._setting(turn_settings, "covim_turn", "no relay")
        turn = None if relay is None else TurnClient(relay[2], relay[0], relay[1], secrets.token_bytes, now)
        node = PeerNode(name=name, token=token, peer_id=secrets.randbits(64) | 1,
                        client_id=secrets.randbits(32), now=now,
                        initial_text="\n".join(lines) if host else "", introducer=introducer,
                        join_timeout=float(self.nvim.vars.get("covim_join_timeout", JOIN_TIMEOUT)),
                        candidates=local_candidates(sock), turn=turn)
        machine: Any = node
        if introducer is not None:
            introducer._local_sink = node.on_local_rendezvous
            machine = HostStack(introducer, node)
        session: Session | None = None

        def activity() -> None:
            if session is not None:
                self._drain(session)

        reuse = driver is not None
        if driver is None:
            driver = UdpDriver(machine, sock, activity)
        else:  # the waiting peer's driver, socket and tasks carry on with the session's machine
            driver.machine = machine
            driver._on_activity = activity
        session = Session(role, name, token, node, driver)
        session.extra["introducer"] = introducer
        session.bridge = BufferBridge(self.nvim, buf, node, driver.poke, self.report, tick, lines)
        if not host:
            session.bridge.locked = True
            self.nvim.api.set_option_value("modifiable", False, {"buf": buf})

        session.scope = scope if reuse else self._spawn(driver)
        driver.poke()
        server = self._setting(stun_server, "covim_stun", "no NAT check")
        if server is not None:
            session.extra["nat_scope"] = self._check_nat(session, sock.getsockname()[0], server)
        return session

    def _setting(self, parse: Callable[[Any], Any], var: str, without: str) -> Any:
        """An optional g:var: its parsed value, or None with one warning line if it is wrong."""
        try:
            return parse(self.nvim.vars.get(var))
        except ValueError as exc:
            self.report(f"{exc}; {without}", "WarningMsg")
            return None

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
        bridge = session.bridge
        if bridge is None or bridge.closed:
            return
        if node.remote_cursors_changed or node.document.has_remote_edits():
            # pycrdt may panic, and a panic inside a pynvim greenlet kills the host:
            # resolve cursors here, in trio, and hand the bridge plain offsets.
            node.remote_cursors_changed = False
            bridge.cursors = node.cursors()
            bridge.cursors_dirty = True
        if bridge.cursors_dirty or node.document.has_remote_edits() or bridge.pending or (
                bridge.locked and node.synced):
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

