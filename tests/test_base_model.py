"""Loading base models: the tiny model, a local diffusers folder, a hub id offline, devices and precision."""

import time

import pytest
import torch

from restyle.engine import ModelNotFoundError, SettingsError, load_base_model
from restyle.engine.base_model import save_base_model
from restyle.engine.devices import pick_device, pick_dtype
from restyle.engine.tiny import TINY_SPECTROGRAM


def test_tiny_model_is_labelled_as_noise_and_reproducible(tiny_base):
    assert tiny_base.produces_noise and "noise" in tiny_base.describe()
    assert load_base_model("tiny", device="cpu", dtype="fp32").fingerprint == tiny_base.fingerprint
    assert all(not p.requires_grad for p in tiny_base.unet.parameters())


def test_local_folder_in_diffusers_layout_loads_with_its_own_format(tiny_base, tmp_path):
    save_base_model(tiny_base, tmp_path / "model")
    loaded = load_base_model(str(tmp_path / "model"), device="cpu", dtype="fp32")
    assert loaded.fingerprint == tiny_base.fingerprint
    assert loaded.spectrogram == TINY_SPECTROGRAM
    assert loaded.produces_noise
    assert loaded.model_id == str((tmp_path / "model").resolve())


def test_hub_model_missing_offline_fails_fast_with_instructions():
    started = time.monotonic()
    with pytest.raises(ModelNotFoundError, match="hf download riffusion/riffusion-model-v1"):
        load_base_model("riffusion/riffusion-model-v1", device="cpu", dtype="fp32")
    assert time.monotonic() - started < 30


def test_incomplete_folder_is_explained(tmp_path):
    (tmp_path / "unet").mkdir()
    with pytest.raises(ModelNotFoundError, match="diffusers layout"):
        load_base_model(str(tmp_path), device="cpu", dtype="fp32")


def test_device_and_precision_choices():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_dtype("fp32", torch.device("cpu")) == torch.float32
    assert pick_dtype("auto", torch.device("cuda")) == torch.float16
    assert pick_dtype("auto", torch.device("cpu")) in (torch.float32, torch.bfloat16)
    with pytest.raises(SettingsError):
        pick_dtype("int3", torch.device("cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(SettingsError, match="no usable CUDA"):
            pick_device("cuda")
