"""Shared plumbing: rows, statistics, and sessions of real headless Neovims.

The Neovims come from tests/nvim_harness.py (isolated init, XDG dirs and
rplugin manifest) and talk over loopback only: every one gets
g:covim_host_addr = g:covim_bind = 127.0.0.1, as tests/nvim/covim_peers.py
does. Benchmarks measure; they never assert a timing. They do assert
correctness (the converged text is the expected text), by raising.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from nvim_harness import NvimEnv, NvimFactory, descendant_pids  # noqa: E402

LUA = Path(__file__).resolve().parent / "bench.lua"
# The recorded sessions live in the project's shared/ folder beside the checkout; COVIM_TRACES overrides.
TRACES = Path(os.environ.get("COVIM_TRACES", REPO.parent / "shared/data/editing-traces"))


class BenchError(AssertionError):
    """A correctness check inside a benchmark failed (never a timing)."""


@dataclass
class Row:
    group: str
    name: str
    value: str
    target: str = ""
    met: bool | None = None  # None: no target
    note: str = ""

    @property
    def verdict(self) -> str:
        return "" if self.met is None else ("met" if self.met else "MISSED")


@dataclass
class Config:
    quick: bool
    env: NvimEnv
    code: Path | None = None  # benchmark the plugin code in this directory instead of the checkout
    revision: str = ""  # what plugin code is measured, for RESULTS.md
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def add(self, *args, **kwargs) -> Row:
        row = Row(*args, **kwargs)
        self.rows.append(row)
        mark = f"  [{row.verdict}]" if row.verdict else ""
        print(f"    {row.name}: {row.value}{('  (target ' + row.target + ')') if row.target else ''}{mark}",
              flush=True)
        return row


# ---- statistics -----------------------------------------------------------------

def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def summary_ms(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": percentile(values, 50), "p99": percentile(values, 99),
            "max": max(values), "mean": sum(values) / len(values)}


def fmt_ms(x: float) -> str:
    if x < 10:
        return f"{x:.2f} ms"
    if x < 1000:
        return f"{x:.0f} ms"
    return f"{x / 1000:.2f} s"


def fmt_s(x: float) -> str:
    return f"{x:.3f} s" if x < 10 else f"{x:.1f} s"


def fmt_mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:.1f} MB"


def deadline_loop(timeout: float, what: str, interval: float = 0.001) -> Iterator[int]:
    """for i in deadline_loop(5, 'x'): ... break when done. Raises BenchError on timeout."""
    end = time.monotonic() + timeout
    i = 0
    while True:
        yield i
        i += 1
        if time.monotonic() > end:
            raise BenchError(f"timed out after {timeout} s waiting for {what}")
        if interval:
            time.sleep(interval)


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.002):
    for _ in deadline_loop(timeout, what, interval):
        value = predicate()
        if value:
            return value
    return None  # unreachable


# ---- processes ---------------------------------------------------------------------

def rss_bytes(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in bytes."""
    rss = hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) * 1024
    return rss, hwm


def rplugin_host_pid(nvim) -> int | None:
    """The pid of this Neovim's python3 remote-plugin host (our plugin's process), found by
    its channel's client info: a `:py3` command would start a second, separate script host."""
    for chan in nvim.api.list_chans():
        if (chan.get("client") or {}).get("name") == "python3-rplugin-host":
            pid = nvim.funcs.jobpid(chan["id"])
            return pid if pid in descendant_pids(nvim.funcs.getpid()) else None
    return None


# ---- Neovims and sessions ----------------------------------------------------------

def use_code(env: NvimEnv, code: Path) -> None:
    """Make the python hosts of `env` (created with NvimEnv.create(plugin=code),
    which loads code's lua/, plugin/ and rplugin/) import covim_p2p from `code`
    too: PYTHONPATH comes before the checkout's editable install."""
    env.env["PYTHONPATH"] = str(code)
    # the way pynvim starts its host: without the working directory on sys.path
    probe = "import sys; sys.path = [p for p in sys.path if p]; import covim_p2p; sys.stdout.write(covim_p2p.__file__)"
    where = subprocess.run(["env", *[f"{k}={v}" for k, v in env.env.items()], sys.executable, "-c", probe],
                           capture_output=True, text=True, timeout=60).stdout
    if not where.startswith(str(code)):
        raise BenchError(f"with PYTHONPATH={code}, python imports covim_p2p from {where or '?'}")


class Peers:
    """Headless Neovims with our plugin, plus the benchmark Lua helpers in each."""

    def __init__(self, env: NvimEnv):
        self.factory = NvimFactory(env)
        self.nvims: list = []

    def spawn(self, n: int = 1) -> list:
        out = []
        for _ in range(n):
            nvim = self.factory()
            nvim.exec_lua("dofile(...)", str(LUA))
            nvim.vars["covim_host_addr"] = "127.0.0.1"
            nvim.vars["covim_bind"] = "127.0.0.1"
            out.append(nvim)
        self.nvims += out
        return out

    def pid(self, nvim) -> int:
        return self.factory.pid(nvim)

    def stop(self, nvim) -> None:
        self.nvims.remove(nvim)
        self.factory.stop(nvim)

    def close(self) -> None:
        for nvim in list(self.factory.running):
            try:
                self.factory.stop(nvim, timeout=3)
            except Exception:  # noqa: BLE001 - best effort
                pass
        self.nvims.clear()


@contextmanager
def peers(cfg: Config) -> Iterator[Peers]:
    p = Peers(cfg.env)
    try:
        yield p
    finally:
        p.close()


def status(nvim) -> dict:
    return nvim.call("CoVimStatus")


def host(nvim, name: str = "alice", lines: list[str] | None = None) -> str:
    if lines is not None:
        nvim.current.buffer[:] = lines
    nvim.command(f"CoVim host 0 {name}")
    return nvim.vars["covim_token"]


def connect(nvim, token: str, name: str) -> None:
    nvim.command(f"CoVim connect {token} {name}")


def session(p: Peers, n: int, lines: list[str], timeout: float = 30) -> list:
    """n Neovims in one session on `lines`, full mesh up, everyone synced."""
    nvims = p.spawn(n)
    token = host(nvims[0], "peer0", lines)
    for i, nvim in enumerate(nvims[1:], 1):
        connect(nvim, token, f"peer{i}")
    wait_mesh(nvims, timeout)
    return nvims


def wait_mesh(nvims: list, timeout: float = 30) -> None:
    n = len(nvims)

    def ready():
        return all(len((s := status(v))["peers"]) == n - 1 and s.get("synced") for v in nvims)
    wait_until(ready, timeout, f"a full mesh of {n} synced peers", interval=0.01)


def shared_buf(nvim) -> int:
    return status(nvim)["bufnr"]


def buffer_text(nvim, buf: int) -> str:
    return "\n".join(nvim.api.buf_get_lines(buf, 0, -1, True))


def digest(text: str) -> str:
    import hashlib
    return hashlib.sha256(text.encode()).hexdigest()


def wait_size(nvim, buf: int, nbytes: int, timeout: float, what: str, interval: float = 0.002) -> list:
    """Wait until `buf` holds `nbytes` bytes; returns size() as wait_text does.
    Cheap for Neovim, unlike the digest, so a stall measured meanwhile is the plugin's."""
    for _ in deadline_loop(timeout, what, interval):
        size = nvim.exec_lua("return covim_bench.size(...)", buf)
        if size[0] == nbytes:
            return size
    return []  # unreachable


def wait_text(nvim, buf: int, expected: str, timeout: float, what: str, interval: float = 0.002) -> list:
    """Wait until `buf` holds exactly `expected`; returns the last size() answer
    ({bytes, lines, hrtime of the last change}). Compares by byte length first,
    then by sha256 computed inside Neovim, so big buffers never cross the RPC."""
    want_len = len(expected.encode())
    want = None
    for _ in deadline_loop(timeout, what, interval):
        size = nvim.exec_lua("return covim_bench.size(...)", buf)
        if size[0] == want_len or (want_len == 0 and size[1] == 1):
            want = want or digest(expected)
            if nvim.exec_lua("return covim_bench.digest(...)", buf) == want:
                return size
    return []  # unreachable


def diagnose(nvims: list) -> str:
    """One line per peer for an error message: session state, queues, buffer size."""
    out = []
    for i, nvim in enumerate(nvims):
        try:
            st = status(nvim)
            size = nvim.exec_lua("return covim_bench.size(...)", st["bufnr"])
            keys = ("state", "synced", "pending_remote", "resyncs", "dropped")
            out.append(f"peer {i}: {', '.join(f'{k}={st.get(k)}' for k in keys)}, "
                       f"peers={[p['name'] for p in st['peers']]}, buffer {size[0]} bytes / {size[1]} lines")
        except Exception as exc:  # noqa: BLE001 - a diagnosis must not hide the original error
            out.append(f"peer {i}: no status ({type(exc).__name__}: {exc})")
    return "; ".join(out)


def converged_or_raise(nvims: list, expected: str, what: str) -> None:
    for i, nvim in enumerate(nvims):
        got = buffer_text(nvim, shared_buf(nvim))
        if got != expected:
            at = next((j for j, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
            raise BenchError(f"{what}: peer {i} differs from the expected text at character {at} "
                             f"(got {len(got)} chars, want {len(expected)}): "
                             f"{got[max(0, at - 30):at + 30]!r} vs {expected[max(0, at - 30):at + 30]!r}")
