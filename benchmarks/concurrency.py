"""Concurrent typing: several people type single characters at random places at once, as fast
as nvim_input takes keys.  Counts what every peer ends with against what was typed: inserts
lost or duplicated, original characters lost, per 10,000 keystrokes.  The count must be 0 (it is
asserted, like the trace replays' text); the time to converge is measured, never asserted."""

from __future__ import annotations

import random
import time
from collections import Counter

from .common import BenchError, Config, peers, session, shared_buf, status

ORIGINAL = [("." * 19 + "-" * 19 + ",") for _ in range(30)]
ALPHABETS = ["abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", "αβγδεζηθικλμνξοπρστυφχψω"]


def race(cfg: Config, n_peers: int, keystrokes: int, seed: int) -> tuple[int, int, int, float, int]:
    """(lost, duplicated, resyncs, seconds from the last keystroke sent to identical buffers, typed)."""
    rng = random.Random(seed)
    per_peer = keystrokes // n_peers
    with peers(cfg) as p:
        nvims = session(p, n_peers, ORIGINAL)
        typed: Counter = Counter()
        for k in range(per_peer):
            for i, nvim in enumerate(nvims):
                c = rng.choice(ALPHABETS[i])
                nvim.input(f"{rng.randint(1, len(ORIGINAL))}G{rng.randint(1, 39)}|i{c}<Esc>")
                typed[c] += 1
            if k % 25 == 24:
                for nvim in nvims:
                    nvim.command("echo ''")
        sent = time.monotonic()
        texts: list[str] = []
        for _ in range(6000):  # bounded: at most ~60 s
            texts = ["\n".join(v.api.buf_get_lines(shared_buf(v), 0, -1, True)) for v in nvims]
            if all(t == texts[0] for t in texts) and all(status(v)["pending_remote"] == 0 for v in nvims):
                break
            time.sleep(0.01)
        else:
            raise BenchError(f"{n_peers} concurrent typists: the buffers never became identical")
        converged = time.monotonic() - sent
        got = Counter(texts[0].replace("\n", ""))
        want = Counter("".join(ORIGINAL)) + typed
        lost = sum((want - got).values())
        duplicated = sum((got - want).values())
        resyncs = sum(status(v)["resyncs"] for v in nvims)
        print(f"    ({n_peers} peers: {sum(status(v).get('refusals', 0) for v in nvims)} applies refused and retried)")
        return lost, duplicated, resyncs, converged, sum(typed.values())


def run(cfg: Config) -> None:
    group = "7. concurrent typing"
    total = cfg.n(10_000, 1_000)
    for n_peers in (2, 4):
        lost, duplicated, resyncs, converged, typed = race(cfg, n_peers, total, seed=n_peers)
        per10k = (lost + duplicated) * 10_000 / typed
        cfg.add(group, f"{n_peers} peers type {typed} single-character inserts at random places at once "
                       f"(nvim_input, no pacing): edits lost or duplicated per 10,000 keystrokes",
                f"{per10k:g} (lost {lost}, duplicated {duplicated}; resyncs {resyncs}; identical "
                f"{converged:.2f} s after the last key was sent)", "0", per10k == 0)
        if lost or duplicated:
            raise BenchError(f"{n_peers} concurrent typists: {lost} characters lost, {duplicated} duplicated")
