#!/usr/bin/env bash
# The benchmark suite in one command: installs what is missing (scripts/setup.sh,
# idempotent, ~1 s when all is there), then runs every benchmark against real
# headless Neovims on loopback, prints the table and writes benchmarks/RESULTS.md.
#
#   bash benchmarks/run.sh            full run (~3 min on 2 cores)
#   bash benchmarks/run.sh --quick    smoke run: fewer samples, smaller documents (~30 s);
#                                     prints the table, writes no file unless --results PATH
#   bash benchmarks/run.sh --only latency join    some groups only
#                                     (latency, traces, join, throughput, connectivity, concurrency)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test >&2
exec .venv/bin/python -m benchmarks.run "$@"
