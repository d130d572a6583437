#!/usr/bin/env bash
# The whole check, as CI runs it (.ci/run): install what is missing, run every
# test, check that flake.nix parses. Exits non-zero if any step fails
# (pytest's "no tests collected", exit code 5, included).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh --test
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
NIX_CONFIG="build-users-group =" nix-instantiate --parse flake.nix >/dev/null  # no nixbld group here
echo "test.sh: all checks passed"
