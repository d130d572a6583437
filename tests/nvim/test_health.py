""":checkhealth covim (lua/covim/health.lua) in a real Neovim with the test init."""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path

from covim_p2p.proto import stun

REPO = Path(__file__).resolve().parents[2]


def checkhealth(nvim) -> list[str]:
    nvim.command("checkhealth covim")
    return list(nvim.current.buffer[:])


def ok_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if re.match(r"^- \S* ?OK ", line)]


def test_checkhealth_reports_ok_and_no_error(nvim_factory):
    nvim = nvim_factory()
    lines = checkhealth(nvim)
    report = "\n".join(lines)
    assert not [line for line in lines if "ERROR" in line or "WARNING" in line], report
    ok = "\n".join(ok_lines(lines))
    for expected in ["Neovim 0.1", "python3 host: ", "covim_p2p imports from " + str(REPO / "covim_p2p"),
                     "pycrdt 0.14.13 (the pinned version)", "pynvim 0.6.0 (the pinned version)",
                     "the remote plugin is registered (CoVimRun)",
                     "the remote plugin answers: CoVimStatus().state = idle",
                     "every datagram is sealed; peers make per-pair forward-secret keys",
                     "a UDP socket binds on 0.0.0.0"]:
        assert expected in ok, f"no OK line with {expected!r} in:\n{report}"
    # It says nothing false: the traffic is encrypted (proto/seal.py).
    assert "not encrypted" not in report, report
    assert "a token made now would carry: host " in report, report


def test_checkhealth_reports_a_udp_address_that_cannot_bind(nvim_factory):
    nvim = nvim_factory()
    nvim.vars["covim_bind"] = "192.0.2.1"  # TEST-NET-1: no interface of this machine has it
    report = "\n".join(checkhealth(nvim))
    assert "ERROR no UDP socket binds on 192.0.2.1: Cannot assign requested address" in report, report


def test_checkhealth_shows_the_candidates_and_the_stun_answer(nvim_factory):
    """A STUN server on loopback (a thread answering Binding requests as a real one does)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(5)
    answered = []

    def answer():
        try:
            data, addr = server.recvfrom(2048)
        except OSError:
            return
        request = stun.decode_untrusted(data)
        reply = stun.Message(stun.BINDING, stun.SUCCESS, request.txid)
        reply.add(stun.A_XOR_MAPPED, stun.xor_addr(("203.0.113.7", 40000), request.txid))
        server.sendto(stun.encode(reply), addr)
        answered.append(addr)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        nvim = nvim_factory()
        nvim.vars["covim_bind"] = "127.0.0.1"
        nvim.vars["covim_stun"] = f"127.0.0.1:{server.getsockname()[1]}"
        report = "\n".join(checkhealth(nvim))
        thread.join(5)
        assert answered, report
        port = answered[0][1]
        assert f"OK a UDP socket binds on 127.0.0.1 (here 127.0.0.1:{port})" in report, report
        assert f"a token made now would carry: host 127.0.0.1:{port}, srflx 203.0.113.7:40000" in report, report
        assert "OK STUN: this socket is reachable from outside at 203.0.113.7:40000" in report, report
        assert "WARNING this session listens on loopback only: only this machine can join" in report, report
    finally:
        server.close()


def test_health_pins_match_pyproject(nvim_factory):
    """The versions health.lua insists on are exactly pyproject.toml's pins, and
    install.lua reads every pin of pyproject.toml."""
    text = (REPO / "pyproject.toml").read_text()
    pins = dict(re.findall(r'"(pycrdt|pynvim)==([^"]+)"', text))
    nvim = nvim_factory()
    assert nvim.exec_lua("return require('covim.health').pins", []) == pins
    deps = re.search(r"\ndependencies\s*=\s*\[(.*?)\]", text, re.S).group(1)
    assert nvim.exec_lua("return require('covim.install').pins()", []) == re.findall(r'"([^"]+)"', deps)
