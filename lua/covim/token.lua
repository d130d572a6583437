-- Handing the token over: into the unnamed register (and + when there is a
-- clipboard), and shown without a hit-enter prompt: as one message no wider
-- than v:echospace when it fits, else in a small floating window that closes
-- when the cursor moves.  The token is the session's key: it never goes to the log.
local M = {}

local function fits(line) return vim.fn.strdisplaywidth(line) <= vim.v.echospace end

local function float(token, where)
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, true, { token })
  vim.bo[buf].bufhidden = 'wipe'
  local width = math.min(vim.fn.strdisplaywidth(token), vim.o.columns - 2)
  local win = vim.api.nvim_open_win(buf, false, {
    relative = 'editor', row = 0, col = vim.o.columns - width - 2, width = width, height = 1 + math.floor(#token / (width + 1)),
    style = 'minimal', border = 'rounded', title = ' covim token (in ' .. where .. ') ', title_pos = 'center',
    focusable = true, zindex = 200,
  })
  vim.wo[win].wrap = true
  vim.api.nvim_create_autocmd({ 'CursorMoved', 'CursorMovedI', 'InsertEnter', 'BufLeave' }, {
    once = true, callback = function() pcall(vim.api.nvim_win_close, win, true) end,
  })
  return win
end

--- intro: what just happened ("hosting as 'alice'"), or nil for :CoVim token.
function M.share(token, intro)
  if intro == vim.NIL then intro = nil end
  vim.g.covim_token = token
  vim.fn.setreg('"', token)
  local where = '""'
  if vim.fn.has('clipboard') == 1 and pcall(vim.fn.setreg, '+', token) then where = '"" and +' end
  if intro then require('covim.log').write('INFO', 'CoVim: ' .. intro .. '; token copied to ' .. where) end
  local line
  for _, candidate in ipairs({
    intro and string.format('CoVim: %s; token (in %s): %s', intro, where, token) or '',
    string.format('CoVim: token (in %s): %s', where, token),
    'CoVim: ' .. token,
  }) do
    if candidate ~= '' and fits(candidate) then line = candidate break end
  end
  if not line then  -- too wide for this screen: a window shows it whole
    M.window = float(token, where)
    line = string.format('CoVim: %stoken copied to %s (shown top right)', intro and (intro .. '; ') or '', where)
    if not fits(line) then line = 'CoVim: token copied to ' .. where end
  end
  vim.notify(line, vim.log.levels.INFO, { title = 'covim' })
end

return M
