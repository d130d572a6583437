-- Remote cursors: eight colour slots, CoVimCursor1..8 (the character under a
-- peer's cursor) and CoVimName1..8 (its name at the end of the line).
--
-- Explicit colours rather than links: links to DiffChange and friends vanish in
-- some colour schemes and in 256-colour terminals.  Every background here has a
-- relative luminance between 0.22 and 0.34, so it stands out from dark and light
-- backgrounds alike (contrast >= 4.5 on Neovim's default dark background and
-- >= 2 on its light one, tests/nvim/test_highlights.py), and black text on it
-- stays readable (>= 5.4).  All are `default = true`: a :highlight of your own,
-- before or after, wins.
local M = {}

-- { gui colour, the xterm-256 index of the same colour }
M.SLOTS = {
  { '#d75f5f', 167 },  -- red
  { '#5faf5f', 71 },   -- green
  { '#5f87d7', 68 },   -- blue
  { '#d78700', 172 },  -- orange
  { '#af5fd7', 134 },  -- purple
  { '#00afaf', 37 },   -- teal
  { '#ff5faf', 205 },  -- pink
  { '#af8700', 136 },  -- gold
}

function M.define()
  for i, slot in ipairs(M.SLOTS) do
    vim.api.nvim_set_hl(0, 'CoVimCursor' .. i,
      { fg = '#000000', bg = slot[1], ctermfg = 16, ctermbg = slot[2], default = true })
    vim.api.nvim_set_hl(0, 'CoVimName' .. i,
      { fg = '#000000', bg = slot[1], ctermfg = 16, ctermbg = slot[2], bold = true, default = true })
  end
end

return M
