-- Every covim message: one line through vim.notify (so notification plugins and
-- :messages see it) with a proper level, and the same line in the log.
local M = {}

local LEVELS = { debug = 'DEBUG', info = 'INFO', warn = 'WARN', error = 'ERROR' }

--- level: 'info', 'warn', 'error' (or a vim.log.levels number)
function M.notify(text, level)
  if type(level) == 'number' then
    for name, value in pairs(vim.log.levels) do
      if value == level then level = name:lower() end
    end
  end
  level = LEVELS[level] and level or 'info'
  local line = 'CoVim: ' .. tostring(text):gsub('%s*\n%s*', ' ')
  require('covim.log').write(LEVELS[level], line)
  -- Deferred to the main loop: an ERROR notification shown while Neovim waits
  -- in a request (the user's :CoVim, an API call) would turn into that
  -- request's error instead of a message.
  vim.schedule(function() vim.notify(line, vim.log.levels[LEVELS[level]], { title = 'covim' }) end)
end

return M
