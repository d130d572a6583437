"""Peer assembly (covim_p2p/peer.py): candidates, settings, and the headless entry point."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from covim_p2p import peer as assembly
from covim_p2p.proto.token import PeerToken, SessionToken


def _sock(ip: str = "0.0.0.0") -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 0))
    return s


def test_host_candidates_are_the_interface_addresses_not_the_hostname():
    with _sock() as s:
        port = s.getsockname()[1]
        cands, note = assembly.host_candidates(s, None, lambda: ["192.168.1.20", "10.8.0.3"])
    assert [c.as_dict() for c in cands] == [{"type": "host", "addr": f"192.168.1.20:{port}"},
                                          {"type": "host", "addr": f"10.8.0.3:{port}"}]
    assert note == ""


def test_loopback_only_when_nothing_else_exists_and_the_host_is_told():
    with _sock() as s:
        cands, note = assembly.host_candidates(s, None, lambda: [])
    assert [c.addr[0] for c in cands] == ["127.0.0.1"]
    assert note == "this machine has no network address besides loopback: only this machine can join"


def test_a_socket_bound_to_one_address_offers_that_address():
    with _sock("127.0.0.1") as s:
        cands, note = assembly.host_candidates(s, None, lambda: ["192.168.1.20"])
    assert [c.addr[0] for c in cands] == ["127.0.0.1"] and "only this machine" in note


def test_stun_setting_is_a_string_or_a_list_and_empty_is_off():
    assert assembly.stun_servers("") == [] and assembly.stun_servers([]) == []
    assert assembly.stun_servers("stun.example.org") == [("stun.example.org", 3478)]
    assert assembly.stun_servers(["a.example:19302", "10.0.0.1"]) == [("a.example", 19302), ("10.0.0.1", 3478)]
    assert assembly.stun_servers("a.example:1, b.example:2") == [("a.example", 1), ("b.example", 2)]
    assert assembly.stun_servers(None) == [assembly._host_port(s, 3478, "") for s in assembly.DEFAULT_STUN]
    with pytest.raises(ValueError, match="g:covim_stun must be 'host' or 'host:port'"):
        assembly.stun_servers("stun.example:notaport")


def test_assembled_host_and_waiting_peer_put_their_candidates_in_their_tokens():
    settings = assembly.Settings(bind="127.0.0.1")
    h = assembly.host(settings, 0, "alice", "text")
    try:
        assert h.token_ready and h.role == "host"
        token = SessionToken.decode(h.token_text)
        assert token.addrs == (h.sock.getsockname(),)
        assert h.candidate_dicts() == [{"type": "host", "addr": "%s:%d" % h.sock.getsockname()}]
    finally:
        h.sock.close()
    w = assembly.wait_for_invite(settings, 0, "bob")
    try:
        assert PeerToken.decode(w.token_text).addrs == (w.sock.getsockname(),)
    finally:
        w.sock.close()


def test_a_bad_setting_is_a_sentence_and_the_peer_is_still_built():
    h = assembly.host(assembly.Settings(bind="127.0.0.1", stun="x:y", turn="nonsense"), 0, "alice")
    try:
        assert any("g:covim_stun" in p for p in h.problems) and any("g:covim_turn" in p for p in h.problems)
        assert h.stack.gatherer is None and h.node is not None
    finally:
        h.sock.close()


def _printed_token(host: subprocess.Popen) -> str:
    """The token a headless host prints as one JSON line (within 5 s), or ""."""
    token = ""
    deadline = time.monotonic() + 5
    while not token and time.monotonic() < deadline:
        token = json.loads(host.stdout.readline()).get("token", "")
    return token


def test_headless_host_and_join_share_a_document_over_loopback(tmp_path):
    """``python -m covim_p2p``: the same assembly as the plugin, with no Neovim at all."""
    cmd = [sys.executable, "-m", "covim_p2p"]
    host = subprocess.Popen(cmd + ["host", "--bind", "127.0.0.1", "--name", "h", "--text", "hello",
                                   "--seconds", "4"], stdout=subprocess.PIPE, text=True)
    try:
        token = _printed_token(host)
        joined = subprocess.run(cmd + ["join", token, "--bind", "127.0.0.1", "--name", "j", "--append", " world",
                                       "--seconds", "1.5"], capture_output=True, text=True, timeout=10)
        final = json.loads(joined.stdout.splitlines()[-1])
        assert final["text"] == "hello world" and [p["name"] for p in final["peers"]] == ["h"]
        assert final["peers"][0]["path"] == "direct"
        out, _ = host.communicate(timeout=10)
        host_final = json.loads(out.splitlines()[-1])
        assert host_final["text"] == "hello world"
    finally:
        host.kill()


# ---- IPv6 host candidates (a dual-stack socket, io/udp.py) --------------------------------

def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_a_dual_stack_socket_offers_ipv6_host_candidates_after_the_ipv4_ones():
    from covim_p2p.io.udp import bind_udp
    s = bind_udp("0.0.0.0", 0)
    try:
        if s.family != socket.AF_INET6:
            pytest.skip("no IPv6 on this machine: the socket is IPv4 only (tested below)")
        port = s.getsockname()[1]
        cands, note = assembly.host_candidates(s, None, lambda: ["192.168.1.20"],
                                               lambda: ["2001:db8::5", "fd00::7", "fd00::8"])
        assert [c.as_dict() for c in cands] == [{"type": "host", "addr": f"192.168.1.20:{port}"},
                                              {"type": "host", "addr": f"[2001:db8::5]:{port}"},
                                              {"type": "host", "addr": f"[fd00::7]:{port}"}]
        assert note == ""
    finally:
        s.close()


def test_without_ipv6_the_wildcard_is_an_ipv4_socket_with_ipv4_candidates(monkeypatch):
    from covim_p2p.io import udp
    real = socket.socket

    def no_ipv6(family=socket.AF_INET, *args, **kwargs):
        if family == socket.AF_INET6:
            raise OSError(97, "Address family not supported by protocol")
        return real(family, *args, **kwargs)

    monkeypatch.setattr(udp.socket, "socket", no_ipv6)
    s = udp.bind_udp("0.0.0.0", 0)
    monkeypatch.undo()
    try:
        assert s.family == socket.AF_INET
        cands, _ = assembly.host_candidates(s, None, lambda: ["192.168.1.20"], lambda: ["2001:db8::5"])
        assert [c.addr[0] for c in cands] == ["192.168.1.20"]
    finally:
        s.close()


@pytest.mark.parametrize("host_args,join_args", [
    (["--bind", "::", "--host-addr", "::1"], []),  # over IPv6 loopback, the joiner on a dual-stack socket
    (["--host-addr", "127.0.0.1"], ["--bind", "127.0.0.1"]),  # a dual-stack host, an IPv4-only joiner
], ids=["ipv6", "dual-stack-host-ipv4-joiner"])
def test_headless_peers_over_ipv6_and_across_dual_stack_and_ipv4_only(host_args, join_args):
    if not _has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    cmd = [sys.executable, "-m", "covim_p2p"]
    host = subprocess.Popen(cmd + ["host", *host_args, "--name", "h", "--text", "hello", "--seconds", "4"],
                            stdout=subprocess.PIPE, text=True)
    try:
        token = _printed_token(host)
        assert SessionToken.decode(token).addrs[0][0] == host_args[-1]
        joined = subprocess.run(cmd + ["join", token, *join_args, "--name", "j", "--append", " world",
                                       "--seconds", "1.5"], capture_output=True, text=True, timeout=10)
        final = json.loads(joined.stdout.splitlines()[-1])
        assert final["text"] == "hello world" and final["peers"][0]["path"] == "direct"
        ipv6 = final["peers"][0]["addr"].startswith("[")  # (on one machine it may answer from another address)
        assert ipv6 == (":" in host_args[-1]), final["peers"]
        out, _ = host.communicate(timeout=10)
        assert json.loads(out.splitlines()[-1])["text"] == "hello world"
    finally:
        host.kill()
