-- covim: the Neovim half of the bridge. Python owns the protocol; this file only
-- forwards buffer changes and cursor moves, applies remote edits at the changedtick
-- Python expects, and shuts the session down without ever letting :qa hang.
local M = {}

local attached = {}   -- buf -> python host channel
local applying = {}   -- buf -> true while we apply remote edits
local queued = {}     -- buf -> on_lines events not yet sent to Python
local last_tick = {}  -- buf -> changedtick of the last change Python was told of (event, reload, apply)
local reloading = {}  -- buf -> true from a reload until its snapshot is sent
local fixing = {}     -- buf -> true while bytes that are not UTF-8 wait to become U+FFFD (covim.utf8)
local utf8 = require('covim.utf8')

local function notify(chan, ...)
  pcall(vim.rpcnotify, chan, ...)
end

-- Bytes that are not UTF-8 cannot be shared (covim.utf8): Python gets U+FFFD
-- in their place; the buffer gets the same just after on_lines (which may not
-- change the buffer), or at once before an apply, whose columns assume it.
local function repair(b)
  if not fixing[b] then return end
  fixing[b] = nil
  local n = utf8.repair(b)
  if n > 0 then
    vim.notify(('CoVim: %d line%s held bytes that are not UTF-8: they became U+FFFD (\239\191\189) here and for everyone')
      :format(n, n == 1 and '' or 's'), vim.log.levels.WARN)
  end
end

local function clean(b, lines)
  local cleaned, changed = utf8.clean_lines(lines)
  if changed and not fixing[b] then
    fixing[b] = true
    vim.schedule(function() repair(b) end)
  end
  return cleaned, changed
end

-- The on_lines events of one turn of the event loop after the first go to
-- Python as one notification: a macro or a paste of 2000 changes costs two
-- messages, not 2000 (each a msgpack decode and a greenlet in the host).
-- Anything else we send for the buffer flushes them first, so Python sees
-- everything in order.
local send_reload
local listen

local function send_lines(buf)
  if reloading[buf] then send_reload(buf) end
  local events = queued[buf]
  queued[buf] = nil
  local chan = attached[buf]
  if events and #events > 0 and chan then notify(chan, 'covim_lines', buf, events) end
end

-- After a reload (:e!, :checktime) Python gets the whole buffer once, in order
-- with the events; changes made before it is sent are part of it.
send_reload = function(buf)
  local chan = attached[buf]
  if not chan or not vim.api.nvim_buf_is_loaded(buf) then return end
  if reloading[buf] == 'detached' then listen(buf) end
  reloading[buf] = nil
  local tick = vim.api.nvim_buf_get_changedtick(buf)
  last_tick[buf] = tick
  notify(chan, 'covim_reload', buf, tick, (clean(buf, vim.api.nvim_buf_get_lines(buf, 0, -1, true))))
end

local function send_cursor(buf)
  local chan = attached[buf]
  if not chan or vim.api.nvim_get_current_buf() ~= buf then return end
  send_lines(buf)
  local pos = vim.api.nvim_win_get_cursor(0)
  notify(chan, 'covim_cursor', buf, pos[1] - 1, pos[2])
end

-- Watch buf's changes (again, after a reload detached us).
listen = function(buf)
  vim.api.nvim_buf_attach(buf, false, {
    on_lines = function(_, b, tick, first, last_old, last_new)
      local c = attached[b]
      if not c then return true end
      if applying[b] then return end  -- our own apply of remote edits: Python already knows
      if reloading[b] then return end  -- the snapshot about to be sent holds this change
      last_tick[b] = tick
      local lines, cleaned = clean(b, vim.api.nvim_buf_get_lines(b, first, last_new, true))
      -- The cursor (at the start of the change here) disambiguates diffs like end -> eend.
      local crow, ccol = -1, -1
      if vim.api.nvim_get_current_buf() == b and not cleaned then
        local cur = vim.api.nvim_win_get_cursor(0)
        crow, ccol = cur[1] - 1, cur[2]
      end
      local event = { tick, first, last_old, lines, crow, ccol }
      local q = queued[b]
      if q then
        q[#q + 1] = event
      else  -- the first change of this turn goes at once (typing: no added latency)
        notify(c, 'covim_lines', b, { event })
        queued[b] = {}
        vim.schedule(function() send_lines(b) end)
      end
    end,
    on_reload = function(_, b)
      if attached[b] then
        send_lines(b)
        reloading[b] = true
        vim.schedule(function() if reloading[b] then send_reload(b) end end)
      end
    end,
    -- Unloaded or wiped (:bd, :bw, :e other with 'nohidden'), or reloaded: :e!
    -- and :checktime detach and load the buffer again. Once the command is
    -- done we can tell them apart: a loaded buffer was reloaded (Python gets
    -- it whole, as a reload); an unloaded one is gone (Python ends the
    -- session with one line; an unloaded buffer reads as empty, and that
    -- must never look like "the user deleted everything").
    on_detach = function(_, b)
      local c = attached[b]
      if not c then return end
      send_lines(b)
      queued[b] = nil
      reloading[b] = 'detached'
      vim.schedule(function()
        if attached[b] ~= c or not reloading[b] then return end
        if vim.api.nvim_buf_is_loaded(b) then
          send_reload(b)
        else
          attached[b] = nil
          reloading[b] = nil
          notify(c, 'covim_unload', b)
        end
      end)
    end,
  })
end

-- Attach to buf; returns {changedtick, lines} read atomically with the attach.
function M.attach(buf, chan)
  attached[buf] = chan
  listen(buf)
  -- Neovim's own undo would also revert other people's edits: use the CRDT's.
  local function undo(redo)
    return function()
      send_lines(buf)
      notify(chan, 'covim_undo', buf, redo, vim.v.count1)
    end
  end
  if vim.g.covim_remap_undo ~= false then
    vim.keymap.set('n', 'u', undo(false), { buffer = buf, desc = 'CoVim: undo my last change' })
    vim.keymap.set('n', '<C-r>', undo(true), { buffer = buf, desc = 'CoVim: redo my last change' })
  end
  local group = vim.api.nvim_create_augroup('covim_buf_' .. buf, { clear = true })
  vim.api.nvim_create_autocmd({ 'CursorMoved', 'CursorMovedI', 'BufEnter' }, {
    group = group, buffer = buf, callback = function() send_cursor(buf) end,
  })
  last_tick[buf] = vim.api.nvim_buf_get_changedtick(buf)
  return { last_tick[buf], (clean(buf, vim.api.nvim_buf_get_lines(buf, 0, -1, true))) }
end

function M.detach(buf)
  attached[buf] = nil
  queued[buf] = nil
  reloading[buf] = nil
  last_tick[buf] = nil
  pcall(vim.keymap.del, 'n', 'u', { buffer = buf })
  pcall(vim.keymap.del, 'n', '<C-r>', { buffer = buf })
  pcall(vim.api.nvim_del_augroup_by_name, 'covim_buf_' .. buf)
end

-- Apply remote edits {{srow, scol, erow, ecol, lines}, ...} computed for the
-- buffer as it was at `tick`. Python computed them on its copy of the buffer;
-- if any change happened since that Python has not been told of, they would
-- land in the wrong place: then nothing is applied (Python rebases them over
-- that change and tries again). A bare changedtick bump with no change (:set ff)
-- does not count. Returns the new changedtick, or nil for a refusal.
function M.apply(buf, tick, edits)
  repair(buf)  -- a pending U+FFFD repair goes first (its event makes this a refusal, then a retry)
  if last_tick[buf] ~= tick then return nil end
  applying[buf] = true
  local modifiable = vim.bo[buf].modifiable
  vim.bo[buf].modifiable = true  -- a joiner's buffer is read-only until the document arrives
  -- In insert mode, text inserted exactly at the cursor goes after it, so the
  -- user's next keystroke continues their own word (Python orders it the same way).
  local win = vim.api.nvim_get_current_win()
  local inserting = vim.api.nvim_win_get_buf(win) == buf and vim.api.nvim_get_mode().mode:sub(1, 1) == 'i'
  local ok, err = pcall(function()
    for _, e in ipairs(edits) do
      local keep = nil
      if inserting and e[1] == e[3] and e[2] == e[4] then
        local cur = vim.api.nvim_win_get_cursor(win)
        if cur[1] - 1 == e[1] and cur[2] == e[2] then keep = cur end
      end
      vim.api.nvim_buf_set_text(buf, e[1], e[2], e[3], e[4], e[5])
      if keep then vim.api.nvim_win_set_cursor(win, keep) end
    end
  end)
  vim.bo[buf].modifiable = modifiable
  applying[buf] = nil
  last_tick[buf] = vim.api.nvim_buf_get_changedtick(buf)
  if not ok then error(err) end
  return last_tick[buf]
end

-- One asynchronous call per flush: remote edits, then the peers' cursors. The
-- answer is a notification, sent after every buffer event before it:
-- covim_applied(buf, seq, tick) or covim_refused(buf, seq, last_tick).
function M.update(buf, tick, seq, edits, ns, marks, stale)
  local chan = attached[buf]
  if not chan then return end
  send_lines(buf)  -- Python must see every earlier change before this answer
  if not vim.api.nvim_buf_is_loaded(buf) then return end
  if #edits > 0 then
    local ok, result = pcall(M.apply, buf, tick, edits)
    if not ok then
      -- Neovim rejected an edit (it should not): Python re-reads the whole buffer.
      notify(chan, 'covim_applied', buf, seq, last_tick[buf])
      M.resync(buf)
      return
    end
    if result == nil then
      notify(chan, 'covim_refused', buf, seq, last_tick[buf])
      return
    end
    tick = result
  end
  if #marks > 0 or #stale > 0 then M.set_cursors(buf, ns, marks, stale) end
  notify(chan, 'covim_applied', buf, seq, tick)
end

-- The last resort: the whole buffer, in order with the events, as a resync.
function M.resync(buf)
  local chan = attached[buf]
  if not chan or not vim.api.nvim_buf_is_loaded(buf) then return end
  send_lines(buf)
  local tick = vim.api.nvim_buf_get_changedtick(buf)
  last_tick[buf] = tick
  notify(chan, 'covim_reload', buf, tick, (clean(buf, vim.api.nvim_buf_get_lines(buf, 0, -1, true))), true)
end

-- Remote cursors: marks = {{id, row, col, end_col_or_-1, cursor_hl, name, name_hl}, ...}
function M.set_cursors(buf, ns, marks, stale)
  if not vim.api.nvim_buf_is_valid(buf) then return end
  for _, id in ipairs(stale) do pcall(vim.api.nvim_buf_del_extmark, buf, ns, id) end
  for _, m in ipairs(marks) do
    local opts = { id = m[1], priority = 200, right_gravity = false }
    if m[4] >= 0 then
      opts.end_col = m[4]
      opts.hl_group = m[5]
      opts.virt_text = { { ' ' .. m[6], m[7] } }
    else
      opts.virt_text = { { ' ', m[5] }, { ' ' .. m[6], m[7] } }
    end
    opts.virt_text_pos = 'eol'
    pcall(vim.api.nvim_buf_set_extmark, buf, ns, m[2], m[3], opts)
  end
end

-- On exit: tell Python to say goodbye to the peers, wait at most 500 ms for it.
function M.setup_shutdown(chan)
  local group = vim.api.nvim_create_augroup('covim_shutdown', { clear = true })
  vim.api.nvim_create_autocmd('VimLeavePre', {
    group = group,
    callback = function()
      vim.g.covim_stopped = false
      for buf in pairs(queued) do send_lines(buf) end  -- the last keystrokes still reach the peers
      notify(chan, 'covim_shutdown')
      if not vim.wait(500, function() return vim.g.covim_stopped == true end, 5) then
        -- The host is wedged: it would ignore SIGTERM and Neovim would wait 2 s
        -- more for it. It has had its chance to say goodbye; end it now.
        local ok, pid = pcall(vim.fn.jobpid, chan)
        if ok and pid and pid > 0 then pcall(vim.uv.kill, pid, 'sigkill') end
      end
    end,
  })
end

function M.define_highlights()
  require('covim.highlights').define()
end

-- require('covim').setup({ name = 'ann', remap_undo = false, ... }): see :help covim-setup()
function M.setup(opts) require('covim.config').setup(opts) end

-- '' when idle, "covim 3↔" with three peers linked: for 'statusline' and statusline plugins.
function M.statusline() return require('covim.state').statusline() end

return M
