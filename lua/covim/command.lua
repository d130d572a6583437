-- :CoVim and :CoVimInstall.  :CoVim checks the setup, then hands the words to
-- the Python remote plugin's CoVimRun().  Each broken setup is one line that
-- says what to do (tests/nvim/test_firstrun.py pins every one of them).
local M = {}

M.SUBCOMMANDS = { 'host', 'connect', 'start', 'add', 'token', 'disconnect', 'quit', 'status' }

local host_ok = false  -- the python3 host's interpreter has pynvim (checked once per Neovim)

local function importable(python, module)
  return vim.system({ python, '-c', 'import ' .. module }):wait().code == 0
end

--- The rplugin manifest defines CoVimRun() lazily, through a FuncUndefined autocmd.
function M.registered()
  return vim.fn.exists('*CoVimRun') == 1 or vim.fn.exists('#FuncUndefined#CoVimRun') == 1
end

--- nil, or the one line that says what stops :CoVim from working.
function M.problem()
  if not M.registered() then
    return 'the remote plugin is not registered: run :CoVimInstall, then restart Neovim'
  end
  if host_ok then return nil end
  local configured = vim.g.python3_host_prog
  if configured then
    local prog = vim.fn.exepath(vim.fn.expand(configured))
    if prog == '' then
      return string.format('g:python3_host_prog (%s) is not an executable: fix it, or unset it and run :CoVimInstall',
        configured)
    end
    if not importable(prog, 'pynvim') then
      return string.format("g:python3_host_prog (%s) cannot import pynvim: run '%s -m pip install pynvim', "
        .. 'or unset it and run :CoVimInstall', configured, prog)
    end
  else
    local ok, provider = pcall(require, 'vim.provider.python')
    local found = ok and provider.detect_by_module('neovim') or (not ok and vim.fn.has('python3') == 1)
    if not found then
      return "Neovim's python3 provider found no python3 with pynvim: run :CoVimInstall (it sets one up for covim), "
        .. 'then restart Neovim'
    end
  end
  host_ok = true
  return nil
end

local function one_line(err)
  err = tostring(err)
  if err:match('Failed to load python3 host') then
    return 'the python3 host did not start: see :checkhealth covim and $NVIM_PYTHON_LOG_FILE'
  end
  local last = ''
  for line in err:gmatch('[^\n]+') do
    if vim.trim(line) ~= '' then last = vim.trim(line) end
  end
  return 'internal error: ' .. last .. ' (log: ' .. require('covim.log').path() .. ')'
end

function M.run(args)
  local notify = require('covim.notify').notify
  local problem = M.problem()
  if problem then return notify(problem, 'error') end
  local ok, result = pcall(vim.fn.CoVimRun, args)
  if not ok then
    notify(one_line(result), 'error')
  elseif type(result) == 'string' and result ~= '' then
    notify(result, 'error')  -- the Python half is missing or at the wrong version
  end
end

local function registers(prefix)
  local found = {}
  for _, text in ipairs({ vim.fn.getreg('"'), vim.fn.getreg('+'), vim.g.covim_token or '' }) do
    text = vim.trim(tostring(text))
    if vim.startswith(text, prefix) and not text:find('%s') and not vim.tbl_contains(found, text) then
      found[#found + 1] = text
    end
  end
  return found
end

--- Subcommands, then values where they help: ports, your name, a token from a register.
function M.complete(arglead, cmdline, pos)
  local before = cmdline:sub(1, pos)
  local words = vim.split(before, '%s+', { trimempty = true })
  local index = #words - (before:match('%s$') and 0 or 1)  -- 1: the subcommand
  local choices = {}
  local sub = words[2]
  local name = tostring(vim.g.covim_name or vim.env.USER or 'peer')
  if index <= 1 then
    choices = M.SUBCOMMANDS
  elseif sub == 'host' or sub == 'start' then
    choices = index == 2 and { sub == 'host' and '8555' or '0', sub == 'host' and '0' or '8555', name }
      or index == 3 and { name } or {}
  elseif sub == 'connect' then
    choices = index == 2 and vim.list_extend(registers('covim1-'), registers('covim1r-')) or index == 3 and { name }
      or {}
  elseif sub == 'add' then
    choices = index == 2 and registers('covim1p-') or {}
  elseif sub == 'token' then
    choices = index == 2 and { 'readonly' } or {}
  end
  return vim.tbl_filter(function(c) return vim.startswith(c, arglead) end, choices)
end

function M.define()
  vim.api.nvim_create_user_command('CoVim', function(opts) M.run(opts.fargs) end, {
    nargs = '*', complete = M.complete, force = true,
    desc = 'covim: host | connect <token> | start | add <token> | token [readonly] | disconnect | quit | status',
  })
  vim.api.nvim_create_user_command('CoVimInstall', function() require('covim.install').command() end, {
    nargs = 0, force = true, desc = "covim: install the Python half and register the remote plugin",
  })
end

return M
