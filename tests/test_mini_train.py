"""Training the mini model: both phases run, a cancelled run resumes, and the result loads as a base model."""

import json
import shutil

import pytest
import torch

from engine import load_base_model
from engine.errors import SettingsError
from engine.mini.architecture import MINI_SPECTROGRAM
from engine.mini.train import MiniTrainer, MiniTrainSettings

pytestmark = pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="FluidSynth is not installed")

SMOKE = MiniTrainSettings(instruments=("piano", "accordion"), seconds_per_instrument=12.0, chunk_frames=256,
                          vae_steps=2, vae_batch=2, scale_crops=2, unet_steps=3, unet_batch=2, warmup_steps=1, checkpoint_every=1)


def test_a_cancelled_run_resumes_and_writes_a_loadable_model(tmp_path):
    work, out = tmp_path / "work", tmp_path / "model"
    seen = []

    def cancel_in_unet_phase() -> bool:
        return len([p for p in seen if p.stage == "train unet"]) == 1

    with pytest.raises(KeyboardInterrupt):
        MiniTrainer(work, SMOKE).run(out, progress=seen.append, cancel=cancel_in_unet_phase)
    assert torch.load(work / "checkpoint.pt", weights_only=False)["phase"] == "unet"
    assert not out.exists()

    resumed = []
    MiniTrainer(work, SMOKE).run(out, progress=resumed.append)
    assert [p.done for p in resumed] == [2, 3]  # only the steps the first run did not finish
    base = load_base_model(str(out), device="cpu", dtype="fp32")
    assert base.spectrogram == MINI_SPECTROGRAM
    assert not base.produces_noise
    assert base.tokenizer.tokenize("accordion") == ["accordion"]
    assert next(base.unet.parameters()).dtype == torch.float32  # stored in fp16, loaded as fp32
    log = json.loads((out / "training.json").read_text())
    assert set(log["seconds"]) >= {"render", "vae", "encode", "unet"}
    assert log["settings"]["unet_steps"] == 3


def test_a_checkpoint_from_other_settings_is_refused(tmp_path):
    work = tmp_path / "work"
    MiniTrainer(work, SMOKE).run(tmp_path / "model")
    with pytest.raises(SettingsError, match="other settings"):
        MiniTrainer(work, MiniTrainSettings(**{**SMOKE.__dict__, "unet_steps": 4})).run(tmp_path / "model2")
