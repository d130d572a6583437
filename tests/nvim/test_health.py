""":checkhealth covim (lua/covim/health.lua) in a real Neovim with the test init."""

from __future__ import annotations

import re
from pathlib import Path

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
                     "every datagram is sealed with ChaCha20-Poly1305",
                     "a UDP socket binds on 0.0.0.0"]:
        assert expected in ok, f"no OK line with {expected!r} in:\n{report}"
    # It says nothing false: the traffic is encrypted (proto/seal.py).
    assert "not encrypted" not in report, report
    assert "the token would name these addresses: " in report, report


def test_checkhealth_reports_a_udp_address_that_cannot_bind(nvim_factory):
    nvim = nvim_factory()
    nvim.vars["covim_bind"] = "192.0.2.1"  # TEST-NET-1: no interface of this machine has it
    report = "\n".join(checkhealth(nvim))
    assert "ERROR no UDP socket binds on 192.0.2.1: EADDRNOTAVAIL" in report, report


def test_checkhealth_reports_an_unregistered_remote_plugin(nvim_factory):
    nvim = nvim_factory()
    # As if :UpdateRemotePlugins had never run: the manifest's lazy definition is gone.
    nvim.command("autocmd! FuncUndefined CoVimRun")
    lines = checkhealth(nvim)
    errors = [line for line in lines if "ERROR" in line]
    assert errors == ["- ❌ ERROR the remote plugin is not registered: run :CoVimInstall, then restart Neovim"], \
        "\n".join(lines)


def test_health_pins_match_pyproject(nvim_factory):
    """The versions health.lua insists on are exactly pyproject.toml's pins, and
    install.lua reads every pin of pyproject.toml."""
    text = (REPO / "pyproject.toml").read_text()
    pins = dict(re.findall(r'"(pycrdt|pynvim)==([^"]+)"', text))
    nvim = nvim_factory()
    assert nvim.exec_lua("return require('covim.health').pins", []) == pins
    deps = re.search(r"\ndependencies\s*=\s*\[(.*?)\]", text, re.S).group(1)
    assert nvim.exec_lua("return require('covim.install').pins()", []) == re.findall(r'"([^"]+)"', deps)
