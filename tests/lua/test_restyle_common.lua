-- Unit tests for daw_templates/reaper/restyle_common.lua, run with a plain Lua 5.4 interpreter.
local here = arg[0]:match("(.*/)") or "./"
local C = dofile(here .. "../../daw_templates/reaper/restyle_common.lua")
local failures, count = 0, 0

local function check(name, cond)
  count = count + 1
  if not cond then failures = failures + 1; print("FAIL " .. name) end
end

-- quoting: spaces, quotes, non-ASCII
check("posix spaces", C.quote("/Users/me/My Song/take 1.wav") == "'/Users/me/My Song/take 1.wav'")
check("posix single quote", C.quote("it's.wav") == [['it'\''s.wav']])
check("posix non-ascii", C.quote("/tmp/Çà va/é.wav") == "'/tmp/Çà va/é.wav'")
check("windows quote", C.quote([[C:\Music\My "best" take.wav]], true) == [["C:\Music\My ""best"" take.wav"]])
check("number format", C.number(0.6) == "0.6" and C.number(5) == "5" and C.number(12.25) == "12.25")

-- the send command line
local cmd = C.send_command({ input = "/a b/c.wav", style = "bird song", strength = 0.45, scale = 3.5, start = 1.5,
  finish = 4, result_file = "/tmp/r.json" })
check("send command", cmd == "'restyle' send '/a b/c.wav' --host '127.0.0.1' --port 9100 --style 'bird song' "
  .. "--strength 0.45 --scale 3.5 --start 1.5 --end 4 --result-file '/tmp/r.json'")
local minimal = C.send_command({ input = "x.wav", result_file = "r.json", windows = true })
check("send command minimal windows", minimal == '"restyle" send "x.wav" --host "127.0.0.1" --port 9100 --result-file "r.json"')

-- OSC argument building
check("oscsend types", C.oscsend_command("localhost", 9100, "/restyle/knob/set", { "k1", "scale", 4.5 })
  == "oscsend localhost 9100 /restyle/knob/set ssf 'k1' 'scale' 4.5")
check("oscsend int", C.oscsend_command("localhost", 9100, "/restyle/ping", { 7 }) == "oscsend localhost 9100 /restyle/ping i 7")

-- items
check("plain take", C.is_plain({ playrate = 1, reversed = false, fx_count = 0 }))
check("stretched take", not C.is_plain({ playrate = 1.5, reversed = false, fx_count = 0 }))
check("reversed take", not C.is_plain({ playrate = 1, reversed = true, fx_count = 0 }))
check("take with fx", not C.is_plain({ playrate = 1, reversed = false, fx_count = 2 }))
local s, e = C.region(2.0, 3.5, 1)
check("region", s == 2.0 and e == 5.5)
check("clamp", C.clamp(1.3, C.RANGES.strength) == 1.0 and C.clamp(-1, C.RANGES.scale) == 0.0)

-- JSON results from `restyle send --result-file`
local ok = C.parse_json('{"ok": true, "job": "job-3", "output": "/a \\"b\\"/c\\u00e9.wav", "sample_rate": 48000, "seconds": 1.5e0}')
check("json ok", ok and ok.ok == true and ok.output == '/a "b"/cé.wav' and ok.sample_rate == 48000 and ok.seconds == 1.5)
local bad = C.parse_json('{"ok": false, "code": "unknown_style", "error": "No style named \'owl\'"}')
check("json error", bad and bad.ok == false and bad.code == "unknown_style")
check("json array", C.parse_json('["a", 1, [], {}]')[2] == 1)
local none, message = C.parse_json('{"ok": tru')
check("json malformed", none == nil and type(message) == "string")

-- nudges keep their value in ExtState, clamped
local store, printed = {}, {}
local fake = {
  GetExtState = function(section, key) return store[section .. "/" .. key] or "" end,
  SetExtState = function(section, key, value) store[section .. "/" .. key] = value end,
  ShowConsoleMsg = function(text) printed[#printed + 1] = text end,
}
C.nudge(fake, "strength", 0.05)
check("nudge from default", store["Restyle/strength"] == "0.75")
for _ = 1, 10 do C.nudge(fake, "strength", 0.05) end
check("nudge clamps", store["Restyle/strength"] == "1" and printed[#printed] == "Restyle: strength 1\n")

print(string.format("lua: %d passed, %d failed", count - failures, failures))
os.exit(failures == 0 and 0 or 1)
