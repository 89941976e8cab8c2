"""Shared fixtures: the tiny base model is built once per session; styles are trained once per session."""

from __future__ import annotations

import os
import subprocess

os.environ["HF_HUB_OFFLINE"] = "1"  # a stray download attempt must fail at once
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402

from restyle.engine import Engine, LoraSettings, StyleLibrary, TrainSettings, load_base_model  # noqa: E402
from restyle.cli import main  # noqa: E402
from signals import bells, chord  # noqa: E402
from restyle.engine.tiny import TINY_SPECTROGRAM  # noqa: E402

TINY_RATE = TINY_SPECTROGRAM.sample_rate
QUICK_TRAIN = TrainSettings(steps=6, checkpoint_every=3)


@pytest.fixture(scope="session")
def tiny_base():
    return load_base_model("tiny", device="cpu", dtype="fp32")


@pytest.fixture
def engine(tiny_base, tmp_path) -> Engine:
    """An engine on the shared tiny model with an empty style library of its own."""
    return Engine(tiny_base, StyleLibrary(tmp_path / "styles"))


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    samples = np.asarray(samples, dtype=np.float32)
    sf.write(str(path), samples.T if samples.ndim == 2 else samples, rate, subtype="FLOAT")
    return path


@pytest.fixture(scope="session")
def style_clips(tmp_path_factory) -> Path:
    """A folder of three short bell clips at the tiny model's sample rate."""
    folder = tmp_path_factory.mktemp("bell-clips")
    for i, notes in enumerate(([880.0, 660.0], [523.0, 784.0], [440.0, 1046.0])):
        write_wav(folder / f"bell{i}.wav", bells(notes, 1.2, TINY_RATE, seed=i), TINY_RATE)
    return folder


@pytest.fixture(scope="session")
def styles_dir(tiny_base, style_clips, tmp_path_factory) -> Path:
    """A library holding two quickly trained styles, 'bells' and 'chimes' (read-only for tests)."""
    root = tmp_path_factory.mktemp("library") / "styles"
    engine = Engine(tiny_base, StyleLibrary(root))
    engine.train("bells", [style_clips], QUICK_TRAIN)
    engine.train("chimes", [style_clips / "bell0.wav"], TrainSettings(steps=3, seed=1, checkpoint_every=3))
    return root


@pytest.fixture(scope="session")
def adapter_styles_dir(tiny_base, style_clips, tmp_path_factory) -> Path:
    """A library holding two quickly trained styles with LoRA adapters, 'lora-bells' and 'lora-chimes'."""
    root = tmp_path_factory.mktemp("adapter-library") / "styles"
    engine = Engine(tiny_base, StyleLibrary(root))
    fast = LoraSettings(learning_rate=1e-2)  # a few steps must move the adapter visibly
    engine.train("lora-bells", [style_clips], TrainSettings(steps=4, checkpoint_every=10, adapter=fast))
    engine.train("lora-chimes", [style_clips / "bell0.wav"],
                 TrainSettings(steps=3, seed=1, checkpoint_every=10, adapter=LoraSettings(rank=2, alpha=2.0,
                                                                                          learning_rate=1e-2)))
    return root


@pytest.fixture
def trained_engine(tiny_base, styles_dir) -> Engine:
    return Engine(tiny_base, StyleLibrary(styles_dir))


@pytest.fixture
def content_wav(tmp_path) -> Path:
    return write_wav(tmp_path / "content.wav", chord([220.0, 277.2, 329.6], 1.0, 44100), 44100)


@pytest.fixture
def cli(capsys):
    """The same command line in this process: main() with its exit code, stdout and stderr."""

    def run(*args):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run
