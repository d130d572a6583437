"""covim-p2p benchmark suite: `bash benchmarks/run.sh [--quick]` (see run.py)."""
