"""Per-pair traffic keys: one Noise XXpsk3 handshake per link generation, then a key per direction.

Why: with one session-wide key (protocol v3) a leaked token opened every
recorded session, any member could speak as any other, and a datagram for
one peer opened at every peer.  Here every pair of peers runs
``Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s`` (noise.py) and gets its own two
keys, so traffic is forward secret, bound to its receiver, and attributed
to a static key the introducer announced and the handshake proved.

Rules of the machine (one per node; ``now`` and randomness come in):

* **Roles.** The peer with the lower id initiates.  The other one, when it
  needs keys, sends POKE, which makes the initiator start (or repeat) its
  first message.  Both sides' probes thus still open NAT holes.
* **Introduced peers only.**  A handshake message is looked at only if the
  introducer announced the sender's static key (``expect``), and the
  static key the handshake proves must be that one ("wrong identity"
  otherwise).  Before any Diffie-Hellman the message must open under the
  handshake seal (keys.py: only token holders, not the introducer, have
  it; receiver-bound and replay-checked, seal.py), and responder
  handshakes are rate-limited (``HANDSHAKE_RATE``/s).
* **Messages.**  ``MSG1 gen | e``, ``MSG2 gen | e, ee, s, es, payload``,
  ``MSG3 gen | s, se, psk, payload``; the prologue binds the session, both
  peer ids and the generation.  A repeated message gets the same answer,
  without new DH.
* **Payload: who writes through this static key** (protocol v5).
  ``author:32 | cert:blob | link_proof:64``: our author public key
  (authorship.py), its writer certificate (keys.py; empty for a read-only
  guest) and the author key's signature over the session and our static
  key (``link_message``).  The proof must verify against the static key the
  handshake proved ("wrong identity" otherwise), so a member cannot show
  another author's key and certificate: it lacks that author's private
  key.  The client id is derived from the author key (``client_id_of``),
  never claimed; ``writer`` means the certificate is valid.
* **Generations.**  Each handshake has a generation, and link epochs map
  onto them: keys serve the link epoch they were made for (``tag``); a
  rebuilt link (new epoch) asks for a new handshake.  The initiator also
  rekeys every ``REKEY_AFTER`` seconds or ``REKEY_AFTER_MESSAGES``
  datagrams; keys are refused after ``REJECT_AFTER``.  During a rekey the
  initiator keeps sending under the old keys until a datagram under the new
  ones arrives (its third message may be lost); the old receive key stays
  for ``PREV_GRACE``.
* **Transport.**  ``gen:u32 | n:u64 | ChaCha20-Poly1305(k, n, body, aad =
  header | gen | n)``; the receiver keeps a 1024-wide replay window per key.
  The AEAD objects are made once per key.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from .codec import DecodeError, Reader, Refused, Writer
from .drops import Drops
from .framing import HEADER_LEN, KIND_HANDSHAKE, KIND_PEER, Addr, Header, decode_datagram_untrusted, encode_datagram
from . import authorship
from .authorship import AuthorKey, client_id_of
from .keys import CERT_LEN, SessionKeys
from .noise import CipherState, HandshakeState, NoiseError, public_key
from .seal import INSTANCE_LEN, DatagramSeal, SealError

POKE, MSG1, MSG2, MSG3 = 0, 1, 2, 3
REKEY_AFTER = 120.0
REKEY_AFTER_MESSAGES = 2**60
REJECT_AFTER = 180.0
PREV_GRACE = 15.0
RESEND_AFTER = 0.25  # while keys still work, a pending handshake message is repeated at most this often
RESTART_AFTER = 1.0  # a POKE restarts a handshake at most this often per peer
HANDSHAKE_RATE = 20.0  # responder handshakes (3 X25519 each) per second
HANDSHAKE_BURST = 64.0
MAX_PAIRS = 256
WINDOW = 1024
TRANSPORT_OVERHEAD = 4 + 8 + 16
PATTERN = "XXpsk3"
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")
_NONCE = struct.Struct("<Q")


@dataclass
class Keys:
    """One generation's keys with one peer, and what the handshake proved about it."""
    gen: int
    send: CipherState
    recv: CipherState
    created: float
    remote_static: bytes
    writer: bool
    client_id: int  # derived from ``author``, never claimed
    author: bytes  # its author public key (authorship.py), proven to speak through remote_static
    cert: bytes  # that key's writer certificate as shown (b"" for a guest): the ledger registers it
    confirmed: bool
    tag: int | None = None  # our link epoch these keys serve
    send_n: int = 0
    top: int = -1
    bits: int = 0


@dataclass
class _Pair:
    peer_id: int
    static: bytes  # what the introducer announced
    initiator: bool
    hs: HandshakeState | None = None
    hs_gen: int = 0
    hs_tag: int | None = None
    hs_first: bytes = b""  # the message that started a responder handshake (a repeat gets `last` again)
    last: bytes = b""  # our latest handshake datagram body, for repeats
    sent_at: float = -1e9
    started_at: float = -1e9
    next_gen: int = 1
    cur: Keys | None = None
    prev: Keys | None = None
    prev_until: float = 0.0
    extra: dict = field(default_factory=dict)


def _payload(author: bytes, cert: bytes, proof: bytes) -> bytes:
    return Writer().raw(author).blob(cert).raw(proof).bytes()


def decode_payload_untrusted(data: bytes) -> tuple[bytes, bytes, bytes]:
    """(author public key, certificate, link proof); sizes only, no signature checked."""
    r = Reader(data)
    author, cert, proof = r.raw(authorship.PUBLIC_LEN), r.blob(CERT_LEN), r.raw(authorship.SIG_LEN)
    if not r.at_end():
        raise DecodeError("trailing bytes in a handshake payload")
    return author, cert, proof


def decode_handshake_untrusted(body: bytes) -> tuple[int, int, bytes]:
    """(step, generation, Noise message) of a handshake datagram's opened body."""
    if len(body) < 5:
        raise DecodeError("handshake body too short")
    step = body[0]
    if step > MSG3:
        raise DecodeError(f"unknown handshake step {step}")
    return step, _U32.unpack_from(body, 1)[0], body[5:]


class PairSecurity:
    def __init__(self, keys: SessionKeys, peer_id: int, static_private: bytes, author: AuthorKey,
                 random_bytes: Callable[[int], bytes], drops: Drops) -> None:
        self.keys = keys
        self.session = keys.session
        self.peer_id = peer_id
        self._static = static_private
        self.static_public = public_key(static_private)
        self.author = author
        self.client_id = author.client_id
        self._random = random_bytes
        self.drops = drops
        self._payload = _payload(author.public, keys.writer_cert(author.public),
                                 author.link_proof(keys.session, self.static_public))
        self._seal = DatagramSeal(keys.handshake, b"handshake" + _U64.pack(keys.session), random_bytes(INSTANCE_LEN))
        self.pairs: dict[int, _Pair] = {}
        self.ready: list[int] = []  # peers whose new keys just came: the node says HELLO at once
        self._out: list[tuple[bytes, Addr]] = []
        self._tokens = HANDSHAKE_BURST
        self._last: float | None = None

    # ---- the introducer's word ----------------------------------------------------------

    def expect(self, peer_id: int, static: bytes) -> None:
        """The introducer says ``peer_id`` holds ``static``: only a handshake proving it counts."""
        if len(static) != 32 or peer_id == self.peer_id:
            return
        pair = self.pairs.get(peer_id)
        if pair is not None and pair.static == static:
            return
        if pair is None and len(self.pairs) >= MAX_PAIRS:
            self.drops.add("too many peers")
            return
        self.pairs[peer_id] = _Pair(peer_id, static, self.peer_id < peer_id)  # a new key: forget the old keys

    def forget(self, peer_id: int) -> None:
        """The peer is gone for good (the node no longer probes it): its keys and state go, so a
        long session with many comings and goings never fills ``MAX_PAIRS``.  If the introducer
        names it again, ``expect`` starts afresh."""
        self.pairs.pop(peer_id, None)

    def proven(self, peer_id: int) -> Keys | None:
        pair = self.pairs.get(peer_id)
        return pair.cur if pair is not None else None

    # ---- handshake datagrams -----------------------------------------------------------

    def _send_hs(self, pair: _Pair, body: bytes, addr: Addr, now: float) -> None:
        pair.last, pair.sent_at = body, now
        self._out.append((self._seal.seal(KIND_HANDSHAKE, self.session, self.peer_id, body, pair.peer_id), addr))

    def _prologue(self, initiator: int, responder: int, gen: int) -> bytes:
        return b"covim-p2p v4" + _U64.pack(self.session) + _U64.pack(initiator) + _U64.pack(responder) + _U32.pack(gen)

    def _start(self, pair: _Pair, tag: int | None, addr: Addr, now: float) -> None:
        gen = pair.next_gen
        pair.next_gen += 1
        pair.hs = HandshakeState(PATTERN, True, prologue=self._prologue(self.peer_id, pair.peer_id, gen),
                                 static=self._static, ephemeral=self._random(32), psk=self.keys.psk)
        pair.hs_gen, pair.hs_tag, pair.started_at = gen, tag, now
        self._send_hs(pair, bytes([MSG1]) + _U32.pack(gen) + pair.hs.write_message(), addr, now)

    def _allow_responder(self, now: float) -> bool:
        if self._last is not None:
            self._tokens = min(HANDSHAKE_BURST, self._tokens + max(0.0, now - self._last) * HANDSHAKE_RATE)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def receive_handshake(self, data: bytes, addr: Addr, now: float) -> None:
        """A KIND_HANDSHAKE datagram; raises DecodeError (with a reason) when it is refused."""
        header, _ = decode_datagram_untrusted(data)
        pair = self.pairs.get(header.sender)
        if pair is None:
            raise Refused("unintroduced", "handshake from a peer the introducer never named")
        _, body = self._seal.open_untrusted(data, self.peer_id, now)
        step, gen, message = decode_handshake_untrusted(body)
        try:
            if step == POKE:
                if not pair.initiator:
                    raise Refused("wrong role")
                if pair.hs is not None and now - pair.started_at < RESTART_AFTER * 4:
                    self._send_hs(pair, pair.last, addr, now)
                elif now - pair.started_at >= RESTART_AFTER:
                    self._start(pair, pair.cur.tag if pair.cur is not None else None, addr, now)
            elif step == MSG1:
                self._on_msg1(pair, gen, body, message, addr, now)
            elif step == MSG2:
                self._on_msg2(pair, gen, message, addr, now)
            else:
                self._on_msg3(pair, gen, message, now)
        except NoiseError as exc:
            if step != MSG1:  # a broken handshake is abandoned; the next probe starts afresh
                pair.hs = None
            raise Refused("bad handshake", str(exc)) from None

    def _on_msg1(self, pair: _Pair, gen: int, body: bytes, message: bytes, addr: Addr, now: float) -> None:
        if pair.initiator:
            raise Refused("wrong role")
        if body == pair.hs_first and pair.last:  # a repeat: the same answer, no new DH
            self._send_hs(pair, pair.last, addr, now)
            return
        if pair.cur is not None and gen <= pair.cur.gen or pair.hs is not None and gen < pair.hs_gen:
            raise Refused("stale handshake")
        if not self._allow_responder(now):
            raise Refused("rate")
        hs = HandshakeState(PATTERN, False, prologue=self._prologue(pair.peer_id, self.peer_id, gen),
                            static=self._static, ephemeral=self._random(32), psk=self.keys.psk)
        hs.read_message(message)
        pair.hs, pair.hs_gen, pair.hs_first = hs, gen, body
        self._send_hs(pair, bytes([MSG2]) + _U32.pack(gen) + hs.write_message(self._payload), addr, now)

    def _finish(self, pair: _Pair, hs: HandshakeState, payload: bytes, gen: int, now: float) -> Keys:
        if hs.rs != pair.static:
            raise Refused("wrong identity", "the handshake proved another static key than the introducer's")
        author, cert, proof = decode_payload_untrusted(payload)
        if not authorship.verify(author, proof, authorship.link_message(self.session, hs.rs)):
            raise Refused("wrong identity", "the author key did not sign for the static key the handshake proved")
        a, b = hs.split()
        send, recv = (a, b) if pair.initiator else (b, a)
        keys = Keys(gen, send, recv, now, hs.rs, self.keys.is_writer(author, cert), client_id_of(author), author,
                    cert, confirmed=not pair.initiator, tag=pair.hs_tag if pair.initiator else None)
        if pair.cur is not None:
            pair.prev, pair.prev_until = pair.cur, now + PREV_GRACE
        pair.cur, pair.hs = keys, None
        self.ready.append(pair.peer_id)
        return keys

    def _on_msg2(self, pair: _Pair, gen: int, message: bytes, addr: Addr, now: float) -> None:
        hs = pair.hs
        if not pair.initiator or hs is None or gen != pair.hs_gen:
            if pair.cur is not None and gen == pair.cur.gen and pair.last[:1] == bytes([MSG3]):
                self._send_hs(pair, pair.last, addr, now)  # our third message was lost: again
                return
            raise Refused("stale handshake")
        payload = hs.read_message(message)
        third = bytes([MSG3]) + _U32.pack(gen) + hs.write_message(self._payload)
        self._finish(pair, hs, payload, gen, now)
        self._send_hs(pair, third, addr, now)

    def _on_msg3(self, pair: _Pair, gen: int, message: bytes, now: float) -> None:
        hs = pair.hs
        if pair.initiator or hs is None or gen != pair.hs_gen:
            if pair.cur is not None and gen == pair.cur.gen:
                return  # a repeat of what completed our keys
            raise Refused("stale handshake")
        self._finish(pair, hs, hs.read_message(message), gen, now)
        pair.last, pair.hs_first = b"", b""

    # ---- transport -------------------------------------------------------------------

    def _usable(self, keys: Keys | None, now: float) -> bool:
        return keys is not None and now - keys.created < REJECT_AFTER and keys.send_n < REKEY_AFTER_MESSAGES * 2

    def seal(self, peer_id: int, body: bytes, tag: int | None, addr: Addr, now: float) -> bytes | None:
        """A transport datagram for ``peer_id``, or None: no keys for this link yet, and the
        handshake message (or POKE) that gets them went to ``addr`` instead.  ``tag`` None:
        whatever keys there are, and no handshake if there are none (a BYE to a stranger)."""
        pair = self.pairs.get(peer_id)
        if pair is None:
            return None
        cur = pair.cur
        if tag is None:
            if not self._usable(cur, now):
                return None
            tag = cur.tag
        if not self._usable(cur, now) or (cur.tag is not None and cur.tag != tag):
            if not pair.initiator:
                self._send_hs(pair, bytes([POKE]) + _U32.pack(0), addr, now)
            elif pair.hs is not None and pair.hs_tag == tag and pair.last[:1] == bytes([MSG1]):
                self._send_hs(pair, pair.last, addr, now)  # our probe: every call, the node paces them
            else:
                self._start(pair, tag, addr, now)
            return None
        assert cur is not None
        if cur.tag is None:
            cur.tag = tag
        if pair.initiator:
            if pair.hs is None and (now - cur.created >= REKEY_AFTER or cur.send_n >= REKEY_AFTER_MESSAGES):
                self._start(pair, tag, addr, now)
            elif pair.last and now - pair.sent_at >= RESEND_AFTER and (pair.hs is not None or not cur.confirmed):
                self._send_hs(pair, pair.last, addr, now)
        elif now - cur.created >= REKEY_AFTER + 30.0 and now - pair.sent_at >= RESTART_AFTER:
            self._send_hs(pair, bytes([POKE]) + _U32.pack(0), addr, now)  # the initiator should rekey
        keys = cur
        if not cur.confirmed and self._usable(pair.prev, now):
            keys = pair.prev  # until the peer shows it has the new keys
        assert keys is not None
        n = keys.send_n
        keys.send_n += 1
        head = encode_datagram(KIND_PEER, self.session, self.peer_id, _U32.pack(keys.gen) + _U64.pack(n))
        return head + keys.send.encrypt_at(n, head, body)

    def open(self, data: bytes, now: float) -> tuple[Header, bytes, Keys]:
        header, rest = decode_datagram_untrusted(data)
        if len(rest) < TRANSPORT_OVERHEAD:
            raise Refused("garbled", "transport datagram too short")
        pair = self.pairs.get(header.sender)
        if pair is None:
            raise Refused("no keys")
        gen, n = _U32.unpack_from(rest)[0], _U64.unpack_from(rest, 4)[0]
        keys = pair.cur
        if keys is None or keys.gen != gen:
            keys = pair.prev if pair.prev is not None and pair.prev.gen == gen and now < pair.prev_until else None
        if keys is None or now - keys.created >= REJECT_AFTER:
            raise Refused("no keys", "no keys of that generation")
        if n + WINDOW <= keys.top or (n <= keys.top and keys.bits >> (keys.top - n) & 1):
            raise Refused("replayed")
        head = data[:HEADER_LEN + 12]
        try:
            body = keys.recv.decrypt_at(n, head, data[HEADER_LEN + 12:])
        except NoiseError:
            raise Refused("forged", "does not open with this pair's key (or was sealed for another peer)") from None
        if n > keys.top:
            keys.bits = ((keys.bits << (n - keys.top)) | 1) & ((1 << WINDOW) - 1) if keys.top >= 0 else 1
            keys.top = n
        else:
            keys.bits |= 1 << (keys.top - n)
        if not keys.confirmed:
            keys.confirmed = True
            pair.last = b""
        return header, body, keys

    def take(self) -> list[tuple[bytes, Addr]]:
        out, self._out = self._out, []
        return out


__all__ = ["PairSecurity", "Keys", "Refused", "SealError", "decode_handshake_untrusted", "decode_payload_untrusted"]
