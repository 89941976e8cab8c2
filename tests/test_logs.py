"""The server's log (requests, jobs with tracebacks, registrations) and progress output for non-terminals."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from restyle import logs
from restyle.bridge.client import RestyleClient
from tests.bridge_helpers import free_port, running_server

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def log_file(tmp_path):
    path = tmp_path / "logs" / "serve.log"
    handlers = logs.configure(logs.LogSettings(file=path, console_level=logging.CRITICAL))
    yield path
    logs.unconfigure(handlers)


def test_log_holds_requests_jobs_and_registrations(tiny_base, styles_dir, content_wav, tmp_path, log_file):
    with running_server(tiny_base, styles_dir, tmp_path) as server:
        with RestyleClient("127.0.0.1", server.udp_port) as client:
            client.request("hello")
            job_id = client.request("stylize", str(content_wav), "output", str(tmp_path / "out.wav"))[0]
            while client.receive(60.0).name not in {"done", "failed"}:
                pass
    text = log_file.read_text()
    assert "request /restyle/stylize from udp 127.0.0.1:" in text and str(content_wav) in text
    assert f"stylize {job_id} started" in text and f"stylize {job_id} done" in text
    assert "registered; replies go to 127.0.0.1:" in text


def test_an_internal_job_error_is_logged_with_its_traceback(tiny_base, styles_dir, content_wav, tmp_path, log_file,
                                                            monkeypatch):
    from restyle.engine import Engine

    def broken(*_args, **_kwargs):
        raise ZeroDivisionError("engine bug")

    monkeypatch.setattr(Engine, "stylize", broken)
    with running_server(tiny_base, styles_dir, tmp_path) as server:
        with RestyleClient("127.0.0.1", server.udp_port) as client:
            client.request("stylize", str(content_wav), "output", str(tmp_path / "out.wav"))
            while client.receive(60.0).name != "failed":
                pass
    text = log_file.read_text()
    assert "failed with an internal error" in text
    assert "Traceback (most recent call last)" in text and "ZeroDivisionError: engine bug" in text


def test_log_folder_follows_restyle_home(monkeypatch, tmp_path):
    monkeypatch.setenv("RESTYLE_HOME", str(tmp_path))
    assert logs.default_log_dir() == tmp_path / "logs"


def test_serve_subprocess_writes_its_log_file(tmp_path, styles_dir):
    port, log = free_port(), tmp_path / "mine.log"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    command = [sys.executable, "-m", "restyle", "serve", "--model", "tiny", "--dtype", "fp32", "--port", str(port),
               "--styles-dir", str(styles_dir), "--style", "bells", "--log-file", str(log)]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "listening" in process.stdout.readline()
        status = subprocess.run([sys.executable, "-m", "restyle", "status", "--port", str(port)], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=60)
        assert status.returncode == 0
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    stderr = process.stderr.read()
    assert code == 0, stderr
    assert f"log: {log}" in stderr
    text = log.read_text()
    assert "restyle serve starting" in text and "request /restyle/ping" in text and "request /restyle/knobs" in text


def test_progress_on_a_pipe_is_plain_lines(tmp_path, styles_dir, content_wav):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    run = subprocess.run([sys.executable, "-m", "restyle", "stylize", str(content_wav), "--style", "bells",
                          "--model", "tiny", "--steps", "20", "--strength", "1", "--styles-dir", str(styles_dir),
                          "-o", str(tmp_path / "out.wav")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "\r" not in run.stderr, "no carriage-return redraws in a log"
    progress = [line for line in run.stderr.splitlines() if line.startswith("stylizing with bells")]
    assert 2 <= len(progress) <= 30 and progress[-1].endswith("100 %")
