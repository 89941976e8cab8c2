-- @description Restyle: stylize selected items
-- Sends each selected audio item to a running `restyle serve` and adds the result as a new take on the same
-- item. Plain items (playrate 1, not reversed, no take FX) are sent as their source file plus offsets; others are
-- rendered to a temporary WAV first (the user's render settings are restored afterwards). REAPER never blocks:
-- `restyle send` runs in the background and this script polls for its result file in a defer loop.
local r = reaper
local here = ({ r.get_action_context() })[2]:match("^(.*[/\\])")
local C = dofile(here .. "restyle_common.lua")

local function render_settings(save)
  local keys = { "RENDER_SETTINGS", "RENDER_BOUNDSFLAG", "RENDER_STARTPOS", "RENDER_ENDPOS", "RENDER_SRATE",
    "RENDER_CHANNELS", "RENDER_ADDTOPROJ" }
  local strings = { "RENDER_FILE", "RENDER_PATTERN", "RENDER_FORMAT" }
  if save == nil then
    local saved = { numbers = {}, strings = {} }
    for _, k in ipairs(keys) do saved.numbers[k] = r.GetSetProjectInfo(0, k, 0, false) end
    for _, k in ipairs(strings) do saved.strings[k] = select(2, r.GetSetProjectInfo_String(0, k, "", false)) end
    return saved
  end
  for k, v in pairs(save.numbers) do r.GetSetProjectInfo(0, k, v, true) end
  for k, v in pairs(save.strings) do r.GetSetProjectInfo_String(0, k, v, true) end
end

-- Render one item (as REAPER plays it: rate, reverse, take FX) to a WAV in the Restyle folder.
local function render_item(item)
  local folder = r.GetResourcePath() .. "/Restyle/renders"
  r.RecursiveCreateDirectory(folder, 0)
  local name = string.format("item-%d-%d", os.time(), math.random(1, 1e9))
  local saved = render_settings()
  local position = r.GetMediaItemInfo_Value(item, "D_POSITION")
  local length = r.GetMediaItemInfo_Value(item, "D_LENGTH")
  r.SelectAllMediaItems(0, false)
  r.SetMediaItemSelected(item, true)
  r.GetSetProjectInfo(0, "RENDER_SETTINGS", 64, true)     -- source: selected media items
  r.GetSetProjectInfo(0, "RENDER_BOUNDSFLAG", 0, true)    -- custom bounds
  r.GetSetProjectInfo(0, "RENDER_STARTPOS", position, true)
  r.GetSetProjectInfo(0, "RENDER_ENDPOS", position + length, true)
  r.GetSetProjectInfo(0, "RENDER_ADDTOPROJ", 0, true)
  r.GetSetProjectInfo_String(0, "RENDER_FILE", folder, true)
  r.GetSetProjectInfo_String(0, "RENDER_PATTERN", name, true)
  r.GetSetProjectInfo_String(0, "RENDER_FORMAT", "evaw", true) -- WAV
  r.Main_OnCommand(42230, 0)                                -- render using the most recent settings
  render_settings(saved)
  return folder .. "/" .. name .. ".wav"
end

local function source_of(item)
  local take = r.GetActiveTake(item)
  if not take or r.TakeIsMIDI(take) then return nil, "not an audio item" end
  local source = r.GetMediaItemTake_Source(take)
  local _, _, _, reversed = r.PCM_Source_GetSectionInfo(source)
  local info = {
    playrate = r.GetMediaItemTakeInfo_Value(take, "D_PLAYRATE"),
    reversed = reversed,
    fx_count = r.TakeFX_GetCount(take),
  }
  if C.is_plain(info) then
    local path = r.GetMediaSourceFileName(r.GetMediaSourceParent(source) or source, "")
    local start, finish = C.region(r.GetMediaItemTakeInfo_Value(take, "D_STARTOFFS"),
      r.GetMediaItemInfo_Value(item, "D_LENGTH"), info.playrate)
    return { path = path, start = start, finish = finish }
  end
  return { path = render_item(item) }
end

local items, jobs = {}, {}
for i = 0, r.CountSelectedMediaItems(0) - 1 do items[#items + 1] = r.GetSelectedMediaItem(0, i) end
if #items == 0 then
  C.log(r, "select one or more audio items first.")
  return
end

local windows = C.is_windows(r)
for _, item in ipairs(items) do
  local source, why = source_of(item)
  if not source then
    C.log(r, "skipped an item: " .. why)
  else
    local result = C.result_path(r, "stylize")
    r.ExecProcess(C.send_command({
      command = C.get_setting(r, "command"), host = C.get_setting(r, "host"), port = C.get_setting(r, "port"),
      input = source.path, start = source.start, finish = source.finish, result_file = result,
      style = r.GetExtState(C.SECTION, "style"), strength = tonumber(r.GetExtState(C.SECTION, "strength")),
      scale = tonumber(r.GetExtState(C.SECTION, "scale")), windows = windows,
    }), -1)
    jobs[#jobs + 1] = { item = item, result = result }
  end
end
C.log(r, string.format("sent %d item(s); the stylized takes appear when they are ready.", #jobs))

local function poll()
  for i = #jobs, 1, -1 do
    local job = jobs[i]
    local text = C.read_file(job.result)
    if text then
      table.remove(jobs, i)
      os.remove(job.result)
      local reply, problem = C.parse_json(text)
      if not reply then
        C.log(r, "unreadable result: " .. problem)
      elseif not reply.ok then
        C.log(r, reply.error or "the job failed")
      elseif r.ValidatePtr(job.item, "MediaItem*") then
        r.Undo_BeginBlock()
        r.SelectAllMediaItems(0, false)
        r.SetMediaItemSelected(job.item, true)
        r.InsertMedia(reply.output, 3)                         -- add as a new take of the selected item
        r.Undo_EndBlock("Restyle: stylized take", -1)
        r.UpdateArrange()
      end
    end
  end
  if #jobs > 0 then r.defer(poll) end
end
poll()
