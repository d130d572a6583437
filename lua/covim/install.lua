-- :CoVimInstall, the build step of the plugin spec: install covim's Python half.
--
-- Why a private venv: covim pins pycrdt and pynvim exactly, and the python3
-- host is shared by every remote plugin; pins installed there would clash
-- with theirs.  So the third-party packages go into stdpath('data')/covim/venv,
-- created with the interpreter that will run the python3 host (compiled
-- wheels must match its version), and rplugin/python3/covim.py puts that venv
-- first on sys.path.  covim_p2p itself is imported from this plugin's own
-- directory, so the Lua and Python halves can never be at different versions.
--
-- When no python3 with pynvim exists at all (a fresh machine), the venv is
-- made with the system python3 and, since it holds pynvim, becomes
-- g:python3_host_prog for this Neovim (a marker file tells plugin/covim.lua
-- to set it at startup; a g:python3_host_prog of your own always wins).
local M = {}

M.MARKER = 'covim-is-python3-host'

function M.root()
  local source = debug.getinfo(1, 'S').source:sub(2)
  return vim.fn.fnamemodify(source, ':p:h:h:h')
end

function M.venv() return vim.fn.stdpath('data') .. '/covim/venv' end
function M.venv_python() return M.venv() .. '/bin/python' end

--- The exact pins of pyproject.toml's [project] dependencies, e.g. {'pycrdt==0.14.13', ...}.
function M.pins()
  local text = table.concat(vim.fn.readfile(M.root() .. '/pyproject.toml'), '\n')
  local deps = text:match('\ndependencies%s*=%s*(%b[])')
  local pins = {}
  for spec in (deps or ''):gmatch('"([^"]+)"') do pins[#pins + 1] = spec end
  return pins
end

--- At startup: a venv made on a machine without pynvim runs the python3 host.
function M.use_venv_host()
  if vim.g.python3_host_prog == nil and vim.uv.fs_stat(M.venv() .. '/' .. M.MARKER)
      and vim.fn.executable(M.venv_python()) == 1 then
    vim.g.python3_host_prog = M.venv_python()
  end
end

local function run(argv)
  local done = vim.system(argv, { text = true }):wait()
  local out = vim.trim((done.stderr or '') .. '\n' .. (done.stdout or ''))
  local last = out:match('([^\n]*)$') or ''
  for line in out:gmatch('[^\n]+') do  -- the line that names the problem, not pip's hints
    if line:match('^ERROR') or line:match('Error') then last = line break end
  end
  return done.code == 0, last
end

local function importable(python, module)
  return vim.system({ python, '-c', 'import ' .. module }):wait().code == 0
end

--- The interpreter for the venv, and whether the venv must also run the python3 host.
local function base_python()
  local marker = M.venv() .. '/' .. M.MARKER
  local configured = vim.g.python3_host_prog
  if configured and vim.fn.exepath(vim.fn.expand(configured)) == vim.fn.exepath(M.venv_python()) then
    configured = nil  -- ours, set at startup: rebuild from the interpreter recorded then
  end
  if configured then
    local prog = vim.fn.exepath(vim.fn.expand(configured))
    if prog == '' then error('g:python3_host_prog (' .. configured .. ') is not an executable', 0) end
    if not importable(prog, 'pynvim') then
      error(string.format("g:python3_host_prog (%s) cannot import pynvim: run '%s -m pip install pynvim', or unset it",
        configured, prog), 0)
    end
    return prog, false
  end
  local recorded = vim.uv.fs_stat(marker) and vim.fn.readfile(marker)[1]
  if recorded and vim.fn.executable(recorded) == 1 then return recorded, true end
  for _, name in ipairs({ 'python3', 'python' }) do
    local prog = vim.fn.exepath(name)
    if prog ~= '' then return prog, not importable(prog, 'pynvim') end
  end
  error('no python3 on $PATH: install Python 3.10 or newer', 0)
end

local function step(text) vim.notify('CoVim: ' .. text, vim.log.levels.INFO) end

--- Install (or update) the venv, the help tags and the remote plugin manifest.
--- Raises one line on failure (lazy.nvim shows it as the build error).
function M.build()
  if vim.fn.has('nvim-0.10') ~= 1 then error('covim needs Neovim 0.10 or newer', 0) end
  local log = require('covim.log')
  local python, as_host = base_python()
  local venv = M.venv()
  local version = vim.trim(vim.fn.system({ python, '-c', 'import sys; print("%d.%d" % sys.version_info[:2])' }))
  local have = vim.fn.glob(venv .. '/lib/python*', false, true)[1]
  local fresh = not (have and have:match('python' .. vim.pesc(version) .. '$') and vim.fn.executable(M.venv_python()) == 1)
  if fresh then
    step('creating ' .. venv .. ' with ' .. python)
    local ok, err = run({ python, '-m', 'venv', '--clear', venv })
    if not ok then
      error('could not create a venv with ' .. python .. ' (Debian/Ubuntu: apt install python3-venv): ' .. err, 0)
    end
  end
  step('installing ' .. table.concat(M.pins(), ' '))
  local ok, err = run({ M.venv_python(), '-m', 'pip', 'install', '--quiet', '--disable-pip-version-check',
    unpack(M.pins()) })
  if not ok then error('pip could not install covim\'s Python packages: ' .. err, 0) end
  local marker = venv .. '/' .. M.MARKER
  if as_host then
    vim.fn.writefile({ python }, marker)
    vim.g.python3_host_prog = M.venv_python()
  else
    vim.fn.delete(marker)
  end
  local doc = M.root() .. '/doc'
  if vim.fn.filewritable(doc) == 2 then vim.cmd('silent! helptags ' .. vim.fn.fnameescape(doc)) end
  vim.cmd('silent UpdateRemotePlugins')
  log.write('INFO', string.format('installed %s into %s (python3 host: %s)', table.concat(M.pins(), ' '), venv,
    as_host and M.venv_python() or python))
  step('installed; restart Neovim to use :CoVim')
  return true
end

--- :CoVimInstall
function M.command()
  local ok, err = pcall(M.build)
  if not ok then
    require('covim.log').write('ERROR', 'install: ' .. tostring(err))
    vim.notify('CoVim: ' .. tostring(err), vim.log.levels.ERROR)
  end
end

return M
