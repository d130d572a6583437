-- Handing the token over: into the unnamed register (and + when there is a
-- clipboard), and shown as one line that fits the screen, so no hit-enter
-- prompt.  The token is the session's key: it never goes to the log.
local M = {}

local function fit(parts)
  local width = vim.o.columns - 1
  for _, line in ipairs(parts) do
    if vim.fn.strdisplaywidth(line) <= width then return line end
  end
  return parts[#parts]
end

--- intro: what just happened ("hosting as 'alice'"), or nil for :CoVim token.
function M.share(token, intro)
  vim.g.covim_token = token
  vim.fn.setreg('"', token)
  local where = '""'
  if vim.fn.has('clipboard') == 1 and pcall(vim.fn.setreg, '+', token) then where = '"" and +' end
  local line = fit({
    intro and string.format('CoVim: %s; token (in %s): %s', intro, where, token) or '',
    string.format('CoVim: token (in %s): %s', where, token),
    'CoVim: ' .. token,
    token,
  })
  if intro then require('covim.log').write('INFO', 'CoVim: ' .. intro .. '; token copied to ' .. where) end
  vim.notify(line, vim.log.levels.INFO, { title = 'covim' })
end

return M
