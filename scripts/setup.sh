#!/usr/bin/env bash
# Install what covim-p2p needs on Debian 12 (as root). Idempotent: a second run
# installs nothing, touches no network and takes about a second.
#
#   scripts/setup.sh [--test]  everything the test suite needs (the default):
#                              tmux, iproute2, nftables + coturn + conntrack (the NAT lab), node + npm, nix-instantiate,
#                              .venv with -e '.[test]', tests/yjs/node_modules, and Debian's own
#                              neovim 0.7.2 unpacked into .venv/debian-neovim (the "too old" Neovim of
#                              tests/nvim/test_firstrun.py; not on $PATH, so it shadows nothing)
#   scripts/setup.sh --demo    runtime only: tmux, .venv with -e '.[nvim]' (Neovim)
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:---test}
case $mode in
  --test) extra=test ;;
  --demo) extra=nvim ;;
  *) echo "usage: $0 [--test|--demo]" >&2; exit 2 ;;
esac

# --- Debian packages, only those whose command is missing ---------------------
apt_needed=()
need() { command -v "$1" >/dev/null 2>&1 || apt_needed+=("${@:2}"); }
need tmux tmux
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_needed+=(python3-venv)
if [[ $mode == --test ]]; then
  need ip iproute2
  need nft nftables
  need turnserver coturn
  need conntrack conntrack
  need nix-instantiate nix-bin
  need node nodejs npm
  command -v node >/dev/null 2>&1 && need npm npm
fi
if ((${#apt_needed[@]})); then
  echo "setup: apt-get install ${apt_needed[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_needed[@]}"
fi

# --- Python venv ---------------------------------------------------------------
[[ -x .venv/bin/python ]] || python3 -m venv .venv
# pip is re-run only when pyproject.toml or the chosen extra changed (an editable
# install rebuilds its wheel, and that fetches setuptools from the network).
stamp=".venv/.covim-setup-$extra"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "setup: pip install -e '.[$extra]'"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extra]"
  echo "$want" >"$stamp"
fi

# --- Debian's neovim 0.7.2, unpacked privately (tests/nvim/test_firstrun.py) -------------
# `apt-get install neovim` would put 0.7.2 on $PATH and register it as vi/vim/editor;
# unpacking the .debs into .venv/debian-neovim touches nothing else. Its libraries
# come from apt as usual.
old_nvim=.venv/debian-neovim/usr/bin/nvim
if [[ $mode == --test && ! -x $old_nvim ]] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: Debian's neovim 0.7.2 into .venv/debian-neovim"
  libs=(libluajit2-5.1-2 libmsgpackc2 libtermkey1 libtree-sitter0 libunibilium4 libuv1 libvterm0 lua-luv)
  missing=()
  for lib in "${libs[@]}"; do dpkg -s "$lib" >/dev/null 2>&1 || missing+=("$lib"); done
  if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  debs=$(mktemp -d) && chmod 755 "$debs"  # apt-get download runs as _apt
  (cd "$debs" && apt-get download -qq neovim neovim-runtime)
  for deb in "$debs"/*.deb; do dpkg -x "$deb" .venv/debian-neovim; done
  rm -rf "$debs"
fi

# --- Yjs (node) for tests/test_yjs_compat.py ---------------------------------------
# npm writes node_modules/.package-lock.json last, so it is newer than the lock
# file exactly when the last `npm ci` finished after the lock last changed.
if [[ $mode == --test && ! tests/yjs/node_modules/.package-lock.json -nt tests/yjs/package-lock.json ]]; then
  echo "setup: npm ci in tests/yjs"
  (cd tests/yjs && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "setup: ok ($mode)"
