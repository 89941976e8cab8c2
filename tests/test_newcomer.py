"""The newcomer's path (issue 14, item 9): what a first-time user runs, offline, must work or say why at once."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from restyle.bridge.commands import starting_settings
from restyle.bridge.knobs import RANGES
from restyle.bridge.wire import display_value
from restyle.engine import Engine, SamplerSettings, SettingsError, StyleLibrary
from restyle.engine.audio import Clip, write_audio
from restyle.engine.errors import ModelNotFoundError
from restyle.engine.mini import BUNDLED_STYLES

REPO = Path(__file__).resolve().parents[1]


def test_offline_hub_model_fails_at_once_naming_mini(tmp_path, monkeypatch, capfd):
    from restyle.engine.base_model import load_base_model

    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    started = time.monotonic()
    with pytest.raises(ModelNotFoundError) as error:
        load_base_model("riffusion/riffusion-model-v1", device="cpu", dtype="fp32")
    assert time.monotonic() - started < 5.0
    assert "--model mini" in str(error.value) and "tiny" not in str(error.value)
    out, err = capfd.readouterr()
    assert out == "" and err == "", "no retry lines or warnings before the one-line error"


def test_server_knobs_start_at_the_styles_recommended_values(tiny_base, styles_dir, tmp_path):
    library = tmp_path / "styles"
    shutil.copytree(styles_dir, library)
    info_path = library / "bells" / "style.json"
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps(dict(info, recommended_strength=0.6, recommended_scale=4.5)))
    engine = Engine(tiny_base, StyleLibrary(library))
    args = argparse.Namespace(style="bells", strength=None, scale=None)
    assert (starting_settings(args, engine).strength, starting_settings(args, engine).scale) == (0.6, 4.5)
    given = starting_settings(argparse.Namespace(style="bells", strength=0.3, scale=None), engine)
    assert (given.strength, given.scale) == (0.3, 4.5)


def test_osc_scale_range_is_the_engines():
    knob = RANGES["scale"]
    SamplerSettings(scale=knob.high)  # checked when made
    SamplerSettings(scale=knob.low)
    for outside in (knob.high + 0.01, knob.low - 0.01):
        with pytest.raises(SettingsError):
            SamplerSettings(scale=outside)


def test_float32_knob_values_are_shown_rounded():
    assert display_value(float(np.float32(0.7))) == 0.7
    assert display_value(float(np.float32(4.5))) == 4.5
    assert display_value("accordion") == "accordion" and display_value(50) == 50


@pytest.fixture
def no_model_load(monkeypatch):
    """Loading the engine fails the test: argument mistakes must be reported before it."""
    import restyle.bridge.commands
    import restyle.engine.commands

    def refuse(*_args, **_kwargs):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(restyle.engine.commands, "load_engine", refuse)
    monkeypatch.setattr(restyle.bridge.commands, "load_engine", refuse)


@pytest.mark.parametrize("args, message", [
    (["stylize", "{content}", "--style", "bells", "--strength", "1.5"], "strength"),
    (["stylize", "{missing}", "--style", "bells"], "not found"),
    (["stylize", "{content}", "--style", "owl", "--model", "tiny"], "owl"),
    (["train", "new", "{missing}", "--model", "tiny"], "not found"),
    (["train", "bad/name", "{content}", "--model", "tiny"], "name"),
    (["serve", "--style", "bells", "--strength", "1.5", "--port", "0"], "strength"),
    (["serve", "--style", "owl", "--port", "0"], "owl"),
    (["serve", "--midi-map", "{missing}", "--port", "0", "--model", "tiny"], "MIDI map"),
], ids=["stylize-strength", "stylize-missing", "stylize-style", "train-missing", "train-name", "serve-strength",
        "serve-style", "serve-midi-map"])
def test_bad_arguments_are_reported_before_the_model_loads(cli, no_model_load, styles_dir, content_wav, tmp_path,
                                                           args, message):
    paths = {"content": content_wav, "missing": tmp_path / "nothing.wav"}
    argv = [a.format(**paths) for a in args] + ["--styles-dir", styles_dir]
    if argv[0] == "serve":
        argv += ["--log-file", tmp_path / "serve.log"]
    run = cli(*argv)
    assert run.returncode == 1, run.stderr
    assert message in run.stderr.strip().splitlines()[-1]


def test_styles_show_prints_a_readable_summary(cli):
    run = cli("styles", "show", "accordion")
    assert run.returncode == 0
    assert "recommended     strength 0.5, scale 2.5" in run.stdout
    assert "{" not in run.stdout, "no raw dicts"
    assert json.loads(cli("styles", "show", "accordion", "--json").stdout)["name"] == "accordion"


def test_readme_blend_example_names_shipped_styles():
    blends = re.findall(r"--style ([\w-]+:[\d.]+(?:,[\w-]+:[\d.]+)+)", (REPO / "README.md").read_text())
    assert blends
    for blend in blends:
        for part in blend.split(","):
            assert part.split(":")[0] in BUNDLED_STYLES


def _chunks(data: bytes) -> dict[bytes, bytes]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    chunks, at = {}, 12
    while at < len(data):
        name, size = data[at:at + 4], struct.unpack("<I", data[at + 4:at + 8])[0]
        chunks[name] = data[at + 8:at + 8 + size]
        at += 8 + size + (size & 1)
    return chunks


@pytest.mark.parametrize("channels", [1, 2])
def test_wav_header_is_canonical_ieee_float(tmp_path, channels):
    samples = np.random.default_rng(0).uniform(-1.2, 1.2, (channels, 999)).astype(np.float32)
    path = write_audio(tmp_path / "out.wav", Clip(samples, 44100))
    chunks = _chunks(path.read_bytes())
    fmt = chunks[b"fmt "]
    assert len(fmt) == 18, "non-PCM formats carry cbSize (an 18-byte fmt chunk)"
    tag, ch, rate, byte_rate, align, bits, extra = struct.unpack("<HHIIHHH", fmt)
    assert (tag, ch, rate, byte_rate, align, bits, extra) == (3, channels, 44100, 44100 * 4 * channels,
                                                              4 * channels, 32, 0)
    assert struct.unpack("<I", chunks[b"fact"])[0] == 999
    assert np.array_equal(np.frombuffer(chunks[b"data"], "<f4").reshape(-1, channels).T, samples)


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")
def test_sox_reads_our_wav_without_a_warning(tmp_path):
    path = write_audio(tmp_path / "out.wav", Clip(np.full((2, 4410), 0.1, np.float32), 44100))
    run = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "WARN" not in run.stderr


def test_building_the_tiny_model_leaves_the_global_generator_alone():
    from restyle.engine.tiny import build_tiny_components

    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    build_tiny_components()
    assert torch.equal(torch.rand(3), expected)


def test_library_code_sets_no_process_wide_filters_or_seeds():
    pattern = re.compile(r"warnings\.filterwarnings|^\s*torch\.manual_seed|\.setLevel\(|os\.environ\[[^]]+\]\s*=",
                         re.MULTILINE)
    offenders = []
    for folder in ("engine", "bridge"):
        for path in (REPO / folder).rglob("*.py"):
            for match in pattern.finditer(path.read_text()):
                offenders.append(f"{path.relative_to(REPO)}: {match.group(0).strip()}")
    allowed = {"engine/seeding.py: torch.manual_seed", "engine/onnx_export.py: .setLevel(",
               "engine/base_model.py: .setLevel(", "engine/training.py: torch.manual_seed",
               "engine/adapters.py: torch.manual_seed"}  # each inside a context manager that restores the state
    assert [o for o in offenders if o not in allowed] == []


def test_diffusers_loads_with_low_cpu_mem_usage():
    """accelerate is a dependency, so diffusers builds models without a throw-away random initialisation."""
    from diffusers import UNet2DConditionModel
    from diffusers.models.modeling_utils import _LOW_CPU_MEM_USAGE_DEFAULT
    from diffusers.utils import is_accelerate_available

    from restyle.engine.mini import MODEL_DIR

    assert is_accelerate_available() and _LOW_CPU_MEM_USAGE_DEFAULT
    unet = UNet2DConditionModel.from_pretrained(str(MODEL_DIR), subfolder="unet", low_cpu_mem_usage=True)
    assert not any(p.is_meta for p in unet.parameters())
