"""Throughput: a big paste and a burst of edits, with the longest editor stall.

Stall: a Lua timer ticks every 1 ms in each Neovim; the longest gap between
two ticks is the longest time that Neovim's main loop was busy (the editor was
frozen). A plain Neovim with no session takes the same paste, so its stall is
what Neovim itself costs.
"""

from __future__ import annotations

import random
import time

from .common import (Config, converged_or_raise, digest, fmt_ms, fmt_s, peers, session, shared_buf, wait_size,
                     wait_text)

PASTE_LUA = """
local buf, lines = ...
local t = vim.uv.hrtime()
vim.api.nvim_buf_set_lines(buf, 0, -1, true, lines)
return { t, vim.uv.hrtime() }
"""

BURST_LUA = """
local buf, edits = ...
local t = vim.uv.hrtime()
for _, e in ipairs(edits) do
  vim.api.nvim_buf_set_text(buf, e[1], e[2], e[1], e[2], { e[3] })
end
return { t, vim.uv.hrtime() }
"""


def paste_lines(total_bytes: int) -> list[str]:
    return [f"{i:08d} paste line with some ordinary text in it, ok"[:49].ljust(49) for i in range(total_bytes // 50)]


def paste(cfg: Config, size: int) -> dict:
    lines = paste_lines(size)
    with peers(cfg) as p:
        a, b = session(p, 2, [""])
        (plain,) = p.spawn(1)
        abuf, bbuf = shared_buf(a), shared_buf(b)
        b.exec_lua("covim_bench.track(...)", bbuf)
        for v in (a, b, plain):
            v.exec_lua("covim_bench.stall_start()")
        time.sleep(0.05)
        t_plain = plain.exec_lua(PASTE_LUA, plain.current.buffer.number, lines)
        plain_stall = plain.exec_lua("return covim_bench.stall_max()")
        t0, t1 = a.exec_lua(PASTE_LUA, abuf, lines)
        text = "\n".join(lines)
        timeout = 300 if not cfg.quick else 60
        size_b = wait_size(b, bbuf, len(text.encode()), timeout, f"B to hold {size // 10**6} MB", interval=0.05)
        # before the digest check: hashing 50 MB inside B would be a stall of the benchmark's own
        stalls = [v.exec_lua("return covim_bench.stall_max()") for v in (a, b)]
        if wait_text(b, bbuf, text, timeout, f"B to hold the {size // 10**6} MB paste")[2] != size_b[2]:
            raise AssertionError("B's buffer changed after it reached the paste's size")
        for v in (a, b, plain):
            v.exec_lua("covim_bench.stall_stop()")
        if a.exec_lua("return covim_bench.digest(...)", abuf) != digest(text):
            raise AssertionError("A's buffer is not the paste")
        return {"converge": (size_b[2] - t0) / 1e9, "set_lines": (t1 - t0) / 1e9,
                "plain_set_lines": (t_plain[1] - t_plain[0]) / 1e9, "stall_a": stalls[0], "stall_b": stalls[1],
                "stall_plain": plain_stall}


def burst(cfg: Config, n: int) -> dict:
    rng = random.Random(5)
    model = [f"line {i} " + "text " * rng.randint(1, 10) for i in range(200)]
    start = list(model)
    edits = []
    for _ in range(n):
        row = rng.randrange(len(model))
        col = rng.randint(0, len(model[row]))
        ch = rng.choice("abcdefghijklmnopqrstuvwxyz ")
        model[row] = model[row][:col] + ch + model[row][col:]
        edits.append([row, col, ch])
    with peers(cfg) as p:
        a, b = session(p, 2, start)
        abuf, bbuf = shared_buf(a), shared_buf(b)
        b.exec_lua("covim_bench.track(...)", bbuf)
        for v in (a, b):
            v.exec_lua("covim_bench.stall_start()")
        time.sleep(0.05)
        first = None
        own = 0.0
        for i in range(0, n, 100):  # 100 keystrokes per call: A's own cost per call is in `own`
            t0, t1 = a.exec_lua(BURST_LUA, abuf, edits[i:i + 100])
            first = first or t0
            own = max(own, (t1 - t0) / 1e6)
        a_done = t1
        text = "\n".join(model)
        size_b = wait_text(b, bbuf, text, 120, "B to hold the burst", interval=0.01)
        stalls = [v.exec_lua("return covim_bench.stall_max()") for v in (a, b)]
        for v in (a, b):
            v.exec_lua("covim_bench.stall_stop()")
        converged_or_raise([a, b], text, "10,000-edit burst")
        return {"converge": (size_b[2] - first) / 1e9, "typing": (a_done - first) / 1e9, "stall_a": stalls[0],
                "stall_b": stalls[1], "own": own}


def run(cfg: Config) -> None:
    group = "5. throughput"
    size = 50_000_000 if not cfg.quick else 5_000_000
    r = paste(cfg, size)
    mb = size // 1_000_000
    cfg.add(group, f"{mb} MB paste ({size // 50:,} lines) into A: until B holds it", fmt_s(r["converge"]))
    cfg.add(group, f"{mb} MB paste: longest Neovim stall on A / on B (plain Neovim, no session: set_lines "
                   f"{fmt_s(r['plain_set_lines'])}, stall {fmt_ms(r['stall_plain'])})",
            f"A {fmt_ms(r['stall_a'])} (its set_lines {fmt_s(r['set_lines'])}) / B {fmt_ms(r['stall_b'])}")
    n = cfg.n(10_000, 2_000)
    r = burst(cfg, n)
    cfg.add(group, f"{n:,}-edit burst into A (100 per call, typed in {fmt_s(r['typing'])}): until B holds it",
            fmt_s(r["converge"]))
    cfg.add(group, f"{n:,}-edit burst: longest Neovim stall on A / on B (A's own 100-edit call: "
                   f"{fmt_ms(r['own'])})", f"A {fmt_ms(r['stall_a'])} / B {fmt_ms(r['stall_b'])}")
