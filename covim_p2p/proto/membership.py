"""Our standing in the session: joining through the introducer, joined, or failed.

Why apart from node.py: the node keeps links to the other members; this is
how we become and stay a member, a conversation with the introducer alone
(rendezvous.py, in rendezvous_messages.py's messages).  Whom the introducer
names is handed to the node, which links to them; nothing here touches a
link.

Rules:

* ``joining``: JOIN goes to every introducer address in the token with
  backoff (``JOIN_RETRY_FIRST`` doubling to 2 s); WELCOME -> ``joined``;
  REJECT or ``JOIN_TIMEOUT`` -> ``failed`` with a sentence for the user.  A
  host is ``joined`` from the start (its introducer is in-process).
* ``joined``: the members WELCOME and PEER_JOINED name go to the node (while
  joining we drop PEER_JOINED: WELCOME lists everyone).  JOIN is repeated
  every ``REFRESH_INTERVAL`` as keepalive, and at once when the introducer
  CHECKs that we are alive (someone claims our name) or our NAT may have
  rebound (link.py), so it sees where we are now.  If the introducer is gone
  nothing else changes: links carry the session, and PEER_LEFT is ignored
  for the same reason (links decide for themselves).
* A host registered with a public introducer (``register``,
  registration.py) sends REGISTER before every JOIN; a KEY! from the
  introducer's address seals it anew, and both go at once.
* With a TURN client, the relayed address joins our candidates
  ``RELAY_DELAY`` after we joined, so direct holes get the first chance; the
  introducer tells everyone (the host's in-process one at once, a remote one
  with our next JOIN).
* ``left``/``failed`` are final.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from .codec import DecodeError
from .drops import Drops
from .events import Event, JoinFailed, Joined, Problem
from .framing import Addr
from .registration import KEY_REPLY, Registration
from .rendezvous import Introducer
from .rendezvous_messages import MAX_CANDIDATES, Check, Join, Leave, Member, Message, PeerJoined, PeerLeft, Reject, \
    Welcome
from .token import SessionToken
from .wire import PeerWire

JOIN_TIMEOUT = 10.0
JOIN_RETRY_FIRST = 0.25
JOIN_RETRY_MAX = 2.0
REFRESH_INTERVAL = 5.0
RELAY_DELAY = 1.0

# The node's answer to a named member: (member, the introducer's address, now, a newcomer
# under a name, so whoever held that name before is gone).
Named = Callable[[Member, Addr, float, bool], None]


class Membership:
    def __init__(self, *, name: str, token: SessionToken, peer_id: int, wire: PeerWire, now: float,
                 join_timeout: float, candidates: tuple[Addr, ...], introducer: Introducer | None,
                 register: Registration | None, named: Named, events: deque[Event], drops: Drops) -> None:
        self.name = name
        self.token = token
        self.wire = wire
        self.named = named
        self.events = events  # the node's: ours go out in order with its own
        self.drops = drops
        self.state = "joining"
        self.join_timeout = join_timeout
        self.candidates = tuple(candidates)[:MAX_CANDIDATES]  # in JOIN: our LAN addresses, later our relay
        self.observed: Addr | None = None  # our public address as the introducer saw it (WELCOME)
        self.is_host = introducer is not None
        self.relay_announced = False
        self._relays = 0  # how many of the last candidates are relayed
        self._introducer = introducer
        self._introducer_addr: Addr | None = None
        self._register = register
        self._started = now
        self._interval = JOIN_RETRY_FIRST
        self._next_join = now
        if introducer is not None:  # we are the host: the introducer lives beside us
            introducer.add_local_member(peer_id, name, self.candidates, wire.security.static_public)
            self._introducer_addr = token.addrs[0]
            self.state = "joined"
            self._next_join = float("inf")
            events.append(Joined())

    @property
    def introducer_addr(self) -> Addr:
        """Where the introducer answered from, or, until it has, the token's first address."""
        return self._introducer_addr or self.token.addrs[0]

    def is_introducer(self, addr: Addr) -> bool:
        """Rendezvous comes only from the token's addresses or wherever the introducer answered from."""
        return addr in self.token.addrs or addr == self._introducer_addr

    def leave(self) -> None:
        if self._introducer_addr is not None:
            self.wire.send_rendezvous(Leave(), self._introducer_addr)
        self.state = "left"

    # ---- from the introducer -------------------------------------------------

    def take_key_reply(self, data: bytes, addr: Addr, now: float) -> bool:
        """A registering host's KEY! (registration.py): True if ``data`` was one, whatever it said."""
        if self._register is None or not data.startswith(KEY_REPLY):
            return False
        try:
            if addr == self.introducer_addr and self._register.receive_key_reply_untrusted(data):
                self._next_join = now  # REGISTER (sealed now) and JOIN at once
        except DecodeError as exc:
            self.drops.add_error(exc)
        return True

    def on_rendezvous(self, msg: Message, addr: Addr, now: float) -> None:
        if self.state in ("left", "failed"):
            return
        if isinstance(msg, Welcome):
            self.observed = msg.observed
            if self.state == "joining":
                self.state = "joined"
                self._introducer_addr = addr
                self._next_join = now + REFRESH_INTERVAL
                self.events.append(Joined())
            for member in msg.members:
                self.named(member, addr, now, False)
        elif isinstance(msg, PeerJoined):
            if self.state == "joined":  # while joining we drop peer traffic; WELCOME lists everyone
                self.named(msg.member, addr, now, True)
        elif isinstance(msg, Reject):
            if self.state == "joining":
                self.state = "failed"
                self.events.append(JoinFailed(f"the host refused: {msg.reason}"))
            else:
                self.events.append(Problem(f"the introducer says: {msg.reason}"))
        elif isinstance(msg, Check):  # someone claims our name: show the introducer we are alive
            if self.state == "joined":
                self._next_join = now
        elif isinstance(msg, PeerLeft):
            pass  # links decide for themselves: the mesh does not depend on the introducer
        else:
            self.drops.add("unexpected rendezvous")

    def join_soon(self, now: float) -> None:
        """Our NAT may have rebound (link.py): JOIN now, so the introducer sees where we are."""
        self._next_join = min(self._next_join, now)

    # ---- timers --------------------------------------------------------------

    def timers(self) -> list[float]:
        times = [self._next_join]
        if self.state == "joining":
            times.append(self._started + self.join_timeout)
        if self.wire.relayed() is not None and not self.relay_announced:
            times.append(self._started + RELAY_DELAY)
        return times

    def gave_up(self, now: float) -> bool:
        """``JOIN_TIMEOUT`` passed without a WELCOME: ``failed``, with what the user should check."""
        if self.state != "joining" or now < self._started + self.join_timeout:
            return False
        self.state = "failed"
        where = ", ".join(f"{a[0]}:{a[1]}" for a in self.token.addrs)
        self.events.append(JoinFailed(f"no answer from the host at {where} after {self.join_timeout:g} s "
                                      "(is it still hosting, and is this its current token?)"))
        return True

    def handle_timer(self, now: float) -> None:
        self.check_relay(now)
        if now < self._next_join:
            return
        for addr in ([self._introducer_addr] if self._introducer_addr else self.token.addrs):
            if self._register is not None:
                self.wire.send_raw(self._register.datagram(), addr)
            self.wire.send_rendezvous(Join(self.wire.join_secret, self.name, self.candidates, self._relays,
                                           self.wire.security.static_public), addr)
        if self.state == "joining":
            self._next_join = now + self._interval
            self._interval = min(self._interval * 2, JOIN_RETRY_MAX)
        else:
            self._next_join = now + REFRESH_INTERVAL

    def check_relay(self, now: float) -> None:
        """Announce the relayed address once it exists and direct holes had their chance."""
        problem = self.wire.relay_problem()
        if problem is not None:
            self.events.append(Problem(problem))
        relayed = self.wire.relayed()
        if (relayed is not None and not self.relay_announced and now >= self._started + RELAY_DELAY
                and self.state == "joined"):
            self.relay_announced = True
            self.candidates = (*self.candidates[:MAX_CANDIDATES - 1], relayed)
            self._relays = 1
            if self._introducer is not None:  # the host: its in-process introducer tells everyone
                self._introducer.update_local_member(self.candidates, self._relays)
            else:
                self._next_join = now  # tell the introducer, which tells everyone
