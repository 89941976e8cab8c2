"""What runs inside DAWs: REAPER's Lua scripts compile and their helpers pass their Lua unit tests."""

import shutil
import subprocess
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
def test_reascript_helpers_pass_their_lua_tests():
    done = subprocess.run([LUA, str(REPO / "tests" / "lua" / "test_restyle_common.lua")], capture_output=True,
                          text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("0 failed")


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
    from bridge.protocol import RestyleProtocol
    from engine import Engine, StyleLibrary

    protocol = RestyleProtocol(Engine(tiny_base, StyleLibrary(tmp_path)))
    served = set(protocol.routes())
    assert all(f"`{address}`" in PROTOCOL_DOC for address in served), served
