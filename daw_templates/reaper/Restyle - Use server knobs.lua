-- @noindex
-- Restyle: forget the nudged strength and scale; the server's knobs apply again.
local here = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
dofile(here .. "restyle_common.lua").use_server_knobs(reaper)
