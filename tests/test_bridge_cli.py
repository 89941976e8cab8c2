"""``restyle serve``, ``restyle send`` and ``restyle status`` as a producer's scripts call them."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from restyle.cli import main
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
    assert report["styles"] == ["bells", "chimes"]  # what REAPER's "choose style" menu lists


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
    command = [sys.executable, "-m", "restyle", "serve", "--model", "tiny", "--dtype", "fp32", "--port", str(port),
               "--styles-dir", str(styles_dir), "--style", "bells"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "listening" in process.stdout.readline()
        status = subprocess.run([sys.executable, "-m", "restyle", "status", "--port", str(port), "--json"],
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


def test_progress_file_exists_at_once_and_ends_done(server, content_wav, tmp_path, capsys):
    progress, log = tmp_path / "progress.json", tmp_path / "job.log"
    assert main(["send", str(content_wav), "--port", str(server.udp_port), "--progress-file", str(progress),
                 "--log", str(log)]) == 0
    state = json.loads(progress.read_text())
    assert state["state"] == "done" and state["job"].startswith("job-") and state["fraction"] == 1.0
    lines = log.read_text().splitlines()
    assert "accepted" in lines[0] and any("%" in line for line in lines) and "done" in lines[-1]
    capsys.readouterr()


def test_result_file_holds_failures_that_are_not_restyle_errors(tmp_path, capsys, monkeypatch):
    from restyle.bridge import client_commands as client_cli

    def broken(*_args):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(client_cli.RestyleClient, "request", broken)
    result = tmp_path / "r.json"
    assert main(["send", str(tmp_path / "a.wav"), "--port", str(free_port()), "--result-file", str(result)]) == 1
    assert json.loads(result.read_text()) == {"ok": False, "code": "internal",
                                              "error": "OSError: Network is unreachable"}
    assert capsys.readouterr().err.strip() == "restyle: error: OSError: Network is unreachable"


def test_result_file_says_when_no_server_answers(tmp_path, capsys):
    result = tmp_path / "r.json"
    assert main(["send", str(tmp_path / "a.wav"), "--port", str(free_port()), "--timeout", "0.2",
                 "--result-file", str(result)]) == 1
    assert json.loads(result.read_text())["code"] == "no_server"
    capsys.readouterr()


def test_learn_uses_the_running_servers_model(server, style_clips, tmp_path, capsys):
    result = tmp_path / "learned.json"
    assert main(["learn", "gongs", str(style_clips / "bell1.wav"), "--port", str(server.udp_port),
                 "--result-file", str(result), "--log", str(tmp_path / "learn.log")]) == 0
    assert json.loads(result.read_text())["style"] == "gongs"
    assert "gongs" in server.protocol.engine.style_names()
    assert "learned style gongs" in (tmp_path / "learn.log").read_text()
    capsys.readouterr()


def test_cancel_cancels_a_queued_job(server, content_wav, capsys):
    port = str(server.udp_port)
    for _ in range(2):
        assert main(["send", str(content_wav), "--port", port, "--steps", "50", "--no-wait"]) == 0
    last = capsys.readouterr().out.split()[-1]
    assert main(["cancel", last, "--port", port]) == 0
    assert capsys.readouterr().out.strip() == f"{last} cancelled"


def test_send_reports_the_knobs_the_job_used(server, content_wav, tmp_path, capsys):
    """REAPER names the new take from these: what was sent, the server's knobs for the rest."""
    result = tmp_path / "r.json"
    assert main(["send", str(content_wav), "--port", str(server.udp_port), "--strength", "0.8",
                 "--result-file", str(result)]) == 0
    reply = json.loads(result.read_text())
    assert (reply["style"], reply["strength"], reply["scale"]) == ("bells", 0.8, 4.0)
    capsys.readouterr()


def test_result_file_holds_usage_errors(tmp_path, capsys):
    result = tmp_path / "r.json"
    with pytest.raises(SystemExit):
        main(["send", "a.wav", "--strength", "loud", "--result-file", str(result)])
    failure = json.loads(result.read_text())
    assert failure["ok"] is False and failure["code"] == "usage" and "--strength" in failure["error"]
    capsys.readouterr()


def test_result_file_holds_an_unwritable_progress_file(tmp_path, capsys):
    result = tmp_path / "r.json"
    assert main(["send", "a.wav", "--port", str(free_port()), "--progress-file", str(tmp_path),
                 "--result-file", str(result)]) == 1
    assert json.loads(result.read_text())["ok"] is False
    capsys.readouterr()
