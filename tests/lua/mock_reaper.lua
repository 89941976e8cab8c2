-- A mock `reaper` table for the Restyle scripts. Every function takes exactly the arguments its ReaScript (Lua)
-- form takes, as derived from REAPER's SDK header (reaper_plugin_functions.h): output buffers become return
-- values, their size arguments disappear. A call with a wrong count or type raises, as REAPER does.
local Mock = {}

-- Argument kinds: p = project (0 or nil), i = MediaItem, t = take, s = PCM source, str, num, bool, fn.
local SIGNATURES = {
  GetOS = {}, GetResourcePath = {}, GetProjectPathEx = { "p" }, RecursiveCreateDirectory = { "str", "num" },
  GetExtState = { "str", "str" }, SetExtState = { "str", "str", "str", "bool" },
  DeleteExtState = { "str", "str", "bool" }, ShowConsoleMsg = { "str" }, time_precise = {},
  ExecProcess = { "str", "num" }, defer = { "fn" },
  CountSelectedMediaItems = { "p" }, GetSelectedMediaItem = { "p", "num" }, SelectAllMediaItems = { "p", "bool" },
  SetMediaItemSelected = { "i", "bool" }, IsMediaItemSelected = { "i" },
  GetActiveTake = { "i" }, TakeIsMIDI = { "t" }, GetMediaItemTake_Source = { "t" }, GetMediaSourceParent = { "s" },
  PCM_Source_GetSectionInfo = { "s" }, GetMediaSourceLength = { "s" }, GetMediaSourceFileName = { "s" },
  GetMediaSourceSampleRate = { "s" },
  GetMediaItemTakeInfo_Value = { "t", "str" }, SetMediaItemTakeInfo_Value = { "t", "str", "num" },
  GetMediaItemInfo_Value = { "i", "str" }, SetMediaItemInfo_Value = { "i", "str", "num" },
  TakeFX_GetCount = { "t" }, GetTakeNumStretchMarkers = { "t" }, CountTakeEnvelopes = { "t" }, GetTakeName = { "t" },
  GetSetProjectInfo = { "p", "str", "num", "bool" }, GetSetProjectInfo_String = { "p", "str", "str", "bool" },
  Main_OnCommand = { "num", "num" }, PreventUIRefresh = { "num" },
  PCM_Source_CreateFromFile = { "str" }, AddTakeToMediaItem = { "i" }, SetMediaItemTake_Source = { "t", "s" },
  GetSetMediaItemTakeInfo_String = { "t", "str", "str", "bool" }, SetActiveTake = { "t" },
  PCM_Source_BuildPeaks = { "s", "num" }, UpdateItemInProject = { "i" },
  Undo_BeginBlock = {}, Undo_EndBlock = { "str", "num" }, UpdateArrange = {}, ValidatePtr2 = { "p", "any", "str" },
}

local function kind_ok(kind, value)
  if kind == "any" then return true end
  if kind == "p" then return value == 0 or value == nil end
  if kind == "str" then return type(value) == "string" end
  if kind == "num" then return type(value) == "number" end
  if kind == "bool" then return type(value) == "boolean" end
  if kind == "fn" then return type(value) == "function" end
  return type(value) == "table" and value.kind == kind
end

local function checked(name, impl)
  local sig = SIGNATURES[name] or error("mock has no signature for " .. name)
  return function(...)
    local n = select("#", ...)
    if n ~= #sig then error(string.format("%s takes %d argument(s), got %d", name, #sig, n), 2) end
    for i, kind in ipairs(sig) do
      if not kind_ok(kind, (select(i, ...))) then
        error(string.format("bad argument #%d to %s (%s expected, got %s)", i, name, kind, type((select(i, ...)))), 2)
      end
    end
    return impl(...)
  end
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end
Mock.write = write

-- A project: items (each with takes and sources), render settings, ext state, selection, a clock, a console.
function Mock.new(options)
  options = options or {}
  local m = { items = {}, ext = {}, console = {}, commands = {}, deferred = {}, renders = {}, undo = {},
    clock = 1000.0, os = options.os or "Linux", resource = options.resource, media = options.media,
    exec_result = "", ui_frozen = 0 }
  m.settings = { RENDER_SETTINGS = 64, RENDER_BOUNDSFLAG = 1, RENDER_STARTPOS = 0, RENDER_ENDPOS = 0,
    RENDER_SRATE = 48000, RENDER_CHANNELS = 6, RENDER_ADDTOPROJ = 1, RENDER_TAILFLAG = 63, RENDER_TAILMS = 1000,
    RENDER_NORMALIZE = 1 | 64 | 512, RENDER_DITHER = 3 }
  m.strings = { RENDER_FILE = "/user/renders", RENDER_PATTERN = "$project", RENDER_FORMAT = "l3pm",
    RENDER_FORMAT2 = "cagg" }
  local api = {}

  function m.source(file, opts)
    opts = opts or {}
    local root = { kind = "s", file = file, length = opts.file_length or 10.0, rate = opts.rate or 44100 }
    if not opts.section then return root end
    return { kind = "s", parent = root, section = opts.section, length = opts.section[2],
      reversed = opts.reversed or false, rate = root.rate }
  end

  -- add an item with one audio take: fields default to a plain item at 0 s playing 1 s of its source.
  function m.item(opts)
    local take = { kind = "t", source = opts.source, name = opts.name or "take.wav", midi = opts.midi or false,
      values = { D_STARTOFFS = opts.offset or 0, D_PLAYRATE = opts.playrate or 1, D_PITCH = opts.pitch or 0,
        D_VOL = opts.take_volume or 1, D_PAN = opts.take_pan or 0, I_CHANMODE = opts.chanmode or 0 },
      fx = opts.fx or 0, stretch = opts.stretch or 0, envelopes = opts.envelopes or 0 }
    local item = { kind = "i", takes = { take }, active = take, selected = opts.selected ~= false,
      values = { D_POSITION = opts.position or 0, D_LENGTH = opts.length or 1, D_VOL = opts.item_volume or 1,
        B_MUTE = 0, D_FADEINLEN = opts.fade or 0, D_FADEOUTLEN = opts.fade or 0, D_FADEINLEN_AUTO = 0,
        D_FADEOUTLEN_AUTO = 0 } }
    take.item = item
    m.items[#m.items + 1] = item
    return item
  end

  function m.selected()
    local out = {}
    for _, item in ipairs(m.items) do if item.selected then out[#out + 1] = item end end
    return out
  end

  -- run what the scripts deferred, advancing the clock, until nothing is left or `until_fn()` holds
  function m.run(step, until_fn, max_ticks)
    for _ = 1, max_ticks or 10000 do
      if #m.deferred == 0 or (until_fn and until_fn()) then return end
      local pending = m.deferred
      m.deferred = {}
      m.clock = m.clock + (step or 0.1)
      for _, fn in ipairs(pending) do fn() end
    end
  end

  local impl = {
    GetOS = function() return m.os end,
    GetResourcePath = function() return m.resource end,
    GetProjectPathEx = function() return m.media end,
    RecursiveCreateDirectory = function(path) os.execute("mkdir -p '" .. path .. "'"); return 1 end,
    GetExtState = function(section, key) return m.ext[section .. "/" .. key] or "" end,
    SetExtState = function(section, key, value) m.ext[section .. "/" .. key] = value end,
    DeleteExtState = function(section, key) m.ext[section .. "/" .. key] = nil end,
    ShowConsoleMsg = function(text) m.console[#m.console + 1] = text end,
    time_precise = function() return m.clock end,
    ExecProcess = function(cmdline, timeout) m.commands[#m.commands + 1] = cmdline; return m.exec_result end,
    defer = function(fn) m.deferred[#m.deferred + 1] = fn end,
    CountSelectedMediaItems = function() return #m.selected() end,
    GetSelectedMediaItem = function(_, i) return m.selected()[i + 1] end,
    SelectAllMediaItems = function(_, on) for _, item in ipairs(m.items) do item.selected = on end end,
    SetMediaItemSelected = function(item, on) item.selected = on end,
    IsMediaItemSelected = function(item) return item.selected end,
    GetActiveTake = function(item) return item.active end,
    TakeIsMIDI = function(take) return take.midi end,
    GetMediaItemTake_Source = function(take) return take.source end,
    GetMediaSourceParent = function(src) return src.parent end,
    PCM_Source_GetSectionInfo = function(src)
      if src.section then return true, src.section[1], src.section[2], src.reversed end
      return false, 0, 0, false
    end,
    GetMediaSourceLength = function(src) return src.length, false end,
    GetMediaSourceFileName = function(src) return src.file or "" end,
    GetMediaSourceSampleRate = function(src) return src.rate end,
    GetMediaItemTakeInfo_Value = function(take, p) return take.values[p] or error("unknown take value " .. p) end,
    SetMediaItemTakeInfo_Value = function(take, p, v) take.values[p] = v; return true end,
    GetMediaItemInfo_Value = function(item, p) return item.values[p] or error("unknown item value " .. p) end,
    SetMediaItemInfo_Value = function(item, p, v) item.values[p] = v; return true end,
    TakeFX_GetCount = function(take) return take.fx end,
    GetTakeNumStretchMarkers = function(take) return take.stretch end,
    CountTakeEnvelopes = function(take) return take.envelopes end,
    GetTakeName = function(take) return take.name end,
    GetSetProjectInfo = function(_, desc, value, is_set)
      if m.settings[desc] == nil then error("GetSetProjectInfo: unknown " .. desc) end
      if is_set then m.settings[desc] = value end
      return m.settings[desc]
    end,
    GetSetProjectInfo_String = function(_, desc, value, is_set)
      if desc == "RENDER_TARGETS" then
        return true, m.strings.RENDER_FILE .. "/" .. m.strings.RENDER_PATTERN .. ".wav"
      end
      if m.strings[desc] == nil then error("GetSetProjectInfo_String: unknown " .. desc) end
      if is_set then m.strings[desc] = value end
      return true, m.strings[desc]
    end,
    Main_OnCommand = function(command)
      if command ~= 42230 then return end
      local snapshot = { settings = {}, strings = {}, selected = m.selected(), items = {} }
      for k, v in pairs(m.settings) do snapshot.settings[k] = v end
      for k, v in pairs(m.strings) do snapshot.strings[k] = v end
      for _, item in ipairs(snapshot.selected) do
        local values = {}
        for k, v in pairs(item.values) do values[k] = v end
        snapshot.items[#snapshot.items + 1] = values
      end
      snapshot.path = m.strings.RENDER_FILE .. "/" .. m.strings.RENDER_PATTERN .. ".wav"
      if not m.render_fails then write(snapshot.path, "RIFF") end
      m.renders[#m.renders + 1] = snapshot
    end,
    PreventUIRefresh = function(n) m.ui_frozen = m.ui_frozen + n end,
    PCM_Source_CreateFromFile = function(path) return { kind = "s", file = path, length = 1, rate = 44100 } end,
    AddTakeToMediaItem = function(item)
      local take = { kind = "t", item = item, name = "", values = { D_STARTOFFS = 0, D_PLAYRATE = 1, D_PITCH = 0,
        D_VOL = 1, D_PAN = 0, I_CHANMODE = 0 }, fx = 0, stretch = 0, envelopes = 0, undo_block = m.open_undo }
      item.takes[#item.takes + 1] = take
      return take
    end,
    SetMediaItemTake_Source = function(take, src) take.source = src; return true end,
    GetSetMediaItemTakeInfo_String = function(take, p, value, set)
      if p ~= "P_NAME" then error("unknown take string " .. p) end
      if set then take.name = value end
      return true, take.name
    end,
    SetActiveTake = function(take) take.item.active = take end,
    PCM_Source_BuildPeaks = function() return 0 end,
    UpdateItemInProject = function() end,
    Undo_BeginBlock = function() m.open_undo = #m.undo + 1 end,
    Undo_EndBlock = function(desc) m.undo[#m.undo + 1] = desc; m.open_undo = nil end,
    UpdateArrange = function() end,
    ValidatePtr2 = function(_, ptr) for _, item in ipairs(m.items) do if item == ptr then return true end end return false end,
  }
  for name, fn in pairs(impl) do api[name] = checked(name, fn) end
  m.api = api
  return m
end

-- Split a command line the way REAPER does on Linux and macOS (no shell): spaces separate tokens; a token that
-- starts with ", ' or ` runs to the next same character.
function Mock.split_posix(line)
  local out, i = {}, 1
  while true do
    i = line:find("[^ \t]", i)
    if not i then return out end
    local q = line:sub(i, i)
    local stop
    if q == '"' or q == "'" or q == "`" then
      stop = line:find(q, i + 1, true) or error("unterminated quote in " .. line)
      out[#out + 1] = line:sub(i + 1, stop - 1)
    else
      stop = (line:find("[ \t]", i) or #line + 1)
      out[#out + 1] = line:sub(i, stop - 1)
    end
    i = stop + 1
  end
end

-- The value after `flag` in an argument list.
function Mock.flag(argv, flag)
  for i, a in ipairs(argv) do if a == flag then return argv[i + 1] end end
  return nil
end

return Mock
