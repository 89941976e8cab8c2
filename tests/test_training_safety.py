"""Training that is interrupted, repeated or killed: nothing lost beyond a minute, nothing left behind."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from restyle.engine import TrainSettings
from restyle.engine.atomic import atomic_folder, atomic_path
from restyle.cli import main

REPO = Path(__file__).resolve().parents[1]


def _train_process(name, clips, library, *extra, stderr=None):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.Popen([sys.executable, "-m", "restyle", "train", name, str(clips), "--model", "tiny",
                             "--styles-dir", str(library), *map(str, extra)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=stderr or subprocess.PIPE, text=True)


def _wait_for(predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_second_train_of_the_same_name_is_refused_at_once(tmp_path, style_clips, capsys):
    library = tmp_path / "styles"
    log = tmp_path / "first.log"
    with open(log, "w") as err:
        first = _train_process("busy", style_clips, library, "--steps", "100000", stderr=err)
        try:
            _wait_for(lambda: "busy (train)" in log.read_text())
            started = time.monotonic()
            code = main(["train", "busy", str(style_clips), "--model", "tiny", "--steps", "1",
                         "--styles-dir", str(library)])
            took = time.monotonic() - started
        finally:
            first.kill()
            first.wait()
    assert code == 1 and "being trained by another run" in capsys.readouterr().err
    assert took < 20, "refused before any training"


def test_ctrl_c_saves_a_checkpoint_that_resume_continues(tmp_path, style_clips, capsys):
    """Long before the first step-count checkpoint (250 steps), Ctrl-C keeps the run for --resume."""
    library = tmp_path / "styles"
    log = tmp_path / "run.log"
    with open(log, "w") as err:
        run = _train_process("nap", style_clips, library, "--steps", "100000", stderr=err)
        _wait_for(lambda: "loss" in log.read_text())  # a bar on a terminal, plain lines here
        run.send_signal(signal.SIGINT)
        assert run.wait(120) == 130
    assert "--resume" in log.read_text().strip().splitlines()[-1]
    step = torch.load(library / ".checkpoints" / "nap" / "checkpoint.pt", weights_only=True)["step"]
    assert 0 < step < 250
    assert main(["train", "nap", str(style_clips), "--model", "tiny", "--steps", str(step + 2), "--resume",
                 "--styles-dir", str(library)]) == 0, capsys.readouterr().err


def test_checkpoints_are_also_written_by_time(engine, style_clips):
    settings = TrainSettings(steps=4, checkpoint_every=1000, checkpoint_seconds=1e-3)
    checkpoint = engine.library.checkpoint_path("timed")
    seen = []
    engine.train("timed", [style_clips], settings, progress=lambda p: seen.append(checkpoint.is_file()))
    assert seen[1:3] == [True, True], "a checkpoint by time although no step count was reached"


def test_a_finished_run_leaves_no_checkpoint_folders(engine, style_clips):
    engine.train("tidy", [style_clips], TrainSettings(steps=4, checkpoint_every=2))
    assert not (engine.library.root / ".checkpoints").exists()
    assert sorted(p.name for p in engine.library.root.iterdir()) == ["tidy"]


def _dead_pid() -> int:
    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


def test_leftovers_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    export = tmp_path / "cache" / "onnx" / "abc-fp32"
    export.parent.mkdir(parents=True)
    stale = export.with_name(f".abc-fp32.partial-{_dead_pid()}-0123abcd")
    (stale / "unet.onnx").parent.mkdir()
    (stale / "unet.onnx").write_bytes(b"half a graph")
    running = export.with_name(f".abc-fp32.partial-{os.getppid()}-4567cdef")
    running.mkdir()
    with atomic_folder(export) as staging:
        (staging / "export.json").write_text("{}")
    assert not stale.exists() and running.exists(), "only what a dead writer left is removed"
    half = tmp_path / f".take.wav.partial-{_dead_pid()}-89abcdef.wav"
    half.write_bytes(b"RIFF")
    with atomic_path(tmp_path / "take.wav") as tmp:
        tmp.write_bytes(b"RIFF....")
    assert not half.exists()


def test_a_folder_moved_aside_by_a_killed_writer_is_put_back(tmp_path):
    style = tmp_path / "bells"
    aside = tmp_path / f".bells.old-{_dead_pid()}-0123abcd"
    aside.mkdir()
    (aside / "style.json").write_text("{}")
    with pytest.raises(RuntimeError):
        with atomic_folder(style):
            raise RuntimeError("this write fails")
    assert (style / "style.json").is_file() and not aside.exists()
