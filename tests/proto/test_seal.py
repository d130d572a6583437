"""The datagram seal: what an eavesdropper, a forger and a replayer each get (nothing)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from covim_p2p.proto.codec import DecodeError
from covim_p2p.proto.framing import HEADER_LEN, KIND_PEER, KIND_RENDEZVOUS, decode_datagram_untrusted
from covim_p2p.proto.seal import OVERHEAD, WINDOW, invite_seal, session_seal

SESSION, SECRET = 0x5EED, bytes(range(16))


def pair():
    return session_seal(SESSION, SECRET), session_seal(SESSION, SECRET)


@given(st.binary(max_size=1200), st.sampled_from([KIND_PEER, KIND_RENDEZVOUS]), st.integers(0, 2**64 - 1))
def test_round_trip_keeps_the_header_readable_and_the_body_secret(body, kind, sender):
    sealer, opener = pair()
    data = sealer.seal(kind, SESSION, sender, body)
    assert len(data) == HEADER_LEN + OVERHEAD + len(body)
    header, _ = decode_datagram_untrusted(data)  # the header stays in clear: the host demultiplexes on it
    assert (header.kind, header.session, header.sender) == (kind, SESSION, sender)
    assert opener.open_untrusted(data) == (header, body)


def test_a_keystroke_is_not_in_the_datagram():
    sealer, _ = pair()
    secret_text = b"my password is hunter2"
    assert secret_text not in sealer.seal(KIND_PEER, SESSION, 7, secret_text)


@pytest.mark.parametrize("where", [0, 5, HEADER_LEN - 1, HEADER_LEN, HEADER_LEN + 7, HEADER_LEN + 8, -1])
def test_any_flipped_bit_is_refused(where):
    sealer, opener = pair()
    data = bytearray(sealer.seal(KIND_PEER, SESSION, 7, b"hello"))
    data[where] ^= 0x10
    with pytest.raises(DecodeError):
        opener.open_untrusted(bytes(data))


def test_another_key_opens_nothing():
    data = session_seal(SESSION, SECRET).seal(KIND_PEER, SESSION, 7, b"x")
    for other in (session_seal(SESSION, bytes(16)), session_seal(SESSION + 1, SECRET), invite_seal(SECRET)):
        with pytest.raises(DecodeError, match="does not open"):
            other.open_untrusted(data)


def test_replays_are_refused_and_reordering_within_the_window_is_not():
    sealer, opener = pair()
    sent = [sealer.seal(KIND_PEER, SESSION, 7, i.to_bytes(2, "big")) for i in range(WINDOW + 10)]
    opener.open_untrusted(sent[5])
    opener.open_untrusted(sent[3])  # late but new: fine
    with pytest.raises(DecodeError, match="replayed"):
        opener.open_untrusted(sent[5])
    opener.open_untrusted(sent[-1])  # the window moves on
    with pytest.raises(DecodeError, match="too old"):
        opener.open_untrusted(sent[4])  # never seen, but now beyond the window
    opener.open_untrusted(sent[-2])
    with pytest.raises(DecodeError, match="replayed"):
        opener.open_untrusted(sent[-2])


def test_each_sender_has_its_own_counter_and_key():
    sealer, opener = pair()
    a, b = sealer.seal(KIND_PEER, SESSION, 1, b"same"), sealer.seal(KIND_PEER, SESSION, 2, b"same")
    assert a[HEADER_LEN:HEADER_LEN + 8] == b[HEADER_LEN:HEADER_LEN + 8]  # both counter 1...
    assert a[HEADER_LEN + 8:] != b[HEADER_LEN + 8:]  # ...under different keys: no (key, nonce) is ever reused
    assert opener.open_untrusted(a)[1] == opener.open_untrusted(b)[1] == b"same"


@given(st.binary(max_size=80))
def test_garbage_raises_only_decode_error(data):
    try:
        session_seal(SESSION, SECRET).open_untrusted(data)
    except DecodeError:
        pass
