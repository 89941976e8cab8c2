-- @noindex
-- Restyle for REAPER: everything the actions do, in one module. Every function takes REAPER's API table (`r`)
-- as an argument, so tests/lua/ runs them under a plain Lua 5.4 with a mock `reaper` that follows the SDK header.
local M = {}

M.SECTION = "Restyle"  -- ExtState section: style, strength, scale, host, port, server, token_file, command, timeout
M.DEFAULTS = { host = "127.0.0.1", port = "9100", command = "restyle", timeout = "900" }
M.RANGES = { strength = { 0.01, 1.0 }, scale = { 0.0, 30.0 } }  -- the engine's ranges (bridge/knobs.py)
M.FALLBACK_KNOBS = { strength = 0.7, scale = 5.0 }  -- only when the server cannot be asked
M.START_GRACE = 15    -- seconds for `restyle` to leave its progress file, else it did not start
M.ABANDON_WAIT = 60   -- seconds a cancelled job's `restyle` gets to finish before its files are deleted anyway
M.POLL_INTERVAL = 0.25
M.RENDER_ACTION = 42230  -- File: Render project, using the most recent render settings

-- == command lines =========================================================================================
-- REAPER runs ExecProcess without a shell. On Windows the program splits its own command line (the C runtime's
-- rules: double quotes, backslashes escape only before a quote). On Linux and macOS REAPER splits it itself,
-- like a line of a project file: tokens separated by spaces, a token may be wrapped in ", ' or ` and then ends
-- at the same character; there are no escapes. So a POSIX argument is wrapped in a quote it does not contain.

local function quote_windows(arg)
  local out, backslashes = { '"' }, 0
  for ch in arg:gmatch(".") do
    if ch == "\\" then
      backslashes = backslashes + 1
    else
      if ch == '"' then backslashes = backslashes * 2 + 1 end
      out[#out + 1] = string.rep("\\", backslashes) .. ch
      backslashes = 0
    end
  end
  out[#out + 1] = string.rep("\\", backslashes * 2) .. '"'
  return table.concat(out)
end

local function quote_posix(arg)
  for _, q in ipairs({ '"', "'", "`" }) do
    if not arg:find(q, 1, true) then return q .. arg .. q end
  end
  return nil, "cannot pass a name containing all of \" ' and ` to REAPER's ExecProcess: " .. arg
end

-- Quote one argument for ExecProcess on this OS; nil and a reason if it cannot be passed.
function M.quote(arg, windows)
  arg = tostring(arg)
  if windows then return quote_windows(arg) end
  return quote_posix(arg)
end

-- One command line from a list of arguments; nil and a reason if one cannot be passed.
function M.command_line(argv, windows)
  local parts = {}
  for i, arg in ipairs(argv) do
    local quoted, why = M.quote(arg, windows)
    if not quoted then return nil, why end
    parts[i] = quoted
  end
  return table.concat(parts, " ")
end

-- Format a number for a command line without locale surprises ("0.6", not "0,6").
function M.number(value)
  local text = string.format("%.6f", value):gsub("0+$", ""):gsub("%.$", "")
  return (text:gsub(",", "."))
end

-- The arguments after `restyle` for one stylize job. opts: input, output, style, strength, scale, start,
-- finish, host, port (or server and token_file: a remote engine's HTTP API), timeout.
function M.send_args(opts)
  local args = { "send", opts.input }
  local function add(flag, value, numeric)
    if value ~= nil and value ~= "" then
      args[#args + 1] = flag
      args[#args + 1] = numeric and M.number(value) or tostring(value)
    end
  end
  if opts.server and opts.server ~= "" then
    add("--server", opts.server)
    add("--token-file", opts.token_file)
  else
    add("--host", opts.host or M.DEFAULTS.host)
    add("--port", tonumber(opts.port or M.DEFAULTS.port), true)
  end
  add("--style", opts.style)
  add("--strength", opts.strength, true)
  add("--scale", opts.scale, true)
  add("--start", opts.start, true)
  add("--end", opts.finish, true)
  add("--output", opts.output)
  add("--timeout", opts.timeout, true)
  return args
end

-- == settings ==============================================================================================
function M.get_setting(r, key)
  local value = r.GetExtState(M.SECTION, key)
  if value == "" then return M.DEFAULTS[key] end
  return value
end

function M.set_setting(r, key, value)
  r.SetExtState(M.SECTION, key, tostring(value), true)
end

-- A setting that must be a positive number (timeout, port); anything else falls back to the default, with a line
-- in the console.
function M.number_setting(r, key)
  local text = M.get_setting(r, key)
  local value = tonumber(text)
  if value and value > 0 then return value end
  M.log(r, string.format("the %s setting '%s' is not a positive number; using %s.", key, text, M.DEFAULTS[key]))
  return tonumber(M.DEFAULTS[key])
end

function M.is_windows(r)
  return r.GetOS():match("^Win") ~= nil
end

function M.clamp(value, range)
  return math.max(range[1], math.min(range[2], value))
end

function M.log(r, message)
  r.ShowConsoleMsg("Restyle: " .. message .. "\n")
end

-- The arguments every client command gets to reach the server: its HTTP API when the "server" setting holds a
-- URL (a remote engine: audio is uploaded and results downloaded), else OSC on host:port (the same machine).
function M.server_args(r)
  local server = r.GetExtState(M.SECTION, "server")
  if server ~= "" then
    local args = { "--server", server }
    local token = r.GetExtState(M.SECTION, "token_file")
    if token ~= "" then args[#args + 1] = "--token-file"; args[#args + 1] = token end
    return args
  end
  return { "--host", M.get_setting(r, "host"), "--port", M.number(M.number_setting(r, "port")) }
end

-- == files =================================================================================================
function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

function M.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

function M.join(folder, name)
  if folder:match("[/\\]$") then return folder .. name end
  return folder .. "/" .. name
end

-- A path compared across OSes: forward slashes, no trailing slash, case-insensitive on Windows.
local function normalized(path, windows)
  path = path:gsub("\\", "/"):gsub("/+$", "")
  return windows and path:lower() or path
end

function M.inside(path, folder, windows)
  local p, f = normalized(path, windows), normalized(folder, windows)
  return p:sub(1, #f + 1) == f .. "/"
end

-- Where the project keeps its media (the recording path); results and temporary renders go there.
function M.media_folder(r)
  local folder = r.GetProjectPathEx(0)
  r.RecursiveCreateDirectory(folder, 0)
  return folder
end

-- A file name from free text (style names, take names): no separators or characters Windows refuses.
function M.safe_name(text)
  return (tostring(text):gsub('[/\\:%*%?"<>|%c]', "-"))
end

-- `folder/stem.ext`, or `stem-2.ext`, `stem-3.ext`... so nothing in the project is ever replaced; `taken`
-- holds the paths already promised to other jobs of the same batch.
function M.unique_path(folder, stem, ext, taken)
  taken = taken or {}
  local candidate, n = M.join(folder, stem .. ext), 2
  while M.exists(candidate) or taken[candidate] do
    candidate = M.join(folder, string.format("%s-%d%s", stem, n, ext))
    n = n + 1
  end
  taken[candidate] = true
  return candidate
end

-- A fresh pair of files for one background command in REAPER's resource folder. A command started without a
-- progress file must answer within START_GRACE (status does).
function M.job_files(r, tag)
  local folder = M.join(r.GetResourcePath(), "Restyle/jobs")
  r.RecursiveCreateDirectory(folder, 0)
  local stem = string.format("%s-%d-%d", tag, os.time(), math.random(1, 1e9))
  return { result = M.join(folder, stem .. ".json"), progress = M.join(folder, stem .. "-progress.json") }
end

-- == JSON ==================================================================================================
-- Minimal JSON reader for the files `restyle` writes (objects, arrays, strings with \u escapes including
-- surrogate pairs, numbers, true/false/null). Returns value or nil, error.
function M.parse_json(text)
  local pos = 1
  local function err(what) error({ json = what .. " at " .. pos }) end
  local function skip() pos = text:find("[^ \t\r\n]", pos) or #text + 1 end
  local escapes = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }
  local function hex4(at) return tonumber(text:sub(at, at + 3):match("^%x%x%x%x$") or "", 16) end
  local function unicode(i) -- the code point of \uXXXX at i (a pair when it is a high surrogate); next index
    local code = hex4(i + 2) or err("bad \\u escape")
    if code >= 0xD800 and code <= 0xDBFF then
      local low = text:sub(i + 6, i + 7) == "\\u" and hex4(i + 8)
      if not low or low < 0xDC00 or low > 0xDFFF then err("unpaired surrogate") end
      return 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00), i + 12
    end
    if code >= 0xDC00 and code <= 0xDFFF then err("unpaired surrogate") end
    return code, i + 6
  end
  local function str()
    local out, i = {}, pos + 1
    while true do
      local c = text:sub(i, i)
      if c == "" then err("unterminated string") end
      if c == '"' then pos = i + 1; return table.concat(out) end
      if c == "\\" and text:sub(i + 1, i + 1) == "u" then
        local code
        code, i = unicode(i)
        out[#out + 1] = utf8.char(code)
      elseif c == "\\" then
        out[#out + 1] = escapes[text:sub(i + 1, i + 1)] or err("bad escape")
        i = i + 2
      else
        out[#out + 1] = c
        i = i + 1
      end
    end
  end
  local value
  local function members(close, read)
    pos = pos + 1; skip()
    if text:sub(pos, pos) == close then pos = pos + 1; return end
    while true do
      read(); skip()
      local d = text:sub(pos, pos); pos = pos + 1
      if d == close then return end
      if d ~= "," then err("expected ',' or '" .. close .. "'") end
      skip()
    end
  end
  function value()
    skip()
    local c = text:sub(pos, pos)
    if c == "{" then
      local obj = {}
      members("}", function()
        if text:sub(pos, pos) ~= '"' then err("expected key") end
        local key = str(); skip()
        if text:sub(pos, pos) ~= ":" then err("expected ':'") end
        pos = pos + 1
        obj[key] = value()
      end)
      return obj
    elseif c == "[" then
      local arr = {}
      members("]", function() arr[#arr + 1] = value() end)
      return arr
    elseif c == '"' then
      return str()
    end
    for word, v in pairs({ ["true"] = true, ["false"] = false, null = M.NULL }) do
      if text:sub(pos, pos + #word - 1) == word then pos = pos + #word; return v end
    end
    local number = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    if not number or number == "" then err("unexpected '" .. c .. "'") end
    pos = pos + #number
    return tonumber(number)
  end
  local ok, result = pcall(value)
  if not ok then return nil, type(result) == "table" and result.json or tostring(result) end
  return result
end
M.NULL = setmetatable({}, { __tostring = function() return "null" end })

-- == background commands ===================================================================================
-- Start `restyle ARGS... --result-file F [--progress-file P]` without waiting. `timeout`: seconds the job may
-- run once the server runs it (nil: no limit here; the client gives up on a silent server). Returns the job
-- (its files and clock), or nil and one readable line.
function M.start(r, args, tag, with_progress, timeout)
  local files = M.job_files(r, tag)
  local argv = { M.get_setting(r, "command") }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  argv[#argv + 1] = "--result-file"
  argv[#argv + 1] = files.result
  if with_progress then
    argv[#argv + 1] = "--progress-file"
    argv[#argv + 1] = files.progress
  end
  local line, why = M.command_line(argv, M.is_windows(r))
  if not line then return nil, why end
  if M.exec(r, line) == nil then
    return nil, M.not_started_message(r)
  end
  files.started, files.timeout = r.time_precise(), timeout
  return files
end

-- Run a command line without waiting (minimized on Windows: no console window); nil when it could not start.
function M.exec(r, line)
  return r.ExecProcess(line, M.is_windows(r) and -2 or -1)
end

function M.not_started_message(r)
  return "could not run `" .. M.get_setting(r, "command") .. "`. Is Restyle installed? If REAPER does not " ..
    "find it on its PATH, set its full path from the ReaScript console: " ..
    'reaper.SetExtState("Restyle", "command", "/full/path/to/restyle", true)'
end

function M.silent_message(r)
  return string.format("`%s` started but wrote no progress or result file within %d s: run `%s status` in a " ..
    "terminal to see why (the command setting must name Restyle's own `restyle`).", M.get_setting(r, "command"),
    M.START_GRACE, M.get_setting(r, "command"))
end

-- Where a background command stands: "running" (with its progress), "done" (with its result) or "failed"
-- (with one line). Finished jobs' files are deleted; a job that runs past its timeout (counted from when the
-- server runs it, not while it waits in the queue) is cancelled on the server.
function M.check(r, job)
  local text = M.read_file(job.result)
  if text then
    os.remove(job.result)
    os.remove(job.progress)
    local reply, problem = M.parse_json(text)
    if type(reply) ~= "table" then return "failed", "unreadable result from restyle: " .. tostring(problem) end
    if reply.ok ~= true then return "failed", tostring(reply.error or "the job failed") end
    return "done", reply
  end
  local now, progress = r.time_precise(), M.parse_json(M.read_file(job.progress) or "")
  if type(progress) == "table" then job.heard = progress end
  if not job.heard and now - job.started > M.START_GRACE then return "failed", M.silent_message(r) end
  if job.heard and job.heard.state == "running" then job.running_since = job.running_since or now end
  if job.timeout and job.running_since and now - job.running_since > job.timeout + M.START_GRACE then
    M.abandon(r, job)
    return "failed", string.format("no result %d s after it started; cancelled (raise the timeout with " ..
      'reaper.SetExtState("Restyle", "timeout", "SECONDS", true))', math.floor(now - job.running_since))
  end
  return "running", job.heard or {}
end

-- Ask the server to cancel a job (fire and forget).
function M.cancel_job(r, job_id)
  local argv = { M.get_setting(r, "command"), "cancel", job_id }
  for _, a in ipairs(M.server_args(r)) do argv[#argv + 1] = a end
  local line = M.command_line(argv, M.is_windows(r))
  if line then M.exec(r, line) end
end

-- Stop a job REAPER no longer waits for. The server is told as soon as the job has an id (a job cancelled
-- before the server accepted it has none yet); the job's files are deleted once `restyle` has written its last.
function M.abandon(r, job)
  local told, give_up = false, r.time_precise() + M.ABANDON_WAIT
  local function poll()
    local progress = M.parse_json(M.read_file(job.progress) or "")
    if not told and type(progress) == "table" and progress.job then
      M.cancel_job(r, progress.job)
      told = true
    end
    if M.exists(job.result) or r.time_precise() > give_up then
      os.remove(job.result)
      os.remove(job.progress)
    else
      r.defer(poll)
    end
  end
  poll()
end

-- The "cancel" action leaves a time stamp; jobs started before it stop.
function M.request_cancel(r)
  r.SetExtState(M.SECTION, "cancel", string.format("%.3f", r.time_precise()), false)
end

function M.cancel_requested(r, since)
  local at = tonumber(r.GetExtState(M.SECTION, "cancel"))
  return at ~= nil and at >= since
end

-- Follow background jobs in a defer loop (REAPER never blocks): progress in the console every 25 %, cancel
-- when asked, then finish(results) once, with results[i] = { reply = ... } or { error = ... }.
function M.follow(r, jobs, label, finish)
  local results, open, last_poll, shown = {}, #jobs, -math.huge, {}
  local since = r.time_precise()
  local function poll()
    local now = r.time_precise()
    if now - last_poll >= M.POLL_INTERVAL then
      last_poll = now
      local cancelling = M.cancel_requested(r, since)
      for i, job in ipairs(jobs) do
        if not results[i] then
          local state, value = M.check(r, job)
          if state == "running" and cancelling then
            M.abandon(r, job)
            state, value = "failed", "cancelled"
          end
          if state == "running" then
            local quarter = math.floor((value.fraction or 0) * 4)
            if value.fraction and quarter > (shown[i] or 0) and quarter < 4 then
              shown[i] = quarter
              M.log(r, string.format("%s %d/%d: %d %%", label, i, #jobs, quarter * 25))
            end
          else
            results[i] = state == "done" and { reply = value } or { error = value }
            open = open - 1
          end
        end
      end
    end
    if open > 0 then r.defer(poll) else finish(results) end
  end
  poll()
end

-- == items =================================================================================================
-- Why an item cannot be sent as its source file plus offsets (nil when it can). `t` holds the take's and
-- item's facts; anything REAPER changes on playback goes through a render of exactly what is heard.
function M.render_reason(t)
  local eps = 1e-6
  if t.playrate ~= 1 then return "playrate" end
  if t.pitch ~= 0 then return "pitch shift" end
  if t.reversed then return "reversed" end
  if t.fx_count > 0 then return "take FX" end
  if t.stretch_markers > 0 then return "stretch markers" end
  if t.envelopes > 0 then return "take envelopes" end
  if t.take_volume ~= 1 then return "take volume" end
  if t.take_pan ~= 0 then return "take pan" end
  if t.chanmode ~= 0 then return "channel mode" end
  if t.start_offset < -eps then return "starts before its source" end
  if t.start_offset + t.length > t.source_length + eps then return "longer than its source (loops)" end
  return nil
end

-- The facts about an item's active take that decide how it is sent.
function M.take_facts(r, item, take)
  local source = r.GetMediaItemTake_Source(take)
  local parent = r.GetMediaSourceParent(source)
  local is_section, section_offset, _, reversed = r.PCM_Source_GetSectionInfo(source)
  local source_length = r.GetMediaSourceLength(source)
  return {
    file = r.GetMediaSourceFileName(parent or source),
    file_length = r.GetMediaSourceLength(parent or source),
    section_offset = (is_section and parent) and section_offset or 0,
    reversed = is_section and reversed or false,
    source_length = source_length,
    playrate = r.GetMediaItemTakeInfo_Value(take, "D_PLAYRATE"),
    pitch = r.GetMediaItemTakeInfo_Value(take, "D_PITCH"),
    take_volume = r.GetMediaItemTakeInfo_Value(take, "D_VOL"),
    take_pan = r.GetMediaItemTakeInfo_Value(take, "D_PAN"),
    chanmode = r.GetMediaItemTakeInfo_Value(take, "I_CHANMODE"),
    start_offset = r.GetMediaItemTakeInfo_Value(take, "D_STARTOFFS"),
    length = r.GetMediaItemInfo_Value(item, "D_LENGTH"),
    fx_count = r.TakeFX_GetCount(take),
    stretch_markers = r.GetTakeNumStretchMarkers(take),
    envelopes = r.CountTakeEnvelopes(take),
  }
end

-- How to send an item: { file, start, finish, whole } straight from its source (whole: it plays all of the
-- file), or { render = reason }; nil and a reason for items that cannot be sent. The server writes results next
-- to its input, so a source outside the project's media folder is rendered into it too.
function M.plan(r, item, media, windows)
  local take = r.GetActiveTake(item)
  if not take or r.TakeIsMIDI(take) then return nil, "not an audio item" end
  local t = M.take_facts(r, item, take)
  local reason = M.render_reason(t)
  if not reason and not M.inside(t.file, media, windows) then reason = "source outside the project's media folder" end
  if reason then return { render = reason, take = take } end
  local start, eps = t.section_offset + t.start_offset, 1e-6
  local finish = start + t.length
  return { file = t.file, start = start, finish = finish, whole = start < eps and finish > t.file_length - eps,
    take = take }
end

-- == rendering =============================================================================================
M.RENDER_NUMBERS = { "RENDER_SETTINGS", "RENDER_BOUNDSFLAG", "RENDER_STARTPOS", "RENDER_ENDPOS", "RENDER_SRATE",
  "RENDER_CHANNELS", "RENDER_ADDTOPROJ", "RENDER_TAILFLAG", "RENDER_TAILMS", "RENDER_NORMALIZE", "RENDER_DITHER" }
M.RENDER_STRINGS = { "RENDER_FILE", "RENDER_PATTERN", "RENDER_FORMAT", "RENDER_FORMAT2" }
-- Item properties that apply to every take: baked into a render they would be applied twice by the new take.
M.ITEM_NEUTRAL = { D_VOL = 1, B_MUTE = 0, D_FADEINLEN = 0, D_FADEOUTLEN = 0, D_FADEINLEN_AUTO = 0,
  D_FADEOUTLEN_AUTO = 0 }

function M.save_render_settings(r)
  local saved = { numbers = {}, strings = {} }
  for _, k in ipairs(M.RENDER_NUMBERS) do saved.numbers[k] = r.GetSetProjectInfo(0, k, 0, false) end
  for _, k in ipairs(M.RENDER_STRINGS) do saved.strings[k] = select(2, r.GetSetProjectInfo_String(0, k, "", false)) end
  return saved
end

function M.restore_render_settings(r, saved)
  for k, v in pairs(saved.numbers) do r.GetSetProjectInfo(0, k, v, true) end
  for k, v in pairs(saved.strings) do r.GetSetProjectInfo_String(0, k, v, true) end
end

-- Settings for one item rendered alone as REAPER plays it (take FX, rate, pitch, envelopes), without track
-- or master processing, tails, normalization or dither, as one WAV with the source's sample rate.
function M.apply_render_settings(r, item, folder, name, sample_rate)
  local position = r.GetMediaItemInfo_Value(item, "D_POSITION")
  local numbers = { RENDER_SETTINGS = 32, RENDER_BOUNDSFLAG = 0, RENDER_STARTPOS = position,
    RENDER_ENDPOS = position + r.GetMediaItemInfo_Value(item, "D_LENGTH"), RENDER_SRATE = sample_rate,
    RENDER_CHANNELS = 2, RENDER_ADDTOPROJ = 0, RENDER_TAILFLAG = 0, RENDER_TAILMS = 0, RENDER_NORMALIZE = 0,
    RENDER_DITHER = 0 }
  for k, v in pairs(numbers) do r.GetSetProjectInfo(0, k, v, true) end
  local strings = { RENDER_FILE = folder, RENDER_PATTERN = name, RENDER_FORMAT = "evaw", RENDER_FORMAT2 = "" }
  for k, v in pairs(strings) do r.GetSetProjectInfo_String(0, k, v, true) end
end

local function selected_items(r)
  local items = {}
  for i = 0, r.CountSelectedMediaItems(0) - 1 do items[#items + 1] = r.GetSelectedMediaItem(0, i) end
  return items
end
M.selected_items = selected_items

local function select_only(r, items)
  r.SelectAllMediaItems(0, false)
  for _, item in ipairs(items) do r.SetMediaItemSelected(item, true) end
end

-- Render one item to a WAV in `folder`; the project's render settings, the selection and the item are left
-- as they were. Returns the file, or nil and a reason.
function M.render_item(r, item, take, folder)
  local name = string.format("restyle-render-%d-%d", os.time(), math.random(1, 1e9))
  local saved, selection, item_saved = M.save_render_settings(r), selected_items(r), {}
  for key, value in pairs(M.ITEM_NEUTRAL) do
    item_saved[key] = r.GetMediaItemInfo_Value(item, key)
    r.SetMediaItemInfo_Value(item, key, value)
  end
  r.PreventUIRefresh(1)
  local ok, path = pcall(function()
    select_only(r, { item })
    M.apply_render_settings(r, item, folder, name, r.GetMediaSourceSampleRate(r.GetMediaItemTake_Source(take)))
    local _, targets = r.GetSetProjectInfo_String(0, "RENDER_TARGETS", "", false)
    r.Main_OnCommand(M.RENDER_ACTION, 0)
    return (targets:match("^[^;]+"))
  end)
  M.restore_render_settings(r, saved)
  for key, value in pairs(item_saved) do r.SetMediaItemInfo_Value(item, key, value) end
  select_only(r, selection)
  r.PreventUIRefresh(-1)
  if not ok then return nil, "render failed: " .. tostring(path) end
  if not path or not M.exists(path) then return nil, "REAPER did not render the item (render cancelled?)" end
  return path
end

-- == results ===============================================================================================
-- A take's name from the style and knobs: "Restyle STYLE strength X scale Y", leaving out what is unknown.
function M.take_name(knobs)
  local parts = { "Restyle" }
  if knobs.style and knobs.style ~= "" then parts[#parts + 1] = knobs.style end
  if knobs.strength then parts[#parts + 1] = "strength " .. M.number(knobs.strength) end
  if knobs.scale then parts[#parts + 1] = "scale " .. M.number(knobs.scale) end
  return table.concat(parts, " ")
end

-- The knobs a finished job used, as `restyle send` reports them; what was sent where it does not.
function M.knobs_used(reply, sent)
  return { style = type(reply.style) == "string" and reply.style or sent.style,
    strength = tonumber(reply.strength) or sent.strength, scale = tonumber(reply.scale) or sent.scale }
end

-- Rename a result to `stem` in its folder (its knobs are only known once the job ran); if that fails the
-- server's name is kept. Returns the path the result has now.
function M.rename_result(path, stem)
  local folder, ext = path:match("^(.*)[/\\]") or ".", path:match("%.%w+$") or ".wav"
  stem = M.safe_name(stem)
  if M.join(folder, stem .. ext) == path then return path end
  local target = M.unique_path(folder, stem, ext)
  return os.rename(path, target) and target or path
end

-- Add `path` as a new, active take of `item`; the selection is not touched.
function M.add_take(r, item, path, name)
  local source = r.PCM_Source_CreateFromFile(path)
  if not source then return nil, "REAPER could not open " .. path end
  local take = r.AddTakeToMediaItem(item)
  r.SetMediaItemTake_Source(take, source)
  r.SetMediaItemTakeInfo_Value(take, "D_STARTOFFS", 0)
  r.GetSetMediaItemTakeInfo_String(take, "P_NAME", name, true)
  r.SetActiveTake(take)
  if r.PCM_Source_BuildPeaks(source, 0) ~= 0 then
    while r.PCM_Source_BuildPeaks(source, 1) ~= 0 do end
    r.PCM_Source_BuildPeaks(source, 2)
  end
  r.UpdateItemInProject(item)
  return take
end

-- == the actions ===========================================================================================
-- The knobs the stylize action sends: the style, and strength/scale once nudged (else the server's apply).
function M.settings(r)
  return { style = r.GetExtState(M.SECTION, "style"), strength = tonumber(r.GetExtState(M.SECTION, "strength")),
    scale = tonumber(r.GetExtState(M.SECTION, "scale")) }
end

-- Prepare one item: what to send and the temporary render to delete afterwards; nil and a reason.
-- `whole_file`: an item that plays only part of its file is rendered too (for commands that take no region).
local function prepare(r, item, media, windows, whole_file)
  local plan, why = M.plan(r, item, media, windows)
  if not plan then return nil, why end
  if plan.render or (whole_file and not plan.whole) then
    local path, problem = M.render_item(r, item, plan.take, media)
    if not path then return nil, problem end
    return { file = path, temporary = path, folder = media, take = plan.take }
  end
  plan.folder = plan.file:match("^(.*)[/\\]") or media  -- the server writes next to its input
  return plan
end

local function stem_of(name)
  return (name:gsub("%.%a%w?%w?%w?$", ""))
end

-- "Stylize selected items": each selected audio item is sent; results come back as new takes, all in one
-- undo step, in the project's media folder.
function M.stylize_selected(r)
  local items = selected_items(r)
  if #items == 0 then M.log(r, "select one or more audio items first."); return end
  local windows, media, settings = M.is_windows(r), M.media_folder(r), M.settings(r)
  local timeout, port = M.number_setting(r, "timeout"), M.number_setting(r, "port")
  local jobs, targets, taken = {}, {}, {}
  for _, item in ipairs(items) do
    local input, why = prepare(r, item, media, windows)
    local job, take_stem
    if input then
      take_stem = stem_of(r.GetTakeName(input.take) or "item")
      local stem = M.safe_name(take_stem .. " " .. M.take_name(settings))
      local args = M.send_args({ input = input.file, start = input.start, finish = input.finish,
        output = M.unique_path(input.folder, stem, ".wav", taken), style = settings.style, strength = settings.strength,
        scale = settings.scale, host = M.get_setting(r, "host"), port = port, timeout = timeout,
        server = r.GetExtState(M.SECTION, "server"), token_file = r.GetExtState(M.SECTION, "token_file") })
      job, why = M.start(r, args, "stylize", true, timeout)
      if not job and input.temporary then os.remove(input.temporary) end
    end
    if job then
      jobs[#jobs + 1] = job
      targets[#targets + 1] = { item = item, temporary = input.temporary, stem = take_stem }
    else
      M.log(r, "skipped an item: " .. why)
    end
  end
  if #jobs == 0 then return end
  M.log(r, string.format("sent %d item(s); the stylized takes appear when all are ready " ..
    "('Restyle: cancel' stops them).", #jobs))
  M.follow(r, jobs, "item", function(results) M.place_results(r, targets, results, settings) end)
end

-- Every finished result becomes a take named with the knobs it used, in one undo step; temporary renders are
-- deleted.
function M.place_results(r, targets, results, settings)
  local placed = 0
  r.Undo_BeginBlock()
  r.PreventUIRefresh(1)
  for i, target in ipairs(targets) do
    local result = results[i]
    if target.temporary then os.remove(target.temporary) end
    if result.error then
      M.log(r, string.format("item %d: %s", i, result.error))
    elseif not r.ValidatePtr2(0, target.item, "MediaItem*") then
      M.log(r, string.format("item %d was deleted; its result is %s", i, result.reply.output))
    else
      local name = M.take_name(M.knobs_used(result.reply, settings))
      local path = M.rename_result(result.reply.output, target.stem .. " " .. name)
      local ok, why = M.add_take(r, target.item, path, name)
      if ok then placed = placed + 1 else M.log(r, string.format("item %d: %s", i, why)) end
    end
  end
  r.PreventUIRefresh(-1)
  r.Undo_EndBlock(string.format("Restyle: %d stylized take(s)", placed), -1)
  r.UpdateArrange()
  M.log(r, string.format("%d of %d item(s) stylized.", placed, #targets))
end

-- "Learn style": the running server learns from the selected items (their source files when REAPER plays all of
-- them unchanged, else renders of what is heard); progress goes to the console and to a log file. Training has
-- no deadline here: it takes as long as it takes, and the client gives up only on a silent server (--stall).
function M.learn_selected(r, name)
  local windows, media, clips, temporary = M.is_windows(r), M.media_folder(r), {}, {}
  for _, item in ipairs(selected_items(r)) do
    local input, why = prepare(r, item, media, windows, true)
    if input then
      clips[#clips + 1] = input.file
      temporary[#temporary + 1] = input.temporary
    else
      M.log(r, "skipped an item: " .. why)
    end
  end
  if #clips == 0 then M.log(r, "select one or more audio items to learn from."); return end
  local log = M.join(M.join(r.GetResourcePath(), "Restyle"), "learn-" .. M.safe_name(name) .. ".log")
  local args = { "learn", name }
  for _, clip in ipairs(clips) do args[#args + 1] = clip end
  for _, a in ipairs(M.server_args(r)) do args[#args + 1] = a end
  args[#args + 1] = "--log"
  args[#args + 1] = log
  local job, why = M.start(r, args, "learn", true, nil)
  if not job then
    for _, path in ipairs(temporary) do os.remove(path) end
    M.log(r, why)
    return
  end
  M.log(r, "learning '" .. name .. "' on the server; progress here and in " .. log)
  M.follow(r, { job }, "learning " .. name, function(results)
    for _, path in ipairs(temporary) do os.remove(path) end
    if results[1].error then M.log(r, "learning '" .. name .. "' failed: " .. results[1].error); return end
    M.set_setting(r, "style", results[1].reply.style)
    M.log(r, "learned '" .. results[1].reply.style .. "'; it is now the chosen style.")
  end)
end

-- The server's status (knobs, styles) without blocking REAPER; then(report) runs when it arrives. With
-- `even_without`, then(nil) also runs when the server cannot be asked (after the reason is shown).
function M.ask_server(r, then_do, even_without)
  local args = { "status" }
  for _, a in ipairs(M.server_args(r)) do args[#args + 1] = a end
  local job, why = M.start(r, args, "status", false, nil)
  if not job then
    M.log(r, why)
    if even_without then then_do(nil) end
    return
  end
  M.follow(r, { job }, "status", function(results)
    if results[1].error then M.log(r, results[1].error) end
    if results[1].reply or even_without then then_do(results[1].reply) end
  end)
end

-- The menu's entries: each style, the current one checked.
function M.style_menu(styles, current)
  local labels = {}
  for i, name in ipairs(styles) do labels[i] = (name == current and "!" or "") .. name end
  return table.concat(labels, "|")
end

-- Nudge strength or scale, starting from the server's value when it was not nudged before.
function M.nudge(r, knob, delta)
  local function apply(current)
    local value = M.clamp(current + delta, M.RANGES[knob])
    M.set_setting(r, knob, M.number(value))
    M.log(r, knob .. " " .. M.number(value))
  end
  local current = tonumber(r.GetExtState(M.SECTION, knob))
  if current then apply(current); return end
  M.ask_server(r, function(report)
    apply(tonumber(report and report.knobs and report.knobs[knob]) or M.FALLBACK_KNOBS[knob])
  end, true)
end

-- "Use server knobs": forget the nudged values, so the server's knobs apply again.
function M.use_server_knobs(r)
  r.DeleteExtState(M.SECTION, "strength", true)
  r.DeleteExtState(M.SECTION, "scale", true)
  M.log(r, "strength and scale now follow the server's knobs.")
end

return M
