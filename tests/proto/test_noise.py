"""proto/noise.py against the published Noise test vectors, and against itself under attack.

The vectors are cacophony's (tests/proto/data/noise_vectors.json says where
from): every handshake message, the handshake hash, and the transport
messages after it must come out byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from covim_p2p.proto.noise import HandshakeState, NoiseError, public_key

VECTORS = json.loads((Path(__file__).parent / "data" / "noise_vectors.json").read_text())["vectors"]


def _side(v: dict, who: str, pattern: str, hash_name: str) -> HandshakeState:
    def key(name: str) -> bytes | None:
        return bytes.fromhex(v[name]) if name in v else None
    psks = v.get(f"{who}_psks") or []
    return HandshakeState(pattern, who == "init", prologue=bytes.fromhex(v[f"{who}_prologue"]),
                          static=key(f"{who}_static"), ephemeral=key(f"{who}_ephemeral"),
                          psk=bytes.fromhex(psks[0]) if psks else None, hash_name=hash_name,
                          remote_static=key(f"{who}_remote_static"))


@pytest.mark.parametrize("v", VECTORS, ids=[v["protocol_name"] for v in VECTORS])
def test_published_vector(v):
    _, pattern, dh, cipher, hash_name = v["protocol_name"].split("_")
    assert (dh, cipher) == ("25519", "ChaChaPoly")
    init, resp = _side(v, "init", pattern, hash_name), _side(v, "resp", pattern, hash_name)
    assert init.protocol_name == v["protocol_name"]
    messages = v["messages"]
    i = 0
    while not init.complete:
        writer, reader = (init, resp) if i % 2 == 0 else (resp, init)
        payload, expected = bytes.fromhex(messages[i]["payload"]), bytes.fromhex(messages[i]["ciphertext"])
        assert writer.write_message(payload) == expected, f"handshake message {i}"
        assert reader.read_message(expected) == payload
        i += 1
    assert resp.complete
    assert init.handshake_hash == resp.handshake_hash == bytes.fromhex(v["handshake_hash"])
    i_send, i_recv = init.split()
    r_recv, r_send = resp.split()
    for j, m in enumerate(messages[i:], start=i):
        send, recv = (i_send, r_recv) if j % 2 == 0 else (r_send, i_recv)
        payload, expected = bytes.fromhex(m["payload"]), bytes.fromhex(m["ciphertext"])
        assert send.encrypt_with_ad(b"", payload) == expected, f"transport message {j}"
        assert recv.decrypt_with_ad(b"", expected) == payload


def test_the_vectors_cover_the_patterns_we_use():
    names = {v["protocol_name"] for v in VECTORS}
    assert {"Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s", "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s"} <= names


def _pair(psk_i=bytes(32), psk_r=bytes(32), s_i=b"\x01" * 32, s_r=b"\x02" * 32):
    return (HandshakeState("XXpsk3", True, static=s_i, ephemeral=b"\x03" * 32, psk=psk_i),
            HandshakeState("XXpsk3", False, static=s_r, ephemeral=b"\x04" * 32, psk=psk_r))


def test_xxpsk3_proves_both_static_keys():
    i, r = _pair()
    r.read_message(i.write_message())
    i.read_message(r.write_message())
    r.read_message(i.write_message(b"hello"))
    assert i.rs == public_key(b"\x02" * 32) and r.rs == public_key(b"\x01" * 32)


def test_a_wrong_psk_fails_at_the_third_message():
    i, r = _pair(psk_r=b"\x09" * 32)
    r.read_message(i.write_message())
    i.read_message(r.write_message())
    with pytest.raises(NoiseError):
        r.read_message(i.write_message())


def test_a_tampered_handshake_fails():
    i, r = _pair()
    r.read_message(i.write_message())
    m2 = bytearray(r.write_message())
    m2[40] ^= 1
    with pytest.raises(NoiseError):
        i.read_message(bytes(m2))


def test_rekey_changes_the_key_and_both_sides_agree():
    i, r = _pair()
    r.read_message(i.write_message())
    i.read_message(r.write_message())
    r.read_message(i.write_message())
    (a, _), (b, _) = i.split(), r.split()
    old = a.encrypt_at(5, b"", b"x")
    a.rekey()
    b.rekey()
    assert a.encrypt_at(5, b"", b"x") != old
    assert b.decrypt_at(5, b"", a.encrypt_at(5, b"", b"x")) == b"x"


def test_out_of_turn_is_refused():
    i, r = _pair()
    with pytest.raises(NoiseError):
        r.write_message()
    with pytest.raises(NoiseError):
        i.read_message(b"x" * 48)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.binary(max_size=200), st.integers(0, 2))
def test_garbage_handshake_messages_raise_only_noise_error(data, step):
    i, r = _pair()
    msgs = []
    try:
        msgs.append(i.write_message())
        if step >= 1:
            r.read_message(msgs[-1])
            msgs.append(r.write_message())
        if step >= 2:
            i.read_message(msgs[-1])
            i.write_message()
        reader = r if step != 1 else i
        reader.read_message(data)
    except NoiseError:
        pass
