"""Micro-benchmark of peer datagram encoding and decoding, old code beside new.

``.venv/bin/python -m benchmarks.micro_codec [--against REV]`` times the
working tree's proto/codec.py and proto/framing.py against the same two files
at REV (default HEAD), loaded side by side from ``git show``, so both columns
come from one process on one machine. Not part of benchmarks.run: it measures
CPU per datagram, not anything a user sees, and it says nothing until compared.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path
from types import ModuleType

from covim_p2p.proto import framing as current

ROOT = Path(__file__).resolve().parent.parent


def load_at(rev: str, tmp: Path) -> ModuleType:
    """framing.py only imports .codec, so the two files make a package of their own."""
    pkg = tmp / "framing_at_rev"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name in ("codec", "framing"):
        src = subprocess.run(["git", "show", f"{rev}:covim_p2p/proto/{name}.py"], cwd=ROOT,
                             check=True, capture_output=True, text=True).stdout
        (pkg / f"{name}.py").write_text(src)
    sys.path.insert(0, str(tmp))
    return importlib.import_module("framing_at_rev.framing")


def cases(f: ModuleType) -> dict[str, tuple]:
    """(epochs, frames) of what the sync path sends most: an edit with an ack, and a full chunk."""
    return {
        "edit: ack(2 ranges) + 60 B data": ((3, 5), [f.Ack(1041, ((1043, 1045), (1050, 1051))),
                                                      f.Data(1052, True, bytes(range(60)))]),
        "chunk: 1100 B data": ((3, 5), [f.Data(2**20, False, b"x" * 1100)]),
    }


def per_op_us(fn) -> float:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=7, number=number)) / number * 1e6


def measure(f: ModuleType) -> dict[tuple[str, str], float]:
    out = {}
    for name, ((src, dst), frames) in cases(f).items():
        def encode():
            return f.encode_datagram(f.KIND_PEER, 0x1234567890ABCDEF, 0x0FEDCBA987654321,
                                     f.encode_peer_body(src, dst, frames))
        datagram = encode()

        def decode():
            header, body = f.decode_datagram_untrusted(datagram)
            return header, f.decode_peer_body_untrusted(body)
        assert decode()[1] == (src, dst, frames)
        out[(name, "encode")] = per_op_us(encode)
        out[(name, "decode")] = per_op_us(decode)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", default="HEAD", help="git revision to compare with (default HEAD)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = load_at(args.against, Path(tmp))
        for name, ((src, dst), frames) in cases(current).items():  # same wire format both ways
            assert (old.encode_peer_body(src, dst, cases(old)[name][1])
                    == current.encode_peer_body(src, dst, frames)), name
        before, after = measure(old), measure(current)
    print(f"{'datagram':34} {'op':7} {args.against + ' µs':>10} {'now µs':>8} {'speedup':>8}")
    for key in before:
        print(f"{key[0]:34} {key[1]:7} {before[key]:10.2f} {after[key]:8.2f} {before[key] / after[key]:7.1f}x")


if __name__ == "__main__":
    main()
