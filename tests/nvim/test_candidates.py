"""CoVimStatus().candidates and :CoVim status list our candidates as {type, addr}."""

from __future__ import annotations

from covim_peers import connect, host, messages, status, wait_mesh


def test_status_lists_the_host_candidates_and_the_token_carries_them(nvim_factory):
    a, b = nvim_factory(), nvim_factory()
    token = host(a, "alice", ["x"])
    cands = status(a)["candidates"]
    assert cands and all(c["type"] == "host" and c["addr"].startswith("127.0.0.1:") for c in cands)
    connect(b, token, "bob")
    wait_mesh([a, b])
    assert status(b)["candidates"][0]["type"] == "host"
    a.command("CoVim status")
    assert f"candidate host   {cands[0]['addr']}" in messages(a)
    assert "only this machine can join" in messages(a)  # bound to loopback: one line says so


def test_with_an_unanswering_stun_server_the_token_comes_within_about_a_second(nvim_factory):
    import socket
    import time
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        a = nvim_factory()
        a.vars["covim_stun"] = [f"127.0.0.1:{silent.getsockname()[1]}"]
        t0 = time.monotonic()
        host(a, "alice", ["x"])
        waited = time.monotonic() - t0
        assert 0.8 < waited < 2.5, waited  # the gatherer's deadline (1 s), never Neovim blocked
        assert silent.recv(100)[:2] == b"\x00\x01"  # a STUN Binding request, from the session socket
        assert [c["type"] for c in status(a)["candidates"]] == ["host"]
    finally:
        silent.close()
