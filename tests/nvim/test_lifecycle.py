"""Quitting, errors and hostile input: one clear line, never a hang, nothing left running."""

from __future__ import annotations

import os
import random
import select
import signal
import socket
import time

from covim_peers import connect, host, messages, prepare, status, type_keys, wait_converged, wait_mesh
from nvim_harness import descendant_pids, is_alive, wait_for


def _quit_and_time(nvim_factory, nvim) -> tuple[float, list[int]]:
    pid = nvim_factory.pid(nvim)
    family = [pid, *descendant_pids(pid)]
    t0 = time.monotonic()
    try:
        nvim.command("qa!")
    except Exception:  # noqa: BLE001 - the channel closes under us
        pass
    wait_for(lambda: not is_alive(pid), 10, what="nvim to exit")
    return time.monotonic() - t0, family


def test_qa_while_connected_exits_fast_and_leaves_nothing(nvim_factory):
    a, b = nvim_factory(), nvim_factory()
    token = host(a, "alice", ["x"])
    connect(b, token, "bob")
    wait_mesh([a, b])
    elapsed, family = _quit_and_time(nvim_factory, b)
    assert len(family) >= 2, "the python host should have been running"
    assert elapsed < 2.0, f":qa took {elapsed:.2f} s"
    wait_for(lambda: not any(is_alive(p) for p in family), 5, what="bob's processes to exit")
    # alice hears the goodbye at once rather than after the link timeout
    wait_for(lambda: status(a)["peers"] == [], 3, what="alice sees bob leave")


def test_qa_during_a_nat_check_and_with_a_relay_that_never_answers_exits_fast(nvim_factory):
    """The NAT check runs pystun3 in a worker thread and the TURN client retries for ~15 s:
    neither may hold Neovim or its host back at :qa."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))  # a STUN and TURN "server" that never answers
    port = silent.getsockname()[1]
    try:
        a = nvim_factory()
        prepare(a)
        a.vars["covim_stun"] = f"127.0.0.1:{port}"
        a.vars["covim_turn"] = f"u:p@127.0.0.1:{port}"
        host(a, "alice", ["x"])
        wait_for(lambda: _ready(silent), 3, what="the STUN/TURN requests to start")
        assert status(a)["nat"] == ""  # still checking
        elapsed, family = _quit_and_time(nvim_factory, a)
        assert elapsed < 2.0, f":qa took {elapsed:.2f} s"
        wait_for(lambda: not any(is_alive(p) for p in family), 5, what="alice's processes to exit")
    finally:
        silent.close()


def _ready(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def test_qa_exits_even_when_the_python_host_is_wedged(nvim_factory):
    a, b = nvim_factory(), nvim_factory()
    token = host(a, "alice", ["x"])
    connect(b, token, "bob")
    wait_mesh([a, b])
    hosts = descendant_pids(nvim_factory.pid(b))
    assert hosts
    for pid in hosts:
        os.kill(pid, signal.SIGSTOP)
    try:
        elapsed, _ = _quit_and_time(nvim_factory, b)
        assert elapsed < 2.0, f":qa with a wedged host took {elapsed:.2f} s"
    finally:
        for pid in hosts:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    wait_for(lambda: not any(is_alive(p) for p in hosts), 5, what="the python host to exit after nvim")


def test_covim_quit_disconnects_and_quits(nvim_factory):
    a, b = nvim_factory(), nvim_factory()
    token = host(a, "alice", ["x"])
    connect(b, token, "bob")
    wait_mesh([a, b])
    pid = nvim_factory.pid(b)
    try:
        b.command("CoVim quit")
    except Exception:  # noqa: BLE001
        pass
    wait_for(lambda: not is_alive(pid), 5, what=":CoVim quit to end nvim")
    wait_for(lambda: status(a)["peers"] == [], 3, what="alice sees bob leave")


def _no_traceback(nvim) -> str:
    text = messages(nvim)
    assert "Traceback" not in text and "Error invoking" not in text, text
    assert nvim.eval("1 + 1") == 2  # and Neovim still answers
    return text


def test_port_in_use_is_one_clear_line(nvim_factory):
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    try:
        a = nvim_factory()
        prepare(a)
        a.command(f"CoVim host {busy.getsockname()[1]} alice")
        wait_for(lambda: "already in use" in messages(a), 3, what="the port-in-use message")
        _no_traceback(a)
        assert status(a)["state"] == "idle"
        # the half-made setup is undone: no covim mapping or autocmd is left in the buffer
        assert a.call("maparg", "u", "n", 0, 1) == {}
        assert a.call("exists", f"#covim_buf_{a.current.buffer.number}") == 0
    finally:
        busy.close()


def test_a_bad_stun_setting_is_one_line_and_the_session_goes_on(nvim_factory):
    a = nvim_factory()
    prepare(a)
    a.vars["covim_stun"] = "stun.example:notaport"
    a.command("CoVim host 0 alice")
    wait_for(lambda: "g:covim_stun must be 'host' or 'host:port'" in messages(a), 3, what="the setting's message")
    _no_traceback(a)
    assert status(a)["state"] == "joined" and status(a)["nat"] == ""


def test_bad_token_and_bad_commands_are_one_clear_line(nvim_factory):
    a = nvim_factory()
    prepare(a)
    a.command("CoVim connect not-a-token bob")
    a.command("CoVim connect covim1-AAAA bob")
    a.command("CoVim frobnicate")
    a.command("CoVim disconnect")
    wait_for(lambda: "not in a session" in messages(a), 3, what="the last of the four messages")
    text = _no_traceback(a)
    assert "not a covim token" in text and "damaged covim token" in text
    assert "unknown command 'frobnicate'" in text


def test_unreachable_host_fails_after_the_timeout(nvim_factory):
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))  # bound but silent: packets vanish, like a host that is gone
    try:
        a, b = nvim_factory(), nvim_factory()
        token = host(a, "alice", ["x"])
        from covim_p2p.proto.token import SessionToken
        parsed = SessionToken.decode(token)
        silent = SessionToken((dead.getsockname()[:2],), parsed.session, parsed.secret).encode()
        prepare(b)
        b.vars["covim_join_timeout"] = 1.0
        t0 = time.monotonic()
        b.command(f"CoVim connect {silent} bob")
        wait_for(lambda: "no answer from the host" in messages(b), 5, what="the join timeout message")
        assert time.monotonic() - t0 < 4
        _no_traceback(b)
        assert status(b)["state"] == "failed"
        # and afterwards a good token still works
        connect(b, token, "bob")
        wait_mesh([a, b])
    finally:
        dead.close()


def test_name_clash_is_refused_with_the_name(nvim_factory):
    a, b = nvim_factory(), nvim_factory()
    token = host(a, "alice", ["x"])
    connect(b, token, "alice")
    wait_for(lambda: "already taken" in messages(b), 5, what="the name clash message")
    assert "'alice'" in _no_traceback(b)
    assert status(b)["state"] == "failed"


def test_garbage_datagrams_are_dropped_and_counted(nvim_factory):
    a, b = nvim_factory(), nvim_factory()
    token = host(a, "alice", ["before garbage"])
    connect(b, token, "bob")
    wait_mesh([a, b])
    port = int(status(b)["peers"][0]["addr"].rsplit(":", 1)[1])
    rng = random.Random(3)
    junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(300):
            size = rng.randint(0, 1500)
            data = bytes(rng.getrandbits(8) for _ in range(size))
            if i % 3 == 0:  # a plausible header with a garbage body
                data = b"CV\x01\x02" + data
            junk.sendto(data, ("127.0.0.1", port))
    finally:
        junk.close()
    wait_for(lambda: status(a)["dropped"] >= 250, 5, what="the garbage to be counted")
    by = status(a)["dropped_by"]
    assert by["garbled"] >= 250 and sum(by.values()) == status(a)["dropped"]  # counted by reason
    type_keys(b, "Aand after<Esc>")
    assert wait_converged([a, b]) == ["before garbageand after"]
    _no_traceback(a)
