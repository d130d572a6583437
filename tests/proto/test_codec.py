"""The bounds-checked Reader/Writer: exact encodings, exact errors, and fuzzing.

Readers see attacker-controlled bytes, so the property that matters is that
they fail only with DecodeError (a ValueError the caller catches and counts),
never IndexError, struct.error or UnicodeDecodeError.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from covim_p2p.proto.codec import (
    MAX_VARUINT_BYTES,
    DecodeError,
    Reader,
    Writer,
    read_blob,
    read_text,
    read_varuint,
    varuint,
    write_varuint,
)

fuzz = settings(max_examples=300, deadline=None, derandomize=True, database=None)


# ---- varuints ----------------------------------------------------------------


@pytest.mark.parametrize(
    "value, encoded",
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        (16383, b"\xff\x7f"),
        (16384, b"\x80\x80\x01"),
        (2**64 - 1, b"\xff" * 9 + b"\x01"),
    ],
)
def test_varuint_known_encodings(value, encoded):
    # LEB128, byte for byte what Yjs' lib0 writes.
    assert varuint(value) == encoded
    r = Reader(encoded)
    assert r.uint() == value
    assert r.at_end()


def test_varuint_rejects_negative():
    with pytest.raises(ValueError, match="varuint cannot be negative"):
        write_varuint(bytearray(), -1)


@given(st.integers(min_value=0, max_value=2 ** (7 * MAX_VARUINT_BYTES) - 1))
@fuzz
def test_varuint_round_trip(value):
    data = varuint(value)
    assert len(data) <= MAX_VARUINT_BYTES
    r = Reader(data)
    assert r.uint() == value
    assert r.remaining() == 0


def test_varuint_accepts_non_minimal_encoding():
    # Like lib0, the reader does not insist on the shortest form.
    assert Reader(b"\x80\x00").uint() == 0


def test_varuint_longer_than_ten_bytes_is_rejected():
    with pytest.raises(DecodeError) as exc:
        Reader(b"\x80" * 10 + b"\x01").uint()
    assert str(exc.value) == "varuint longer than 10 bytes"


def test_varuint_truncated():
    with pytest.raises(DecodeError) as exc:
        Reader(b"\x80\x80").uint()
    assert str(exc.value) == "truncated: wanted 1 bytes at offset 2, have 0"


@pytest.mark.parametrize("value", [2**7 - 1, 2**7, 2**14 - 1, 2**14, 2**63 - 1, 2**63, 2**64 - 1, 2**70 - 1])
def test_read_varuint_at_length_boundaries_from_an_offset(value):
    # The one-byte fast path, the loop, and the last byte of the longest allowed form.
    data = b"??" + varuint(value) + b"!"
    assert read_varuint(data, 2) == (value, len(data) - 1)


def test_read_varuint_ten_bytes_is_the_limit_even_at_the_end_of_data():
    assert read_varuint(b"\xff" * 9 + b"\x7f", 0) == (2**70 - 1, 10)
    # An eleventh byte is never wanted, so this is "too long", not "truncated".
    with pytest.raises(DecodeError, match="varuint longer than 10 bytes"):
        read_varuint(b"\x80" * 10, 0)


def test_read_varuint_truncated_names_the_missing_byte():
    with pytest.raises(DecodeError) as exc:
        read_varuint(b"xx\x80\x80", 2)
    assert str(exc.value) == "truncated: wanted 1 bytes at offset 4, have 0"
    with pytest.raises(DecodeError) as exc:
        read_varuint(b"xx", 2)
    assert str(exc.value) == "truncated: wanted 1 bytes at offset 2, have 0"


def test_read_blob_and_text_return_slices_and_the_next_offset():
    assert read_blob(b"x\x02ab!", 1, 2) == (b"ab", 4)
    assert read_text(b"x\x02\xc3\xa9!", 1, 2) == ("é", 4)
    with pytest.raises(DecodeError) as exc:
        read_blob(b"x\x03ab", 1, 3)
    assert str(exc.value) == "truncated: wanted 3 bytes at offset 2, have 2"


# ---- fixed-width fields, blobs, text -----------------------------------------


def test_writer_layout_is_exact():
    w = Writer().u8(7).u16(0x0102).u64(0x0102030405060708).uint(300).blob(b"ab").text("é").raw(b"!")
    assert w.bytes() == (
        b"\x07" + b"\x01\x02" + bytes(range(1, 9)) + b"\xac\x02" + b"\x02ab" + b"\x02\xc3\xa9" + b"!"
    )
    r = Reader(w.bytes())
    assert (r.u8(), r.u16(), r.u64(), r.uint(), r.blob(), r.text(), r.rest()) == (
        7, 0x0102, 0x0102030405060708, 300, b"ab", "é", b"!"
    )
    assert r.at_end()


def test_reader_starts_at_offset_and_reports_remaining():
    r = Reader(b"xyz\x05", 3)
    assert r.remaining() == 1
    assert r.u8() == 5
    assert r.remaining() == 0 and r.at_end()


def test_reader_accepts_memoryview_and_returns_bytes():
    r = Reader(memoryview(b"\x03abc"))
    chunk = r.blob()
    assert chunk == b"abc" and type(chunk) is bytes


@pytest.mark.parametrize(
    "data, read, message",
    [
        (b"", Reader.u8, "truncated: wanted 1 bytes at offset 0, have 0"),
        (b"\x01", Reader.u16, "truncated: wanted 2 bytes at offset 0, have 1"),
        (b"\x00" * 7, Reader.u64, "truncated: wanted 8 bytes at offset 0, have 7"),
        (b"\x05abc", Reader.blob, "truncated: wanted 5 bytes at offset 1, have 3"),
        (b"\x02\xff\xfe", Reader.text, "invalid UTF-8: invalid start byte"),
        (b"\x02\xc3", Reader.text, "truncated: wanted 2 bytes at offset 1, have 1"),
        (b"\x02\xc3(", Reader.text, "invalid UTF-8: invalid continuation byte"),
    ],
)
def test_exact_error_strings(data, read, message):
    with pytest.raises(DecodeError) as exc:
        read(Reader(data))
    assert str(exc.value) == message


def test_blob_and_text_limits():
    with pytest.raises(DecodeError) as exc:
        Reader(b"\x05hello").blob(limit=4)
    assert str(exc.value) == "field of 5 bytes exceeds limit 4"
    assert Reader(b"\x04four").blob(limit=4) == b"four"
    with pytest.raises(DecodeError) as exc:
        Reader(varuint(4097) + b"x" * 4097).text()
    assert str(exc.value) == "field of 4097 bytes exceeds limit 4096"
    # A huge declared length fails on the limit before any allocation.
    with pytest.raises(DecodeError, match="exceeds limit"):
        Reader(varuint(2**60)).blob()


def test_negative_raw_length_is_rejected():
    with pytest.raises(DecodeError):
        Reader(b"abc").raw(-1)


def test_decode_error_is_a_value_error():
    assert issubclass(DecodeError, ValueError)


# ---- fuzzing -----------------------------------------------------------------

READS = [Reader.u8, Reader.u16, Reader.u64, Reader.uint, Reader.blob, Reader.text, Reader.rest]


@given(st.binary(max_size=64), st.lists(st.sampled_from(READS), max_size=12))
@fuzz
def test_any_sequence_of_reads_fails_only_with_decode_error(data, reads):
    r = Reader(data)
    for read in reads:
        pos = r.pos
        try:
            read(r)
        except DecodeError:
            return
        assert pos <= r.pos <= len(data)


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("u8"), st.integers(0, 255)),
            st.tuples(st.just("u16"), st.integers(0, 2**16 - 1)),
            st.tuples(st.just("u64"), st.integers(0, 2**64 - 1)),
            st.tuples(st.just("uint"), st.integers(0, 2**64)),
            st.tuples(st.just("blob"), st.binary(max_size=40)),
            st.tuples(st.just("text"), st.text(max_size=20)),
        ),
        min_size=1,
        max_size=8,
    )
)
@fuzz
def test_writer_reader_round_trip_and_truncation(fields):
    w = Writer()
    for kind, value in fields:
        getattr(w, kind)(value)
    data = w.bytes()

    def read_all(buf: bytes) -> list:
        r = Reader(buf)
        out = [(kind, getattr(r, kind)()) for kind, _ in fields]
        assert r.at_end()
        return out

    assert read_all(data) == fields
    # Every field is required, so every strict prefix is truncated input.
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            read_all(data[:cut])
