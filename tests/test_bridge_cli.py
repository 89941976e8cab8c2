"""``restyle serve``, ``restyle send`` and ``restyle status`` as a producer's scripts call them."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from bridge.cli import main
from tests.bridge_helpers import free_port, running_server

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def server(tiny_base, styles_dir, tmp_path):
    with running_server(tiny_base, styles_dir, tmp_path) as running:
        yield running


def test_send_waits_and_prints_the_output_path(server, content_wav, capsys):
    code = main(["send", str(content_wav), "--port", str(server.udp_port), "--steps", "4", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert sf.info(result["output"]).frames == 44100 and result["sample_rate"] == 44100


def test_send_without_waiting_prints_the_job(server, content_wav, capsys):
    assert main(["send", str(content_wav), "--port", str(server.udp_port), "--no-wait"]) == 0
    assert capsys.readouterr().out.strip().startswith("job-")


def test_send_reports_a_refused_job_as_one_line(server, content_wav, capsys):
    code = main(["send", str(content_wav), "--port", str(server.udp_port), "--style", "owl"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith("restyle: error: No style named 'owl'")


def test_status_shows_queue_and_knobs(server, capsys):
    assert main(["status", "--port", str(server.udp_port), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["queued"] == 0 and report["knobs"]["style"] == "bells"


def test_status_without_a_server_fails(capsys):
    assert main(["status", "--port", str(free_port()), "--timeout", "0.3"]) == 1
    assert "No answer from a Restyle server" in capsys.readouterr().err


def test_serve_refuses_to_listen_on_the_network_without_an_allow_list(capsys, tmp_path):
    code = main(["serve", "--host", "0.0.0.0", "--port", str(free_port()), "--model", "tiny",
                 "--styles-dir", str(tmp_path)])
    assert code == 1 and "--allow" in capsys.readouterr().err


def test_serve_runs_until_sigterm_and_stops_cleanly(tmp_path, styles_dir):
    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    command = [sys.executable, "-m", "bridge.cli", "serve", "--model", "tiny", "--dtype", "fp32", "--port", str(port),
               "--styles-dir", str(styles_dir), "--style", "bells"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "listening" in process.stdout.readline()
        status = subprocess.run([sys.executable, "-m", "bridge.cli", "status", "--port", str(port), "--json"],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert status.returncode == 0 and json.loads(status.stdout)["knobs"]["style"] == "bells"
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    stderr = process.stderr.read()
    assert code == 0, stderr
    assert "MIDI: off" in stderr and "Stopping" in stderr


def test_result_file_holds_the_outcome_for_daw_scripts(server, content_wav, tmp_path, capsys):
    ok_file, error_file = tmp_path / "ok.json", tmp_path / "error.json"
    assert main(["send", str(content_wav), "--port", str(server.udp_port), "--result-file", str(ok_file)]) == 0
    assert json.loads(ok_file.read_text())["ok"] is True
    assert main(["send", str(content_wav), "--port", str(server.udp_port), "--style", "owl",
                 "--result-file", str(error_file)]) == 1
    failure = json.loads(error_file.read_text())
    assert failure["ok"] is False and failure["code"] == "unknown_style" and "owl" in failure["error"]
    capsys.readouterr()
