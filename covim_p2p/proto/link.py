"""State of our connection to one other peer: probing, then up.

A link probes with HELLO (backing off 50 ms -> 1 s) until any datagram comes
back, and then carries a reliable channel.  The probes go to the address the
introducer saw and to the peer's own LAN addresses (for peers behind one NAT);
whichever answers first is the link's address from then on.  It always answers the address a
packet really came from (peer-reflexive), which is what later hole punching
relies on.  An up link pings every ``PING_INTERVAL`` for RTT and liveness and
is declared dead after ``LINK_TIMEOUT`` of silence.  After ``SILENT_AFTER``
of silence the node refreshes its JOIN at once: if our NAT rebound (a flush,
a reboot), the introducer sees our new address and tells the peer, whose
HELLO there reopens its own NAT towards us; the first datagram after the
silence resends what is in flight (``channel.kick``).

Each Link object is one *incarnation* (``epoch``, increasing per node).  If
one side drops the link (say after a freeze) and rebuilds it, its channel
starts again at sequence 0 while the other side's channel is deep into the old
stream; without epochs nothing would ever be delivered again while pings kept
both sides "up".  Every peer datagram carries both epochs (framing.py), so the
side that sees a newer epoch restarts its channel and resyncs, and data
addressed to an old incarnation is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .channel import ReliableChannel
from .framing import Ack, Addr, Data, Frame, Hello, Ping, Pong
from .paths import RELAY_HOLD, PathChoice
from .rendezvous_messages import Member

PROBE_FIRST = 0.05
PROBE_MAX = 1.0
PROBE_TIMEOUT = 30.0
PING_INTERVAL = 1.0
LINK_TIMEOUT = 10.0
RESYNC_INTERVAL = 5.0
SILENT_AFTER = 2.5  # an up link this long without a datagram: our NAT may have rebound (membership.py: JOIN at once)


@dataclass
class Link:
    peer_id: int
    name: str
    addr: Addr
    created: float
    candidates: tuple[Addr, ...] = ()  # more addresses to probe until up (the peer's LAN addresses)
    direct: tuple[Addr, ...] = ()  # the peer's direct addresses: probed gently while up on a relay
    relays: tuple[Addr, ...] = ()  # the peer's relayed addresses (paths.py ranks them last)
    path: PathChoice = field(default_factory=PathChoice)
    upgrade_probe_due: bool = False
    forwarders: tuple[Addr, ...] = ()  # forwarding.py: "through B" addresses probed too, as a last resort
    up: bool = False
    is_host: bool = False  # the host's peer always holds the whole document
    introduced: bool = True  # False: opened by the peer's HELLO before the introducer named it
    client_id: int | None = None  # its Yjs client id, as its handshake proved (handshake.py)
    writer: bool = False  # its handshake carried a writer certificate (keys.py)
    author: bytes | None = None  # the author key its handshake proved (authorship.py)
    via_relay: bool = False  # the last datagram came through our TURN relay: answer the same way
    epoch: int = 0       # this incarnation of our side
    peer_epoch: int = 0  # the peer's side, once a datagram told us
    channel: ReliableChannel = field(default_factory=ReliableChannel)
    last_rx: float = 0.0
    next_hello: float = 0.0
    hello_interval: float = PROBE_FIRST
    hello_reply_due: bool = False
    next_ping: float = 0.0
    ping_nonce: int = 0
    ping_sent_at: float | None = None
    ping_due: bool = False
    rtt: float | None = None
    next_resync: float = 0.0
    client_ids: set[int] = field(default_factory=set)
    pongs_due: list[int] = field(default_factory=list)
    restarts: int = 0
    silent: bool = False  # SILENT_AFTER passed without a datagram (we refreshed our JOIN once)

    def __post_init__(self) -> None:
        self.path.hold_until = self.created + RELAY_HOLD  # paths.py: direct probing first, on every link

    def deadline(self) -> float:
        """When this link gives up: probing too long, or silent too long."""
        return self.last_rx + LINK_TIMEOUT if self.up else self.created + PROBE_TIMEOUT

    def next_wakeup(self) -> float:
        times = [self.deadline()]
        if self.up:
            times += [self.next_ping, self.next_resync]
            if not self.silent:
                times.append(self.last_rx + SILENT_AFTER)
            for t in (self.channel.get_timer(), self.path.get_timer()):
                if t is not None:
                    times.append(t)
        else:
            times.append(self.next_hello)
            held = self.path.get_timer()  # a relay heard during its hold (paths.py)
            if held is not None:
                times.append(held)
        return min(times)

    # ---- upkeep: what concerns this link only (the node calls these) ----------

    def learn(self, member: Member, ours: tuple[Addr, ...], now: float) -> None:
        """What the introducer says of the peer: its direct and relayed addresses (not ``ours``)."""
        relays = member.candidates[len(member.candidates) - member.relays:] if member.relays else ()
        self.relays = relays
        known = self.direct
        self.direct = tuple(dict.fromkeys(a for a in (member.addr, *member.candidates)
                                          if a is not None and a not in relays and a not in ours))
        if self.up and set(self.direct) - set(known) and known:  # its NAT rebound (the introducer saw it
            self.upgrade_probe_due = True  # move): HELLO there opens our NAT towards its new address
        if not self.up:  # probe its LAN addresses too: the one the introducer saw may not lead back in
            fresh = tuple(a for a in member.candidates if a != self.addr and a not in ours)
            if set(fresh) - set(self.candidates):  # new ways in (a relay announced late): probe them now
                self.next_hello, self.hello_interval = now, PROBE_FIRST
            self.candidates = fresh

    def heard(self, addr: Addr, via_relay: bool, via: int, now: float) -> bool:
        """A datagram of this link's epochs came from ``addr``; False while paths.py holds a relay."""
        changed = self.path.heard(addr, via_relay, via_relay or addr in self.relays, now, via)
        if self.path.addr is None:  # paths.py: a relay on a new link waits RELAY_HOLD (take_held_relay)
            return False
        if not self.up and addr != self.addr:  # a candidate answered: keep the others for a re-probe
            self.candidates = tuple(a for a in (self.addr, *self.candidates) if a != addr)
        if changed or not self.up:
            self.addr, self.via_relay = self.path.addr or addr, self.path.via_relay  # paths.py: direct first
        if self.up and (self.silent or now - self.last_rx >= SILENT_AFTER):  # back after a silence: resend now
            self.silent = False
            self.channel.kick()
        self.last_rx = now
        return True

    def on_frame(self, frame: Frame, now: float) -> None:
        """HELLO, PING, PONG and this epoch's DATA and ACK; ChannelError if DATA breaks the channel."""
        if isinstance(frame, Data):
            self.channel.on_data(frame)
        elif isinstance(frame, Ack):
            self.channel.on_ack(frame, now)
        elif isinstance(frame, Hello):
            self.name = self.name or frame.name
            self.hello_reply_due = self.hello_reply_due or frame.reply
        elif isinstance(frame, Ping):
            self.pongs_due.append(frame.nonce)
            if self.channel.backed_off():  # the path works now (channel.py): no waiting for a doubled RTO
                self.channel.kick()
        elif isinstance(frame, Pong):
            if frame.nonce == self.ping_nonce and self.ping_sent_at is not None:
                self.rtt = now - self.ping_sent_at
                self.ping_sent_at = None

    def tick(self, now: float) -> bool:
        """An up link's timers: channel, path, ping.  True when it just fell silent: the node
        refreshes its JOIN, since our NAT may have rebound."""
        silent = not self.silent and now >= self.last_rx + SILENT_AFTER
        if silent:
            self.silent = True
        self.channel.handle_timer(now)
        if self.path.handle_timer(now):
            self.addr, self.via_relay = self.path.addr or self.addr, self.path.via_relay
        if self.path.probe_due(now):
            self.upgrade_probe_due = True
        if now >= self.next_ping:
            self.ping_nonce += 1
            self.ping_sent_at = now
            self.ping_due = True
            self.next_ping = now + PING_INTERVAL
        return silent

    def take_held_relay(self, now: float) -> bool:
        """A probing link: the relay held during its first second may carry it now (paths.py)."""
        if not self.path.handle_timer(now):
            return False
        self.addr, self.via_relay, self.last_rx = self.path.addr or self.addr, self.path.via_relay, now
        return True

    def probe(self, now: float) -> None:
        """Say HELLO again, backing off."""
        self.hello_reply_due = True
        self.next_hello = now + self.hello_interval
        self.hello_interval = min(self.hello_interval * 2, PROBE_MAX)

    def frames_to_send(self, name: str, client_id: int, now: float) -> list[Frame]:
        """HELLO if due (asking for a reply until up), PONGs, then while up PING and the channel's."""
        frames: list[Frame] = []
        if self.hello_reply_due:
            frames.append(Hello(name, client_id, not self.up))
            self.hello_reply_due = False
        for nonce in self.pongs_due:
            frames.append(Pong(nonce))
        self.pongs_due.clear()
        if self.up:
            if self.ping_due:
                frames.append(Ping(self.ping_nonce))
                self.ping_due = False
            frames.extend(self.channel.frames_to_send(now))
        return frames

    def restart_channel(self) -> None:
        """The peer rebuilt its side: both ends start a fresh stream."""
        self.channel = ReliableChannel()
        self.restarts += 1

    def rtt_ms(self) -> float | None:
        rtt = self.rtt if self.rtt is not None else self.channel.srtt
        return None if rtt is None else round(rtt * 1000, 3)
