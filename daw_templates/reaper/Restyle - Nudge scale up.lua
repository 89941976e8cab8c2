-- @noindex
-- Restyle: nudge scale up (what 'Restyle: stylize selected items' sends; starts from the server's value).
local here = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
dofile(here .. "restyle_common.lua").nudge(reaper, "scale", 0.5)
