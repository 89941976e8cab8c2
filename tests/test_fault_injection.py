"""kill -9 at 20 random moments each during `restyle train` and `restyle stylize` (writes slowed by the test hook, so
many kills land between writing and renaming): every style and checkpoint on disk loads, no output is partial,
and `--resume` finishes.

Real processes, forked from a server that has imported the engine once (a fresh interpreter per run would spend
most of the time importing torch).
"""

import multiprocessing
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from restyle.engine import StyleLibrary
from restyle.engine.atomic import TEST_WRITE_DELAY

pytestmark = pytest.mark.slow
KILLS = 20


def _run_cli(argv: list[str], log: str, env: dict[str, str]) -> None:
    """In the child: the installed `restyle` command, its output into ``log``."""
    with open(log, "w") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
    os.environ.update(env)
    torch.set_num_threads(1)
    from restyle.cli import main

    sys.exit(main(argv))


@pytest.fixture(scope="module")
def forks():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["restyle.cli", "torch", __name__])
    return context


def _start(forks, argv: list, log: Path, write_delay: float = 0.1):
    env = {"HF_HUB_OFFLINE": "1", TEST_WRITE_DELAY: str(write_delay)}
    process = forks.Process(target=_run_cli, args=([str(a) for a in argv], str(log), env))
    process.start()
    return process


def _kill_at_random(forks, argv: list, log: Path, rng: random.Random, longest: float, write_delay: float) -> bool:
    """Run, SIGKILL at a random moment (every other one near the end, where the final writes are); True if the
    kill landed while it ran."""
    process = _start(forks, argv, log, write_delay)
    time.sleep(rng.uniform(0.05, longest) if rng.random() < 0.5 else rng.uniform(0.7 * longest, longest))
    landed = process.is_alive()
    process.kill()
    process.join()
    return landed


def _write_delay(seconds: float) -> float:
    """How long each write waits before its rename: a fifth of a run, so that kills land inside writes whatever
    the machine's speed or load (a fixed 0.1 s became too small a window on a loaded machine)."""
    return max(0.1, 0.2 * seconds)


def _timed_run(forks, argv: list, log: Path, write_delay: float = 0.1) -> float:
    started = time.monotonic()
    process = _start(forks, argv, log, write_delay)
    process.join(300)
    assert process.exitcode == 0, log.read_text()
    return time.monotonic() - started


def _visible(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if not p.name.startswith(".")]


def _mid_write(folder: Path) -> bool:
    """A killed writer's leftover is there: the kill landed during a write."""
    return any(".partial-" in p.name or ".old-" in p.name for p in folder.rglob(".*"))


def _check_library(library: Path) -> None:
    styles = StyleLibrary(library, shipped=None)
    for name in styles.names():
        styles.load(name)  # both files, every type and shape, then the tensors themselves
    checkpoint = styles.checkpoint_path("faulty")
    if checkpoint.is_file():
        assert torch.load(checkpoint, weights_only=True)["step"] >= 0


def _train_argv(library: Path, clips: Path) -> list:
    """Nine more steps than the checkpoint holds (with --resume), or nine from the start: every run has work left."""
    checkpoint = StyleLibrary(library).checkpoint_path("faulty")
    step = torch.load(checkpoint, weights_only=True)["step"] if checkpoint.is_file() else 0
    return ["train", "faulty", clips, "--model", "tiny", "--steps", step + 9, "--checkpoint-every", "3",
            "--styles-dir", library, "--overwrite", *(["--resume"] if step else [])]


def test_kill_9_during_train_leaves_loadable_styles_and_checkpoints_and_resume_finishes(forks, tmp_path,
                                                                                        style_clips):
    rng = random.Random(13)
    library = tmp_path / "styles"
    delay = _write_delay(_timed_run(forks, _train_argv(library, style_clips), tmp_path / "warm-up.log"))
    longest = _timed_run(forks, _train_argv(library, style_clips), tmp_path / "first.log", delay)
    kills = attempts = resumed = mid_write = 0
    while kills < KILLS and attempts < 3 * KILLS:
        attempts += 1
        argv = _train_argv(library, style_clips)
        resumed += "--resume" in argv
        kills += _kill_at_random(forks, argv, tmp_path / f"train-{attempts}.log", rng, longest, delay)
        mid_write += _mid_write(library)
        _check_library(library)
    print(f"train: {kills} kills in {attempts} runs, {resumed} resumed, {mid_write} left a write half done")
    assert kills == KILLS and resumed > 0 and mid_write > 0
    last = _train_argv(library, style_clips)
    _timed_run(forks, last, tmp_path / "last.log")
    _check_library(library)
    assert [p.name for p in _visible(library)] == ["faulty"] and not (library / ".checkpoints").exists()
    assert not [p for p in library.iterdir() if ".partial-" in p.name or ".old-" in p.name]


def test_kill_9_during_stylize_never_leaves_a_partial_output(forks, tmp_path, styles_dir):
    rng = random.Random(31)
    take = tmp_path / "take.wav"
    sf.write(str(take), (0.3 * np.sin(np.arange(22050) * 0.05)).astype(np.float32), 22050)
    out = tmp_path / "out"
    out.mkdir()
    argv = ["stylize", take, "--style", "bells", "--model", "tiny", "--steps", "6", "--strength", "0.5",
            "-o", out / "take_bells.wav", "--overwrite", "--styles-dir", styles_dir]
    delay = _write_delay(_timed_run(forks, argv, tmp_path / "warm-up.log"))
    longest = _timed_run(forks, argv, tmp_path / "first.log", delay)
    kills = attempts = mid_write = 0
    while kills < KILLS and attempts < 3 * KILLS:
        attempts += 1
        kills += _kill_at_random(forks, argv, tmp_path / f"stylize-{attempts}.log", rng, longest, delay)
        mid_write += _mid_write(out)
        for result in _visible(out):
            audio, rate = sf.read(str(result))
            assert rate == 22050 and len(audio) == 22050 and np.all(np.isfinite(audio)), f"{result} is partial"
    print(f"stylize: {kills} kills in {attempts} runs, {mid_write} left a write half done")
    assert kills == KILLS and mid_write > 0
    _timed_run(forks, argv, tmp_path / "last.log")
    assert [p.name for p in out.iterdir()] == ["take_bells.wav"], "the next run removed what killed runs left"
