-- Unit tests for the pure parts of daw_templates/reaper/restyle_common.lua, run with a plain Lua 5.4.
local here = arg[0]:match("(.*/)") or "./"
local C = dofile(here .. "../../daw_templates/reaper/restyle_common.lua")
local Mock = dofile(here .. "mock_reaper.lua")
local failures, count = 0, 0

local function check(name, cond)
  count = count + 1
  if not cond then failures = failures + 1; print("FAIL " .. name) end
end

-- quoting: Linux/macOS (REAPER splits, no shell, no escapes) and Windows (the C runtime's rules)
local function round_trips(args)
  local line = assert(C.command_line(args, false))
  local back = Mock.split_posix(line)
  for i, a in ipairs(args) do if back[i] ~= a then return false end end
  return #back == #args
end
check("posix spaces", round_trips({ "/Users/me/My Song/take 1.wav" }))
check("posix apostrophe", round_trips({ "/Users/me/it's/take.wav", "--style", "o'clock" }))
check("posix double quote and apostrophe", round_trips({ [[/a "b" c's/x.wav]] }))
check("posix non-ascii", round_trips({ "/tmp/Çà va/é 日本.wav" }))
check("posix empty", round_trips({ "send", "" }))
check("posix refuses what cannot pass", C.quote([[a"b'c`d]], false) == nil)
check("windows plain", C.quote([[C:\Music\My take.wav]], true) == [["C:\Music\My take.wav"]])
check("windows trailing backslash", C.quote([[C:\Music\]], true) == [["C:\Music\\"]])
check("windows quote", C.quote([[a"b]], true) == [["a\"b"]])
check("windows backslashes before quote", C.quote([[a\"b]], true) == [["a\\\"b"]])
check("number format", C.number(0.6) == "0.6" and C.number(5) == "5" and C.number(12.25) == "12.25")

-- the send arguments
local args = C.send_args({ input = "/a b/c.wav", style = "bird song", strength = 0.45, scale = 3.5, start = 1.5,
  finish = 4, output = "/a b/c out.wav", timeout = 900 })
check("send args", table.concat(args, "|") == "send|/a b/c.wav|--host|127.0.0.1|--port|9100|--style|bird song|"
  .. "--strength|0.45|--scale|3.5|--start|1.5|--end|4|--output|/a b/c out.wav|--timeout|900")

-- which items go through a render
local plain = { playrate = 1, pitch = 0, reversed = false, fx_count = 0, stretch_markers = 0, envelopes = 0,
  take_volume = 1, take_pan = 0, chanmode = 0, start_offset = 0.5, length = 2, source_length = 10 }
local function with(changes)
  local t = {}
  for k, v in pairs(plain) do t[k] = v end
  for k, v in pairs(changes) do t[k] = v end
  return C.render_reason(t)
end
check("plain take", C.render_reason(plain) == nil)
check("playrate renders", with({ playrate = 1.5 }) == "playrate")
check("pitch renders", with({ pitch = -3 }) == "pitch shift")
check("reversed renders", with({ reversed = true }) == "reversed")
check("take fx render", with({ fx_count = 2 }) == "take FX")
check("stretch markers render", with({ stretch_markers = 3 }) == "stretch markers")
check("take envelopes render", with({ envelopes = 1 }) == "take envelopes")
check("take volume renders", with({ take_volume = 0.5 }) == "take volume")
check("take pan renders", with({ take_pan = 0.3 }) == "take pan")
check("channel mode renders", with({ chanmode = 2 }) == "channel mode")
check("negative offset renders", with({ start_offset = -0.5 }) == "starts before its source")
check("looped item renders", with({ start_offset = 9, length = 2 }) == "longer than its source (loops)")
check("clamp", C.clamp(1.3, C.RANGES.strength) == 1.0 and C.clamp(-1, C.RANGES.scale) == 0.0)
check("inside", C.inside("/p/media/a.wav", "/p/media") and C.inside("/p/media/sub/a.wav", "/p/media/")
  and not C.inside("/p/media2/a.wav", "/p/media") and C.inside([[C:\P\Media\a.wav]], "c:/p/media", true))
check("safe name", C.safe_name([[a/b\c:d*e?"f<g>h|i]]) == "a-b-c-d-e--f-g-h-i")
check("take name", C.take_name({ style = "bells", strength = 0.6, scale = 4.5 }) == "Restyle bells strength 0.6 scale 4.5"
  and C.take_name({ style = "" }) == "Restyle server style")
check("style menu", C.style_menu({ "a", "b" }, "b") == "a|!b")

-- JSON from `restyle --result-file`
local ok = C.parse_json('{"ok": true, "job": "job-3", "output": "/a \\"b\\"/c\\u00e9.wav", "sample_rate": 48000, "seconds": 1.5e0}')
check("json ok", ok and ok.ok == true and ok.output == '/a "b"/cé.wav' and ok.sample_rate == 48000 and ok.seconds == 1.5)
local bad = C.parse_json('{"ok": false, "code": "unknown_style", "error": "No style named \'owl\'"}')
check("json error", bad and bad.ok == false and bad.code == "unknown_style")
check("json array", C.parse_json('["a", 1, [], {}]')[2] == 1)
check("json surrogate pair", C.parse_json('"\\ud83c\\udfb5 \\u65e5"') == "🎵 日")
check("json lone surrogate", C.parse_json('"\\ud83c x"') == nil)
check("json null", C.parse_json('{"running": null}').running == C.NULL)
local none, message = C.parse_json('{"ok": tru')
check("json malformed", none == nil and type(message) == "string")

print(string.format("lua: %d passed, %d failed", count - failures, failures))
os.exit(failures == 0 and 0 or 1)
