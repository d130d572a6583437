import pytest
from hypothesis import given
from hypothesis import strategies as st

from covim_p2p.proto import stun
from covim_p2p.proto.codec import DecodeError
from covim_p2p.proto.framing import MAGIC, VERSION

TXID = bytes(range(12))


@given(st.integers(0, 0xFFF), st.sampled_from([stun.REQUEST, stun.INDICATION, stun.SUCCESS, stun.ERROR]))
def test_method_and_class_pack_into_the_type_and_back(method, cls):
    assert stun.split_type(stun.message_type(method, cls)) == (method, cls)


def test_known_types():
    assert stun.message_type(stun.BINDING, stun.REQUEST) == 0x0001
    assert stun.message_type(stun.ALLOCATE, stun.ERROR) == 0x0113
    assert stun.message_type(stun.SEND, stun.INDICATION) == 0x0016
    assert stun.message_type(stun.DATA, stun.INDICATION) == 0x0017


@given(st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=30)), max_size=6))
def test_messages_round_trip_with_padding(attrs):
    msg = stun.Message(stun.ALLOCATE, stun.REQUEST, TXID, list(attrs))
    raw = stun.encode(msg)
    assert len(raw) % 4 == 0 and stun.looks_like_stun(raw)
    assert stun.decode_untrusted(raw) == msg


def test_integrity_is_checked_over_the_message_up_to_it():
    key = stun.long_term_key("user", "realm", "pass")
    raw = stun.encode(stun.Message(stun.ALLOCATE, stun.SUCCESS, TXID, [(stun.A_LIFETIME, b"\0\0\2X")]), key)
    assert stun.integrity_ok(raw, key)
    assert not stun.integrity_ok(raw, stun.long_term_key("user", "realm", "other"))
    tampered = bytearray(raw)
    tampered[25] ^= 1
    assert not stun.integrity_ok(bytes(tampered), key)
    assert not stun.integrity_ok(stun.encode(stun.Message(stun.ALLOCATE, stun.SUCCESS, TXID)), key)  # none at all


@pytest.mark.parametrize("addr", [("203.0.113.7", 3478), ("0.0.0.0", 0), ("2001:db8::1", 65535)])
def test_xor_addresses_round_trip(addr):
    assert stun.read_xor_addr(stun.xor_addr(addr, TXID), TXID) == addr


def test_a_covim_datagram_is_never_taken_for_stun():
    ours = MAGIC + bytes([VERSION, 2]) + bytes(16) + b"body"
    assert not stun.looks_like_stun(ours)
    with pytest.raises(DecodeError):
        stun.decode_untrusted(ours)


@given(st.binary(max_size=80))
def test_garbage_raises_only_decode_error(data):
    try:
        stun.decode_untrusted(data)
    except DecodeError:
        pass


def test_error_codes():
    msg = stun.Message(stun.ALLOCATE, stun.ERROR, TXID, [(stun.A_ERROR_CODE, b"\0\0\4\x01Unauthorized")])
    assert stun.error_code(msg) == (401, "Unauthorized")
    assert stun.error_code(stun.Message(stun.ALLOCATE, stun.ERROR, TXID)) == (0, "")
