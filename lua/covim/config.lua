-- require('covim').setup({...}): the same settings as the g:covim_* variables.
-- setup() only sets those variables, so there is one source of truth and
-- settings changed later with :let still apply to the next session.
local M = {}

M.OPTIONS = {
  name = 'string', host_addr = { 'string', 'table' }, bind = 'string', join_timeout = 'number',
  stun = 'string', turn = 'string', remap_undo = 'boolean',
}

function M.setup(opts)
  for key, value in pairs(opts or {}) do
    local want = M.OPTIONS[key]
    if want == nil then
      local names = vim.tbl_keys(M.OPTIONS)
      table.sort(names)
      require('covim.notify').notify(string.format("setup(): unknown option '%s' (known: %s)", key,
        table.concat(names, ', ')), 'warn')
    elseif not vim.tbl_contains(type(want) == 'table' and want or { want }, type(value)) then
      require('covim.notify').notify(string.format("setup(): option '%s' must be a %s, not a %s", key,
        type(want) == 'table' and table.concat(want, ' or ') or want, type(value)), 'warn')
    else
      vim.g['covim_' .. key] = value
    end
  end
end

return M
