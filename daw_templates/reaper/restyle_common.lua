-- Restyle for REAPER: helpers shared by the actions. The pure functions (quoting, command lines, JSON, item
-- checks) need no REAPER and are unit-tested with a plain Lua interpreter (tests/lua/test_restyle_common.lua).
local M = {}

M.SECTION = "Restyle"            -- ExtState section: style, strength, scale, host, port, restyle command
M.DEFAULTS = { host = "127.0.0.1", port = "9100", command = "restyle" }
M.RANGES = { strength = { 0.01, 1.0 }, scale = { 0.0, 15.0 } }

-- Quote one argument for the command line: POSIX single quotes, or Windows double quotes.
function M.quote(arg, windows)
  arg = tostring(arg)
  if windows then
    return '"' .. arg:gsub('"', '""') .. '"'
  end
  return "'" .. arg:gsub("'", "'\\''") .. "'"
end

-- Format a number for a command line without locale surprises ("0.6", not "0,6").
function M.number(value)
  local text = string.format("%.6f", value):gsub("0+$", ""):gsub("%.$", "")
  return (text:gsub(",", "."))
end

-- The `restyle send` command line for one job. opts: input, result_file, and optional style, strength,
-- scale, start, finish, host, port, command, windows.
function M.send_command(opts)
  local w = opts.windows
  local parts = { M.quote(opts.command or M.DEFAULTS.command, w), "send", M.quote(opts.input, w) }
  local function add(flag, value, numeric)
    if value ~= nil and value ~= "" then
      parts[#parts + 1] = flag
      parts[#parts + 1] = numeric and M.number(value) or M.quote(value, w)
    end
  end
  add("--host", opts.host or M.DEFAULTS.host)
  add("--port", tonumber(opts.port or M.DEFAULTS.port), true)
  add("--style", opts.style)
  add("--strength", opts.strength, true)
  add("--scale", opts.scale, true)
  add("--start", opts.start, true)
  add("--end", opts.finish, true)
  add("--result-file", opts.result_file)
  return table.concat(parts, " ")
end

-- Arguments for liblo's oscsend: "host port /address types values...", types from the Lua values.
function M.oscsend_command(host, port, address, args, windows)
  local types, values = {}, {}
  for i, value in ipairs(args) do
    if math.type and math.type(value) == "integer" then
      types[i] = "i"
      values[i] = tostring(value)
    elseif type(value) == "number" then
      types[i] = "f"
      values[i] = M.number(value)
    else
      types[i] = "s"
      values[i] = M.quote(value, windows)
    end
  end
  local command = { "oscsend", host, tostring(port), address, table.concat(types) }
  for _, v in ipairs(values) do command[#command + 1] = v end
  return table.concat(command, " ")
end

-- A take can be sent as its source file plus offsets when REAPER plays it unchanged.
function M.is_plain(take)
  return take.playrate == 1 and not take.reversed and (take.fx_count or 0) == 0
end

-- The region of the source file an item plays, in seconds.
function M.region(take_offset, item_length, playrate)
  return take_offset, take_offset + item_length * (playrate or 1)
end

function M.clamp(value, range)
  return math.max(range[1], math.min(range[2], value))
end

-- Minimal JSON reader for the result files `restyle send --result-file` writes (objects, arrays, strings,
-- numbers, true/false/null). Returns value or nil, error.
function M.parse_json(text)
  local pos = 1
  local function skip() pos = text:find("[^ \t\r\n]", pos) or #text + 1 end
  local value
  local function err(what) error({ json = what .. " at " .. pos }) end
  local escapes = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }
  local function str()
    local out, i = {}, pos + 1
    while true do
      local c = text:sub(i, i)
      if c == "" then err("unterminated string") end
      if c == '"' then pos = i + 1; return table.concat(out) end
      if c == "\\" then
        local e = text:sub(i + 1, i + 1)
        if e == "u" then
          local code = tonumber(text:sub(i + 2, i + 5), 16) or err("bad \\u escape")
          out[#out + 1] = utf8.char(code)
          i = i + 6
        else
          out[#out + 1] = escapes[e] or err("bad escape")
          i = i + 2
        end
      else
        out[#out + 1] = c
        i = i + 1
      end
    end
  end
  function value()
    skip()
    local c = text:sub(pos, pos)
    if c == "{" then
      local obj = {}
      pos = pos + 1; skip()
      if text:sub(pos, pos) == "}" then pos = pos + 1; return obj end
      while true do
        skip()
        if text:sub(pos, pos) ~= '"' then err("expected key") end
        local key = str(); skip()
        if text:sub(pos, pos) ~= ":" then err("expected ':'") end
        pos = pos + 1
        obj[key] = value(); skip()
        local d = text:sub(pos, pos); pos = pos + 1
        if d == "}" then return obj end
        if d ~= "," then err("expected ',' or '}'") end
      end
    elseif c == "[" then
      local arr = {}
      pos = pos + 1; skip()
      if text:sub(pos, pos) == "]" then pos = pos + 1; return arr end
      while true do
        arr[#arr + 1] = value(); skip()
        local d = text:sub(pos, pos); pos = pos + 1
        if d == "]" then return arr end
        if d ~= "," then err("expected ',' or ']'") end
      end
    elseif c == '"' then
      return str()
    elseif text:sub(pos, pos + 3) == "true" then pos = pos + 4; return true
    elseif text:sub(pos, pos + 4) == "false" then pos = pos + 5; return false
    elseif text:sub(pos, pos + 3) == "null" then pos = pos + 4; return nil
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

-- Settings kept in REAPER's ExtState (persisted), with defaults.
function M.get_setting(reaper, key)
  local value = reaper.GetExtState(M.SECTION, key)
  if value == "" then return M.DEFAULTS[key] end
  return value
end

function M.set_setting(reaper, key, value)
  reaper.SetExtState(M.SECTION, key, tostring(value), true)
end

function M.is_windows(reaper)
  return reaper.GetOS():match("^Win") ~= nil
end

-- A fresh path for a job's result file in REAPER's resource folder.
function M.result_path(reaper, tag)
  local folder = reaper.GetResourcePath() .. "/Restyle/jobs"
  reaper.RecursiveCreateDirectory(folder, 0)
  return string.format("%s/%s-%d-%d.json", folder, tag, os.time(), math.random(1, 1e9))
end

function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

-- Nudge the strength or scale that the stylize action sends, and say the new value.
function M.nudge(reaper, knob, delta)
  local defaults = { strength = 0.7, scale = 5.0 }
  local current = tonumber(reaper.GetExtState(M.SECTION, knob)) or defaults[knob]
  local value = M.clamp(current + delta, M.RANGES[knob])
  M.set_setting(reaper, knob, M.number(value))
  M.log(reaper, knob .. " " .. M.number(value))
end

function M.log(reaper, message)
  reaper.ShowConsoleMsg("Restyle: " .. message .. "\n")
end

return M
