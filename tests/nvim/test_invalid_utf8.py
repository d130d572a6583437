"""Bytes that are not UTF-8: refused at :CoVim host with one line and nothing left behind;
entering a live session, replaced by U+FFFD here and for everyone, with one line (never a silent divergence)."""

from __future__ import annotations

from covim_peers import connect, host, messages, prepare, shared_lines, status, type_keys, wait_converged, wait_mesh
from nvim_harness import wait_for

FFFD = "\ufffd"


def _set_raw(nvim, row: int, text: bytes) -> None:
    """Put raw bytes (not necessarily UTF-8) in a line, as a user edit."""
    lua = "".join(f"\\{b}" for b in text)
    nvim.exec_lua(f'vim.api.nvim_buf_set_lines(0, {row}, {row + 1}, true, {{"{lua}"}})')


def test_hosting_a_buffer_that_is_not_utf8_is_refused_and_leaves_nothing(nvim_factory):
    """It used to fail with 'internal error ... UnicodeEncodeError' and leave covim's u mapping."""
    a = nvim_factory()
    prepare(a)
    a.current.buffer[:] = ["fine", "x"]
    _set_raw(a, 1, b"caf\xe9 au lait")
    a.command("CoVim host 0 alice")
    # covim's messages are shown from the main loop, just after the command (lua/covim/notify.lua)
    out = wait_for(lambda: "not valid UTF-8" in (m := messages(a)) and m, 3, what="the refusal")
    assert "not valid UTF-8" in out and "line 2" in out, out
    assert "internal error" not in out and "Traceback" not in out
    assert status(a)["state"] == "idle"
    assert a.call("maparg", "u", "n", 0, 1) == {}
    assert a.call("maparg", "<C-r>", "n", 0, 1) == {}
    assert a.call("exists", f"#covim_buf_{a.current.buffer.number}") == 0
    assert a.vars.get("covim_token") in (None, "")
    # fixed, it hosts
    a.current.buffer[1] = "café au lait"
    host(a, "alice")
    assert status(a)["state"] == "joined"


def test_a_line_that_is_not_utf8_entering_a_session_becomes_fffd_everywhere(nvim_factory):
    """It used to make the buffers diverge silently."""
    a, b = nvim_factory(), nvim_factory()
    token = host(a, "alice", ["line one", "line two"])
    connect(b, token, "bob")
    wait_mesh([a, b])
    wait_converged([a, b])
    _set_raw(a, 1, b"line \xe9\xff two \xc3")
    want = ["line one", f"line {FFFD}{FFFD} two {FFFD}"]
    wait_for(lambda: shared_lines(a) == want and shared_lines(b) == want, 5,
             what="the bad bytes replaced by U+FFFD on both peers")
    assert "not UTF-8" in messages(a)
    type_keys(b, "ggAX<Esc>")
    type_keys(a, "GAY<Esc>")
    assert wait_converged([a, b]) == ["line oneX", f"line {FFFD}{FFFD} two {FFFD}Y"]
    assert "Traceback" not in messages(a) + messages(b)
    assert "internal error" not in messages(a)


def test_lua_agrees_with_python_on_what_is_utf8(nvim_factory):
    """covim.utf8 must call valid exactly what Python's codec (and so pycrdt) accepts."""
    import random
    rng = random.Random(5)
    pieces = [b"a", b"\xc3\xa9", b"\xe4\xb8\x96", b"\xf0\x9f\x99\x82", b"\xe9", b"\xc3", b"\xed\xa0\x80",
              b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf4\x90\x80\x80", b"\xf5\x80", b"\x80", b"\xef\xbf\xbd", b"\xff"]
    samples = [b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 4))) for _ in range(400)]
    samples += [bytes([b]) for b in range(256)] + [bytes([0xE2, 0x82, b]) for b in range(256)]
    a = nvim_factory()
    # hex, because pynvim would send a str as UTF-8 and bytes as ... bytes: keep it explicit
    verdicts = a.exec_lua("""
        local u = require('covim.utf8'); local out = {}
        for i, hex in ipairs(...) do
          local s = hex:gsub('..', function(h) return string.char(tonumber(h, 16)) end)
          local c = u.clean(s)
          out[i] = { u.valid(s), c == nil or u.valid(c) }
        end
        return out""", [s.hex() for s in samples])
    for sample, (valid, cleaned_ok) in zip(samples, verdicts):
        try:
            sample.decode("utf-8")
            expected = True
        except UnicodeDecodeError:
            expected = False
        assert valid == expected, sample
        assert cleaned_ok, sample
