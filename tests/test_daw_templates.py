"""What runs inside DAWs: REAPER's Lua scripts compile and their helpers pass their Lua unit tests."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAPER = REPO / "daw_templates" / "reaper"
LUA, LUAC = shutil.which("lua5.4"), shutil.which("luac5.4")


@pytest.mark.skipif(LUAC is None, reason="lua5.4 is not installed (.ci/run installs it)")
@pytest.mark.parametrize("script", sorted(REAPER.glob("*.lua")), ids=lambda p: p.name)
def test_reascript_compiles(script):
    done = subprocess.run([LUAC, "-p", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(LUA is None, reason="lua5.4 is not installed (.ci/run installs it)")
@pytest.mark.parametrize("suite", ["test_restyle_common.lua", "test_reaper_actions.lua"])
def test_reascripts_pass_their_lua_tests(suite, tmp_path):
    """The pure helpers, and the actions against a mock `reaper` that follows the SDK header's signatures."""
    done = subprocess.run([LUA, str(REPO / "tests" / "lua" / suite), str(tmp_path)], capture_output=True,
                          text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("0 failed")


NASTY_ARGUMENTS = ["/Users/me/My Song/take 1.wav", "/home/me/it's here/a.wav", "C:\\Music\\Ça va\\",
                   'say "hi"', "日本語 🎵.wav", "", "--style", "a\\\"b", "tab\there", "100%"]


def reaper_command_line(args: list[str], windows: bool) -> str:
    """What restyle_common.lua hands to ExecProcess for these arguments."""
    script = ("local C = dofile('daw_templates/reaper/restyle_common.lua'); local a = {} "
              "for i = 2, #arg do a[#a + 1] = arg[i] end; io.write(assert(C.command_line(a, arg[1] == 'win')))")
    done = subprocess.run([LUA, "-e", script, "-", "win" if windows else "posix", *args], capture_output=True,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode("utf-8")


def split_like_reaper_posix(line: str) -> list[str]:
    """REAPER on Linux/macOS runs no shell: it splits like a project-file line (space separated; a token opened
    by ", ' or ` ends at the same character; no escapes)."""
    out, i = [], 0
    while True:
        while i < len(line) and line[i] in " \t":
            i += 1
        if i == len(line):
            return out
        if line[i] in "\"'`":
            end = line.index(line[i], i + 1)
            out.append(line[i + 1:end])
        else:
            end = min((j for j in (line.find(" ", i), line.find("\t", i)) if j >= 0), default=len(line))
            out.append(line[i:end])
        i = end + 1


def split_like_windows_crt(line: str) -> list[str]:
    """How a Windows program (the C runtime, as Python's own launcher) splits its command line: whitespace
    separates unless quoted; 2n backslashes + quote = n backslashes and a quote toggle, 2n+1 = n and a literal
    quote; other backslashes are literal."""
    out, current, quoted, i, started = [], [], False, 0, False
    while i < len(line):
        ch = line[i]
        if ch == "\\":
            j = i
            while j < len(line) and line[j] == "\\":
                j += 1
            count = j - i
            if j < len(line) and line[j] == '"':
                current.append("\\" * (count // 2))
                if count % 2:
                    current.append('"')
                    j += 1
            else:
                current.append("\\" * count)
            i, started = j, True
            continue
        if ch == '"':
            quoted, started = not quoted, True
        elif ch in " \t" and not quoted:
            if started:
                out.append("".join(current))
            current, started = [], False
        else:
            current.append(ch)
            started = True
        i += 1
    if started:
        out.append("".join(current))
    return out


@pytest.mark.skipif(LUA is None, reason="lua5.4 is not installed (.ci/run installs it)")
def test_reaper_command_lines_deliver_every_argument_intact_on_linux_and_macos():
    argv = split_like_reaper_posix(reaper_command_line(NASTY_ARGUMENTS, windows=False))
    assert argv == NASTY_ARGUMENTS
    echo = "import json, sys; sys.stdout.buffer.write(json.dumps(sys.argv[1:]).encode())"
    delivered = subprocess.run([sys.executable, "-c", echo, *argv], capture_output=True, check=True).stdout
    assert json.loads(delivered) == NASTY_ARGUMENTS  # exec'd as REAPER does it: no shell in between


@pytest.mark.skipif(LUA is None, reason="lua5.4 is not installed (.ci/run installs it)")
def test_reaper_command_lines_deliver_every_argument_intact_on_windows():
    assert split_like_windows_crt(reaper_command_line(NASTY_ARGUMENTS, windows=True)) == NASTY_ARGUMENTS


def test_windows_splitter_agrees_with_pythons_own_quoting():
    """The reference splitter above, checked against the standard library's quoting for the same rules."""
    assert split_like_windows_crt(subprocess.list2cmdline(NASTY_ARGUMENTS)) == NASTY_ARGUMENTS


def test_reapack_header_installs_every_file_together():
    package = REAPER / "Restyle - Stylize selected items.lua"
    text = package.read_text()
    header = text.split("@provides", 1)[1].split("\nlocal ", 1)[0]
    provided = {line.removeprefix("--").strip().removeprefix("[main]").strip() for line in header.splitlines()[1:]}
    assert "@version" in text
    assert {p.name for p in REAPER.iterdir()} <= provided
    assert all("@noindex" in script.read_text() for script in REAPER.glob("*.lua") if script != package)


def test_reaper_osc_pattern_file_stands_alone():
    """REAPER reads one pattern file: device settings and the action patterns must all be in it."""
    text = (REAPER / "Restyle.ReaperOSC").read_text()
    lines = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line and not line.startswith("#")}
    for setting in ("DEVICE_TRACK_COUNT", "DEVICE_FX_COUNT", "REAPER_TRACK_FOLLOWS", "DEVICE_ROTARY_CENTER"):
        assert setting in lines
    assert {"i/action", "s/action/str", "t/action/@"} <= set(lines["ACTION"])


TEMPLATES = REPO / "daw_templates"
PROTOCOL_DOC = (REPO / "docs" / "osc-protocol.md").read_text()


def sent_addresses() -> set[str]:
    """Every OSC address the DAW templates send, however each writes it."""
    import re

    found = set()
    for path in TEMPLATES.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        found |= set(re.findall(r"/restyle/[a-z_]+(?:/[a-z_]+)*", text))
        found |= {"/restyle/" + m.strip().replace(" ", "/") for m in re.findall(r"oscformat restyle ([a-z_ ]+);", text)}
        found |= {"/restyle/" + m for m in re.findall(r'self\.send\("([a-z_/]+)"', text)}
    return found


def test_every_address_the_templates_send_is_documented():
    addresses = sent_addresses()
    assert {"/restyle/stylize", "/restyle/knob/set_normalized", "/restyle/ping"} <= addresses
    undocumented = sorted(a for a in addresses if f"`{a}`" not in PROTOCOL_DOC)
    assert not undocumented, undocumented


def test_every_address_the_server_answers_is_documented(tiny_base, tmp_path):
    from restyle.bridge.protocol import RestyleProtocol
    from restyle.engine import Engine, StyleLibrary

    protocol = RestyleProtocol(Engine(tiny_base, StyleLibrary(tmp_path)))
    served = set(protocol.routes())
    assert all(f"`{address}`" in PROTOCOL_DOC for address in served), served
