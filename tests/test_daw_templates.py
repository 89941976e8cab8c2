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
