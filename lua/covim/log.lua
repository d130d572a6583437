-- stdpath('log')/covim.log: one timestamped line per event, for bug reports.
-- Bounded: past MAX_BYTES the file becomes covim.log.1 (the previous .1 goes).
-- covim_p2p/nvim/log.py writes the same file in the same format from Python.
local M = {}

M.MAX_BYTES = 1024 * 1024

function M.path() return vim.fn.stdpath('log') .. '/covim.log' end

function M.write(level, text)
  pcall(function()
    local path = M.path()
    local stat = vim.uv.fs_stat(path)
    if stat and stat.size > M.MAX_BYTES then os.rename(path, path .. '.1') end
    vim.fn.mkdir(vim.fn.fnamemodify(path, ':h'), 'p')
    local file = io.open(path, 'a')
    if not file then return end
    local sec, usec = vim.uv.gettimeofday()
    file:write(string.format('%s.%03d %-5s %s\n', os.date('%Y-%m-%d %H:%M:%S', sec), math.floor(usec / 1000),
      level, (tostring(text):gsub('\n', ' '))))
    file:close()
  end)
end

return M
