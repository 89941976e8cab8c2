"""The command line under bad names and bad numbers: one line, exit 1, before any work, and no file replaced."""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from restyle.engine.audio import probe
from restyle.cli import main
from restyle.engine.errors import AudioError
from signals import chord
from tests.conftest import write_wav

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = ["--model", "tiny", "--steps", "2", "--strength", "0.5"]


@pytest.fixture
def lib(styles_dir):
    return ["--styles-dir", styles_dir]


def _one_line_error(run, *words):
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("restyle: error: ") and all(w in last for w in words), last
    return last


def test_an_existing_output_is_refused_and_kept_unless_overwrite(tmp_path, cli, lib, content_wav):
    existing = tmp_path / "mix.wav"
    existing.write_bytes(b"a producer's unrelated file")
    refused = cli("stylize", content_wav, "--style", "bells", "-o", existing, *QUICK, *lib)
    _one_line_error(refused, "already exists", "--overwrite")
    assert existing.read_bytes() == b"a producer's unrelated file"
    assert "base model:" not in refused.stderr, "refused before the model loads"
    replaced = cli("stylize", content_wav, "--style", "bells", "-o", existing, "--overwrite", *QUICK, *lib)
    assert replaced.returncode == 0 and sf.info(str(existing)).frames == 44100


def test_default_names_are_fresh_for_every_take(tmp_path, cli, lib):
    """real.flac, real.ogg and real.wav all stylize to real_bells*.wav: each keeps its own file."""
    takes = [write_wav(tmp_path / "real.wav", chord([220.0], 0.5, 22050), 22050)]
    for suffix, seconds in ((".flac", 0.25), (".ogg", 0.75)):
        sf.write(str(tmp_path / f"real{suffix}"), chord([330.0], seconds, 22050), 22050)
        takes.append(tmp_path / f"real{suffix}")
    outputs = []
    for take in takes:
        run = cli("stylize", take, "--style", "bells", *QUICK, *lib)
        assert run.returncode == 0, run.stderr
        outputs.append(run.stdout.strip())
    assert [os.path.basename(o) for o in outputs] == ["real_bells.wav", "real_bells-2.wav", "real_bells-3.wav"]
    assert [sf.info(o).frames for o in outputs] == [11025, 5512, 16538]


@pytest.mark.parametrize("target, words", [("FOLDER", ["folder"]), ("song.mp3", [".wav"]),
                                           ("/proc/restyle.wav", ["Cannot write into /proc"])])
def test_an_unwritable_output_is_refused_before_the_model_loads(tmp_path, cli, lib, content_wav, target, words):
    target = tmp_path if target == "FOLDER" else (target if target.startswith("/") else tmp_path / target)
    run = cli("stylize", content_wav, "--style", "bells", "-o", target, *QUICK, *lib)
    _one_line_error(run, *words)
    assert "base model:" not in run.stderr


@pytest.mark.parametrize("mix, words", [("bells:nan", ["finite"]), ("bells:inf", ["finite"]),
                                        ("bells:0.5,chimes:-0.5", ["negative", "0 or more"])])
def test_blend_weights_that_make_no_sense_are_refused(tmp_path, cli, lib, content_wav, mix, words):
    out = tmp_path / "out.wav"
    _one_line_error(cli("stylize", content_wav, "--style", mix, "-o", out, *QUICK, *lib), *words)
    assert not out.exists()


@pytest.mark.parametrize("option", [["--start", "nan"], ["--end", "inf"], ["--scale", "nan"]])
def test_region_and_knobs_that_are_not_finite_are_refused(tmp_path, cli, lib, content_wav, option):
    out = tmp_path / "out.wav"
    _one_line_error(cli("stylize", content_wav, "--style", "bells", *option, "-o", out, *QUICK, *lib))
    assert not out.exists()


def test_a_result_holding_nan_is_never_written(tmp_path, trained_engine, content_wav, monkeypatch):
    monkeypatch.setattr(type(trained_engine), "stylize_samples", lambda self, clip, *a, **k: clip.samples * np.nan)
    out = tmp_path / "out.wav"
    with pytest.raises(AudioError, match="NaN"):
        trained_engine.stylize(content_wav, "bells", output_path=out)
    assert not out.exists() and list(tmp_path.glob(".out*")) == []


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.wav"
    os.mkfifo(path)
    return path


def _restyle(*args, timeout=120):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "restyle", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_train_refuses_a_pipe_at_once_instead_of_hanging(tmp_path, fifo, style_clips):
    run = _restyle("train", "piped", style_clips / "bell0.wav", fifo, "--model", "tiny", "--steps", "1",
                   "--styles-dir", tmp_path / "styles")
    _one_line_error(run, "not a regular file")


@pytest.mark.parametrize("special", ["FIFO", "/dev/zero", "/dev/urandom", "FOLDER"])
def test_pipes_devices_and_folders_are_named_for_what_they_are(tmp_path, fifo, special):
    path = {"FIFO": fifo, "FOLDER": tmp_path}.get(special, special)
    with pytest.raises(AudioError) as caught:
        probe(path)
    assert "not found" not in str(caught.value)
    assert ("folder" if special == "FOLDER" else "not a regular file") in str(caught.value)


def test_stylize_names_a_folder_as_a_folder(tmp_path, cli, lib):
    _one_line_error(cli("stylize", tmp_path, "--style", "bells", *QUICK, *lib), "is a folder")


def test_serving_the_network_without_allow_is_refused_before_the_model_loads():
    run = _restyle_bridge("serve", "--host", "0.0.0.0", "--model", "tiny")
    _one_line_error(run, "--allow")
    assert "base model:" not in run.stderr


def _restyle_bridge(*args):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "restyle", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


def test_strength_zero_is_explained_and_the_help_says_above_zero(tmp_path, cli, lib, content_wav, capsys):
    run = cli("stylize", content_wav, "--style", "bells", "--strength", "0", "-o", tmp_path / "out.wav", *lib)
    _one_line_error(run, "above 0", "would change nothing")
    with pytest.raises(SystemExit):
        main(["stylize", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "above 0, up to 1: how far from the original" in help_text and "0..1: how far" not in help_text
