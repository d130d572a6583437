-- What the statusline and the User autocmds know about the session.  Python
-- (covim_p2p/nvim/plugin.py) calls M.set on every change that matters to a user.
local M = {}

M.current = { state = 'idle', role = '', name = '', peers = 0, bufnr = -1 }

--- new: {state, role, name, peers (a count), bufnr}; event: a User pattern or nil.
function M.set(new, event, data)
  M.current = new
  if event then
    pcall(vim.api.nvim_exec_autocmds, 'User', { pattern = event, modeline = false, data = data or {} })
  end
  pcall(vim.cmd, 'redrawstatus')
end

--- '' when idle; "covim …" while joining or waiting; "covim 3↔" with 3 peers linked.
function M.statusline()
  local s = M.current
  if s.state == 'idle' or s.state == 'left' or s.state == 'failed' or s.state == '' then return '' end
  if s.state == 'joining' or s.state == 'waiting' then return 'covim …' end
  return string.format('covim %d↔', s.peers)
end

return M
