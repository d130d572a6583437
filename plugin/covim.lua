-- Highlight groups exist as soon as the plugin is on the runtimepath, so users can restyle them.
if vim.g.loaded_covim then return end
vim.g.loaded_covim = 1
require('covim').define_highlights()
vim.api.nvim_create_autocmd('ColorScheme', {
  group = vim.api.nvim_create_augroup('covim_highlights', { clear = true }),
  callback = function() require('covim').define_highlights() end,
})
