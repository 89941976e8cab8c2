-- @description Restyle: choose style
-- Shows a menu of the styles in the library (from `restyle styles list --json`) and remembers the choice.
local r = reaper
local here = ({ r.get_action_context() })[2]:match("^(.*[/\\])")
local C = dofile(here .. "restyle_common.lua")

local windows = C.is_windows(r)
local command = C.quote(C.get_setting(r, "command"), windows) .. " styles list --json"
local output = r.ExecProcess(command, 20000)   -- blocking, at most 20 s: "exit code\noutput"
local text = output and output:match("^%-?%d+\n(.*)$")
local styles = text and C.parse_json(text)
if type(styles) ~= "table" or #styles == 0 then
  C.log(r, "no styles found (is `restyle` on the PATH? train one with `restyle train NAME CLIPS...`).")
  return
end
local current = r.GetExtState(C.SECTION, "style")
local labels = {}
for i, style in ipairs(styles) do labels[i] = (style.name == current and "!" or "") .. style.name end
gfx.init("Restyle", 0, 0)
gfx.x, gfx.y = gfx.mouse_x, gfx.mouse_y
local choice = gfx.showmenu(table.concat(labels, "|"))
gfx.quit()
if choice > 0 then
  C.set_setting(r, "style", styles[choice].name)
  C.log(r, "style: " .. styles[choice].name)
end
