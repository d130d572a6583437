"""The introducer machine: who is in the session, told to every member (messages: rendezvous_messages.py).

The introducer only introduces: it keeps the list of members (name, observed
address, the candidate addresses they announced), tells every newcomer about
every member and every member about the newcomer.  Edits never pass through
it, so when the host leaves the mesh goes on.  Candidates are where a member
can be reached besides the address the introducer saw: its LAN addresses
(most NATs do not hairpin, so peers behind one NAT need those) and its TURN
relay address (for peers no hole punch reaches).

Rules of the introducer:

* JOIN with the right introduction credential and a free name -> WELCOME (the member
  list, the address we saw the joiner at) and PEER_JOINED to the others.
  JOIN is idempotent: members repeat it every few seconds as a keepalive and
  to repair lost notifications; a repeat gets a fresh WELCOME.
* A name held by another member is a *claim*: a peer that crashed rejoins
  under its old name before its old entry times out.  The joiner has proved
  it holds the token (the secret, inside a sealed datagram), so the holder is
  sent CHECK; a live holder answers with a JOIN at once.  If it has not within
  ``CLAIM_WAIT``, the holder is stale: it is removed (PEER_LEFT) and the
  claimant welcomed.  If it has, the claimant gets REJECT naming the name.
  The host's own name is never claimable (the host is alive: it is us).
  A wrong secret -> REJECT (the same session id with a wrong secret is
  someone's mistake).
* LEAVE, or no JOIN for ``MEMBER_TIMEOUT`` seconds -> PEER_LEFT to the others.
* ``invite(peer_token)`` (Enhanced CoVim's ``:CoVim add``) sends INVITE with
  the session token to a waiting peer's addresses, with backoff, until it
  answers INVITE_ACK with the token's nonce or ``INVITE_TIMEOUT`` passes; the
  outcome is queued in ``events``.
* Security v4: the introducer seals with a seal instance of its own, each
  invitation with a fresh one (seal.py), so no two of them share a key; it
  answers a member sealed for that member only.  At most ``MAX_INVITES``
  invitations are pending.  Every refusal is counted in ``drops`` by reason.
* One member may be *local* (the host's own peer, sharing the introducer's
  socket): it gets its notifications through ``local_sink`` and is announced
  with ``at_introducer`` so others use the address they reached us at.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from typing import Callable

from .codec import DecodeError
from .framing import KIND_RENDEZVOUS, Addr, Header, decode_datagram_untrusted
from .drops import Drops
from .rendezvous_messages import MAX_CANDIDATES, MAX_MEMBERS, MAX_NAME, Check, Invite, InviteAck, Join, Leave, Member, \
    Message, PeerJoined, PeerLeft, Reject, Welcome, decode_message_untrusted, encode_message
from .seal import INSTANCE_LEN, invite_seal, session_seal

CLAIM_WAIT = 1.0  # seconds a member whose name is claimed has to show it is alive
INVITE_TIMEOUT = 120.0  # people pass tokens through chat: the seed's flow waits for the other side's paste
MEMBER_TIMEOUT = 20.0
MAX_INVITES = 16


@dataclass(frozen=True, slots=True)
class InviteAnswered:
    addr: Addr


@dataclass(frozen=True, slots=True)
class InviteExpired:
    addrs: tuple[Addr, ...]


@dataclass
class _Entry:
    member: Member
    last_seen: float


@dataclass
class _Claim:
    """A JOIN for a name another member holds, waiting for that member to show it is alive."""
    sender: int
    join: Join
    addr: Addr
    holder: int
    asked: float


class Introducer:
    """Pure introducer machine (see module rules)."""

    ID = 0  # sender id of the introducer's own datagrams

    def __init__(self, session: int, credential: bytes, *,
                 local_sink: Callable[[Message], None] | None = None,
                 random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self.session = session
        # Only the introduction credential (keys.py, ``token.keys().introduction``): it opens
        # rendezvous traffic and nothing else; peer traffic is keyed by per-pair handshakes.
        self._secret = credential
        self._random = random_bytes
        self.seal = session_seal(session, credential, random_bytes(INSTANCE_LEN))
        self._members: dict[int, _Entry] = {}
        self._claims: dict[str, _Claim] = {}  # name -> a JOIN for it waiting on its holder (CHECK)
        self._local: int | None = None
        self._local_sink = local_sink
        self._out: list[tuple[bytes, Addr]] = []
        self.drops = Drops()
        # nonce -> [addresses, session token text, next send, interval, deadline, seal]
        self._invites: dict[bytes, list] = {}
        self.events: list[InviteAnswered | InviteExpired] = []

    @property
    def dropped(self) -> int:
        return self.drops.total

    def invite(self, addrs: tuple[Addr, ...], nonce: bytes, session_token: str, now: float) -> None:
        """Every invitation gets a seal of its own (fresh random instance): the same peer token
        invited twice, or by two hosts, never reuses a key."""
        if nonce not in self._invites and len(self._invites) >= MAX_INVITES:
            self.events.append(InviteExpired(addrs))
            return
        seal = invite_seal(nonce, self._random(INSTANCE_LEN))
        self._invites[nonce] = [addrs, session_token, now, 0.1, now + INVITE_TIMEOUT, seal]

    def _open(self, data: bytes, now: float) -> tuple[Header, bytes]:
        """Members seal with the session's key; a waiting peer's INVITE_ACK with its invitation's."""
        try:
            return self.seal.open_untrusted(data, self.ID, now)
        except DecodeError as exc:
            for invite in self._invites.values():
                try:
                    return invite[5].open_untrusted(data, self.ID, now)
                except DecodeError:
                    pass
            raise exc

    def add_local_member(self, peer_id: int, name: str, candidates: tuple[Addr, ...] = (),
                         static: bytes = b"") -> None:
        self._local = peer_id
        self._members[peer_id] = _Entry(Member(peer_id, name, None, candidates[:MAX_CANDIDATES], static=static),
                                        float("inf"))

    def update_local_member(self, candidates: tuple[Addr, ...], relays: int) -> None:
        """The host's peer has new candidates (its relayed address): tell every member."""
        entry = self._members.get(self._local) if self._local is not None else None
        if entry is None:
            return
        entry.member = Member(entry.member.peer_id, entry.member.name, None, candidates[:MAX_CANDIDATES], relays,
                              entry.member.static)
        for other in list(self._members.values()):
            if other.member.peer_id != self._local:
                self._send(PeerJoined(entry.member), other.member)

    def remove_local_member(self) -> None:
        if self._local is not None:
            self._remove(self._local)
            self._local = None

    def members(self) -> list[Member]:
        return [e.member for e in self._members.values()]

    def _send(self, msg: Message, member: Member) -> None:
        if member.peer_id == self._local:
            if self._local_sink is not None:
                self._local_sink(msg)
        elif member.addr is not None:
            self._reply(msg, member.addr, member.peer_id)

    def _reply(self, msg: Message, addr: Addr, receiver: int) -> None:
        self._out.append((self.seal.seal(KIND_RENDEZVOUS, self.session, self.ID, encode_message(msg), receiver),
                          addr))

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        try:
            header, _ = decode_datagram_untrusted(data)  # cheap checks before any crypto
            if header.kind != KIND_RENDEZVOUS:
                raise DecodeError("not for the introducer")
            if header.session != self.session:  # a waiting peer's INVITE_ACK echoes our session id
                raise DecodeError("other session")
            header, body = self._open(data, now)
            msg = decode_message_untrusted(body)
        except DecodeError as exc:
            self.drops.add_error(exc)
            return
        sender = header.sender
        if isinstance(msg, Join):
            self._on_join(sender, msg, addr, now)
        elif isinstance(msg, Leave):
            entry = self._members.get(sender)
            if entry is not None and entry.member.addr == addr:
                self._remove(sender)
        elif isinstance(msg, InviteAck):
            if self._invites.pop(msg.nonce, None) is not None:
                self.events.append(InviteAnswered(addr))
        else:
            self.drops.add("unexpected rendezvous")

    def _on_join(self, sender: int, msg: Join, addr: Addr, now: float) -> None:
        if not hmac.compare_digest(msg.secret, self._secret):
            self._reply(Reject("wrong session secret: ask the host for a fresh token"), addr, sender)
            return
        name = msg.name.strip()
        if not name or len(name) > MAX_NAME:
            self._reply(Reject(f"a name must be 1 to {MAX_NAME} characters"), addr, sender)
            return
        if sender == self.ID or sender == self._local:
            self.drops.add("impersonation")
            return
        holder = next((e for e in self._members.values() if e.member.name == name and e.member.peer_id != sender),
                      None)
        if holder is not None:
            self._on_claim(name, sender, msg, addr, holder, now)
            return
        if name in self._claims and self._claims[name].sender == sender:
            del self._claims[name]  # the holder left meanwhile
        known = self._members.get(sender)
        if known is None and len(self._members) >= MAX_MEMBERS:
            self._reply(Reject(f"the session is full ({MAX_MEMBERS} peers)"), addr, sender)
            return
        member = Member(sender, name, addr, msg.candidates, msg.relays, msg.static)
        self._members[sender] = _Entry(member, now)
        for nonce, invite in list(self._invites.items()):  # the invited peer joined by itself (the seed's order)
            if addr in invite[0]:
                del self._invites[nonce]
                self.events.append(InviteAnswered(addr))
        others = tuple(e.member for pid, e in self._members.items() if pid != sender)
        self._reply(Welcome(addr, others), addr, sender)
        if known is None or known.member != member:
            for entry in list(self._members.values()):
                if entry.member.peer_id != sender:
                    self._send(PeerJoined(member), entry.member)

    def _on_claim(self, name: str, sender: int, msg: Join, addr: Addr, holder: _Entry, now: float) -> None:
        claim = self._claims.get(name)
        if holder.member.peer_id == self._local:
            self._reply(Reject(f"the name '{name}' is already taken in this session: choose another"), addr, sender)
        elif claim is None or claim.sender != sender:  # ask the holder; the claimant's retries wait
            self._claims[name] = _Claim(sender, msg, addr, holder.member.peer_id, now)
            self._send(Check(), holder.member)
        else:
            claim.join, claim.addr = msg, addr
            self._settle_claim(name, now)
            if name in self._claims:  # still waiting: ask again with each retry, a CHECK may be lost
                self._send(Check(), holder.member)

    def _settle_claim(self, name: str, now: float) -> None:
        claim = self._claims[name]
        holder = self._members.get(claim.holder)
        if holder is not None and holder.last_seen > claim.asked:
            del self._claims[name]  # it answered: it is alive, and the name is its own
            self._reply(Reject(f"the name '{name}' is already taken in this session: choose another"),
                        claim.addr, claim.sender)
        elif holder is None or now >= claim.asked + CLAIM_WAIT:  # stale: the claimant takes its place
            del self._claims[name]
            self._remove(claim.holder)
            self._on_join(claim.sender, claim.join, claim.addr, now)

    def _remove(self, peer_id: int) -> None:
        if self._members.pop(peer_id, None) is not None:
            for entry in list(self._members.values()):
                self._send(PeerLeft(peer_id), entry.member)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        deadlines = [e.last_seen + MEMBER_TIMEOUT for e in self._members.values() if e.member.peer_id != self._local]
        deadlines += [min(inv[2], inv[4]) for inv in self._invites.values()]
        deadlines += [claim.asked + CLAIM_WAIT for claim in self._claims.values()]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        for nonce, inv in list(self._invites.items()):
            addrs, token_text, next_send, interval, deadline, seal = inv
            if now >= deadline:
                del self._invites[nonce]
                self.events.append(InviteExpired(addrs))
            elif now >= next_send:
                for addr in addrs:
                    sealed = seal.seal(KIND_RENDEZVOUS, self.session, self.ID, encode_message(Invite(token_text, nonce)),
                                       self.ID)  # the waiting peer has no id we know: receiver 0
                    self._out.append((sealed, addr))
                inv[2], inv[3] = now + interval, min(interval * 2, 2.0)
        for peer_id, entry in list(self._members.items()):
            if peer_id != self._local and entry.last_seen + MEMBER_TIMEOUT <= now:
                self._remove(peer_id)
        for name, claim in list(self._claims.items()):
            if now >= claim.asked + CLAIM_WAIT:
                self._settle_claim(name, now)
