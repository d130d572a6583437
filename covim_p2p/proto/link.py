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
from .framing import Addr
from .paths import RELAY_HOLD, PathChoice

PROBE_FIRST = 0.05
PROBE_MAX = 1.0
PROBE_TIMEOUT = 30.0
PING_INTERVAL = 1.0
LINK_TIMEOUT = 10.0
RESYNC_INTERVAL = 5.0
SILENT_AFTER = 2.5  # an up link this long without a datagram: our NAT may have rebound (node.py)


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

    def restart_channel(self) -> None:
        """The peer rebuilt its side: both ends start a fresh stream."""
        self.channel = ReliableChannel()
        self.restarts += 1

    def rtt_ms(self) -> float | None:
        rtt = self.rtt if self.rtt is not None else self.channel.srtt
        return None if rtt is None else round(rtt * 1000, 3)
