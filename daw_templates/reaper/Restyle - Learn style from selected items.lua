-- @description Restyle: learn style from selected items
-- Trains a new style from the source files of the selected audio items with `restyle train` (in the background;
-- training takes minutes to an hour: progress goes to a log file in REAPER's resource folder).
local r = reaper
local here = ({ r.get_action_context() })[2]:match("^(.*[/\\])")
local C = dofile(here .. "restyle_common.lua")

local ok, name = r.GetUserInputs("Restyle: learn a style", 1, "Style name", "")
if not ok or name == "" then return end
local windows = C.is_windows(r)
local parts = { C.quote(C.get_setting(r, "command"), windows), "train", C.quote(name, windows) }
for i = 0, r.CountSelectedMediaItems(0) - 1 do
  local take = r.GetActiveTake(r.GetSelectedMediaItem(0, i))
  if take and not r.TakeIsMIDI(take) then
    parts[#parts + 1] = C.quote(r.GetMediaSourceFileName(r.GetMediaItemTake_Source(take), ""), windows)
  end
end
if #parts == 3 then
  C.log(r, "select one or more audio items to learn from.")
  return
end
r.ExecProcess(table.concat(parts, " "), -1)
C.log(r, "training '" .. name .. "' in the background; choose it with 'Restyle: choose style' when it is done.")
