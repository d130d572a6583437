-- Benchmark helpers loaded into each benchmark Neovim with dofile(); they live in
-- _G.covim_bench. Timestamps are vim.uv.hrtime() (CLOCK_MONOTONIC, nanoseconds),
-- comparable across the Neovims of one machine, so a latency is "arrival on B"
-- minus "send on A" with no RPC polling in the measurement.
local M = {}

local hrtime = vim.uv.hrtime
local api = vim.api

-- ---- keystroke latency -------------------------------------------------------

-- Send one keystroke: insert `ch` at (row, col); returns the hrtime just before.
function M.send(buf, row, col, ch)
  local t = hrtime()
  api.nvim_buf_set_text(buf, row, col, row, col, { ch })
  return t
end

-- Watch `buf` for the arrival of a known sequence of keystrokes: schedule[i] =
-- {row, byte_len}: sample i has arrived when that row has that byte length.
-- Samples are sent one at a time, so they arrive in order.
function M.watch(buf, schedule)
  local w = { buf = buf, schedule = schedule, next = 1, times = {}, changes = 0, last = 0 }
  M.watcher = w
  api.nvim_buf_attach(buf, false, {
    on_lines = function(_, b)
      if M.watcher ~= w then return true end -- a newer watcher replaced this one: detach
      local t = hrtime()
      w.changes = w.changes + 1
      w.last = t
      while w.next <= #w.schedule do
        local s = w.schedule[w.next]
        local line = api.nvim_buf_get_lines(b, s[1], s[1] + 1, false)[1]
        if line == nil or #line ~= s[2] then break end
        w.times[w.next] = t
        w.next = w.next + 1
      end
    end,
  })
end

function M.arrived()
  return M.watcher.next - 1
end

function M.arrival_times()
  return M.watcher.times
end

-- ---- the Lua-only floor: Neovim -> Neovim over luv UDP, no Python at all ---------

-- Receiver: a UDP socket in this Neovim's Lua that inserts each datagram's
-- character at its (row, col), as a Lua-only collaboration plugin would.
function M.udp_listen(buf)
  local sock = vim.uv.new_udp()
  sock:bind('127.0.0.1', 0)
  local r = { sock = sock, times = {}, n = 0 }
  M.udp = r
  sock:recv_start(function(_, data)
    if not data then return end
    vim.schedule(function()
      local row, col, ch = data:match('^(%d+) (%d+) (.*)$')
      row, col = tonumber(row), tonumber(col)
      api.nvim_buf_set_text(buf, row, col, row, col, { ch })
      r.n = r.n + 1
      r.times[r.n] = hrtime()
    end)
  end)
  return sock:getsockname().port
end

-- Sender: type the character here, then send it from Lua. Returns the hrtime just before.
function M.udp_send(port, buf, row, col, ch)
  if not M.usock then
    M.usock = vim.uv.new_udp()
    M.usock:bind('127.0.0.1', 0)
  end
  local t = hrtime()
  api.nvim_buf_set_text(buf, row, col, row, col, { ch })
  M.usock:send(string.format('%d %d %s', row, col, ch), '127.0.0.1', port)
  return t
end

function M.udp_arrived()
  return M.udp.n
end

function M.udp_times()
  return M.udp.times
end

-- ---- whole-buffer replays ------------------------------------------------------

-- Position of byte `off` of "\n".join(lines) in the current buffer, by Neovim's
-- own byte index (line2byte counts one byte per end of line, like our join).
local function pos(buf, off)
  local row = vim.fn.byte2line(off + 1)
  if row < 1 then -- the very end of the text, or an empty buffer
    local last = api.nvim_buf_line_count(buf)
    return last - 1, #api.nvim_buf_get_lines(buf, last - 1, last, true)[1]
  end
  return row - 1, off + 1 - vim.fn.line2byte(row)
end

-- Apply edits {byte_offset, bytes_deleted, inserted_lines} one by one with
-- nvim_buf_set_text, so each fires on_lines separately like a keystroke.
-- Like typing, each edit first puts the cursor where it happens: that is what
-- tells an ambiguous change ("a" -> "aa") where it was made.
-- `buf` must be the current buffer (byte2line works on the current buffer).
-- Returns {hrtime before the first edit, hrtime after the last}.
function M.apply_bytes(buf, edits)
  local ve = vim.o.virtualedit
  vim.o.virtualedit = 'onemore'  -- the cursor can follow the last character, as in insert mode
  local t0 = hrtime()
  for _, e in ipairs(edits) do
    local sr, sc = pos(buf, e[1])
    local er, ec = sr, sc
    if e[2] > 0 then er, ec = pos(buf, e[1] + e[2]) end
    api.nvim_win_set_cursor(0, { sr + 1, sc })
    api.nvim_buf_set_text(buf, sr, sc, er, ec, e[3])
  end
  local t1 = hrtime()
  vim.o.virtualedit = ve
  return { t0, t1 }
end

-- Count the changes to `buf` and remember when the last one happened.
function M.track(buf)
  local w = { changes = 0, last = 0 }
  M.tracker = w
  api.nvim_buf_attach(buf, false, {
    on_lines = function()
      if M.tracker ~= w then return true end
      w.changes = w.changes + 1
      w.last = hrtime()
    end,
  })
end

function M.tracked()
  return { M.tracker.changes, M.tracker.last }
end

-- {byte length of the text, line count, hrtime of the last tracked change}: cheap.
function M.size(buf)
  local n = api.nvim_buf_line_count(buf)
  local last = M.tracker and M.tracker.last or 0
  return { api.nvim_buf_get_offset(buf, n) - 1, n, last }
end

-- sha256 of "\n".join(lines): compare a big buffer without shipping it over RPC.
function M.digest(buf)
  return vim.fn.sha256(table.concat(api.nvim_buf_get_lines(buf, 0, -1, true), '\n'))
end

-- ---- stalls --------------------------------------------------------------------

-- A 1 ms repeating timer; the longest gap between two ticks is the longest time
-- the main loop was busy (a stall the user would feel as a frozen editor).
function M.stall_start()
  if M.stall_timer then M.stall_timer:stop() end
  local s = { last = hrtime(), max = 0, ticks = 0 }
  M.stall = s
  M.stall_timer = vim.uv.new_timer()
  M.stall_timer:start(1, 1, function()
    local t = hrtime()
    local gap = t - s.last
    if gap > s.max then s.max = gap end
    s.last = t
    s.ticks = s.ticks + 1
  end)
end

-- Longest gap so far, in ms (the current gap counts too); reset=true starts over.
function M.stall_max(reset)
  local s = M.stall
  local gap = hrtime() - s.last
  local max = math.max(s.max, gap) / 1e6
  if reset then s.max = 0 end
  return max
end

function M.stall_stop()
  if M.stall_timer then
    M.stall_timer:stop()
    M.stall_timer:close()
    M.stall_timer = nil
  end
end

_G.covim_bench = M
return M
