"""covim behaves like a Neovim plugin: vim.notify with levels, a log file,
statusline(), User autocmds, setup(), completion, the token in registers
without a hit-enter prompt, and the u/<C-r> remaps that can be turned off."""

from __future__ import annotations

import re
import time
from pathlib import Path

from covim_peers import connect, host, prepare, status, wait_mesh
from nvim_harness import wait_for

EVENTS = "CoVimJoined,CoVimLeft,CoVimPeerJoined,CoVimPeerLeft"


def watch(nvim) -> None:
    """Capture vim.notify and covim's User autocmds."""
    nvim.exec_lua(f"""
        _G.notes, _G.events = {{}}, {{}}
        vim.notify = function(msg, level) table.insert(_G.notes, {{msg, level or 2}}) end
        vim.api.nvim_create_autocmd('User', {{ pattern = vim.split('{EVENTS}', ','),
          callback = function(ev) table.insert(_G.events, {{ ev.match, ev.data }}) end }})
    """, [])


def notes(nvim) -> list:
    return nvim.exec_lua("return _G.notes", [])


def events(nvim) -> list:
    return nvim.exec_lua("return _G.events", [])


def statusline(nvim) -> str:
    return nvim.exec_lua("return require('covim').statusline()", [])


def test_notify_events_statusline_and_log(nvim_factory):
    a, b = nvim_factory(), nvim_factory()
    watch(a)
    watch(b)
    assert statusline(a) == ""
    a.exec_lua("require('covim').setup({ name = 'alice', bind = '127.0.0.1', host_addr = '127.0.0.1' })", [])
    assert a.vars["covim_name"] == "alice" and a.vars["covim_bind"] == "127.0.0.1"
    a.current.buffer[:] = ["hello"]
    a.command("CoVim host 0")
    token = wait_for(lambda: a.vars.get("covim_token"), 5, what="the token")
    wait_for(lambda: events(a), 5, what="CoVimJoined on the host")
    assert statusline(a) == "covim 0↔"
    connect(b, token, "bob")
    wait_mesh([a, b])
    wait_for(lambda: statusline(a) == "covim 1↔" and statusline(b) == "covim 1↔", 5, what="covim 1↔ on both")
    wait_for(lambda: [e[0] for e in events(a)] == ["CoVimJoined", "CoVimPeerJoined"], 5, what="a's events")
    joined, peer = events(a)
    assert joined[1]["role"] == "host" and joined[1]["name"] == "alice"
    assert joined[1]["session"] == status(a)["session"] and joined[1]["bufnr"] == a.current.buffer.number
    assert peer[1]["peer"] == "bob" and peer[1]["path"] == "direct" and peer[1]["addr"].startswith("127.0.0.1:")
    wait_for(lambda: [e[0] for e in events(b)] == ["CoVimJoined", "CoVimPeerJoined"], 5, what="b's events")
    assert events(b)[0][1]["role"] == "peer"

    b.command("CoVim disconnect")
    wait_for(lambda: [e[0] for e in events(a)][-1:] == ["CoVimPeerLeft"], 5, what="CoVimPeerLeft on a")
    assert events(a)[-1][1]["peer"] == "bob"
    wait_for(lambda: events(b)[-1][0] == "CoVimLeft", 5, what="CoVimLeft on b")
    assert events(b)[-1][1]["name"] == "bob"
    wait_for(lambda: statusline(b) == "" and statusline(a) == "covim 0↔", 5, what="the statuslines after bob left")

    # Messages: vim.notify, one line each, with levels; the token line is INFO.
    for text, level in notes(a) + notes(b):
        assert text.startswith("CoVim: ") and "\n" not in text and level in (2, 3, 4), (text, level)
    assert any(text == "CoVim: 'bob' is connected" and level == 2 for text, level in notes(a)), notes(a)
    assert any("'bob' " in text and level == 3 for text, level in notes(a)), notes(a)  # left: a warning

    # The log: timestamps, joins, links and leaves; never the token (it is the session key).
    log = Path(a.funcs.stdpath("log")) / "covim.log"
    text = wait_for(lambda: "left session" in (t := log.read_text()) and t, 5, what="the log's leave line")
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} "
    for pattern in [stamp + r"INFO  joined session [0-9a-f]{16} as 'alice' \(host\)",
                    stamp + r"INFO  link up: 'bob' at 127\.0\.0\.1:\d+ \(direct path\)",
                    stamp + r"INFO  link down: 'bob' ",
                    stamp + r"INFO  left session [0-9a-f]{16} as 'bob' \(\d+ malformed or foreign datagrams dropped\)",
                    stamp + r"INFO  CoVim: 'bob' is connected"]:
        assert re.search(pattern, text), (pattern, text)
    assert token not in text


def test_log_is_bounded(nvim_factory):
    nvim = nvim_factory()
    path = Path(nvim.exec_lua("""
        local log = require('covim.log')
        log.MAX_BYTES = 200
        for i = 1, 20 do log.write('INFO', 'line ' .. i) end
        return log.path()""", []))
    assert path.stat().st_size <= 200 + 60 and Path(str(path) + ".1").is_file()
    assert "line 20" in path.read_text()


def test_setup_warns_about_unknown_or_mistyped_options(nvim_factory):
    nvim = nvim_factory()
    watch(nvim)
    nvim.exec_lua("require('covim').setup({ nmae = 'x', join_timeout = 'soon' })", [])
    got = sorted(notes(nvim))
    assert got == [
        ["CoVim: setup(): option 'join_timeout' must be a number, not a string", 3],
        ["CoVim: setup(): unknown option 'nmae' (known: bind, host_addr, join_timeout, name, remap_undo, stun, turn)",
         3]], got


def test_token_in_registers_without_hit_enter_at_80_columns(nvim_factory):
    nvim = nvim_factory()
    nvim.ui_attach(80, 24, rgb=True)  # a screen: hit-enter prompts exist only with one
    watch(nvim)
    nvim.vars["covim_host_addr"] = "127.0.0.1"  # bound to every address, as by default
    nvim.funcs.setreg('"', "something else")
    nvim.input(":CoVim host 0 alice<CR>")
    token = wait_for(lambda: nvim.vars.get("covim_token"), 5, what="the token")
    time.sleep(0.2)
    assert nvim.api.get_mode() == {"mode": "n", "blocking": False}
    assert nvim.funcs.getreg('"') == token
    shown = [t for t, _ in notes(nvim) if token in t]
    assert shown and all(nvim.funcs.strdisplaywidth(t) <= nvim.vvars["echospace"] for t in shown), shown
    nvim.funcs.setreg('"', "something else")
    nvim.input(":CoVim token<CR>")
    wait_for(lambda: nvim.funcs.getreg('"') == token, 5, what=":CoVim token copying again")
    time.sleep(0.2)
    assert nvim.api.get_mode() == {"mode": "n", "blocking": False}
    # 80 columns less 'showcmd' and 'ruler' leave v:echospace = 68: the token itself, no more.
    assert nvim.vvars["echospace"] == 68 and notes(nvim)[-1] == [f"CoVim: {token}", 2]
    # A screen too narrow for the token: a floating window shows it whole, still no prompt.
    nvim.api.ui_try_resize(40, 24)
    nvim.input(":CoVim token<CR>")
    wait_for(lambda: notes(nvim)[-1][0].startswith('CoVim: token copied to ""'), 5, what="the narrow screen's line")
    assert nvim.api.get_mode() == {"mode": "n", "blocking": False}
    win = nvim.exec_lua("return require('covim.token').window", [])
    assert "".join(nvim.api.buf_get_lines(nvim.api.win_get_buf(win), 0, -1, True)) == token


def test_completion(nvim_factory):
    nvim = nvim_factory()

    def complete(line: str) -> list[str]:
        return nvim.funcs.getcompletion(line, "cmdline")

    assert complete("CoVim ") == ["host", "connect", "start", "add", "token", "disconnect", "quit", "status"]
    assert complete("CoVim d") == ["disconnect"]
    assert complete("CoVim host ") == ["8555", "0", nvim.exec_lua("return vim.env.USER or 'peer'", [])]
    nvim.vars["covim_name"] = "zoe"
    assert complete("CoVim connect x ") == ["zoe"]
    token = "covim1-AQR_AAABymUxi2a4KcWOV8B7NavgMXZTpaNVAcN7qts"
    nvim.funcs.setreg('"', token)
    assert complete("CoVim connect ") == [token]
    assert complete("CoVim add ") == []
    assert complete("CoVim token r") == ["readonly"]


def test_undo_remaps_can_be_turned_off(nvim_factory):
    a, b = nvim_factory(), nvim_factory()
    token = host(a, "alice", ["x"])
    b.exec_lua("require('covim').setup({ remap_undo = false })", [])
    connect(b, token, "bob")
    wait_mesh([a, b])
    assert a.funcs.maparg("u", "n", False, True).get("buffer") == 1  # the CRDT's undo by default
    assert b.funcs.maparg("u", "n", False, True) == {}  # Neovim's own u
    prepare(b)


def test_an_error_message_never_becomes_the_error_of_a_request(nvim_factory):
    """With Neovim's own vim.notify, an ERROR is an error message: shown while Neovim
    waits in a request (the user's :CoVim calling Python, a plugin's API call) it
    would fail that request.  covim's messages are shown from the main loop instead."""
    nvim = nvim_factory()
    nvim.command("lua require('covim.notify').notify('boom', 'error')")  # raised NvimError before
    wait_for(lambda: "CoVim: boom" in nvim.command_output("messages"), 3, what="the message")
