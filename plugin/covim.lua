-- covim's startup: the :CoVim and :CoVimInstall commands and the highlight groups.
--
-- :CoVim is a Lua command that checks the setup before it hands over to the
-- Python remote plugin (CoVimRun()), so every broken setup gives one line that
-- says what to do, never E492 or a traceback.  This file must load on any
-- Neovim that has Lua, old ones included, to say which version covim needs.
if vim.g.loaded_covim then return end
vim.g.loaded_covim = 1

if vim.fn.has('nvim-0.10') ~= 1 then
  local v = vim.version()
  local line = string.format('CoVim: covim needs Neovim 0.10 or newer; this is Neovim %d.%d.%d', v.major, v.minor, v.patch)
  for _, name in ipairs({ 'CoVim', 'CoVimInstall' }) do
    vim.api.nvim_create_user_command(name, function() vim.notify(line, vim.log.levels.ERROR) end,
      { nargs = '*', force = true })
  end
  return
end

require('covim.install').use_venv_host()
require('covim.command').define()
require('covim').define_highlights()
vim.api.nvim_create_autocmd('ColorScheme', {
  group = vim.api.nvim_create_augroup('covim_highlights', { clear = true }),
  callback = function() require('covim').define_highlights() end,
})
