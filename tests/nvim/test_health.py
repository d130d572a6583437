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
    assert not [line for line in lines if "ERROR" in line], report
    ok = "\n".join(ok_lines(lines))
    for expected in ["python3 provider: ", "covim_p2p ", "pycrdt 0.14.13 (the pinned version)",
                     "pynvim 0.6.0 (the pinned version)", ":CoVim is registered",
                     "the remote plugin answers: CoVimStatus().state = idle"]:
        assert expected in ok, f"no OK line with {expected!r} in:\n{report}"


def test_checkhealth_reports_an_unregistered_remote_plugin(nvim_factory):
    nvim = nvim_factory()
    nvim.command("delcommand CoVim")  # as if :UpdateRemotePlugins had never run
    lines = checkhealth(nvim)
    errors = [line for line in lines if "ERROR" in line]
    assert len(errors) == 1 and ":CoVim is not defined" in errors[0], "\n".join(lines)
    assert any(":UpdateRemotePlugins" in line for line in lines)


def test_health_pins_match_pyproject(nvim_factory):
    """The versions health.lua insists on are exactly pyproject.toml's pins."""
    text = (REPO / "pyproject.toml").read_text()
    pins = dict(re.findall(r'"(pycrdt|pynvim)==([^"]+)"', text))
    nvim = nvim_factory()
    assert nvim.exec_lua("return require('covim.health').pins", []) == pins
