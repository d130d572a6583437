"""Run the benchmark suite: ``.venv/bin/python -m benchmarks.run [--quick] [--only NAME ...]``.

Prints a table and writes benchmarks/RESULTS.md (machine, versions, every row
with its target and met/missed). Timings are never asserted; correctness
checks inside the benchmarks raise, and a benchmark that raises becomes an
ERROR row (the others still run) and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from . import concurrency, connectivity, join, latency, throughput, traces
from .common import REPO, BenchError, Config, NvimEnv, Row, use_code

HERE = Path(__file__).resolve().parent
SUITES = {
    "latency": latency.run,
    "traces": traces.run,
    "join": join.run,
    "throughput": throughput.run,
    "connectivity": connectivity.run,
    "concurrency": concurrency.run,
}


def machine() -> dict[str, str]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = "?"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "ram": mem,
            "kernel": platform.release(), "os": platform.platform(terse=True)}


def versions(nvim: str) -> dict[str, str]:
    out = subprocess.run([nvim, "--version"], capture_output=True, text=True, timeout=20).stdout
    return {"python": platform.python_version(), "nvim": out.splitlines()[0] if out else "?",
            "pycrdt": version("pycrdt"), "pynvim": version("pynvim"), "trio": version("trio")}


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise BenchError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


PLUGIN_DIRS = ("covim_p2p", "lua", "plugin", "rplugin")


def export_rev(rev: str, into: Path) -> str:
    """The plugin (covim_p2p/, lua/, plugin/, rplugin/) of commit `rev`, read from git into `into`."""
    into.mkdir()
    # pyproject.toml too: the entry point checks the pins it declares
    archive = subprocess.run(["git", "archive", "--format=tar", rev, *PLUGIN_DIRS, "pyproject.toml"], cwd=HERE.parent,
                             capture_output=True, timeout=60)
    if archive.returncode != 0:
        raise BenchError(f"git archive {rev} failed: {archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True, timeout=60)
    return git("log", "-1", "--format=%h %s", rev).strip()


def revision(args) -> str:
    """What plugin code was measured."""
    if args.rev:
        return f"{args.described} (`--rev {args.rev}`: that commit's plugin, exported with git archive)"
    if args.code:
        return f"the code in {args.code} (`--code`)"
    try:
        head = git("log", "-1", "--format=%h %s").strip()
        dirty = git("status", "--porcelain", "--", "covim_p2p", "lua", "plugin", "rplugin")
    except (OSError, subprocess.SubprocessError, BenchError):
        return "unknown (no git)"
    files = sorted({line[3:] for line in dirty.splitlines() if line.strip()})
    return head + (f" + uncommitted changes in {', '.join(files)}" if files else "")


def table(rows: list[Row]) -> list[str]:
    out = ["| # | benchmark | result | target | verdict |", "|---|---|---|---|---|"]
    for row in rows:
        verdict = {"met": "met", "MISSED": "**missed**"}.get(row.verdict, row.verdict)
        if row.group == "error":
            verdict = "**ERROR**"
        value = row.value.replace("|", "\\|")
        out.append(f"| {row.group.split('.')[0]} | {row.name} | {value} | {row.target or '—'} | {verdict or '—'} |")
    return out


def write_results(path: Path, cfg: Config, mach: dict, vers: dict, elapsed: float, argv: list[str]) -> None:
    mode = "quick (--quick: fewer samples, smaller documents; not comparable)" if cfg.quick else "full"
    lines = [
        "# covim-p2p benchmark results",
        "",
        f"Written by `bash benchmarks/run.sh{' ' + ' '.join(argv) if argv else ''}` on "
        f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; mode: {mode}; "
        f"the suite took {elapsed:.0f} s.",
        "Benchmarks never assert timings; they do assert that every peer converged to the expected text.",
        "",
        "## Machine",
        "",
        f"- CPU: {mach['cpu']}, nproc {mach['nproc']}",
        f"- RAM: {mach['ram']}",
        f"- OS: {mach['os']} (kernel {mach['kernel']})",
        "",
        "## Versions",
        "",
        f"- Python {vers['python']}, {vers['nvim']}, pycrdt {vers['pycrdt']}, pynvim {vers['pynvim']}, "
        f"trio {vers['trio']}",
        f"- covim-p2p: {cfg.revision}",
        "",
        "## Results",
        "",
        *table(cfg.rows),
        "",
    ]
    if cfg.notes:
        lines += ["## Notes", "", *[f"- {n}" for n in cfg.notes], ""]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: fewer samples, smaller documents")
    parser.add_argument("--only", nargs="*", choices=list(SUITES), help="run only these groups")
    parser.add_argument("--results", type=Path, metavar="PATH",
                        help="write the results here (default: benchmarks/RESULTS.md for a full run, "
                             "nothing for --quick or --only, so a partial run never replaces the real numbers)")
    parser.add_argument("--no-write", action="store_true", help="write no results file")
    code = parser.add_mutually_exclusive_group()
    code.add_argument("--rev", metavar="REV", help="benchmark the plugin code of this commit (e.g. HEAD: the "
                      "committed code only, unaffected by edits made while the suite runs)")
    code.add_argument("--code", type=Path, metavar="DIR", help="benchmark the plugin code in DIR (holding "
                      "covim_p2p/, lua/, plugin/ and rplugin/), e.g. a patched copy, to compare a fix against the checkout")
    args = parser.parse_args(argv)
    raw_argv = sys.argv[1:] if argv is None else argv
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="covim-bench-") as tmp:
        code = args.code.resolve() if args.code else None
        if args.rev:
            code = Path(tmp) / "code"
            args.described = export_rev(args.rev, code)
        if code is not None:
            missing = [d for d in PLUGIN_DIRS if not (code / d).is_dir()]
            if missing:
                raise SystemExit(f"--code {code}: no {', '.join(missing)} there")
        env = NvimEnv.create(Path(tmp), plugin=code or REPO)
        if code is not None:
            use_code(env, code)
        cfg = Config(quick=args.quick, env=env, code=code)
        cfg.revision = revision(args)
        mach, vers = machine(), versions(env.nvim)
        print(f"covim-p2p benchmarks ({'quick' if args.quick else 'full'}) on {mach['cpu']} x{mach['nproc']}, "
              f"{mach['ram']}; {vers['nvim']}, pycrdt {vers['pycrdt']}; code: {cfg.revision}", flush=True)
        failed = False
        for name, fn in SUITES.items():
            if args.only and name not in args.only:
                continue
            t = time.monotonic()
            print(f"== {name}", flush=True)
            try:
                fn(cfg)
            except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
                failed = True
                traceback.print_exc()
                cfg.add("error", f"{name} failed", f"{type(exc).__name__}: {exc}"[:400])
            print(f"   ({time.monotonic() - t:.0f} s)", flush=True)
        elapsed = time.monotonic() - started
    print()
    print("\n".join(table(cfg.rows)))
    for note in cfg.notes:
        print(f"note: {note}")
    path = args.results or (None if args.quick or args.only else HERE / "RESULTS.md")
    if path is not None and not args.no_write:
        write_results(path, cfg, mach, vers, elapsed, raw_argv)
        print(f"\nwrote {path}")
    print(f"total {elapsed:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
