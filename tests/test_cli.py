"""The ``restyle`` command end to end, through a subprocess, and every bad input as one line and an exit code."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write_wav

REPO = Path(__file__).resolve().parents[1]


def restyle(*args, cwd=REPO):
    """The real command in a fresh process (slow: a few seconds of imports each)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "restyle", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def cli_library(tmp_path, style_clips, cli):
    lib = ["--styles-dir", tmp_path / "styles"]
    assert cli("train", "bells", style_clips, "--model", "tiny", "--steps", "1", *lib).returncode == 0
    return lib


def _bad_inputs(folder: Path) -> dict[str, Path]:
    rate = 44100
    corrupt = folder / "corrupt.wav"
    corrupt.write_bytes(b"RIFF" + os.urandom(200))
    return {
        "missing": folder / "nothing-here.wav",
        "corrupt": corrupt,
        "empty": write_wav(folder / "empty.wav", np.zeros(0, np.float32), rate),
        "silent": write_wav(folder / "silent.wav", np.zeros(rate, np.float32), rate),
        "nan": write_wav(folder / "nan.wav", np.full(rate, np.nan, np.float32), rate),
        "too long": write_wav(folder / "long.wav", np.full(rate * 3, 0.1, np.float32), rate),
    }


@pytest.mark.parametrize("case", ["missing", "corrupt", "empty", "silent", "nan", "too long"])
def test_bad_audio_gives_one_line_and_no_file(tmp_path, cli, cli_library, case):
    source = _bad_inputs(tmp_path)[case]
    before = set(tmp_path.iterdir())
    run = cli("stylize", source, "--style", "bells", "--max-seconds", "2", "-o", tmp_path / "out.wav",
                  *cli_library)
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert lines[-1].startswith("restyle: error: ") and "Traceback" not in run.stderr
    assert set(tmp_path.iterdir()) == before, "nothing may be left behind"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--style", "owl"], "No style named 'owl'"),
        (["--style", "bells", "--strength", "2"], "strength"),
        (["--style", "bells", "--scale", "99"], "scale"),
        (["--style", "bells", "--steps", "0"], "steps"),
        (["--style", "bells", "--model", "riffusion/riffusion-model-v1"], "hf download"),
    ],
    ids=["unknown-style", "strength", "scale", "steps", "model-offline"],
)
def test_bad_settings_give_one_line_and_no_file(tmp_path, cli, cli_library, content_wav, args, message):
    run = cli("stylize", content_wav, *args, "-o", tmp_path / "out.wav", *cli_library)
    assert run.returncode == 1 and message in run.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out.wav").exists()


def test_style_of_another_base_model_is_refused(tmp_path, cli, cli_library, content_wav):
    info_path = tmp_path / "styles" / "bells" / "style.json"
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps(dict(info, base_fingerprint="ffffffffffffffff")))
    run = cli("stylize", content_wav, "--style", "bells", "--model", "tiny", *cli_library)
    assert run.returncode == 1 and "trained on base model" in run.stderr


def test_train_refuses_a_bad_clip_before_training(tmp_path, cli, cli_library):
    bad = _bad_inputs(tmp_path)["silent"]
    run = cli("train", "quiet", bad, "--model", "tiny", *cli_library)
    assert run.returncode == 1 and "silent" in run.stderr
    assert not (tmp_path / "styles" / "quiet").exists()


def test_phase_option_reaches_the_engine_only_where_audio_is_rebuilt(tmp_path, content_wav):
    from restyle.bridge.cluster import ClusterSettings, StylizeWorker
    from restyle.cli import build_parser
    from restyle.options import load_engine

    parser, _ = build_parser()
    base = ["stylize", str(content_wav), "--style", "bells", "--model", "tiny", "--styles-dir", str(tmp_path)]
    assert load_engine(parser.parse_args(base), "tiny").settings.phase == "input"
    assert load_engine(parser.parse_args([*base, "--phase", "griffin-lim"]), "tiny").settings.phase == "griffin-lim"
    worker = StylizeWorker(ClusterSettings(model="tiny", device="cpu", dtype="fp32", styles_dir=str(tmp_path),
                                           phase="griffin-lim"))  # a Ray Serve replica of `serve --ray`
    assert worker.engine.settings.phase == "griffin-lim"
    for argv in ([*base, "--phase", "zero"],  # not a phase source
                 ["train", "owl", str(content_wav), "--phase", "input"],  # learning rebuilds no audio
                 ["export-onnx", "--phase", "input"]):
        with pytest.raises(SystemExit) as refused:
            parser.parse_args(argv)
        assert refused.value.code == 2
