"""What a plugin manager does with the README's one spec, on a fresh Neovim config:
clone the repository onto the runtimepath, run the spec's build (:CoVimInstall)
in a headless Neovim, restart, then :CoVim host and :help covim work.

The build really installs from the package index with pip (its cache is reused).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pynvim
import pytest

from nvim_harness import REPO, find_nvim, wait_for

INIT = """\
vim.opt.rtp:prepend([==[{plugin}]==])  -- where lazy.nvim puts a plugin
vim.g.loaded_node_provider = 0
vim.g.loaded_ruby_provider = 0
vim.g.loaded_perl_provider = 0
vim.opt.swapfile = false
{extra}"""


@pytest.mark.timeout(900)  # pip from the package index: ~15 s on an idle machine, a minute under load
@pytest.mark.parametrize("host_prog", [None, sys.executable], ids=["python3 on PATH", "g:python3_host_prog"])
def test_fresh_clone_build_restart_host_and_help(tmp_path, host_prog):
    """host_prog None: whatever python3 $PATH has (here: one without pynvim, so the
    venv becomes the python3 host); else a g:python3_host_prog of the user's, with
    pynvim and other versions of anything, whose environment the build leaves alone."""
    plugin = tmp_path / "lazy" / "covim-p2p"
    subprocess.run(["git", "clone", "-q", str(REPO), str(plugin)], check=True, timeout=120)
    init = tmp_path / "init.lua"
    extra = f"vim.g.python3_host_prog = [==[{host_prog}]==]\n" if host_prog else ""
    init.write_text(INIT.format(plugin=plugin, extra=extra))
    env = dict(os.environ, NVIM_LOG_FILE=str(tmp_path / "nvim.log"))
    env.pop("NVIM_RPLUGIN_MANIFEST", None)  # the real default: stdpath('data')/rplugin.vim
    # pip's cache lives under XDG_CACHE_HOME unless told otherwise: keep the real one.
    env.setdefault("PIP_CACHE_DIR", str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pip"))
    for name in ["config", "data", "state", "cache"]:
        (tmp_path / name).mkdir()
        env[f"XDG_{name.upper()}_HOME"] = str(tmp_path / name)
    nvim = find_nvim()

    t0 = time.monotonic()
    build = subprocess.run([nvim, "--headless", "-u", str(init), "-i", "NONE", "-n", "+CoVimInstall", "+qa!"],
                           env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    took = time.monotonic() - t0
    print(f"build (venv + pip + helptags + :UpdateRemotePlugins) took {took:.1f} s")
    output = build.stdout + build.stderr
    assert build.returncode == 0 and "CoVim: installed; restart Neovim to use :CoVim" in output, output
    venv = tmp_path / "data/nvim/covim/venv"
    assert (venv / "bin/python").is_file()
    assert str(plugin / "rplugin/python3/covim.py") in (tmp_path / "data/nvim/rplugin.vim").read_text()
    assert "covim\t" in (plugin / "doc/tags").read_text()
    no_pynvim = subprocess.run(["python3", "-c", "import pynvim"], env=env, capture_output=True).returncode != 0
    assert (venv / "covim-is-python3-host").exists() == (no_pynvim and host_prog is None)

    # The restart: a new Neovim with the same config and data.
    argv = ["env", *[f"{k}={v}" for k, v in env.items() if k.startswith(("XDG_", "NVIM_", "PATH", "HOME"))],
            nvim, "-u", str(init), "-i", "NONE", "-n", "--embed", "--headless"]
    vim = pynvim.attach("child", argv=argv)
    try:
        vim.command("help covim")
        assert vim.current.buffer.name == str(plugin / "doc/covim.txt")
        vim.command("close")
        vim.vars["covim_bind"] = "127.0.0.1"
        vim.vars["covim_host_addr"] = "127.0.0.1"
        vim.vars["covim_stun"] = ""  # tests never ask public STUN servers
        vim.exec_lua("_G.notes = {}; vim.notify = function(m, l) table.insert(_G.notes, {m, l}) end", [])
        vim.command("CoVim host 0 alice")
        status = wait_for(lambda: vim.call("CoVimStatus"), 10, what="CoVimStatus()")
        assert status["state"] == "joined" and status["role"] == "host", status
        assert wait_for(lambda: vim.vars.get("covim_token"), 5, what="the token").startswith("covim1-")
        notes = vim.exec_lua("return _G.notes", [])
        assert all(level < 4 for _, level in notes) and any("covim1-" in text for text, _ in notes), notes
        vim.command("checkhealth covim")
        health = "\n".join(vim.current.buffer[:])
        assert "ERROR" not in health, health
        # The Python half runs from the clone, with the venv's pinned packages.
        assert f"covim_p2p imports from {plugin / 'covim_p2p'}" in health, health
        assert f"private venv: {venv}" in health, health
        if host_prog:
            assert f"python3 host: {host_prog} " in health, health
    finally:
        try:
            vim.command("qa!")
        except Exception:  # noqa: BLE001 - it quits before it answers
            pass
        vim.close()
