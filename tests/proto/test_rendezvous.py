"""The introducer machine (rendezvous.py) and the rendezvous message codec (rendezvous_messages.py).

The introducer is driven directly with datagrams and an explicit ``now``; what
it says is read back from ``datagrams_to_send`` (remote members) and from the
``local_sink`` (the host's own peer, which shares the introducer's socket).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from covim_p2p.proto.codec import DecodeError
from covim_p2p.proto.framing import KIND_PEER, KIND_RENDEZVOUS, Hello, encode_datagram, encode_frames
from covim_p2p.proto.seal import session_seal
from covim_p2p.proto.rendezvous import CLAIM_WAIT, MEMBER_TIMEOUT, Introducer
from covim_p2p.proto.rendezvous_messages import (MAX_MEMBERS, MAX_NAME, Check, Join, Leave, Member, PeerJoined,
                                                 PeerLeft, Reject, Welcome, decode_message_untrusted, encode_message)

SESSION = 0x5EC0_0001
SECRET = b"s" * 16
HOST_ID = 0xAAAA
SEAL = session_seal(SESSION, SECRET, os.urandom(16))  # what members seal with (the session token's key)


def sealed(kind: int, session: int, sender: int, body: bytes, secret: bytes = SECRET) -> bytes:
    seal = SEAL if secret == SECRET else session_seal(SESSION, secret, os.urandom(16))
    return seal.seal(kind, session, sender, body, Introducer.ID)
A, B, C = ("127.0.0.2", 5002), ("127.0.0.3", 5003), ("::1", 5004)


class Harness:
    def __init__(self, *, local: bool = True) -> None:
        self.sink: list = []
        self.intro = Introducer(SESSION, SECRET, local_sink=self.sink.append)
        self.opener = session_seal(SESSION, SECRET, os.urandom(16))  # members open the introducer's answers
        self.ids: dict = {}  # address -> the member id last heard from there (answers are sealed for it)
        if local:
            self.intro.add_local_member(HOST_ID, "host")

    def send(self, sender: int, msg, addr, now: float = 0.0, *, session: int = SESSION) -> None:
        self.ids[addr] = sender
        self.intro.receive_datagram(sealed(KIND_RENDEZVOUS, session, sender, encode_message(msg)), addr, now)

    def join(self, sender: int, name: str, addr, now: float = 0.0, secret: bytes = SECRET) -> None:
        self.send(sender, Join(secret, name), addr, now)

    def out(self, now: float = 0.0) -> list[tuple[object, tuple]]:
        """Decoded (message, destination) pairs the introducer wants to send."""
        result = []
        for data, addr in self.intro.datagrams_to_send(now):
            header, body = self.opener.open_untrusted(data, self.ids.get(addr, 0), now)
            assert header.kind == KIND_RENDEZVOUS
            assert header.session == SESSION
            assert header.sender == Introducer.ID
            result.append((decode_message_untrusted(body), addr))
        return result

    def take_sink(self) -> list:
        msgs, self.sink[:] = list(self.sink), []
        return msgs


def names(members) -> set[str]:
    return {m.name for m in members}


# ---- joining --------------------------------------------------------------------

def test_first_join_gets_welcome_listing_the_local_host():
    h = Harness()
    h.join(1, "alice", A)
    (msg, dest), = h.out()
    assert dest == A
    assert msg == Welcome(A, (Member(HOST_ID, "host", None),))
    assert h.take_sink() == [PeerJoined(Member(1, "alice", A))]


def test_join_introduces_everyone_to_everyone():
    h = Harness()
    h.join(1, "alice", A)
    h.out()
    h.take_sink()
    h.join(2, "bob", B, now=1.0)
    out = h.out()
    welcome = [(m, d) for m, d in out if isinstance(m, Welcome)]
    joined = [(m, d) for m, d in out if isinstance(m, PeerJoined)]
    assert len(welcome) == 1 and welcome[0][1] == B
    assert welcome[0][0].observed == B
    assert set(welcome[0][0].members) == {Member(HOST_ID, "host", None), Member(1, "alice", A)}
    assert joined == [(PeerJoined(Member(2, "bob", B)), A)]  # to the existing remote member
    assert h.take_sink() == [PeerJoined(Member(2, "bob", B))]  # and to the local one, addr None
    assert names(h.intro.members()) == {"host", "alice", "bob"}


def test_observed_address_is_where_the_packet_came_from():
    h = Harness()
    h.join(1, "alice", C)  # IPv6
    (msg, dest), = h.out()
    assert dest == C and msg.observed == C


def test_wrong_secret_is_rejected_and_not_added():
    h = Harness()
    h.join(1, "mallory", A, secret=b"x" * 16)
    (msg, dest), = h.out()
    assert dest == A
    assert isinstance(msg, Reject) and "wrong session secret" in msg.reason
    assert names(h.intro.members()) == {"host"}
    assert h.take_sink() == []


@pytest.mark.parametrize("secret", [b"", SECRET[:-1], SECRET + b"\x00"])
def test_secret_of_other_length_is_rejected(secret):
    h = Harness()
    h.join(1, "alice", A, secret=secret)
    (msg, _), = h.out()
    assert isinstance(msg, Reject)


def test_name_clash_with_a_live_member_is_rejected_naming_the_name():
    """The holder is asked (CHECK); it answers with a JOIN, so the claimant is refused."""
    h = Harness()
    h.join(1, "alice", A, now=1.0)
    h.out()
    h.take_sink()
    h.join(2, "alice", B, now=2.0)
    (msg, dest), = h.out()
    assert (msg, dest) == (Check(), A)
    h.join(1, "alice", A, now=2.01)  # alive
    h.out()
    h.join(2, "alice", B, now=2.25)  # the claimant's retry
    (msg, dest), = h.out()
    assert dest == B
    assert isinstance(msg, Reject)
    assert "'alice'" in msg.reason and "already taken" in msg.reason
    assert [m.peer_id for m in h.intro.members()] == [HOST_ID, 1]
    assert h.take_sink() == []


def test_a_stale_member_is_replaced_by_a_claimant_holding_the_token():
    """A crashed peer rejoins under its old name after CLAIM_WAIT, not after MEMBER_TIMEOUT."""
    h = Harness()
    h.join(1, "dave", A, now=1.0)
    h.out()
    h.take_sink()
    h.join(2, "dave", B, now=3.0)
    assert h.out() == [(Check(), A)]
    h.join(2, "dave", B, now=3.25)  # retries wait, and ask again (a CHECK may be lost)
    assert h.out() == [(Check(), A)]
    assert h.intro.get_timer() == 3.0 + CLAIM_WAIT
    h.intro.handle_timer(3.0 + CLAIM_WAIT)
    out = h.out()
    assert [type(m) for m, _ in out] == [Welcome] and out[0][1] == B
    assert h.take_sink() == [PeerLeft(1), PeerJoined(Member(2, "dave", B))]
    assert sorted(m.peer_id for m in h.intro.members()) == sorted([HOST_ID, 2])


def test_a_claim_resolves_on_the_claimants_retry_too():
    h = Harness()
    h.join(1, "dave", A, now=1.0)
    h.join(2, "dave", B, now=3.0)
    h.out()
    h.join(2, "dave", B, now=3.0 + CLAIM_WAIT)
    assert [type(m) for m, d in h.out() if d == B] == [Welcome]
    h.join(1, "dave", A, now=4.5)  # the stale one comes back: now it is the claimant
    assert h.out() == [(Check(), B)]


def test_the_hosts_own_name_is_refused_at_once():
    h = Harness()
    h.join(1, "host", A, now=1.0)
    (msg, dest), = h.out()
    assert isinstance(msg, Reject) and dest == A


def test_name_of_the_local_host_is_taken_too():
    h = Harness()
    h.join(1, " host ", A)  # names are stripped before comparing
    (msg, _), = h.out()
    assert isinstance(msg, Reject) and "'host'" in msg.reason


@pytest.mark.parametrize("name", ["", "   ", "x" * (MAX_NAME + 1)])
def test_bad_names_are_rejected(name):
    h = Harness()
    h.join(1, name, A)
    (msg, _), = h.out()
    assert isinstance(msg, Reject) and f"1 to {MAX_NAME} characters" in msg.reason


def test_repeated_join_is_idempotent():
    h = Harness()
    h.join(1, "alice", A, now=0.0)
    h.join(2, "bob", B, now=0.0)
    h.out()
    h.take_sink()
    for t in (1.0, 2.0, 3.0):
        h.join(1, "alice", A, now=t)
        out = h.out()
        assert [type(m) for m, _ in out] == [Welcome]  # a fresh WELCOME, no new PEER_JOINED
        assert out[0][1] == A
        assert set(out[0][0].members) == {Member(HOST_ID, "host", None), Member(2, "bob", B)}
    assert h.take_sink() == []
    assert len(h.intro.members()) == 3


def test_rejoin_from_a_new_address_is_announced_again():
    h = Harness()
    h.join(1, "alice", A)
    h.join(2, "bob", B)
    h.out()
    h.take_sink()
    moved = ("127.0.0.9", 6000)
    h.join(1, "alice", moved, now=1.0)
    out = h.out()
    assert (PeerJoined(Member(1, "alice", moved)), B) in out
    assert h.take_sink() == [PeerJoined(Member(1, "alice", moved))]


def test_the_same_peer_may_keep_its_own_name():
    h = Harness()
    h.join(1, "alice", A)
    h.out()
    h.join(1, "alice", A, now=1.0)
    assert [type(m) for m, _ in h.out()] == [Welcome]


def test_session_full():
    h = Harness()
    for i in range(1, MAX_MEMBERS):
        h.join(i, f"p{i}", ("127.0.1.1", 1000 + i))
    h.out()
    assert len(h.intro.members()) == MAX_MEMBERS
    h.join(999, "late", A)
    (msg, _), = h.out()
    assert isinstance(msg, Reject) and f"full ({MAX_MEMBERS} peers)" in msg.reason
    h.join(5, "p5", ("127.0.1.1", 1005))  # a known member's refresh still works
    assert [type(m) for m, _ in h.out()] == [Welcome]


# ---- leaving --------------------------------------------------------------------

def test_leave_tells_the_others():
    h = Harness()
    h.join(1, "alice", A)
    h.join(2, "bob", B)
    h.out()
    h.take_sink()
    h.send(1, Leave(), A, now=1.0)
    assert h.out() == [(PeerLeft(1), B)]
    assert h.take_sink() == [PeerLeft(1)]
    assert names(h.intro.members()) == {"host", "bob"}


def test_leave_from_another_address_is_ignored():
    h = Harness()
    h.join(1, "alice", A)
    h.out()
    h.take_sink()
    h.send(1, Leave(), B)  # someone else claiming alice's id
    assert h.out() == [] and h.take_sink() == []
    assert names(h.intro.members()) == {"host", "alice"}


def test_leave_of_unknown_peer_is_ignored():
    h = Harness()
    h.send(7, Leave(), A)
    assert h.out() == [] and h.take_sink() == []


def test_member_timeout_exact_time():
    h = Harness()
    assert h.intro.get_timer() is None  # the local member never times out
    h.join(1, "alice", A, now=0.0)
    h.join(2, "bob", B, now=3.0)
    h.out()
    h.take_sink()
    assert h.intro.get_timer() == MEMBER_TIMEOUT
    h.intro.handle_timer(MEMBER_TIMEOUT - 0.001)
    assert h.out() == []
    h.join(1, "alice", A, now=4.0)  # a refresh pushes the deadline
    h.out()
    assert h.intro.get_timer() == 3.0 + MEMBER_TIMEOUT
    h.intro.handle_timer(3.0 + MEMBER_TIMEOUT)
    assert h.out() == [(PeerLeft(2), A)]
    assert h.take_sink() == [PeerLeft(2)]
    assert h.intro.get_timer() == 4.0 + MEMBER_TIMEOUT
    h.intro.handle_timer(4.0 + MEMBER_TIMEOUT)
    assert h.take_sink() == [PeerLeft(1)]
    assert h.intro.get_timer() is None
    assert names(h.intro.members()) == {"host"}


def test_name_is_free_again_after_leave():
    h = Harness()
    h.join(1, "alice", A)
    h.send(1, Leave(), A)
    h.out()
    h.join(2, "alice", B)
    assert [type(m) for m, _ in h.out()] == [Welcome]


def test_remove_local_member():
    h = Harness()
    h.join(1, "alice", A)
    h.out()
    h.take_sink()
    h.intro.remove_local_member()
    assert h.out() == [(PeerLeft(HOST_ID), A)]
    assert h.take_sink() == []  # the local member is gone: nothing for it
    assert names(h.intro.members()) == {"alice"}
    h.intro.remove_local_member()  # twice is harmless
    assert h.out() == []


def test_introducer_without_local_member():
    h = Harness(local=False)
    h.join(1, "alice", A)
    (msg, _), = h.out()
    assert msg == Welcome(A, ())
    assert h.take_sink() == []


def test_no_sink_is_fine():
    intro = Introducer(SESSION, SECRET)
    intro.add_local_member(HOST_ID, "host")
    intro.receive_datagram(sealed(KIND_RENDEZVOUS, SESSION, 1, encode_message(Join(SECRET, "a"))), A, 0.0)
    assert len(intro.datagrams_to_send(0.0)) == 1


# ---- garbage ----------------------------------------------------------------------

def test_garbage_is_dropped_and_counted():
    h = Harness()
    bad = [
        b"",
        b"\x00\x01 stun-ish",
        b"CV" + b"\x00" * 30,  # bad version
        sealed(KIND_RENDEZVOUS, SESSION + 1, 1, encode_message(Join(SECRET, "a"))),  # other session
        encode_datagram(KIND_RENDEZVOUS, SESSION, 1, encode_message(Join(SECRET, "a"))),  # not sealed
        sealed(KIND_RENDEZVOUS, SESSION, 1, encode_message(Join(SECRET, "a")), secret=b"w" * 16),  # another key
        sealed(KIND_PEER, SESSION, 1, encode_frames([Hello("a", 1, True)])),  # peer traffic
        sealed(KIND_RENDEZVOUS, SESSION, 1, b""),  # empty body
        sealed(KIND_RENDEZVOUS, SESSION, 1, b"\x63"),  # unknown message
        sealed(KIND_RENDEZVOUS, SESSION, 1, encode_message(Join(SECRET, "a")) + b"!"),  # trailing
        sealed(KIND_RENDEZVOUS, SESSION, 1, encode_message(Welcome(A, ()))),  # not for the introducer
        sealed(KIND_RENDEZVOUS, SESSION, 1, encode_message(PeerLeft(3))),
        sealed(KIND_RENDEZVOUS, SESSION, Introducer.ID, encode_message(Join(SECRET, "z"))),  # spoofed id 0
        sealed(KIND_RENDEZVOUS, SESSION, HOST_ID, encode_message(Join(SECRET, "z"))),  # the local id
    ]
    for data in bad:
        h.intro.receive_datagram(data, A, 0.0)
    assert h.intro.dropped == len(bad)
    assert h.out() == [] and h.take_sink() == []
    assert names(h.intro.members()) == {"host"}


_FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(st.binary(max_size=80))
def test_fuzz_introducer_never_raises(body):
    h = Harness()
    h.intro.receive_datagram(sealed(KIND_RENDEZVOUS, SESSION, 5, body), A, 0.0)
    h.intro.receive_datagram(body, A, 0.0)
    out = h.out()
    assert h.intro.dropped + len(out) >= 1  # every datagram is either answered or counted


# ---- codec ------------------------------------------------------------------------

MESSAGES = [
    Join(SECRET, "alice"),
    Join(b"", "zoë 🦊"),
    Join(SECRET, "lan", (("10.0.0.5", 4000), ("192.168.1.9", 4000), ("::1", 1))),
    Welcome(A, ()),
    Welcome(C, (Member(1, "host", None), Member(2**64 - 1, "世界", ("10.1.2.3", 65535)), Member(3, "v6", C))),
    Reject("the name 'alice' is already taken"),
    PeerJoined(Member(7, "bob", B)),
    PeerJoined(Member(9, "office", B, (("10.0.0.5", 4000),))),
    PeerJoined(Member(8, "local", None)),
    PeerLeft(2**64 - 1),
    Leave(),
    Check(),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=repr)
def test_codec_round_trip(msg):
    assert decode_message_untrusted(encode_message(msg)) == msg


@pytest.mark.parametrize("msg", MESSAGES, ids=repr)
def test_codec_truncations_raise_decode_error(msg):
    raw = encode_message(msg)
    for cut in range(len(raw)):
        with pytest.raises(DecodeError):
            decode_message_untrusted(raw[:cut])


def test_codec_limits():
    from covim_p2p.proto.codec import Writer
    with pytest.raises(DecodeError, match=f"lists {MAX_MEMBERS + 1} members"):
        decode_message_untrusted(Writer().u8(2).u8(4).raw(b"\x7f\x00\x00\x01").u16(1).uint(MAX_MEMBERS + 1).bytes())
    with pytest.raises(DecodeError, match="exceeds limit 64"):
        decode_message_untrusted(encode_message(Join(b"k" * 65, "a")))
    with pytest.raises(DecodeError, match="unknown rendezvous message 0"):
        decode_message_untrusted(b"\x00")
    six = tuple((f"10.0.0.{i}", 1) for i in range(6))
    with pytest.raises(DecodeError, match="6 candidate addresses"):
        decode_message_untrusted(encode_message(Join(SECRET, "a", six)))


def test_local_addresses_from_join_reach_the_others():
    """Peers behind one NAT need each other's LAN addresses: the one the introducer
    saw is the NAT's, which most NATs do not route back inside."""
    h = Harness()
    lan = (("10.0.0.5", 4000),)
    h.join(1, "alice", A, 0.0)
    h.out()
    h.send(2, Join(SECRET, "bob", lan), B, 0.1)
    joined = [(m, to) for m, to in h.out() if isinstance(m, PeerJoined)]
    assert joined == [(PeerJoined(Member(2, "bob", B, lan)), A)]
    assert PeerJoined(Member(2, "bob", B, lan)) in h.take_sink()  # the host's own peer too
    h.join(3, "carol", C, 0.2)
    (welcome,) = [m for m, to in h.out() if isinstance(m, Welcome) and to == C]
    assert Member(2, "bob", B, lan) in welcome.members


@_FUZZ
@given(st.binary(max_size=120))
def test_fuzz_decode_raises_only_decode_error(raw):
    try:
        msg = decode_message_untrusted(raw)
    except DecodeError:
        return
    assert decode_message_untrusted(encode_message(msg)) == msg


@_FUZZ
@given(st.sampled_from(MESSAGES), st.data())
def test_fuzz_mutated_messages(msg, data):
    raw = bytearray(encode_message(msg))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] = data.draw(st.integers(0, 255))
    try:
        decode_message_untrusted(bytes(raw))
    except DecodeError:
        pass


@_FUZZ
@given(st.lists(st.builds(Member, st.integers(0, 2**64 - 1), st.text(max_size=MAX_NAME),
                          st.one_of(st.none(), st.tuples(st.ip_addresses().map(str), st.integers(0, 65535)))),
                max_size=MAX_MEMBERS),
       st.tuples(st.ip_addresses().map(str), st.integers(0, 65535)))
def test_fuzz_welcome_round_trip(members, observed):
    msg = Welcome(observed, tuple(members))
    assert decode_message_untrusted(encode_message(msg)) == msg
