"""Keystroke latency: one character inserted in Neovim A until it is in Neovim B's buffer.

The keystroke is ``nvim_buf_set_text`` of one character at a random place in a
200-line ASCII document (it fires ``on_lines`` exactly as typing does). A Lua
helper on A takes ``vim.uv.hrtime()`` just before the insert; an ``on_lines``
watcher on every receiver takes ``hrtime()`` when that receiver's buffer holds
the character (both are CLOCK_MONOTONIC on one machine, so no polling enters
the number). Keystrokes go one at a time: the next one leaves when every
receiver has the previous one.

The floors beside it: a bare Neovim RPC round trip from Python
(``nvim_get_mode``) and a bare UDP round trip on loopback between two Python
processes.
"""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time

from .common import (BenchError, Config, converged_or_raise, deadline_loop, fmt_ms, peers, session, shared_buf,
                     summary_ms)

LINES = 200
WARMUP = 20

ECHO_SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(30)
print(s.getsockname()[1], flush=True)
for _ in range(int(sys.argv[1])):
    try:
        data, addr = s.recvfrom(2048)
    except socket.timeout:
        break
    s.sendto(data, addr)
"""


def doc_lines(rng: random.Random) -> list[str]:
    words = ["alpha", "beta", "gamma", "delta", "return", "self", "value", "(x)", "{", "}", "=", "+"]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 10))) for _ in range(LINES)]


def lua_floor(cfg: Config, n: int, seed: int = 1) -> list[float]:
    """Neovim A -> Neovim B through Lua alone (luv UDP on loopback, nvim_buf_set_text on both
    sides): what a Lua-only plugin pays per keystroke, with two fewer process hops than ours."""
    rng = random.Random(seed)
    lines = doc_lines(rng)
    with peers(cfg) as p:
        a, b = p.spawn(2)
        for nvim in (a, b):
            nvim.current.buffer[:] = lines
        port = b.exec_lua("return covim_bench.udp_listen(...)", b.current.buffer.number)
        abuf = a.current.buffer.number
        sent = []
        for i in range(n + WARMUP):
            row = rng.randrange(LINES)
            sent.append(a.exec_lua("return covim_bench.udp_send(...)", port, abuf, row, 0, "x"))
            for _ in deadline_loop(5, f"Lua-only keystroke {i}", interval=0.0002):
                if b.exec_lua("return covim_bench.udp_arrived()") > i:
                    break
        times = b.exec_lua("return covim_bench.udp_times()")
        if a.current.buffer[:] != b.current.buffer[:]:
            raise BenchError("the Lua-only floor's two buffers differ")
        return [(times[i] - sent[i]) / 1e6 for i in range(WARMUP, n + WARMUP)]


def rpc_floor(cfg: Config, n: int) -> list[float]:
    with peers(cfg) as p:
        (nvim,) = p.spawn(1)
        for _ in range(50):
            nvim.api.get_mode()
        out = []
        for _ in range(n):
            t = time.perf_counter_ns()
            nvim.api.get_mode()
            out.append((time.perf_counter_ns() - t) / 1e6)
        return out


def udp_floor(n: int) -> list[float]:
    server = subprocess.Popen([sys.executable, "-c", ECHO_SERVER, str(n + 100)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(2)
        payload = b"x" * 64
        out = []
        for i in range(n + 50):
            t = time.perf_counter_ns()
            sock.sendto(payload, ("127.0.0.1", port))
            sock.recvfrom(2048)
            if i >= 50:
                out.append((time.perf_counter_ns() - t) / 1e6)
        sock.close()
        return out
    finally:
        server.kill()
        server.wait(5)


def measure(sender, receivers: list, lines: list[str], samples: int, rng: random.Random,
            warmup: int = WARMUP) -> tuple[list[float], list[str]]:
    """Type `samples` (+ warmup) keystrokes one at a time into `sender`, whose shared
    buffer holds the ASCII `lines`; returns (latencies in ms per (keystroke, receiver)
    without the warmup, the expected lines afterwards)."""
    model = list(lines)
    plan = []  # (row, col, char); schedule[i] = [row, byte length of that row once i arrived]
    schedule = []
    for _ in range(warmup + samples):
        row = rng.randrange(len(model))
        col = rng.randint(0, len(model[row]))
        ch = rng.choice("abcdefghijklmnopqrstuvwxyz")
        model[row] = model[row][:col] + ch + model[row][col:]
        plan.append((row, col, ch))
        schedule.append([row, len(model[row])])
    sbuf = shared_buf(sender)
    for r in receivers:
        r.exec_lua("covim_bench.watch(...)", shared_buf(r), schedule)
    sent = []
    for i, (row, col, ch) in enumerate(plan):
        sent.append(sender.exec_lua("return covim_bench.send(...)", sbuf, row, col, ch))
        pending = list(receivers)
        for _ in deadline_loop(5, f"keystroke {i} to reach {len(pending)} peers", interval=0.0002):
            pending = [r for r in pending if r.exec_lua("return covim_bench.arrived()") <= i]
            if not pending:
                break
    out = []
    for r in receivers:
        times = r.exec_lua("return covim_bench.arrival_times()")
        if len(times) != len(plan):
            raise BenchError(f"a receiver recorded {len(times)} arrivals for {len(plan)} keystrokes")
        out += [(times[i] - sent[i]) / 1e6 for i in range(warmup, len(plan))]
    return out, model


def keystrokes(cfg: Config, n_peers: int, samples: int, seed: int = 1) -> list[float]:
    """Latencies in ms, one per (keystroke, receiver)."""
    rng = random.Random(seed)
    lines = doc_lines(rng)
    with peers(cfg) as p:
        nvims = session(p, n_peers, lines)
        out, model = measure(nvims[0], nvims[1:], lines, samples, rng)
        converged_or_raise(nvims, "\n".join(model), f"keystroke latency, {n_peers} peers")
        return out


SLOW_PLUGIN = """
local buf, ms = ...
vim.api.nvim_buf_attach(buf, false, { on_lines = function()
  local t = vim.uv.hrtime() + ms * 1e6
  while vim.uv.hrtime() < t do end
end })
"""


def bursts_with_slow_receiver(cfg: Config, bursts: int, per_burst: int = 100, slow_ms: float = 3,
                              gap_s: float = 0.001) -> list[float]:
    """B runs another plugin whose on_lines handler takes `slow_ms` (a stand-in for a syntax
    or LSP plugin); A types bursts of `per_burst` keystrokes ~`gap_s` apart. Returns, per
    burst, how long after it was typed the burst's last keystroke reached B (ms)."""
    rng = random.Random(4)
    lines = doc_lines(rng)
    out = []
    with peers(cfg) as p:
        a, b = session(p, 2, lines)
        abuf, bbuf = shared_buf(a), shared_buf(b)
        model = list(lines)
        for burst in range(bursts):
            plan, schedule = [], []
            for _ in range(per_burst):
                row = rng.randrange(len(model))
                col = rng.randint(0, len(model[row]))
                model[row] = model[row][:col] + "x" + model[row][col:]
                plan.append((row, col))
                schedule.append([row, len(model[row])])
            b.exec_lua("covim_bench.watch(...)", bbuf, schedule)
            if burst == 0:
                b.exec_lua(SLOW_PLUGIN, bbuf, slow_ms)
            sent = []
            for row, col in plan:
                sent.append(a.exec_lua("return covim_bench.send(...)", abuf, row, col, "x"))
                time.sleep(gap_s)
            for _ in deadline_loop(10, "the burst to reach B", interval=0.001):
                if b.exec_lua("return covim_bench.arrived()") >= per_burst:
                    break
            times = b.exec_lua("return covim_bench.arrival_times()")
            out.append((times[-1] - sent[-1]) / 1e6)
        converged_or_raise([a, b], "\n".join(model), "bursts with a slow receiver")
    return out


def run(cfg: Config) -> None:
    group = "1. keystroke latency"
    samples = cfg.n(1000, 100)
    rpc = summary_ms(rpc_floor(cfg, samples))
    udp = summary_ms(udp_floor(samples))
    cfg.add(group, "floor: Neovim RPC round trip (nvim_get_mode from Python)",
            f"p50 {fmt_ms(rpc['p50'])} · p99 {fmt_ms(rpc['p99'])} (n={rpc['n']})")
    cfg.add(group, "floor: UDP round trip on loopback (two Python processes)",
            f"p50 {fmt_ms(udp['p50'])} · p99 {fmt_ms(udp['p99'])} (n={udp['n']})")
    lua = summary_ms(lua_floor(cfg, samples))
    cfg.add(group, "floor: Lua-only Neovim→Neovim keystroke (luv UDP, set_text on both sides, no Python)",
            f"p50 {fmt_ms(lua['p50'])} · p99 {fmt_ms(lua['p99'])} (n={lua['n']})")
    floor = rpc["p50"] + udp["p50"]
    targets = {2: (1.5, 5.0), 4: (None, None), 8: (None, 10.0)}
    for n_peers, (t50, t99) in targets.items():
        lat = summary_ms(keystrokes(cfg, n_peers, samples))
        value = (f"p50 {fmt_ms(lat['p50'])} · p99 {fmt_ms(lat['p99'])} · max {fmt_ms(lat['max'])} "
                 f"(n={lat['n']}; p50 = {lat['p50'] / floor:.1f}x RPC+UDP floor, "
                 f"{lat['p50'] / rpc['p50']:.1f}x RPC, {lat['p50'] / udp['p50']:.1f}x UDP, "
                 f"{lat['p50'] / lua['p50']:.1f}x the Lua-only floor)")
        parts, met = [], None
        if t50 is not None:
            parts.append(f"p50 ≤ {t50:g} ms")
            met = lat["p50"] <= t50
        if t99 is not None:
            parts.append(f"p99 ≤ {t99:g} ms")
            met = (met is not False) and lat["p99"] <= t99
        who = "A→B" if n_peers == 2 else f"A→each of {n_peers - 1}"
        cfg.add(group, f"keystroke {who}, {n_peers} peers (full mesh)", value, ", ".join(parts), met)
    last = sorted(bursts_with_slow_receiver(cfg, cfg.n(10, 3)))
    cfg.add(group, f"{len(last)} bursts of 100 keystrokes ~1 ms apart while B runs another plugin with a 3 ms "
                   "on_lines handler (0.3 s of B's time per burst; typing one takes ~0.15-0.2 s): "
                   "B has the burst's last keystroke after",
            f"median {fmt_ms(last[len(last) // 2])} · max {fmt_ms(last[-1])}")
