"""Per-pair keys (handshake.py) between two machines, driven by hand; and every new parser fuzzed."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from covim_p2p.proto.attribution import awareness_clients_untrusted
from covim_p2p.proto.authorship import AuthorKey, client_id_of
from covim_p2p.proto.codec import DecodeError
from covim_p2p.proto.drops import Drops
from covim_p2p.proto.framing import VERSION
from covim_p2p.proto.handshake import (REJECT_AFTER, REKEY_AFTER, PairSecurity, _payload, decode_handshake_untrusted,
                                       decode_payload_untrusted)
from covim_p2p.proto.token import BadToken, SessionToken

TOKEN = SessionToken((("127.0.0.1", 7000),), 0x5EED, bytes(range(16)))
A_ADDR, B_ADDR = ("127.0.0.2", 1), ("127.0.0.3", 2)
fuzz = settings(max_examples=300, deadline=None, derandomize=True, database=None)


AUTHOR_A, AUTHOR_B, AUTHOR_C = (AuthorKey(bytes([i]) * 32) for i in (1, 2, 3))


def pair(token_b: SessionToken = TOKEN, introduce: bool = True):
    a = PairSecurity(TOKEN.keys(), 1, os.urandom(32), AUTHOR_A, os.urandom, Drops())
    b = PairSecurity(token_b.keys(), 2, os.urandom(32), AUTHOR_B, os.urandom, Drops())
    if introduce:
        a.expect(2, b.static_public)
        b.expect(1, a.static_public)
    return a, b


def deliver(src: PairSecurity, dst: PairSecurity, src_addr, now: float) -> int:
    n = 0
    for data, _ in src.take():
        dst.receive_handshake(data, src_addr, now)
        n += 1
    return n


def handshake(a: PairSecurity, b: PairSecurity, now: float = 0.0, tag: int = 1) -> None:
    assert a.seal(2, b"x", tag, B_ADDR, now) is None  # no keys yet: MSG1 goes instead
    deliver(a, b, A_ADDR, now)  # MSG1 -> MSG2
    deliver(b, a, B_ADDR, now)  # MSG2 -> MSG3
    deliver(a, b, A_ADDR, now)  # MSG3


def test_keys_per_direction_and_what_the_handshake_proves():
    a, b = pair()
    handshake(a, b)
    assert a.ready == [2] and b.ready == [1]
    for sender, receiver, peer in ((a, b, 2), (b, a, 1)):
        data = sender.seal(peer, b"typed", 1, B_ADDR, 0.1)
        header, body, keys = receiver.open(data, 0.1)
        assert body == b"typed" and b"typed" not in data
    assert b.proven(1).client_id == AUTHOR_A.client_id and b.proven(1).writer
    assert a.proven(2).client_id == AUTHOR_B.client_id and a.proven(2).writer
    assert b.proven(1).author == AUTHOR_A.public and b.proven(1).cert == TOKEN.keys().writer_cert(AUTHOR_A.public)
    assert a.proven(2).send.k != a.proven(2).recv.k


def test_the_higher_id_pokes_and_the_lower_id_starts():
    a, b = pair()
    assert b.seal(1, b"x", 1, A_ADDR, 0.0) is None
    (poke, _), = b.take()
    a.receive_handshake(poke, B_ADDR, 0.0)
    deliver(a, b, A_ADDR, 0.0)
    deliver(b, a, B_ADDR, 0.0)
    deliver(a, b, A_ADDR, 0.0)
    assert a.proven(2) is not None and b.proven(1) is not None


def test_a_replay_and_a_datagram_for_someone_else_do_not_open():
    a, b = pair()
    handshake(a, b)
    c = PairSecurity(TOKEN.keys(), 3, os.urandom(32), AUTHOR_C, os.urandom, Drops())
    c.expect(1, a.static_public)
    a.expect(3, c.static_public)
    data = a.seal(2, b"for b", 1, B_ADDR, 0.1)
    b.open(data, 0.1)
    with pytest.raises(DecodeError, match="replayed"):
        b.open(data, 0.1)
    with pytest.raises(DecodeError) as info:
        c.open(data, 0.1)
    assert info.value.reason == "no keys"


def test_an_unintroduced_peer_gets_no_answer_and_costs_no_diffie_hellman():
    a, b = pair(introduce=False)
    a.expect(2, b.static_public)
    a.seal(2, b"x", 1, B_ADDR, 0.0)
    with pytest.raises(DecodeError) as info:
        deliver(a, b, A_ADDR, 0.0)
    assert info.value.reason == "unintroduced" and b.take() == []


def test_a_static_key_other_than_the_introducers_is_refused():
    a, b = pair()
    b.expect(1, os.urandom(32))  # the introducer named another key for peer 1
    a.seal(2, b"x", 1, B_ADDR, 0.0)
    deliver(a, b, A_ADDR, 0.0)
    deliver(b, a, B_ADDR, 0.0)
    with pytest.raises(DecodeError) as info:
        deliver(a, b, A_ADDR, 0.0)
    assert info.value.reason == "wrong identity" and b.proven(1) is None


def test_a_member_showing_another_authors_key_and_certificate_is_refused():
    """b holds the token but not AUTHOR_C's private key (C, say, has left): it copies C's public
    key and certificate into its own payload, and signs the link proof with the only author key
    it has.  Were it accepted, b would be taken for C's client id, and a writer."""
    a, b = pair()
    keys = TOKEN.keys()
    b._payload = _payload(AUTHOR_C.public, keys.writer_cert(AUTHOR_C.public),
                          AUTHOR_B.link_proof(keys.session, b.static_public))
    a.seal(2, b"x", 1, B_ADDR, 0.0)
    deliver(a, b, A_ADDR, 0.0)  # b's MSG2 carries the claim
    with pytest.raises(DecodeError) as info:
        deliver(b, a, B_ADDR, 0.0)
    assert info.value.reason == "wrong identity" and a.proven(2) is None and a.take() == []


def test_a_link_proof_lifted_from_another_handshake_is_refused():
    """A's whole payload, proof included, replayed by c: the proof names A's static key, not c's."""
    a, b = pair()
    c = PairSecurity(TOKEN.keys(), 3, os.urandom(32), AUTHOR_C, os.urandom, Drops())
    b.expect(3, c.static_public)
    c.expect(2, b.static_public)
    c._payload = a._payload
    c.seal(2, b"x", 1, B_ADDR, 0.0)
    deliver(c, b, A_ADDR, 0.0)
    deliver(b, c, B_ADDR, 0.0)
    with pytest.raises(DecodeError) as info:
        deliver(c, b, A_ADDR, 0.0)  # c's MSG3 carries A's payload
    assert info.value.reason == "wrong identity" and b.proven(3) is None


def test_a_read_only_guest_handshakes_but_is_no_writer():
    a, b = pair(TOKEN.read_only_token())
    handshake(a, b)
    guest = a.proven(2)
    assert not guest.writer and guest.cert == b"" and b.proven(1).writer
    assert guest.author == AUTHOR_B.public and guest.client_id == AUTHOR_B.client_id == client_id_of(AUTHOR_B.public)


def test_a_lost_third_message_is_repeated_and_a_rekey_keeps_traffic_flowing():
    a, b = pair()
    a.seal(2, b"x", 1, B_ADDR, 0.0)
    deliver(a, b, A_ADDR, 0.0)
    deliver(b, a, B_ADDR, 0.0)
    a.take()  # MSG3 lost
    data = a.seal(2, b"early", 1, B_ADDR, 0.3)  # keys on a's side; MSG3 goes again with it
    deliver(a, b, A_ADDR, 0.3)
    assert b.open(data, 0.3)[1] == b"early"
    t = REKEY_AFTER + 1.0
    old = a.proven(2).gen
    a.seal(2, b"still old keys", 1, B_ADDR, t)  # starts the rekey, sends under the old keys
    deliver(a, b, A_ADDR, t)
    deliver(b, a, B_ADDR, t)
    assert a.proven(2).gen == old + 1 and not a.proven(2).confirmed
    data = a.seal(2, b"unconfirmed", 1, B_ADDR, t)
    assert b.open(data, t)[1] == b"unconfirmed"  # still the old generation: b kept it
    deliver(a, b, A_ADDR, t)  # MSG3 (repeated with it)
    b.open(a.seal(2, b"", 1, B_ADDR, t), t)
    a.open(b.seal(1, b"confirms", 1, A_ADDR, t), t)
    assert a.proven(2).confirmed
    assert b.open(a.seal(2, b"new", 1, B_ADDR, t), t)[1] == b"new"
    late = a.seal(2, b"late", 1, B_ADDR, t)
    with pytest.raises(DecodeError):  # keys are refused after REJECT_AFTER...
        b.open(late, t + REJECT_AFTER + 1)
    assert a.seal(2, b"", 1, B_ADDR, t + REJECT_AFTER + 1) is None  # ...and a handshake goes instead


@fuzz
@given(st.binary(max_size=120))
def test_decode_handshake_untrusted_raises_only_decode_error(data):
    try:
        decode_handshake_untrusted(data)
    except DecodeError:
        pass


@fuzz
@given(st.one_of(st.binary(max_size=240),  # near-valid ones too: any field a little off, or cut short
                 st.builds(lambda author, cert, proof, cut: _payload(author, cert, proof)[:-cut or None],
                           st.binary(min_size=30, max_size=34), st.binary(max_size=70), st.binary(min_size=60,
                           max_size=68), st.integers(0, 3))))
def test_decode_payload_untrusted_raises_only_decode_error(data):
    try:
        author, cert, proof = decode_payload_untrusted(data)
    except DecodeError:
        return
    assert len(author) == 32 and len(cert) <= 64 and len(proof) == 64


def test_decode_payload_untrusted_round_trip_and_bounds():
    keys = TOKEN.keys()
    payload = _payload(AUTHOR_A.public, keys.writer_cert(AUTHOR_A.public), AUTHOR_A.link_proof(keys.session, b"s" * 32))
    assert decode_payload_untrusted(payload) == (AUTHOR_A.public, keys.writer_cert(AUTHOR_A.public),
                                                 AUTHOR_A.link_proof(keys.session, b"s" * 32))
    for bad in (payload[:-1], payload + b"\0", _payload(AUTHOR_A.public, bytes(65), bytes(64)), b""):
        with pytest.raises(DecodeError):
            decode_payload_untrusted(bad)


@fuzz
@given(st.binary(max_size=200), st.integers(0, 2))
def test_handshake_and_transport_datagrams_raise_only_decode_error(data, where):
    a, b = pair()
    if where:
        handshake(a, b)
    head = bytes(4) + (0x5EED).to_bytes(4, "big") + (1).to_bytes(8, "big")
    for datagram in (data, b"CV" + bytes([VERSION, 3]) + head + data, b"CV" + bytes([VERSION, 2]) + head + data):
        for method in (b.receive_handshake, lambda d, addr, now: b.open(d, now)):
            try:
                method(datagram, A_ADDR, 0.0)
            except DecodeError:
                pass


@fuzz
@given(st.binary(max_size=120))
def test_awareness_clients_untrusted_raises_only_decode_error(data):
    try:
        awareness_clients_untrusted(data)
    except DecodeError:
        pass


@fuzz
@given(st.text(max_size=120))
def test_read_only_token_decode_raises_only_bad_token(text):
    for prefix in ("covim1r-", ""):
        try:
            SessionToken.decode(prefix + text)
        except BadToken:
            pass


def test_read_only_token_round_trip_and_keys():
    ro = TOKEN.read_only_token()
    assert SessionToken.decode(ro.encode()) == ro and ro.encode().startswith("covim1r-")
    assert ro.secret != TOKEN.secret and TOKEN.secret.hex() not in ro.encode()
    kw, kr = TOKEN.keys(), ro.keys()
    assert (kw.introduction, kw.handshake, kw.psk) == (kr.introduction, kr.handshake, kr.psk)
    assert kw.can_write and not kr.can_write and kr.writer_cert(b"x" * 32) == b""
