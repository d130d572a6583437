"""Peer assembly: socket, ids, machines and trio driver, for every front end.

The Neovim adapter (nvim/session.py), the headless ``python -m covim_p2p``,
the tests and the benchmarks all build peers here, so a peer is the same
thing whichever of them runs it.  Nothing here touches Neovim; the settings
arrive as plain values (the ``g:covim_*`` variables, read by the caller).

Candidates (issue 8, ICE terms):

* *host*: every usable interface address (io/interfaces.py), never the
  hostname; loopback only when nothing else exists, and then ``note`` says
  in one line that only this machine can join;
* *srflx*: what the STUN servers in ``stun`` saw, asked from this very
  socket (proto/gather.py); the token waits for them at most ~1 s;
* *relay*: the TURN allocation (``turn``), offered by the node itself once
  direct probing had its chance.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import trio

from .io.interfaces import interface_addresses
from .io.udp import UdpDriver, bind_udp, local_addr
from .proto.framing import Addr
from .proto.document import SharedDocument
from .proto.gather import DEADLINE as GATHER_DEADLINE
from .proto.gather import StunGatherer
from .proto.introduction import PUBLIC_BIT, introduction_secret
from .proto.registration import Registration
from .proto.invite import InviteWaiter
from .proto.node import JOIN_TIMEOUT, PeerNode
from .proto.rendezvous import Introducer
from .proto.rendezvous_messages import MAX_CANDIDATES
from .proto.stack import Stack
from .proto.token import SECRET_LEN, PeerToken, SessionToken
from .proto.turn import TurnClient

# For real users only: tests and CI set g:covim_stun to '' or to a lab server.
DEFAULT_STUN = ("stun.l.google.com:19302", "stun.cloudflare.com:3478")
MAX_TOKEN_ADDRS = 8
MAX_IPV6_HOST = 2  # IPv6 host candidates offered (after every IPv4 one)
REPLY_AFTER = 2.0  # a joiner unanswered this long offers a reply token (the seed's flow, other order)
REPLY_WAIT = 120.0  # and then waits this long for the host's :CoVim add


def _host_port(text: str, default: int, what: str) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):  # [v6]:port
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else str(default)
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, str(default)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{what} must be 'host' or 'host:port', not {text!r}")
    return host, int(port)


def stun_servers(configured: Any) -> list[tuple[str, int]]:
    """``g:covim_stun``: a string or a list of ``host[:port]`` (3478); unset: DEFAULT_STUN; '' or []: off."""
    if configured is None:
        configured = list(DEFAULT_STUN)
    items = configured if isinstance(configured, (list, tuple)) else str(configured).split(",")
    return [_host_port(str(i), 3478, "g:covim_stun") for i in items if str(i).strip()]


def turn_settings(configured: Any) -> tuple[str, str, tuple[str, int]] | None:
    """``g:covim_turn``: "user:password@host[:port]" (3478), or unset/empty for no relay."""
    text = str(configured or "").strip()
    if not text:
        return None
    creds, at, where = text.rpartition("@")
    user, colon, password = creds.partition(":")
    if not at or not colon or not user:
        raise ValueError("g:covim_turn must be 'user:password@host[:port]'")
    host, port = _host_port(where, 3478, "g:covim_turn's server")
    try:
        ip = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
    except OSError as exc:
        raise ValueError(f"g:covim_turn: cannot resolve {host} ({exc})") from None
    return user, password, (ip, port)


def rendezvous_addr(configured: Any) -> Addr | None:
    """``g:covim_rendezvous``: "host[:port]" (8555) of a public covim-rendezvous, or unset/empty for none."""
    text = str(configured or "").strip()
    if not text:
        return None
    host, port = _host_port(text, 8555, "g:covim_rendezvous")
    try:
        return socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0], port
    except OSError as exc:
        raise ValueError(f"g:covim_rendezvous: cannot resolve {host} ({exc})") from None


def configured_ips(configured: Any) -> list[str]:
    """``g:covim_host_addr``: addresses to advertise instead of the gathered ones."""
    if not configured:
        return []
    items = configured if isinstance(configured, list) else str(configured).split(",")
    return [str(i).strip() for i in items if str(i).strip()]


@dataclass(frozen=True)
class Candidate:
    type: str  # "host" | "srflx" | "relay"
    addr: Addr

    def as_dict(self) -> dict[str, str]:
        ip = f"[{self.addr[0]}]" if ":" in self.addr[0] else self.addr[0]
        return {"type": self.type, "addr": f"{ip}:{self.addr[1]}"}


def _ipv6_addresses() -> list[str]:
    return interface_addresses(socket.AF_INET6)


def host_candidates(sock: socket.socket, configured: Any = None,
                    enumerate_ips: Callable[[], list[str]] = interface_addresses,
                    enumerate_ipv6: Callable[[], list[str]] = _ipv6_addresses) -> tuple[list[Candidate], str]:
    """This socket's host candidates, and a one-line note when only this machine can use them.
    A dual-stack socket (udp.py) also offers up to ``MAX_IPV6_HOST`` IPv6 addresses, after the IPv4 ones."""
    ip, port = local_addr(sock)
    ips = configured_ips(configured)
    if not ips:
        ips = [ip] if ip not in ("0.0.0.0", "", "::") else enumerate_ips()
        if ip == "::" and sock.family == socket.AF_INET6:
            ips += enumerate_ipv6()[:MAX_IPV6_HOST]
    if not ips:
        return [Candidate("host", ("127.0.0.1", port))], (
            "this machine has no network address besides loopback: only this machine can join")
    note = ""
    if all(ipaddress.ip_address(i).is_loopback for i in ips):
        note = "this session listens on loopback only: only this machine can join"
    return [Candidate("host", (i, port)) for i in ips[:MAX_TOKEN_ADDRS]], note


@dataclass
class Settings:
    """What a front end chose (in Neovim: the g:covim_* variables)."""
    bind: str = "0.0.0.0"
    host_addr: Any = None
    stun: Any = ""  # "" off; None: DEFAULT_STUN
    turn: Any = None
    join_timeout: float = JOIN_TIMEOUT
    rendezvous: Any = None  # "host[:port]" of a public covim-rendezvous

    @classmethod
    def from_vars(cls, get: Callable[[str, Any], Any]) -> "Settings":
        return cls(bind=str(get("covim_bind", "0.0.0.0")), host_addr=get("covim_host_addr", None),
                   stun=get("covim_stun", None), turn=get("covim_turn", None),
                   join_timeout=float(get("covim_join_timeout", JOIN_TIMEOUT)),
                   rendezvous=get("covim_rendezvous", None))


@dataclass
class Peer:
    """One assembled peer: the socket, its machines, and what we tell others about it."""
    role: str  # "host" | "peer" | "waiting"
    name: str
    sock: socket.socket
    stack: Stack
    token: SessionToken | PeerToken
    node: PeerNode | None = None
    introducer: Introducer | None = None
    waiter: InviteWaiter | None = None
    candidates: list[Candidate] = field(default_factory=list)
    note: str = ""  # one line for the user about the candidates, or ""
    problems: list[str] = field(default_factory=list)  # settings that were wrong, as sentences
    stun: list[tuple[str, int]] = field(default_factory=list)
    token_ready: bool = False  # gathering is over: ``token`` is final
    driver: UdpDriver | None = None
    started: float = 0.0
    reply_shown: bool = False
    rendezvous: Addr | None = None  # the public introducer our token names first

    def reply_token_due(self, now: float) -> str | None:
        """A joiner the host has not answered for REPLY_AFTER: the reply token to send the host, once.

        The host's ``:CoVim add <it>`` sends INVITE to our candidates, which opens the host's NAT
        towards us (ours is open towards it: we keep sending JOIN), and our next JOIN gets in."""
        waiter = self.stack.waiter
        if (self.reply_shown or waiter is None or self.node is None or self.node.state != "joining"
                or now < self.started + REPLY_AFTER or not self.token_ready):
            return None
        self.reply_shown = True
        self.node.join_timeout = max(self.node.join_timeout, now - self.started + REPLY_WAIT)
        return PeerToken(tuple(c.addr for c in self.candidates)[:MAX_TOKEN_ADDRS], waiter.nonce).encode()

    @property
    def token_text(self) -> str:
        return self.token.encode()

    def candidate_dicts(self) -> list[dict[str, str]]:
        cands = list(self.candidates)
        relayed = self.node.wire.relayed() if self.node is not None else None
        if relayed is not None:
            cands.append(Candidate("relay", relayed))
        return [c.as_dict() for c in cands]

    def poll(self) -> bool:
        """After activity: True once, when gathering ends and ``token`` became final."""
        gatherer = self.stack.gatherer
        if self.token_ready or (gatherer is not None and not gatherer.done):
            return False
        self.token_ready = True
        if gatherer is not None:
            known = {c.addr for c in self.candidates}
            self.candidates += [Candidate("srflx", a) for a in gatherer.reflexive if a not in known]
            self.candidates.sort(key=lambda c: ":" in c.addr[0])  # IPv6 last: the IPv4 srflx is worth more
        if self.role in ("host", "waiting"):  # our own token names our candidates; a joiner's names the host's
            first = (self.rendezvous,) if self.rendezvous else ()
            self.token = replace(self.token, addrs=(*first, *(c.addr for c in self.candidates))[:MAX_TOKEN_ADDRS])
            if self.node is not None and self.rendezvous is None:
                self.node.token = self.token
        return True

    def make_driver(self, on_activity: Callable[[], None]) -> UdpDriver:
        self.driver = UdpDriver(self.stack, self.sock, on_activity)
        return self.driver

    async def run(self) -> None:
        """Resolve the STUN servers (bounded), start gathering, run the driver; the socket closes with it."""
        assert self.driver is not None
        try:
            if self.stack.gatherer is not None:
                servers = await resolve(self.stun, GATHER_DEADLINE / 2)
                self.stack.gatherer.start(servers, time.monotonic())
                self.driver.poke()
            await self.driver.run()
        finally:
            self.sock.close()


async def resolve(servers: list[tuple[str, int]], within: float) -> list[Addr]:
    """IPv4 addresses for ``servers``; names that do not resolve within ``within`` seconds are skipped."""
    found: list[Addr] = []
    for host, port in servers:
        try:
            found.append((str(ipaddress.IPv4Address(host)), port))
            continue
        except ValueError:
            pass
        with trio.move_on_after(within):
            try:
                infos = await trio.socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
                found.append((infos[0][4][0], port))
            except OSError:
                pass
    return found


def _parsed(parse: Callable[[Any], Any], value: Any, without: str, problems: list[str]) -> Any:
    try:
        return parse(value)
    except ValueError as exc:
        problems.append(f"{exc}; {without}")
        return None


def _base(settings: Settings, port: int, role: str, name: str) -> tuple[socket.socket, list[Candidate], str,
                                                                         list[str], list[tuple[str, int]]]:
    problems: list[str] = []
    stun = _parsed(stun_servers, settings.stun, "no server-reflexive candidates", problems) or []
    sock = bind_udp(settings.bind, port)
    cands, note = host_candidates(sock, settings.host_addr)
    return sock, cands, note, problems, stun


def _turn(settings: Settings, problems: list[str], now: float) -> TurnClient | None:
    relay = _parsed(turn_settings, settings.turn, "no relay", problems)
    return None if relay is None else TurnClient(relay[2], relay[0], relay[1], secrets.token_bytes, now)


def _finish(peer: Peer) -> Peer:
    if peer.stun:
        peer.stack.gatherer = StunGatherer(secrets.token_bytes)
    peer.poll()
    return peer


def host(settings: Settings, port: int, name: str, initial_text: str = "", now: float | None = None) -> Peer:
    """A session of our own: the introducer and our peer on one socket."""
    now = time.monotonic() if now is None else now
    sock, cands, note, problems, stun = _base(settings, port, "host", name)
    public = _parsed(rendezvous_addr, settings.rendezvous, "hosting with the introducer built in", problems)
    if public is not None:
        return _host_public(settings, sock, cands, note, problems, stun, public, name, initial_text, now)
    token = SessionToken(tuple(c.addr for c in cands), secrets.randbits(63) | 1, secrets.token_bytes(SECRET_LEN))
    introducer = Introducer(token.session, token.keys().introduction)  # it never holds the secret itself
    node = PeerNode(name=name, token=token, peer_id=secrets.randbits(64) | 1, client_id=secrets.randbits(32),
                    now=now, initial_text=initial_text, introducer=introducer,
                    join_timeout=settings.join_timeout, candidates=tuple(c.addr for c in cands)[:MAX_CANDIDATES],
                    turn=_turn(settings, problems, now))
    introducer._local_sink = node.on_local_rendezvous
    peer = Peer("host", name, sock, Stack(node, introducer), token, node=node, introducer=introducer,
                candidates=cands, note=note, problems=problems, stun=stun)
    return _finish(peer)


def _host_public(settings: Settings, sock: socket.socket, cands: list[Candidate], note: str, problems: list[str],
                 stun: list[tuple[str, int]], public: Addr, name: str, initial_text: str, now: float) -> Peer:
    """A session introduced by a public covim-rendezvous: we register it there and join it like anyone,
    holding the document from the start; the server gets only the introduction credential, sealed to its key (registration.py)."""
    session, secret = secrets.randbits(63) | 1 | PUBLIC_BIT, secrets.token_bytes(SECRET_LEN)
    node = PeerNode(name=name, token=SessionToken((public,), session, secret), peer_id=secrets.randbits(64) | 1,
                    client_id=secrets.randbits(32), now=now, initial_text=initial_text,
                    join_timeout=settings.join_timeout, candidates=tuple(c.addr for c in cands)[:MAX_CANDIDATES],
                    turn=_turn(settings, problems, now),
                    register=Registration(session, introduction_secret(session, secret), secrets.token_bytes(32)))
    token = SessionToken((public, *(c.addr for c in cands))[:MAX_TOKEN_ADDRS], session, secret)
    return _finish(Peer("host", name, sock, Stack(node), token, node=node, candidates=cands, note=note,
                        problems=problems, stun=stun, rendezvous=public))


def join(settings: Settings, token: SessionToken, name: str, now: float | None = None,
         waiting: Peer | None = None, document: SharedDocument | None = None) -> Peer:
    """Join ``token``'s session; ``waiting``: carry on on the socket of a peer that ran :CoVim start;
    ``document``: the one an earlier session in this session kept (offline edits merge)."""
    now = time.monotonic() if now is None else now
    if waiting is not None:
        sock, cands, note, problems, stun = waiting.sock, waiting.candidates, waiting.note, [], []
    else:
        sock, cands, note, problems, stun = _base(settings, 0, "peer", name)
    node = PeerNode(name=name, token=token, peer_id=secrets.randbits(64) | 1, client_id=secrets.randbits(32),
                    now=now, join_timeout=settings.join_timeout, document=document,
                    candidates=tuple(c.addr for c in cands)[:MAX_CANDIDATES], turn=_turn(settings, problems, now))
    if waiting is not None:  # same socket, same driver: the session's machine takes the waiter's place
        waiting.stack.inner = node
        peer = Peer("peer", name, sock, waiting.stack, token, node=node, candidates=cands, note=note,
                    problems=problems, stun=waiting.stun, token_ready=True, driver=waiting.driver, started=now,
                    reply_shown=True)
        return peer
    stack = Stack(node)
    stack.waiter = InviteWaiter(secrets.token_bytes(SECRET_LEN), node.peer_id)
    return _finish(Peer("peer", name, sock, stack, token, node=node, candidates=cands, note=note,
                        problems=problems, stun=stun, started=now))


def wait_for_invite(settings: Settings, port: int, name: str) -> Peer:
    """``:CoVim start``: a socket and a peer token; the host's ``:CoVim add`` brings the invitation."""
    sock, cands, note, problems, stun = _base(settings, port, "waiting", name)
    nonce = secrets.token_bytes(SECRET_LEN)
    waiter = InviteWaiter(nonce, secrets.randbits(64) | 1)
    token = PeerToken(tuple(c.addr for c in cands), nonce)
    return _finish(Peer("waiting", name, sock, Stack(waiter), token, waiter=waiter, candidates=cands, note=note,
                        problems=problems, stun=stun))
