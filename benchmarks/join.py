"""Joining a session with a big document, and the plugin host's memory.

Join: the host already shares the document; the clock runs from
``:CoVim connect`` on the joiner (whose python host is already running, so
its ~0.15 s lazy start is not counted; it is reported separately) until the
joiner's buffer has every line and ``CoVimStatus().synced`` is true. The
joiner's text is then checked against the host's (sha256 computed inside each
Neovim).

Memory: VmRSS (and the peak, VmHWM) of each Neovim's python3 remote-plugin host
(the child process behind its 'python3-rplugin-host' channel).
"""

from __future__ import annotations

import time

from .common import (BenchError, Config, connect, digest, fmt_mb, fmt_s, host, peers, rplugin_host_pid, rss_bytes,
                     session, shared_buf, status, wait_until)

LINE = 50  # bytes per line, newline included


def big_lines(total_bytes: int) -> list[str]:
    """ASCII code-like lines of LINE - 1 bytes; every 1000th carries non-ASCII text of the same byte length."""
    out = []
    for i in range(total_bytes // LINE):
        if i % 1000 == 999:
            line = f"{i:07d} // naïve café ✓ {'x' * 40}"
            out.append(line.encode()[:LINE - 1].decode(errors="ignore").ljust(LINE - 1, "y"))
        else:
            out.append(f"{i:07d} local value_{i % 97} = compute(x, {i % 13}) -- ok"[:LINE - 1].ljust(LINE - 1))
    return out


def host_rss(nvim) -> tuple[int, int]:
    pid = rplugin_host_pid(nvim)
    if pid is None:
        raise BenchError("no python host process under Neovim")
    return rss_bytes(pid)


def join_once(cfg: Config, size: int) -> dict:
    lines = big_lines(size)
    expected = digest("\n".join(lines))
    with peers(cfg) as p:
        a, b = p.spawn(2)
        t = time.monotonic()
        a.current.buffer[:] = lines
        t_lines = time.monotonic() - t
        t = time.monotonic()
        token = host(a, "alice")
        t_host = time.monotonic() - t
        t = time.monotonic()
        status(b)  # starts b's python host, so the join below measures the join only
        t_pyhost = time.monotonic() - t
        t0 = time.monotonic()
        connect(b, token, "bob")

        def joined():
            s = status(b)
            if s.get("state") == "failed" or s.get("state") == "idle":
                raise BenchError(f"the join failed: {s}")
            return s.get("synced") and b.api.buf_line_count(s["bufnr"]) == len(lines)
        wait_until(joined, 120, f"the joiner to show {len(lines):,} lines", interval=0.005)
        elapsed = time.monotonic() - t0
        bbuf = shared_buf(b)
        if b.exec_lua("return covim_bench.digest(...)", bbuf) != expected:
            raise BenchError("the joiner's buffer differs from the host's document")
        time.sleep(0.5)  # let both settle (acks, awareness) before reading memory
        rss = {"host": host_rss(a), "joiner": host_rss(b)}
        return {"join": elapsed, "host_cmd": t_host, "set_lines": t_lines, "pyhost": t_pyhost, "rss": rss,
                "lines": len(lines)}


def idle_rss(cfg: Config) -> dict:
    with peers(cfg) as p:
        a, b = session(p, 2, ["hello", "world"])
        time.sleep(1.0)
        return {"host": host_rss(a), "joiner": host_rss(b)}


def run(cfg: Config) -> None:
    group = "3. join"
    sizes = [1_000_000, 10_000_000]
    results = {}
    for size in sizes:
        r = join_once(cfg, size)
        results[size] = r
        target = "≤ 1 s" if size == 10_000_000 else ""
        met = r["join"] <= 1.0 if size == 10_000_000 else None
        cfg.add(group, f"join a {size // 1_000_000} MB document ({r['lines']:,} lines): connect → all lines "
                       f"shown and synced", fmt_s(r["join"]), target, met)
    r = results[sizes[-1]]
    cfg.add(group, f"(context) :CoVim host on the {sizes[-1] // 1_000_000} MB buffer; the joiner's python host "
                   f"lazy start", f"{fmt_s(r['host_cmd'])}; {fmt_s(r['pyhost'])}")
    group = "4. memory"
    idle = idle_rss(cfg)
    worst = max(idle["host"][0], idle["joiner"][0])
    cfg.add(group, "plugin host RSS, idle in a 2-peer session (tiny document)",
            f"host {fmt_mb(idle['host'][0])}, joiner {fmt_mb(idle['joiner'][0])}", "≤ 150 MB", worst <= 150e6)
    rss = r["rss"]
    worst = max(rss["host"][0], rss["joiner"][0])
    cfg.add(group, f"plugin host RSS with the {sizes[-1] // 1_000_000} MB document (after the join; peak VmHWM)",
            f"host {fmt_mb(rss['host'][0])} (peak {fmt_mb(rss['host'][1])}), joiner {fmt_mb(rss['joiner'][0])} "
            f"(peak {fmt_mb(rss['joiner'][1])})", "≤ 150 MB", worst <= 150e6)
