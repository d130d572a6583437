"""The datagram header, addresses and peer frames: exact bytes, round trips, hostile input.

``decode_datagram_untrusted`` and ``decode_frames_untrusted`` read whatever
arrives on the UDP port; the fuzz tests pin that they fail only with
DecodeError, and that a truncated frame is never taken for a shorter valid one.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from covim_p2p.proto.codec import DecodeError, Reader, Writer
from covim_p2p.proto.framing import (
    HEADER_LEN,
    KIND_PEER,
    KIND_RENDEZVOUS,
    MAGIC,
    MAX_ACK_RANGES,
    MAX_DATAGRAM,
    VERSION,
    Ack,
    Bye,
    Data,
    Header,
    Hello,
    Ping,
    Pong,
    decode_datagram_untrusted,
    decode_frames_untrusted,
    decode_peer_body_untrusted,
    encode_datagram,
    encode_frames,
    encode_peer_body,
    frame_size,
    read_addr,
    write_addr,
)

fuzz = settings(max_examples=300, deadline=None, derandomize=True, database=None)
U64 = st.integers(min_value=0, max_value=2**64 - 1)


# ---- datagram header ---------------------------------------------------------


def test_header_layout_is_exact():
    data = encode_datagram(KIND_PEER, 0x0102030405060708, 0x1112131415161718, b"body")
    assert data == (
        b"CV" + bytes([VERSION, KIND_PEER]) + bytes(range(1, 9)) + bytes(range(0x11, 0x19)) + b"body"
    )
    assert HEADER_LEN == 20
    assert decode_datagram_untrusted(data) == (Header(KIND_PEER, 0x0102030405060708, 0x1112131415161718), b"body")


@given(st.sampled_from([KIND_RENDEZVOUS, KIND_PEER]), U64, U64, st.binary(max_size=MAX_DATAGRAM))
@fuzz
def test_header_round_trip(kind, session, sender, body):
    header, got = decode_datagram_untrusted(encode_datagram(kind, session, sender, body))
    assert header == Header(kind, session, sender)
    assert got == body


def test_header_only_datagram_has_empty_body():
    assert decode_datagram_untrusted(encode_datagram(KIND_RENDEZVOUS, 0, 0, b"")) == (Header(KIND_RENDEZVOUS, 0, 0), b"")


def _header(magic=MAGIC, version=VERSION, kind=KIND_PEER) -> bytes:
    return magic + bytes([version, kind]) + b"\x00" * 16


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "datagram of 0 bytes is shorter than the header"),
        (_header()[:-1], "datagram of 19 bytes is shorter than the header"),
        # A STUN binding request starts with 0x00 0x01: never ours.
        (b"\x00\x01\x00\x00\x21\x12\xa4\x42" + b"\x00" * 12, "not a covim datagram (bad magic)"),
        (_header(magic=b"CW"), "not a covim datagram (bad magic)"),
        (_header(version=1), "unsupported protocol version 1"),
            (_header(version=2), "unsupported protocol version 2"),
        (_header(version=0), "unsupported protocol version 0"),
        (_header(version=4), "unsupported protocol version 4"),  # v4's handshake payload has no author key
        (_header(kind=0), "unknown datagram kind 0"),
        (_header(kind=4), "unknown datagram kind 4"),
    ],
)
def test_header_errors(data, message):
    with pytest.raises(DecodeError) as exc:
        decode_datagram_untrusted(data)
    assert str(exc.value) == message


@given(st.binary(max_size=80))
@fuzz
def test_decode_datagram_arbitrary_bytes_only_decode_error(data):
    try:
        header, body = decode_datagram_untrusted(data)
    except DecodeError:
        return
    assert header.kind in (KIND_RENDEZVOUS, KIND_PEER)
    assert body == data[HEADER_LEN:]


@given(st.sampled_from([KIND_RENDEZVOUS, KIND_PEER]), U64, U64, st.binary(max_size=40))
@fuzz
def test_truncated_header_is_rejected(kind, session, sender, body):
    data = encode_datagram(kind, session, sender, body)
    for cut in range(HEADER_LEN):
        with pytest.raises(DecodeError, match="shorter than the header"):
            decode_datagram_untrusted(data[:cut])
    # Beyond the header a datagram is only a shorter body: frames catch that.
    assert decode_datagram_untrusted(data[: HEADER_LEN + len(body) // 2])[1] == body[: len(body) // 2]


# ---- addresses ---------------------------------------------------------------


@pytest.mark.parametrize(
    "addr, encoded",
    [
        (("192.0.2.1", 3478), b"\x04\xc0\x00\x02\x01\x0d\x96"),
        (("0.0.0.0", 0), b"\x04\x00\x00\x00\x00\x00\x00"),
        (("255.255.255.255", 65535), b"\x04\xff\xff\xff\xff\xff\xff"),
        (("2001:db8::1", 443), b"\x06\x20\x01\x0d\xb8" + b"\x00" * 11 + b"\x01\x01\xbb"),
        (("::", 1), b"\x06" + b"\x00" * 16 + b"\x00\x01"),
    ],
)
def test_addr_exact(addr, encoded):
    w = Writer()
    write_addr(w, addr)
    assert w.bytes() == encoded
    r = Reader(encoded)
    assert read_addr(r) == addr
    assert r.at_end()


def test_addr_round_trip_normalises_ipv6_text():
    w = Writer()
    write_addr(w, ("2001:0DB8:0000:0000:0000:0000:0000:0001", 9))
    assert read_addr(Reader(w.bytes())) == ("2001:db8::1", 9)


@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), st.integers(0, 65535))
@fuzz
def test_addr_round_trip(ip, port):
    w = Writer()
    write_addr(w, (str(ip), port))
    assert len(w.bytes()) == 1 + len(ip.packed) + 2
    assert read_addr(Reader(w.bytes())) == (str(ip), port)


def test_addr_errors():
    with pytest.raises(DecodeError) as exc:
        read_addr(Reader(b"\x05" + b"\x00" * 6))
    assert str(exc.value) == "bad address family 5"
    with pytest.raises(DecodeError) as exc:
        read_addr(Reader(b"\x06" + b"\x00" * 10))
    assert str(exc.value) == "truncated: wanted 16 bytes at offset 1, have 10"
    with pytest.raises(DecodeError) as exc:
        read_addr(Reader(b"\x04\x7f\x00\x00\x01\x00"))
    assert str(exc.value) == "truncated: wanted 2 bytes at offset 5, have 1"


# ---- frames ------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame, encoded",
    [
        (Hello("ann", 300, True), b"\x01\x03ann\xac\x02\x01"),
        (Hello("", 0, False), b"\x01\x00\x00\x00"),
        (Data(0, False, b""), b"\x02\x00\x00\x00"),
        (Data(128, True, b"xy"), b"\x02\x80\x01\x01\x02xy"),
        (Ack(5), b"\x03\x05\x00"),
        # ranges as (gap from the previous end, length): (7,9) -> 2,2; (12,13) -> 3,1
        (Ack(5, ((7, 9), (12, 13))), b"\x03\x05\x02\x02\x02\x03\x01"),
        # multi-byte gap and length: (255, 16639) -> 128, 16384
        (Ack(127, ((255, 16639),)), b"\x03\x7f\x01\x80\x01\x80\x80\x01"),
        (Ping(1), b"\x04\x01"),
        (Pong(2**64 - 1), b"\x05" + b"\xff" * 9 + b"\x01"),
        (Bye(), b"\x06\x00"),
        (Bye("done"), b"\x06\x04done"),
    ],
)
def test_frame_exact_bytes(frame, encoded):
    assert encode_frames([frame]) == encoded
    assert frame_size(frame) == len(encoded)
    assert decode_frames_untrusted(encoded) == [frame]


@st.composite
def acks(draw):
    next_seq = draw(st.integers(0, 2**40))
    ranges = []
    prev = next_seq
    for _ in range(draw(st.integers(0, MAX_ACK_RANGES))):
        start = prev + draw(st.integers(0, 1000))
        end = start + draw(st.integers(0, 1000))
        ranges.append((start, end))
        prev = end
    return Ack(next_seq, tuple(ranges))


# Names and reasons decode with a 256-byte limit; 64 code points stay under it.
short_text = st.text(max_size=64)
frames_st = st.one_of(
    st.builds(Hello, short_text, U64, st.booleans()),
    st.builds(Data, st.integers(0, 2**63), st.booleans(), st.binary(max_size=MAX_DATAGRAM)),
    acks(),
    st.builds(Ping, U64),
    st.builds(Pong, U64),
    st.builds(Bye, short_text),
)


@given(st.lists(frames_st, max_size=8))
@fuzz
def test_frames_round_trip(frames):
    body = encode_frames(frames)
    assert len(body) == sum(frame_size(f) for f in frames)
    assert decode_frames_untrusted(body) == frames


def test_frames_round_trip_every_type_in_one_body():
    frames = [
        Hello("zoë 🐍", 7, False), Data(3, True, b"\x00" * 1100), Ack(4, ((6, 8),)),
        Ping(9), Pong(9), Bye("bye"),
    ]
    assert decode_frames_untrusted(encode_frames(frames)) == frames
    assert decode_frames_untrusted(b"") == []


@given(st.lists(frames_st, min_size=1, max_size=4))
@fuzz
def test_truncated_frames_are_rejected(frames):
    body = encode_frames(frames)
    boundaries = {0}
    size = 0
    for f in frames:
        size += frame_size(f)
        boundaries.add(size)
    for cut in range(len(body)):
        if cut in boundaries:
            # A cut between frames is a shorter valid body, not garbage.
            count = sorted(boundaries).index(cut)
            assert decode_frames_untrusted(body[:cut]) == frames[:count]
        else:
            with pytest.raises(DecodeError):
                decode_frames_untrusted(body[:cut])


@given(st.binary(max_size=200))
@fuzz
def test_decode_frames_arbitrary_bytes_only_decode_error(body):
    try:
        frames = decode_frames_untrusted(body)
    except DecodeError:
        return
    # Whatever decodes is well-formed enough to encode and decode again the same.
    assert decode_frames_untrusted(encode_frames(frames)) == frames


@given(st.lists(frames_st, min_size=1, max_size=4), st.data())
@fuzz
def test_decode_frames_mutated_bodies_only_decode_error(frames, data):
    # Arbitrary bytes mostly die on the first type byte; mutating valid bodies
    # reaches the field readers (lengths, varuints, UTF-8, range counts).
    body = bytearray(encode_frames(frames))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(body) - 1))
        body[i] = data.draw(st.integers(0, 255))
    try:
        decoded = decode_frames_untrusted(bytes(body))
    except DecodeError:
        return
    assert decode_frames_untrusted(encode_frames(decoded)) == decoded


@given(st.binary(max_size=200))
@fuzz
def test_full_datagram_path_arbitrary_body_only_decode_error(body):
    # The path a real receiver takes: header, then frames.
    try:
        _, got = decode_datagram_untrusted(encode_datagram(KIND_PEER, 1, 2, body))
        decode_frames_untrusted(got)
    except DecodeError:
        pass


@pytest.mark.parametrize(
    "body, message",
    [
        (b"\x00", "unknown frame type 0"),
        (b"\x09", "unknown frame type 9"),
        (b"\x04\x01\xff", "unknown frame type 255"),
        (b"\x03\x00\x21", "ack with 33 ranges"),
        (b"\x02\x00\x00" + b"\xb1\x09" + b"x" * 1201, "field of 1201 bytes exceeds limit 1200"),
        (b"\x01\x81\x02" + b"a" * 257 + b"\x00\x00", "field of 257 bytes exceeds limit 256"),
        (b"\x06\x01\xff", "invalid UTF-8: invalid start byte"),
        (b"\x04", "truncated: wanted 1 bytes at offset 1, have 0"),
        (b"\x03\x01\x02\x05", "truncated: wanted 1 bytes at offset 4, have 0"),
    ],
)
def test_frame_errors(body, message):
    with pytest.raises(DecodeError) as exc:
        decode_frames_untrusted(body)
    assert str(exc.value) == message


def test_decode_frames_accepts_any_buffer_and_returns_bytes_payloads():
    frames = [Data(1, True, b"xy"), Bye("b")]
    for body in (bytearray(encode_frames(frames)), memoryview(encode_frames(frames))):
        got = decode_frames_untrusted(body)
        assert got == frames and type(got[0].payload) is bytes


def test_ack_range_count_limit_is_inclusive():
    ranges = tuple((2 * i + 1, 2 * i + 2) for i in range(MAX_ACK_RANGES))
    ack = Ack(0, ranges)
    assert decode_frames_untrusted(encode_frames([ack])) == [ack]


def test_largest_data_frame_fits_a_datagram():
    from covim_p2p.proto.channel import CHUNK

    frame = Data(2**40, True, b"x" * CHUNK)
    assert HEADER_LEN + frame_size(frame) <= MAX_DATAGRAM


def test_a_flag_byte_other_than_0_or_1_is_rejected():
    from covim_p2p.proto.codec import DecodeError
    from covim_p2p.proto.framing import Data, decode_frames_untrusted, encode_frames
    body = bytearray(encode_frames([Data(3, True, b"x")]))
    body[2] = 7  # type, seq, then the fin flag
    with pytest.raises(DecodeError, match="bad flag 7"):
        decode_frames_untrusted(bytes(body))


@given(U64, U64, st.lists(frames_st, max_size=6))
def test_peer_body_round_trips_the_epochs_and_frames(src, dst, frames):
    assert decode_peer_body_untrusted(encode_peer_body(src, dst, frames)) == (src, dst, frames)


def test_peer_body_layout_is_two_varuints_then_frames():
    assert encode_peer_body(1, 300, [Ping(5)]) == b"\x01\xac\x02" + encode_frames([Ping(5)])


@given(st.binary(max_size=60))
@fuzz
def test_decode_peer_body_arbitrary_bytes_only_decode_error(body):
    try:
        src, dst, frames = decode_peer_body_untrusted(body)
    except DecodeError:
        return
    assert decode_peer_body_untrusted(encode_peer_body(src, dst, frames)) == (src, dst, frames)
