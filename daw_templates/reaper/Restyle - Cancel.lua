-- @noindex
-- Restyle: cancel the running stylize and learn jobs (on the server too).
local here = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local C = dofile(here .. "restyle_common.lua")
C.request_cancel(reaper)
C.log(reaper, "cancelling the running jobs.")
