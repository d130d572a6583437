"""SessionToken: what a host prints and a joiner pastes.

Anything a user pastes must either decode to the token the host printed or
raise BadToken with a sentence a user can act on; never another exception.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from covim_p2p.proto.codec import Writer
from covim_p2p.proto.framing import write_addr
from covim_p2p.proto.token import PREFIX, SECRET_LEN, BadToken, SessionToken

SECRET = bytes(range(SECRET_LEN))


def _b64(raw: bytes) -> str:
    return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_round_trip_ipv4():
    token = SessionToken((("127.0.0.1", 4000), ("192.168.1.20", 65535)), 0x0123456789ABCDEF, SECRET)
    text = token.encode()
    assert text.startswith("covim1-")
    assert "=" not in text  # unpadded
    assert SessionToken.decode(text) == token


def test_round_trip_ipv6_and_mixed():
    token = SessionToken((("::1", 1), ("2001:db8::42", 4242), ("10.1.2.3", 0)), 1, b"\xff" * SECRET_LEN)
    assert SessionToken.decode(token.encode()) == token


def test_ipv6_is_normalised():
    token = SessionToken((("2001:0db8:0000:0000:0000:0000:0000:0001", 9),), 7, SECRET)
    assert SessionToken.decode(token.encode()).addrs == (("2001:db8::1", 9),)


def test_surrounding_whitespace_is_ignored():
    token = SessionToken((("127.0.0.1", 5000),), 3, SECRET)
    assert SessionToken.decode(f"  \n{token.encode()}\t \n") == token


def test_token_is_url_safe():
    # A secret full of 0xff/0xfe would give '+' and '/' in plain base64.
    token = SessionToken((("127.0.0.1", 0xFFFF),), 2**64 - 1, b"\xfb\xff\xfe" * 5 + b"\xff")
    text = token.encode()
    assert all(c.isalnum() or c in "-_" for c in text), text
    assert SessionToken.decode(text) == token


@pytest.mark.parametrize("text", ["", "hello", "covim2-AAAA", "COVIM1-AAAA", "https://example.com/covim1-x",
                                  " covim-1AAAA"])
def test_wrong_prefix(text):
    with pytest.raises(BadToken, match=r"not a covim token \(it should start with 'covim1-'\)"):
        SessionToken.decode(text)


def test_truncated_token_is_damaged():
    text = SessionToken((("127.0.0.1", 5000),), 3, SECRET).encode()
    for cut in range(len(PREFIX), len(text)):
        with pytest.raises(BadToken, match="damaged covim token"):
            SessionToken.decode(text[:cut])


def test_extra_bytes_are_damaged():
    raw = base64.urlsafe_b64decode(SessionToken((("127.0.0.1", 5000),), 3, SECRET).encode()[len(PREFIX):] + "==")
    with pytest.raises(BadToken, match="damaged covim token.*trailing"):
        SessionToken.decode(_b64(raw + b"\x00"))


def test_not_base64_is_damaged():
    with pytest.raises(BadToken, match="damaged covim token"):
        SessionToken.decode(PREFIX + "!!!!****")
    with pytest.raises(BadToken, match="damaged covim token"):
        SessionToken.decode(PREFIX + "ÄÖÜ")  # non-ASCII


@pytest.mark.parametrize("count", [0, 9, 255])
def test_address_count_out_of_range(count):
    w = Writer().u8(count)
    for _ in range(min(count, 9)):
        write_addr(w, ("127.0.0.1", 1))
    w.u64(1).raw(SECRET)
    with pytest.raises(BadToken, match=f"damaged covim token \\({count} addresses\\)"):
        SessionToken.decode(_b64(w.bytes()))


def test_bad_address_family():
    raw = Writer().u8(1).u8(5).raw(b"\x00" * 6).u64(1).raw(SECRET).bytes()
    with pytest.raises(BadToken, match="bad address family 5"):
        SessionToken.decode(_b64(raw))


def test_short_secret():
    raw = Writer().u8(1)
    write_addr(raw, ("127.0.0.1", 1))
    raw.u64(1).raw(SECRET[:-1])
    with pytest.raises(BadToken, match="truncated"):
        SessionToken.decode(_b64(raw.bytes()))


def test_bad_token_is_a_value_error():
    # Callers that catch ValueError (e.g. argument parsing) still catch it.
    assert issubclass(BadToken, ValueError)


def _decode_or_bad(text: str) -> None:
    try:
        SessionToken.decode(text)
    except BadToken as exc:
        assert str(exc)  # always a sentence, never empty
        assert "covim token" in str(exc)


_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(st.text())
def test_fuzz_any_text(text):
    _decode_or_bad(text)


@_FUZZ
@given(st.text())
def test_fuzz_any_text_after_prefix(text):
    _decode_or_bad(PREFIX + text)


@_FUZZ
@given(st.binary(max_size=200))
def test_fuzz_any_binary_body(raw):
    _decode_or_bad(_b64(raw))


@_FUZZ
@given(st.data())
def test_fuzz_damaged_real_token(data):
    token = SessionToken((("127.0.0.1", 4000), ("::1", 4000)), 99, SECRET)
    text = list(token.encode())
    i = data.draw(st.integers(len(PREFIX), len(text) - 1))
    text[i] = data.draw(st.sampled_from("ABCxyz019-_=+/ .é"))
    try:
        decoded = SessionToken.decode("".join(text))
    except BadToken:
        return
    # A change that still decodes must give a well-formed token.
    assert 1 <= len(decoded.addrs) <= 8 and len(decoded.secret) == SECRET_LEN


@_FUZZ
@given(addrs=st.lists(st.tuples(st.ip_addresses().map(str), st.integers(0, 65535)), min_size=1, max_size=8),
       session=st.integers(0, 2**64 - 1), secret=st.binary(min_size=SECRET_LEN, max_size=SECRET_LEN))
def test_fuzz_round_trip(addrs, session, secret):
    token = SessionToken(tuple(addrs), session, secret)
    assert SessionToken.decode(token.encode()) == token
