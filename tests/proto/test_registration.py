"""The sealed REGISTER (proto/registration.py): round trip, and its parsers under fuzz."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from covim_p2p.proto.codec import DecodeError
from covim_p2p.proto.introduction import PUBLIC_BIT
from covim_p2p.proto.registration import (KEY_REPLY, REGISTER_LEN, REGISTER_MAGIC, Registration,
                                          decode_key_reply_untrusted, encode_key_reply, open_register_untrusted,
                                          public_key)

SERVER = bytes([7] * 32)


def test_a_registration_asks_for_the_key_then_seals_and_only_the_server_opens_it():
    r = Registration(PUBLIC_BIT | 5, b"c" * 16, bytes([9] * 32))
    assert r.datagram().startswith(b"CVRK")
    assert r.receive_key_reply_untrusted(encode_key_reply(public_key(SERVER)))
    assert not r.receive_key_reply_untrusted(encode_key_reply(public_key(SERVER)))  # same key: nothing new
    sealed = r.datagram()
    assert sealed == r.datagram() and len(sealed) == REGISTER_LEN and sealed.startswith(REGISTER_MAGIC)
    assert open_register_untrusted(sealed, SERVER) == (PUBLIC_BIT | 5, b"c" * 16)
    assert b"c" * 16 not in sealed and (PUBLIC_BIT | 5).to_bytes(8, "big") not in sealed
    with pytest.raises(DecodeError, match="does not open"):
        open_register_untrusted(sealed, bytes([8] * 32))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_fuzzed_registers_and_key_replies_only_ever_raise_decode_error(data):
    for candidate in (data, REGISTER_MAGIC + data, (REGISTER_MAGIC + data * 80)[:REGISTER_LEN],
                      (REGISTER_MAGIC + bytes(32) + data * 80)[:REGISTER_LEN]):
        try:
            open_register_untrusted(candidate, SERVER)
        except DecodeError:
            pass
    for candidate in (data, (KEY_REPLY + data * 40)[:36]):
        try:
            assert len(decode_key_reply_untrusted(candidate)) == 32
        except DecodeError:
            pass
