"""The commands a DAW starts for every action, and the DAW scripts' installer, never load the engine's ML stack (the start-up time is in
benchmarks/client_startup.py; here only which modules get imported is checked)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bridge_helpers import free_port, running_server

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "diffusers", "transformers", "numpy", "soundfile", "safetensors")
PROBE = """
import json, sys
from restyle.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(%r))
print(json.dumps(heavy), file=sys.stderr)
""" % (HEAVY,)


def heavy_modules_after(*argv: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=REPO, capture_output=True, text=True, timeout=60)
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["send", "--help"], ["learn", "--help"], ["status", "--help"],
                                  ["cancel", "--help"]], ids=" ".join)
def test_client_help_loads_no_ml_stack(argv):
    assert heavy_modules_after(*argv) == []


def test_client_against_no_server_loads_no_ml_stack(tmp_path):
    assert heavy_modules_after("status", "--port", str(free_port()), "--timeout", "0.2") == []
    assert heavy_modules_after("send", str(tmp_path / "a.wav"), "--port", str(free_port()), "--timeout", "0.2",
                               "--result-file", str(tmp_path / "r.json")) == []


def test_client_against_a_running_server_loads_no_ml_stack(tiny_base, styles_dir, tmp_path, content_wav):
    with running_server(tiny_base, styles_dir, tmp_path) as server:
        port = str(server.udp_port)
        assert heavy_modules_after("status", "--port", port, "--json") == []
        assert heavy_modules_after("send", str(content_wav), "--port", port, "--steps", "2") == []
        assert heavy_modules_after("cancel", "job-999", "--port", port) == []


def test_installing_the_daw_scripts_loads_no_ml_stack(tmp_path):
    assert heavy_modules_after("daw", "path") == []
    assert heavy_modules_after("daw", "install", "reaper", "--to", str(tmp_path), "--dry-run") == []
    assert heavy_modules_after("daw", "install", "--help") == []


def test_engine_commands_still_load_the_engine():
    assert "torch" in heavy_modules_after("styles", "--help")
