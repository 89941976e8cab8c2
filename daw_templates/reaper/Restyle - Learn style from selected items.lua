-- @noindex
-- Restyle: learn a new style from the selected items, on the running server (its model, its queue).
local r = reaper
local here = ({ r.get_action_context() })[2]:match("^(.*[/\\])")
local C = dofile(here .. "restyle_common.lua")

local ok, name = r.GetUserInputs("Restyle: learn a style", 1, "Style name", "")
if ok and name ~= "" then C.learn_selected(r, name) end
