-- A guest's shared buffer becomes a real one once the document arrives: the
-- host's file name in the current directory (so plain :w saves a local copy,
-- and Neovim's own E13 refuses to overwrite a different file already there),
-- 'buftype' '' and the host's filetype (so syntax, ftplugins and LSP attach).
local M = {}

--- A base name a peer sent, or nil: no directories, no control characters, not . or ..
function M.safe_name(name)
  if type(name) ~= 'string' or name == '' or name == '.' or name == '..' or #name > 255 then return nil end
  if name:find('[/\\%c]') or name:sub(1, 1) == '-' then return nil end
  return name
end

local function free_path(buf, dir, name)
  local stem, ext = name:match('^(.+)(%.[^.]+)$')
  stem, ext = stem or name, ext or ''
  for i = 0, 99 do
    local path = dir .. '/' .. (i == 0 and name or string.format('%s~%d%s', stem, i, ext))
    local other = vim.fn.bufnr(path)
    if other == -1 or other == buf then return path end  -- a rejoin reuses its own buffer and name
  end
end

--- buf: the guest's shared buffer; name, filetype: from the document's meta map (untrusted).
function M.adopt(buf, name, filetype)
  if not vim.api.nvim_buf_is_valid(buf) then return end
  name = M.safe_name(name)
  if name then
    local old = vim.api.nvim_buf_get_name(buf)
    local path = free_path(buf, vim.fn.getcwd(), name)
    if path and path ~= old then
      vim.api.nvim_buf_set_name(buf, path)
      vim.bo[buf].buftype = ''
      vim.bo[buf].swapfile = false
      local alt = vim.fn.bufnr(old)  -- renaming leaves the old name behind as an unlisted buffer
      if alt > 0 and alt ~= buf then pcall(vim.api.nvim_buf_delete, alt, { force = true }) end
    end
  end
  if type(filetype) ~= 'string' or not filetype:match('^[%w_.-]+$') then
    filetype = name and vim.filetype.match({ buf = buf, filename = name }) or nil
  end
  if filetype then vim.bo[buf].filetype = filetype end
end

return M
