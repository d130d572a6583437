"""Session messages: one type byte, then a y-protocols message (SYNC, AWARENESS) or ours (WANT,
SIGNED).

The y-protocols payloads must be byte-identical to what pycrdt's own helpers write (and so to
what Yjs writes: tests/test_yjs_compat.py), and the untrusted decoder must turn any bytes into a
message or DecodeError.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import (Awareness, Doc, Text, YMessageType, YSyncMessageType, create_awareness_message,
                    create_sync_message, create_update_message, handle_sync_message)

from covim_p2p.proto.authorship import CHANGE, CHECKPOINT, AuthorKey, Material, sign_record
from covim_p2p.proto.codec import DecodeError
from covim_p2p.proto.messages import (M_AWARENESS, M_SIGNED, M_SYNC, M_WANT, AwarenessUpdate, Signed, SyncStep1,
                                      SyncStep2, Want, decode_session_message_untrusted, encode_session_message)


def _doc_with(text: str, client_id: int = 7) -> Doc:
    doc = Doc(client_id=client_id)
    doc.get("content", type=Text).insert(0, text)
    return doc


_AUTHOR = AuthorKey(b"a" * 32)
_RECORDS = (sign_record(_AUTHOR, 1, 1, CHECKPOINT, b"\x00", b"\x00\x00", 0),
            sign_record(_AUTHOR, 1, 2, CHANGE, b"\x01\x07\x05", b"upd" * 100, 12))

SAMPLES = [
    SyncStep1(b""),
    SyncStep1(b"\x01\x07\x05"),
    SyncStep2(b"\x00\x00"),
    SyncStep2(bytes(range(256)) * 3),
    Want(b"\x00"),
    Want(b"\x02\x07\x05\x09\x01"),
    Signed(()),
    Signed((Material(_AUTHOR.public, b"c" * 64, _RECORDS),), reply=True),
    Signed((Material(_AUTHOR.public, b"", ()), Material(b"b" * 32, b"", (replace(_RECORDS[1], author=b"b" * 32),)))),
    AwarenessUpdate(b""),
    AwarenessUpdate(b'{"user":{"name":"\xc3\xa9"}}'),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=repr)
def test_round_trip(msg):
    assert decode_session_message_untrusted(encode_session_message(msg)) == msg


def test_round_trip_big_update():
    record = sign_record(_AUTHOR, 1, 3, CHANGE, b"\x01" * 300, b"x" * 200_000, 1 << 40)  # long varuints
    msg = Signed((Material(_AUTHOR.public, b"c" * 64, (record,)),))
    assert decode_session_message_untrusted(encode_session_message(msg)) == msg


def test_type_bytes():
    assert encode_session_message(SyncStep1(b""))[0] == M_SYNC == 0
    assert encode_session_message(SyncStep2(b""))[0] == M_SYNC
    assert encode_session_message(AwarenessUpdate(b""))[0] == M_AWARENESS == 1
    assert encode_session_message(Want(b"\x00"))[0] == M_WANT == 3
    assert encode_session_message(Signed(()))[0] == M_SIGNED == 4


def test_sync_step1_is_pycrdts_create_sync_message():
    doc = _doc_with("héllo 🌍")
    ours = encode_session_message(SyncStep1(doc.get_state()))
    assert ours == bytes([M_SYNC]) + create_sync_message(doc)


def test_sync_step2_is_pycrdts_reply_and_pycrdt_applies_it():
    a = _doc_with("hello, 世界", client_id=1)
    b = Doc(client_id=2)
    step1 = create_sync_message(b)
    reply = handle_sync_message(step1[1:], a)  # pycrdt's own answer (a full y-sync message)
    assert reply is not None
    ours = encode_session_message(SyncStep2(a.get_update(b.get_state())))
    assert ours == bytes([M_SYNC]) + reply
    # and the decoded payload is what pycrdt would apply
    decoded = decode_session_message_untrusted(ours)
    assert isinstance(decoded, SyncStep2)
    handle_sync_message(ours[2:], b)
    assert str(b.get("content", type=Text)) == "hello, 世界"


def test_awareness_payload_is_pycrdts_awareness_message():
    doc = Doc(client_id=4)
    aw = Awareness(doc)
    aw.set_local_state({"user": {"name": "zoë 🦊"}, "cursor": {"anchor": {"offset": 3}}})
    update = aw.encode_awareness_update([4])
    raw = encode_session_message(AwarenessUpdate(update))
    assert raw == bytes([M_AWARENESS]) + create_awareness_message(update)
    # and another Awareness accepts what we decode
    other = Awareness(Doc(client_id=5))
    decoded = decode_session_message_untrusted(raw)
    assert isinstance(decoded, AwarenessUpdate)
    other.apply_awareness_update(decoded.update, "test")
    assert other.states[4]["user"]["name"] == "zoë 🦊"


def test_plain_sync_update_inside_sync_envelope_is_step2():
    # A Yjs peer may send a bare y-sync "update" message: it is applied like step 2.
    raw = bytes([M_SYNC]) + create_update_message(b"\x00\x00")
    assert decode_session_message_untrusted(raw) == SyncStep2(b"\x00\x00")


@pytest.mark.parametrize("raw, message", [
    (b"", "truncated"),
    (b"\x07\x00\x00\x00", "unknown session message 7"),
    (bytes([M_SYNC, YMessageType.AWARENESS, 0, 0]), "sync message without the sync tag"),
    (bytes([M_AWARENESS, YMessageType.SYNC, 0]), "awareness message without the awareness tag"),
    (bytes([M_SYNC, YMessageType.SYNC, 9, 0]), "unknown sync message 9"),
    (bytes([M_WANT, 1, 7]), "state vector"),
    (bytes([M_SIGNED, 2, 0]), "reply flag 2"),
    (bytes([M_SIGNED, 0, 0, 0]), "trailing bytes in a bundle"),
    (bytes([M_SIGNED, 0, 1]) + b"k" * 32 + bytes([0, 1, 0, 0, 0]), "sequence number 0"),
    (bytes([M_SYNC, YMessageType.SYNC, 0, 0, 0]), "trailing bytes"),
    (bytes([M_SYNC, YMessageType.SYNC, 0, 5, 1]), "truncated"),
])
def test_decode_errors(raw, message):
    with pytest.raises(DecodeError, match=message):
        decode_session_message_untrusted(raw)


def test_every_truncation_is_a_decode_error():
    for msg in SAMPLES:
        raw = encode_session_message(msg)
        for cut in range(len(raw)):
            with pytest.raises(DecodeError):
                decode_session_message_untrusted(raw[:cut])


_FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(st.binary(max_size=64))
def test_fuzz_random_bytes(raw):
    try:
        msg = decode_session_message_untrusted(raw)
    except DecodeError:
        return
    # Whatever decodes re-encodes to a message that decodes the same (varuints may
    # be non-canonical in the input, so the bytes themselves may differ).
    assert decode_session_message_untrusted(encode_session_message(msg)) == msg


@_FUZZ
@given(st.sampled_from([0, 1, 3, 4]), st.binary(max_size=40))
def test_fuzz_plausible_prefix(kind, rest):
    raw = bytes([kind]) + rest
    try:
        decode_session_message_untrusted(raw)
    except DecodeError:
        pass


@_FUZZ
@given(st.sampled_from(SAMPLES), st.data())
def test_fuzz_mutated_valid_messages(msg, data):
    raw = bytearray(encode_session_message(msg))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] = data.draw(st.integers(0, 255))
    try:
        decode_session_message_untrusted(bytes(raw))
    except DecodeError:
        pass
