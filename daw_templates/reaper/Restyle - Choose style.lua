-- @noindex
-- Restyle: choose style. A menu of the styles the running server's model can use; REAPER never waits for it.
local r = reaper
local here = ({ r.get_action_context() })[2]:match("^(.*[/\\])")
local C = dofile(here .. "restyle_common.lua")

C.ask_server(r, function(report)
  local styles = report.styles or {}
  if #styles == 0 then
    C.log(r, "the server has no styles for its model yet; learn one with 'Restyle: learn style from selected items'.")
    return
  end
  gfx.init("Restyle", 0, 0)
  gfx.x, gfx.y = gfx.mouse_x, gfx.mouse_y
  local choice = gfx.showmenu(C.style_menu(styles, r.GetExtState(C.SECTION, "style")))
  gfx.quit()
  if choice > 0 then
    C.set_setting(r, "style", styles[choice])
    C.log(r, "style: " .. styles[choice])
  end
end)
