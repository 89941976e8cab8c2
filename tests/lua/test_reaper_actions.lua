-- The REAPER actions run against a mock `reaper` that follows the SDK header (tests/lua/mock_reaper.lua).
-- Usage: lua5.4 test_reaper_actions.lua SCRATCH_FOLDER (an empty folder; the test writes files there).
local here = arg[0]:match("(.*/)") or "./"
local C = dofile(here .. "../../daw_templates/reaper/restyle_common.lua")
local Mock = dofile(here .. "mock_reaper.lua")
local scratch = assert(arg[1], "pass a scratch folder")
local failures, count = 0, 0

local function check(name, cond, detail)
  count = count + 1
  if not cond then failures = failures + 1; print("FAIL " .. name .. (detail and (": " .. tostring(detail)) or "")) end
end

local n = 0
local function project(options)
  n = n + 1
  local root = string.format("%s/p%d", scratch, n)
  os.execute(string.format("mkdir -p '%s/media' '%s/resource' '%s/elsewhere'", root, root, root))
  options = options or {}
  options.media, options.resource = root .. "/media", root .. "/resource"
  local m = Mock.new(options)
  m.root = root
  return m
end

local function argv_of(m, i) return Mock.split_posix(m.commands[i or #m.commands]) end

-- answer a background `restyle` command as the real client does: progress file, then the result file
local function progress(m, i, state) Mock.write(Mock.flag(argv_of(m, i), "--progress-file"), state) end
local function finish(m, i, json) Mock.write(Mock.flag(argv_of(m, i), "--result-file"), json) end
local function contains(list, text)
  for _, line in ipairs(list) do if line:find(text, 1, true) then return true end end
  return false
end

-- 1. a pitched item is rendered alone: render settings set for that, then every one restored
do
  local m = project()
  local item = m.item({ source = m.source(m.root .. "/media/vox.wav"), pitch = 2, item_volume = 0.5, fade = 0.1,
    name = "vox" })
  local other = m.item({ source = m.source(m.root .. "/media/gtr.wav"), selected = false })
  local before = {}
  for k, v in pairs(m.settings) do before[k] = v end
  local before_strings = {}
  for k, v in pairs(m.strings) do before_strings[k] = v end
  C.stylize_selected(m.api)
  local render = m.renders[1]
  check("render happened", render ~= nil)
  local s = render.settings
  check("render source: selected media items, not via master", s.RENDER_SETTINGS == 32, s.RENDER_SETTINGS)
  check("render: no tail, normalize, dither", s.RENDER_TAILFLAG == 0 and s.RENDER_NORMALIZE == 0 and s.RENDER_DITHER == 0)
  check("render: item bounds", s.RENDER_BOUNDSFLAG == 0 and s.RENDER_STARTPOS == 0 and s.RENDER_ENDPOS == 1)
  check("render: stereo at the source's rate", s.RENDER_CHANNELS == 2 and s.RENDER_SRATE == 44100)
  check("render: wav only, not added", render.strings.RENDER_FORMAT == "evaw" and render.strings.RENDER_FORMAT2 == ""
    and s.RENDER_ADDTOPROJ == 0)
  check("render: into the media folder", render.strings.RENDER_FILE == m.root .. "/media")
  check("render: only the item", #render.selected == 1 and render.selected[1] == item)
  check("render: item volume and fades not baked in", render.items[1].D_VOL == 1 and render.items[1].D_FADEINLEN == 0)
  local restored = true
  for k, v in pairs(before) do if m.settings[k] ~= v then restored = false end end
  for k, v in pairs(before_strings) do if m.strings[k] ~= v then restored = false end end
  check("render settings restored", restored)
  check("item restored", item.values.D_VOL == 0.5 and item.values.D_FADEINLEN == 0.1)
  check("selection restored", item.selected and not other.selected)
  local argv = argv_of(m)
  check("render sent without offsets", argv[3] == render.path and Mock.flag(argv, "--start") == nil, m.commands[1])
  check("output in the media folder, named with what is known before the job runs",
    Mock.flag(argv, "--output") == m.root .. "/media/vox Restyle.wav", Mock.flag(argv, "--output"))
  check("ui refresh balanced", m.ui_frozen == 0)
end

-- 2. a section source: its offset adds to the take's start offset
do
  local m = project()
  local src = m.source(m.root .. "/media/long.wav", { section = { 2.0, 5.0 } })
  m.item({ source = src, offset = 0.5, length = 1.25 })
  C.stylize_selected(m.api)
  local argv = argv_of(m)
  check("section source: the parent file", argv[3] == m.root .. "/media/long.wav", argv[3])
  check("section offset added", Mock.flag(argv, "--start") == "2.5" and Mock.flag(argv, "--end") == "3.75",
    m.commands[1])
  check("plain item: no render", #m.renders == 0)
end

-- 3. looped, reversed, stretched... items take the render path
do
  for _, case in ipairs({
    { "looped", { offset = 9.5, length = 2 } }, { "negative offset", { offset = -1 } },
    { "reversed section", { reversed = true } }, { "stretch markers", { stretch = 2 } },
    { "playrate", { playrate = 0.5 } }, { "take envelopes", { envelopes = 1 } }, { "channel mode", { chanmode = 3 } },
  }) do
    local m = project()
    local opts = case[2]
    opts.source = m.source(m.root .. "/media/a.wav", opts.reversed and { section = { 0, 10 }, reversed = true } or nil)
    m.item(opts)
    C.stylize_selected(m.api)
    check(case[1] .. " renders", #m.renders == 1 and argv_of(m)[3] == m.renders[1].path)
  end
  local m = project()
  m.item({ source = m.source(m.root .. "/elsewhere/a.wav") })
  C.stylize_selected(m.api)
  check("source outside the media folder renders", #m.renders == 1)
end

-- 4. results: new takes on the right items, one undo step, selection untouched, renders deleted
do
  local m = project()
  local a = m.item({ source = m.source(m.root .. "/media/a.wav"), name = "a.wav" })
  local b = m.item({ source = m.source(m.root .. "/media/b.wav"), playrate = 2, name = "b.wav" })
  local c = m.item({ source = m.source(m.root .. "/media/c.wav"), selected = false })
  m.api.SetExtState("Restyle", "style", "bells", true)
  m.api.SetExtState("Restyle", "strength", "0.6", true)
  C.stylize_selected(m.api)
  check("two jobs started", #m.commands == 2)
  check("distinct outputs", Mock.flag(argv_of(m, 1), "--output") ~= Mock.flag(argv_of(m, 2), "--output"))
  a.selected, c.selected = false, true  -- the user keeps working meanwhile
  for i = 1, 2 do
    progress(m, i, '{"state": "running", "job": "job-' .. i .. '", "fraction": 0.5}')
  end
  m.run(0.5, nil, 5)
  check("progress shown", contains(m.console, "item 1/2: 50 %"))
  check("no take before all are done", #a.takes == 1)
  local out_a, out_b = Mock.flag(argv_of(m, 1), "--output"), Mock.flag(argv_of(m, 2), "--output")
  finish(m, 1, '{"ok": true, "output": "' .. out_a .. '"}')
  finish(m, 2, '{"ok": true, "output": "' .. out_b .. '"}')
  m.run(0.5)
  check("take added to each item", #a.takes == 2 and #b.takes == 2 and #c.takes == 1)
  check("new take active and named", a.active == a.takes[2] and a.takes[2].name == "Restyle bells strength 0.6")
  check("new take's source is the result", b.takes[2].source.file == out_b)
  check("one undo step", #m.undo == 1 and a.takes[2].undo_block == 1 and b.takes[2].undo_block == 1, #m.undo)
  check("selection untouched", not a.selected and b.selected and c.selected)
  check("temporary render deleted", not C.exists(m.renders[1].path))
  check("result files deleted", not C.exists(Mock.flag(argv_of(m, 1), "--result-file")))
end

-- 5. waiting never hangs
do
  local m = project()
  m.item({ source = m.source(m.root .. "/media/a.wav") })
  m.exec_result = nil  -- ExecProcess: "returns NULL on total failure"
  C.stylize_selected(m.api)
  check("process that cannot start: one clear line", contains(m.console, "could not run `restyle`"))
  check("nothing left waiting", #m.deferred == 0)

  m = project()
  m.item({ source = m.source(m.root .. "/media/a.wav") })
  C.stylize_selected(m.api)
  m.run(1.0)
  check("process that never wrote anything: said so", contains(m.console, "wrote no progress or result file"))
  check("...and the loop ended", #m.deferred == 0)

  m = project()
  m.item({ source = m.source(m.root .. "/media/a.wav") })
  m.api.SetExtState("Restyle", "timeout", "60", true)
  C.stylize_selected(m.api)
  progress(m, 1, '{"state": "running", "job": "job-7", "fraction": 0.2}')
  m.run(5.0)
  check("timeout: one line", contains(m.console, "after it started; cancelled"))
  check("timeout: the job is cancelled on the server", argv_of(m)[2] == "cancel" and argv_of(m)[3] == "job-7",
    m.commands[#m.commands])

  m = project()
  m.item({ source = m.source(m.root .. "/media/a.wav") })
  C.stylize_selected(m.api)
  finish(m, 1, '{"ok": false, "code": "internal", "error": "OSError: Network is unreachable"}')
  m.run(0.5)
  check("failure from the client: shown", contains(m.console, "OSError: Network is unreachable"))
end

-- 6. cancel, learn on the server, styles and knobs from the server
do
  local m = project()
  m.item({ source = m.source(m.root .. "/media/a.wav") })
  C.stylize_selected(m.api)
  progress(m, 1, '{"state": "running", "job": "job-3", "fraction": 0.1}')
  m.run(0.5, nil, 2)
  C.request_cancel(m.api)
  m.run(0.5)
  check("cancel sends /restyle/cancel for the job", argv_of(m)[2] == "cancel" and argv_of(m)[3] == "job-3")
  check("cancel: said so", contains(m.console, "cancelled"))

  m = project()
  m.item({ source = m.source(m.root .. "/media/a.wav"), length = 10 })
  C.learn_selected(m.api, "my strings")
  local argv = argv_of(m)
  check("learn runs on the server", argv[2] == "learn" and argv[3] == "my strings" and argv[4] == m.root .. "/media/a.wav")
  check("learn writes its log", Mock.flag(argv, "--log") == m.root .. "/resource/Restyle/learn-my strings.log")
  finish(m, 1, '{"ok": true, "job": "job-1", "style": "my strings"}')
  m.run(0.5)
  check("learned style becomes the choice", m.api.GetExtState("Restyle", "style") == "my strings")

  m = project()
  local got
  C.ask_server(m.api, function(report) got = report end)
  check("status asked in the background", argv_of(m)[2] == "status" and #m.deferred == 1)
  finish(m, 1, '{"ok": true, "styles": ["bells", "chimes"], "knobs": {"strength": 0.4, "scale": 6}}')
  m.run(0.5)
  check("styles from the server", got and got.styles[2] == "chimes")

  m = project()
  C.nudge(m.api, "strength", 0.05)
  finish(m, 1, '{"ok": true, "styles": [], "knobs": {"strength": 0.4, "scale": 6}}')
  m.run(0.5)
  check("nudge starts from the server's knob", m.api.GetExtState("Restyle", "strength") == "0.45")
  C.nudge(m.api, "strength", 0.05)
  check("later nudges start from the nudged value", m.api.GetExtState("Restyle", "strength") == "0.5")
  for _ = 1, 20 do C.nudge(m.api, "strength", 0.05) end
  check("nudge clamps", m.api.GetExtState("Restyle", "strength") == "1")
  C.use_server_knobs(m.api)
  check("use server knobs forgets nudges", m.api.GetExtState("Restyle", "strength") == "")
end

-- 7. Windows command lines
do
  local m = project({ os = "Win64" })
  m.item({ source = m.source(m.root .. "/media/a.wav") })
  C.stylize_selected(m.api)
  check("windows: double-quoted arguments", m.commands[1]:sub(1, 18) == '"restyle" "send" "', m.commands[1])
end

-- 8. review fixes (issue 12)

-- learn sends only what the item plays: a 2 s item at 30 s of a long file is rendered first
do
  local m = project()
  m.item({ source = m.source(m.root .. "/media/long.wav", { file_length = 600 }), offset = 30, length = 2 })
  m.item({ source = m.source(m.root .. "/media/whole.wav", { file_length = 4 }), length = 4 })
  C.learn_selected(m.api, "part")
  local argv = argv_of(m)
  check("learn: a part of a file is rendered", #m.renders == 1 and argv[4] == m.renders[1].path, m.commands[1])
  check("learn: a whole file is sent as it is", argv[5] == m.root .. "/media/whole.wav", argv[5])
  check("learn: no --start/--end to drop", Mock.flag(argv, "--start") == nil)
  progress(m, 1, '{"state": "running", "job": "job-9", "fraction": 0.1}')
  m.run(60.0, nil, 40)  -- 40 minutes of training
  check("learn: no client-side deadline", #m.commands == 1 and not contains(m.console, "after it started; cancelled"),
    m.commands[#m.commands])
  finish(m, 1, '{"ok": true, "job": "job-9", "style": "part"}')
  m.run(0.5)
  check("learn: temporary render deleted", m.renders[1] and not C.exists(m.renders[1].path))
end

-- a batch: the deadline counts from when each job runs, not while it waits in the queue
do
  local m = project()
  m.api.SetExtState("Restyle", "timeout", "60", true)
  m.item({ source = m.source(m.root .. "/media/a.wav") })
  m.item({ source = m.source(m.root .. "/media/b.wav") })
  C.stylize_selected(m.api)
  progress(m, 1, '{"state": "running", "job": "job-1", "fraction": 0.5}')
  progress(m, 2, '{"state": "queued", "job": "job-2", "position": 1}')
  m.run(5.0, nil, 10)
  finish(m, 1, '{"ok": true, "output": "' .. Mock.flag(argv_of(m, 1), "--output") .. '"}')
  m.run(5.0, nil, 10)
  check("queued job: no deadline while it waits",
    #m.commands == 2 and not contains(m.console, "after it started; cancelled"))
  progress(m, 2, '{"state": "running", "job": "job-2", "fraction": 0.1}')
  m.run(5.0, nil, 5)
  check("...its deadline starts when it runs", #m.commands == 2)
  m.run(5.0)
  check("...and then applies", contains(m.console, "after it started; cancelled") and argv_of(m)[3] == "job-2",
    m.commands[#m.commands])
end

-- the take is named from the knobs the job used, as `restyle send` reports them
do
  local m = project()
  local item = m.item({ source = m.source(m.root .. "/media/a.wav"), name = "vox.wav" })
  C.stylize_selected(m.api)
  local out = Mock.flag(argv_of(m, 1), "--output")
  Mock.write(out, "RIFF")
  finish(m, 1, '{"ok": true, "output": "' .. out .. '", "style": "bells", "strength": 0.7, "scale": 5.0}')
  m.run(0.5)
  local named = "Restyle bells strength 0.7 scale 5"
  local take = item.takes[2] or { source = {} }
  check("take named from the knobs used", take.name == named, take.name)
  check("file named from the knobs used", take.source.file == m.root .. "/media/vox " .. named .. ".wav", take.source.file)
  check("...renamed, not copied", not C.exists(out) and C.exists(take.source.file or ""))
end

-- a cancel before the server accepted the job reaches the server once the job id appears
do
  local m = project()
  m.item({ source = m.source(m.root .. "/media/a.wav") })
  C.stylize_selected(m.api)
  local files = { Mock.flag(argv_of(m, 1), "--progress-file"), Mock.flag(argv_of(m, 1), "--result-file") }
  progress(m, 1, '{"state": "starting"}')
  m.run(0.5, nil, 2)
  C.request_cancel(m.api)
  m.run(0.5, nil, 3)
  check("early cancel: said so at once", contains(m.console, "cancelled") and #m.commands == 1)
  progress(m, 1, '{"state": "queued", "job": "job-5", "position": 2}')
  m.run(0.5, nil, 3)
  check("early cancel: sent once the job is known", argv_of(m)[2] == "cancel" and argv_of(m)[3] == "job-5"
    and #m.commands == 2, m.commands[#m.commands])
  finish(m, 1, '{"ok": false, "code": "cancelled", "error": "job-5 cancelled"}')
  m.run(0.5)
  check("early cancel: the job's files deleted", not C.exists(files[1]) and not C.exists(files[2]))
  check("early cancel: nothing left waiting", #m.deferred == 0)
end

-- a process that starts but leaves no file says so, not "is Restyle installed?"
do
  local m = project()
  m.item({ source = m.source(m.root .. "/media/a.wav") })
  C.stylize_selected(m.api)
  m.run(1.0)
  check("started, wrote nothing: its own message", contains(m.console, "wrote no progress")
    and not contains(m.console, "Is Restyle installed"), m.console[#m.console])
end

-- settings that are not numbers fall back to the defaults before anything starts
do
  local m = project()
  m.item({ source = m.source(m.root .. "/media/a.wav") })
  m.api.SetExtState("Restyle", "timeout", "ten minutes", true)
  m.api.SetExtState("Restyle", "port", "abc", true)
  local ok = pcall(C.stylize_selected, m.api)
  check("bad timeout: no crash", ok and #m.commands == 1)
  check("bad timeout: the default is sent", Mock.flag(argv_of(m), "--timeout") == "900"
    and Mock.flag(argv_of(m), "--port") == "9100", m.commands[1])
  check("bad settings: said so", contains(m.console, "timeout"))
end

-- nudges fall back to the usual knobs when the server cannot be asked
do
  local m = project()
  C.nudge(m.api, "scale", 0.5)
  finish(m, 1, '{"ok": false, "code": "no_server", "error": "No answer"}')
  m.run(0.5)
  check("nudge without a server: from the fallback knobs", m.api.GetExtState("Restyle", "scale") == "5.5",
    m.api.GetExtState("Restyle", "scale"))
end

-- Windows: started without waiting, minimized (no console window)
do
  local m = project({ os = "Win64" })
  m.item({ source = m.source(m.root .. "/media/a.wav") })
  C.stylize_selected(m.api)
  check("windows: ExecProcess minimized", m.exec_timeouts[1] == -2, m.exec_timeouts[1])
end

-- a remote engine: the "server" setting sends every client command to its HTTP API, with the token file
do
  local m = project()
  m.ext["Restyle/server"] = "http://studio-pc:9200"
  m.ext["Restyle/token_file"] = m.root .. "/http-token"
  m.item({ source = m.source(m.root .. "/media/keys.wav"), name = "keys" })
  C.stylize_selected(m.api)
  local argv = argv_of(m)
  check("remote: --server and --token-file", Mock.flag(argv, "--server") == "http://studio-pc:9200"
    and Mock.flag(argv, "--token-file") == m.root .. "/http-token", m.commands[#m.commands])
  check("remote: no OSC host or port", Mock.flag(argv, "--host") == nil and Mock.flag(argv, "--port") == nil)
end

print(string.format("lua: %d passed, %d failed", count - failures, failures))
os.exit(failures == 0 and 0 or 1)
