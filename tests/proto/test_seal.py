"""The datagram seal (v4): what an eavesdropper, a forger, a replayer and a flooder each get (nothing)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from covim_p2p.proto.codec import DecodeError
from covim_p2p.proto.framing import HEADER_LEN, KIND_PEER, KIND_RENDEZVOUS, decode_datagram_untrusted
from covim_p2p.proto.seal import (DERIVE_BURST, INSTANCE_LEN, MAX_PER_SENDER, MAX_STREAMS, OVERHEAD, WINDOW,
                                  SealError, invite_seal, session_seal)

SESSION, SECRET = 0x5EED, bytes(range(16))
RX = 0x42  # the receiver's peer id


def seal_(instance: bytes | None = None):
    return session_seal(SESSION, SECRET, instance or os.urandom(INSTANCE_LEN))


def pair():
    return seal_(), seal_()


@given(st.binary(max_size=1200), st.sampled_from([KIND_PEER, KIND_RENDEZVOUS]), st.integers(0, 2**64 - 1),
       st.integers(0, 2**64 - 1))
def test_round_trip_keeps_the_header_readable_and_the_body_secret(body, kind, sender, receiver):
    sealer, opener = pair()
    data = sealer.seal(kind, SESSION, sender, body, receiver)
    assert len(data) == HEADER_LEN + OVERHEAD + len(body)
    header, _ = decode_datagram_untrusted(data)  # the header stays in clear: the host demultiplexes on it
    assert (header.kind, header.session, header.sender) == (kind, SESSION, sender)
    assert opener.open_untrusted(data, receiver, 0.0) == (header, body)


def test_a_keystroke_is_not_in_the_datagram():
    sealer, _ = pair()
    secret_text = b"my password is hunter2"
    assert secret_text not in sealer.seal(KIND_PEER, SESSION, 7, secret_text, RX)


@pytest.mark.parametrize("where", [0, 5, HEADER_LEN - 1, HEADER_LEN, HEADER_LEN + INSTANCE_LEN,
                                   HEADER_LEN + INSTANCE_LEN + 7, HEADER_LEN + INSTANCE_LEN + 8, -1])
def test_any_flipped_bit_is_refused(where):
    sealer, opener = pair()
    data = bytearray(sealer.seal(KIND_PEER, SESSION, 7, b"hello", RX))
    data[where] ^= 0x10
    with pytest.raises(DecodeError):
        opener.open_untrusted(bytes(data), RX, 0.0)


def test_another_key_opens_nothing():
    data = seal_().seal(KIND_PEER, SESSION, 7, b"x", RX)
    for other in (session_seal(SESSION, bytes(16), os.urandom(16)), session_seal(SESSION + 1, SECRET, os.urandom(16)),
                  invite_seal(SECRET, os.urandom(16))):
        with pytest.raises(SealError, match="does not open") as info:
            other.open_untrusted(data, RX, 0.0)
        assert info.value.reason == "forged"


def test_a_datagram_sealed_for_one_receiver_does_not_open_at_another():
    sealer, opener = pair()
    data = sealer.seal(KIND_PEER, SESSION, 7, b"for Z", 0x2)
    with pytest.raises(SealError, match="sealed for another peer"):
        opener.open_untrusted(data, 0x3, 0.0)
    assert opener.open_untrusted(data, 0x2, 0.0)[1] == b"for Z"  # the refusal cost the real receiver nothing


def test_replays_are_refused_and_reordering_within_the_window_is_not():
    sealer, opener = pair()
    sent = [sealer.seal(KIND_PEER, SESSION, 7, i.to_bytes(2, "big"), RX) for i in range(WINDOW + 10)]
    opener.open_untrusted(sent[5], RX, 0.0)
    opener.open_untrusted(sent[3], RX, 0.0)  # late but new: fine
    with pytest.raises(SealError, match="replayed"):
        opener.open_untrusted(sent[5], RX, 0.0)
    opener.open_untrusted(sent[-1], RX, 0.0)  # the window moves on
    with pytest.raises(SealError, match="too old"):
        opener.open_untrusted(sent[4], RX, 0.0)  # never seen, but now beyond the window
    opener.open_untrusted(sent[-2], RX, 0.0)
    with pytest.raises(SealError, match="replayed"):
        opener.open_untrusted(sent[-2], RX, 0.0)


def test_two_seals_of_one_sender_never_share_a_keystream():
    """Two introducers (sender 0), or a restart: same secret, same sender, both from counter 1."""
    a, b = seal_(), seal_()
    da, db = a.seal(KIND_PEER, SESSION, 0, b"same", RX), b.seal(KIND_PEER, SESSION, 0, b"same", RX)
    assert da[HEADER_LEN + INSTANCE_LEN:][:8] == db[HEADER_LEN + INSTANCE_LEN:][:8]  # both counter 1...
    assert da[-20:] != db[-20:]  # ...under different keys
    opener = seal_()
    assert opener.open_untrusted(da, RX, 0.0)[1] == opener.open_untrusted(db, RX, 0.0)[1] == b"same"


def test_each_sender_has_its_own_counter_and_key():
    sealer, opener = pair()
    a, b = sealer.seal(KIND_PEER, SESSION, 1, b"same", RX), sealer.seal(KIND_PEER, SESSION, 2, b"same", RX)
    assert a[-20:] != b[-20:]
    assert opener.open_untrusted(a, RX, 0.0)[1] == opener.open_untrusted(b, RX, 0.0)[1] == b"same"


def test_key_derivations_for_unknown_senders_are_rate_limited_and_known_ones_are_not():
    opener = seal_()
    known = seal_()
    first = known.seal(KIND_PEER, SESSION, 5, b"k", RX)
    opener.open_untrusted(first, RX, 0.0)
    forged = seal_(bytes(16))  # a forger without the key: every datagram a new (sender, instance)
    reasons = []
    for i in range(300):
        bogus = bytearray(session_seal(SESSION, b"w" * 16, os.urandom(16)).seal(KIND_PEER, SESSION, 1000 + i, b"x", RX))
        try:
            opener.open_untrusted(bytes(bogus), RX, 0.0)
        except SealError as exc:
            reasons.append(exc.reason)
    budget = int(DERIVE_BURST) - 1  # the known sender's first datagram took one
    assert reasons.count("forged") == budget and reasons.count("rate") == 300 - budget
    for i in range(100):  # a known sender is never slowed down
        assert opener.open_untrusted(known.seal(KIND_PEER, SESSION, 5, b"k", RX), RX, 0.0)[1] == b"k"
    opener.open_untrusted(forged.seal(KIND_PEER, SESSION, 6, b"y", RX), RX, 10.0)  # the bucket refills


def test_authenticated_keys_are_never_evicted():
    opener = seal_()
    first = seal_()
    opener.open_untrusted(first.seal(KIND_PEER, SESSION, 1, b"a", RX), RX, 0.0)
    t = 0.0
    for i in range(MAX_STREAMS + 10):
        t += 1.0
        try:
            opener.open_untrusted(seal_().seal(KIND_PEER, SESSION, 10 + i, b"b", RX), RX, t)
        except SealError as exc:
            assert exc.reason == "too many senders" and i >= MAX_STREAMS - 1
    assert opener.open_untrusted(first.seal(KIND_PEER, SESSION, 1, b"c", RX), RX, t)[1] == b"c"
    one = seal_()
    for _ in range(MAX_PER_SENDER):
        one.open_untrusted(seal_().seal(KIND_PEER, SESSION, 0, b"x", RX), RX, 0.0)
    with pytest.raises(SealError, match="no room"):
        one.open_untrusted(seal_().seal(KIND_PEER, SESSION, 0, b"x", RX), RX, 0.0)


def test_instance_must_be_sixteen_bytes():
    with pytest.raises(ValueError):
        session_seal(SESSION, SECRET, b"short")


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.binary(max_size=120), st.integers(0, 2**64 - 1))
def test_garbage_raises_only_decode_error(data, receiver):
    try:
        seal_(bytes(16)).open_untrusted(data, receiver, 0.0)
    except DecodeError:
        pass
