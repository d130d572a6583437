"""A new user's first run: every broken setup gives one actionable line at the
first :CoVim (never E492, never a traceback), and :checkhealth covim says so too.

Each test builds its own broken world on top of the harness's (tests/nvim_harness.py)
and captures vim.notify by replacing it in the test Neovim.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from nvim_harness import INIT_LUA, REPO, NvimEnv, wait_for

FIX = "run :CoVimInstall, then restart Neovim"
DEBIAN_NVIM = REPO / ".venv/debian-neovim/usr/bin/nvim"  # Debian 12's neovim 0.7.2, from scripts/setup.sh


def capture_notify(nvim) -> None:
    nvim.exec_lua("_G.covim_notes = {}; vim.notify = function(msg, level) "
                  "table.insert(_G.covim_notes, {msg, level or 2}) end", [])


def notes(nvim) -> list:
    return nvim.exec_lua("return _G.covim_notes", [])


def first_covim(nvim, command: str = "CoVim host 0 alice") -> list:
    """Run the user's first :CoVim; returns the notifications, after checking no E492/traceback."""
    capture_notify(nvim)
    nvim.command(command)
    found = wait_for(lambda: notes(nvim), 10, what="a notification")
    messages = nvim.command_output("messages")
    assert "E492" not in messages and "Traceback" not in messages, messages
    for text, _ in found:
        assert "\n" not in text and "Traceback" not in text, found
    return found


def world(tmp_path: Path, python: str | None = None, manifest: bool = True) -> NvimEnv:
    env = NvimEnv.create(tmp_path)
    if not manifest:
        (tmp_path / "rplugin.vim").write_text("")
    if python is not None:
        env.init.write_text(env.init.read_text().replace(sys.executable, python))
    return env


def site_packages(venv: Path) -> Path:
    return venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"


def bare_venv(path: Path, modules: tuple[str, ...] = ()) -> str:
    """A venv of the interpreter running the tests with only `modules` (linked from ours)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    ours = Path(sysconfig.get_paths()["purelib"])
    for name in modules:
        for item in [*ours.glob(name), *ours.glob(f"{name}.py"), *ours.glob(f"{name}-*.dist-info")]:
            (site_packages(path) / item.name).symlink_to(item)
    return str(path / "bin" / "python")


def test_remote_plugin_not_registered(tmp_path):
    env = world(tmp_path, manifest=False)
    nvim = env.attach()
    try:
        assert first_covim(nvim) == [
            ["CoVim: the remote plugin is not registered: run :CoVimInstall, then restart Neovim", 4]]
        health = "\n".join(nvim.command("checkhealth covim") or nvim.current.buffer[:])
        assert "ERROR the remote plugin is not registered: run :CoVimInstall, then restart Neovim" in health
    finally:
        nvim.close()


def test_python3_host_without_pynvim(tmp_path):
    python = bare_venv(tmp_path / "bare")
    env = world(tmp_path, python=python)
    nvim = env.attach()
    try:
        assert first_covim(nvim) == [[
            f"CoVim: g:python3_host_prog ({python}) cannot import pynvim: run '{python} -m pip install pynvim', "
            "or unset it and run :CoVimInstall", 4]]
    finally:
        nvim.close()


def test_python_package_missing(tmp_path):
    python = bare_venv(tmp_path / "onlypynvim", ("pynvim", "neovim", "msgpack", "greenlet", "typing_extensions"))
    env = world(tmp_path, python=python)
    nvim = env.attach()
    try:
        assert first_covim(nvim) == [[
            "CoVim: covim's Python packages are not installed (pycrdt, trio, pystun3, cryptography missing): " + FIX,
            4]]
        health = "\n".join(nvim.command("checkhealth covim") or nvim.current.buffer[:])
        assert "ERROR covim's Python packages are not installed" in health, health
    finally:
        nvim.close()


def test_python_package_at_the_wrong_version(tmp_path):
    """A private venv (stdpath('data')/covim/venv) left at an older pin by an update without a build."""
    env = world(tmp_path)
    target = site_packages(tmp_path / "data/nvim/covim/venv")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                           "--target", str(target), "pycrdt==0.14.10"], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.skip(f"pip could not fetch pycrdt 0.14.10 (no package index?): {done.stderr.strip()[-200:]}")
    nvim = env.attach()
    try:
        assert first_covim(nvim) == [["CoVim: covim needs pycrdt 0.14.13 but 0.14.10 is installed: " + FIX, 4]]
    finally:
        nvim.close()


def test_neovim_older_than_the_minimum(tmp_path):
    if not DEBIAN_NVIM.is_file():
        pytest.skip(f"no Debian neovim 0.7.2 at {DEBIAN_NVIM}: run scripts/setup.sh --test")
    root = DEBIAN_NVIM.parents[1]
    env = NvimEnv(tmp_path, str(DEBIAN_NVIM), tmp_path / "init.lua", {})
    env.env = {"VIMRUNTIME": str(root / "share/nvim/runtime"), "NVIM_RPLUGIN_MANIFEST": str(tmp_path / "rplugin.vim"),
               "NVIM_LOG_FILE": str(tmp_path / "nvim.log")}
    for name in ["config", "data", "state", "cache"]:
        (tmp_path / name).mkdir()
        env.env[f"XDG_{name.upper()}_HOME"] = str(tmp_path / name)
    env.init.write_text(INIT_LUA.format(repo=REPO, python=sys.executable))
    nvim = env.attach()
    try:
        assert nvim.api.get_api_info()[1]["version"]["minor"] == 7
        assert first_covim(nvim) == [["CoVim: covim needs Neovim 0.10 or newer; this is Neovim 0.7.2", 4]]
        nvim.command("checkhealth covim")
        health = "\n".join(nvim.current.buffer[:])
        assert "covim needs Neovim 0.10 or newer; this is Neovim 0.7.2" in health, health
        assert "Traceback" not in health and "E5108" not in health and "failed" not in health.lower(), health
    finally:
        nvim.close()


def test_a_working_setup_says_nothing_wrong(nvim_factory):
    nvim = nvim_factory()
    nvim.vars["covim_bind"] = "127.0.0.1"
    nvim.vars["covim_host_addr"] = "127.0.0.1"
    found = first_covim(nvim)
    assert all(level < 4 and text.startswith("CoVim: ") for text, level in found), found
    token = wait_for(lambda: nvim.vars.get("covim_token"), 5, what="the token")
    assert any(token in text and level == 2 for text, level in found), found
    assert nvim.call("CoVimStatus")["state"] == "joined"


def test_private_venv_for_another_python(tmp_path):
    """The venv was made for another Python than the one running the host now (an upgrade)."""
    env = world(tmp_path)
    (tmp_path / "data/nvim/covim/venv/lib/python3.9/site-packages").mkdir(parents=True)
    nvim = env.attach()
    try:
        here = "%d.%d" % sys.version_info[:2]
        assert first_covim(nvim) == [[
            f"CoVim: covim's venv ({tmp_path}/data/nvim/covim/venv) is for python3.9 but the python3 host runs "
            f"Python {here}: " + FIX, 4]]
    finally:
        nvim.close()


def test_no_python3_with_pynvim_anywhere(tmp_path):
    """No g:python3_host_prog, and no python3 on $PATH has pynvim: a fresh machine."""
    bare = Path(bare_venv(tmp_path / "bare")).parent
    path = f"{bare}:/usr/bin:/bin"
    found = [p for p in ("python3", "python") if subprocess.run(
        ["env", f"PATH={path}", p, "-c", "import pynvim"], capture_output=True).returncode == 0]
    if found:
        pytest.skip(f"a python on {path} has pynvim ({found}): no fresh machine to imitate here")
    env = world(tmp_path)
    env.init.write_text(env.init.read_text().replace(f"vim.g.python3_host_prog = [==[{sys.executable}]==]\n", ""))
    env.env["PATH"] = path
    nvim = env.attach()
    try:
        assert nvim.eval("exists('g:python3_host_prog')") == 0
        assert first_covim(nvim) == [[
            "CoVim: Neovim's python3 provider found no python3 with pynvim: run :CoVimInstall (it sets one up for "
            "covim), then restart Neovim", 4]]
    finally:
        nvim.close()
