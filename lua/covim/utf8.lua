-- covim.utf8: the shared document is UTF-8 text, so a byte that is not UTF-8
-- (a lone 0xE9 from a Latin-1 file read as binary, a :r of a binary file, ...)
-- cannot be carried.  When one enters a shared buffer it becomes U+FFFD, the
-- replacement character, in what Python receives and then in the buffer, so
-- every peer sees the same text (never a silent divergence), with one line.
local M = {}

local FFFD = '\239\191\189'

-- True if `s` is valid UTF-8 (as Python's codec sees it: no surrogates, no overlongs, <= U+10FFFF).
function M.valid(s)
  if not s:find('[\128-\255]') then return true end  -- ASCII: the common case, at C speed
  return M.clean(s) == nil
end

-- `s` with every byte that is not part of a valid UTF-8 sequence replaced by U+FFFD, or nil if valid.
function M.clean(s)
  local out, start, i, n, bad = {}, 1, 1, #s, false
  while i <= n do
    local c = s:byte(i)
    local len = (c < 0x80 and 1) or (c >= 0xC2 and c <= 0xDF and 2) or (c >= 0xE0 and c <= 0xEF and 3)
      or (c >= 0xF0 and c <= 0xF4 and 4) or 0
    local ok = len > 0 and i + len - 1 <= n
    if ok and len > 1 then
      for k = 1, len - 1 do
        local b = s:byte(i + k)
        if b < 0x80 or b > 0xBF then ok = false break end
      end
      local b1 = s:byte(i + 1)
      if ok and ((c == 0xE0 and b1 < 0xA0) or (c == 0xED and b1 > 0x9F) or (c == 0xF0 and b1 < 0x90)
          or (c == 0xF4 and b1 > 0x8F)) then
        ok = false
      end
    end
    if ok then
      i = i + len
    else
      bad = true
      out[#out + 1] = s:sub(start, i - 1)
      out[#out + 1] = FFFD
      i = i + 1
      start = i
    end
  end
  if not bad then return nil end
  out[#out + 1] = s:sub(start)
  return table.concat(out)
end

-- `lines` if all are UTF-8, else a copy with the bad bytes replaced (and true).
function M.clean_lines(lines)
  local copy = nil
  for i, line in ipairs(lines) do
    if not M.valid(line) then
      copy = copy or vim.list_slice(lines)
      copy[i] = M.clean(line)
    end
  end
  if copy then return copy, true end
  return lines, false
end

-- Replace the bad bytes in the buffer itself; returns how many lines changed.
function M.repair(buf)
  if not vim.api.nvim_buf_is_loaded(buf) then return 0 end
  local fixed = 0
  for i, line in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, true)) do
    if not M.valid(line) then
      vim.api.nvim_buf_set_lines(buf, i - 1, i, true, { M.clean(line) })
      fixed = fixed + 1
    end
  end
  return fixed
end

return M
