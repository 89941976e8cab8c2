-- @noindex
-- Restyle: nudge strength up (what 'Restyle: stylize selected items' sends; starts from the server's value).
local here = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
dofile(here .. "restyle_common.lua").nudge(reaper, "strength", 0.05)
