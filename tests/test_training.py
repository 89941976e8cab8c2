"""Training a style: only the module learns, the loss goes down, and an interrupted run resumes exactly."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from restyle.engine import CancelledError, CheckpointError, StyleExistsError, TrainSettings
from restyle.engine.training import StyleTrainer

REPO = Path(__file__).resolve().parents[1]


def _snapshot(base):
    return {
        f"{part}.{name}": tensor.clone()
        for part, module in (("unet", base.unet), ("vae", base.vae), ("text", base.text_encoder))
        for name, tensor in module.state_dict().items()
    }


def test_training_changes_only_the_style_module(engine, style_clips):
    before = _snapshot(engine.base)
    style = engine.train("bells", [style_clips], TrainSettings(steps=4, checkpoint_every=10))
    after = _snapshot(engine.base)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before), "a base-model weight changed"
    fresh = StyleTrainer(engine.base, engine.conditioner).new_module(TrainSettings())
    changed = [n for n, p in style.module.state_dict().items() if not torch.equal(p, fresh.state_dict()[n])]
    assert "init_embedding" not in changed and len(changed) > 0


def test_loss_goes_down_on_a_fixed_evaluation_batch(engine, style_clips):
    trainer = StyleTrainer(engine.base, engine.conditioner)
    latents = trainer.encode(trainer.clip_windows(sorted(style_clips.iterdir()), 0.25))

    def evaluation_loss(module):
        generator = torch.Generator().manual_seed(1234)
        with torch.no_grad():
            return sum(trainer.loss(module, latents, generator, 8).item() for _ in range(4)) / 4

    start = evaluation_loss(trainer.new_module(TrainSettings()))
    style = engine.train("bells", [style_clips], TrainSettings(steps=30, checkpoint_every=100))
    assert evaluation_loss(style.module) < start
    assert len(style.info.loss_history) == 30


def test_style_records_what_it_was_trained_on(engine, style_clips):
    style = engine.train("bells", [style_clips], TrainSettings(steps=2, checkpoint_every=10))
    info = engine.library.info("bells")
    assert info.base_fingerprint == engine.base.fingerprint and info.base_model == "tiny"
    assert [c["file"] for c in info.training["clips"]] == ["bell0.wav", "bell1.wav", "bell2.wav"]
    assert info.training["settings"]["learning_rate"] == 5e-3 and info.produces_noise
    assert info.embed_dim == engine.base.embed_dim and style.info.created


def test_resume_after_cancel_matches_an_uninterrupted_run(engine, style_clips):
    settings = TrainSettings(steps=8, checkpoint_every=100)
    straight = engine.train("straight", [style_clips], settings)

    calls = {"n": 0}

    def cancel_after_five():
        calls["n"] += 1
        return calls["n"] > 5

    with pytest.raises(CancelledError, match="resume"):
        engine.train("split", [style_clips], settings, should_cancel=cancel_after_five)
    assert "split" not in engine.library and engine.library.checkpoint_path("split").exists()
    resumed = engine.train("split", [style_clips], settings, resume=True)
    assert resumed.info.loss_history == straight.info.loss_history
    for name, tensor in straight.module.state_dict().items():
        torch.testing.assert_close(resumed.module.state_dict()[name], tensor, rtol=0, atol=1e-6)
    assert not engine.library.checkpoint_path("split").exists()


def test_resume_refuses_other_clips_and_missing_checkpoints(engine, style_clips):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        engine.train("new", [style_clips], TrainSettings(steps=2), resume=True)
    with pytest.raises(CancelledError):
        engine.train("new", [style_clips], TrainSettings(steps=4, checkpoint_every=100), should_cancel=lambda: True)
    with pytest.raises(CheckpointError, match="other clips"):
        engine.train("new", [style_clips / "bell0.wav"], TrainSettings(steps=4), resume=True)


def test_resume_refuses_a_checkpoint_from_before_the_noising_fix(engine, style_clips):
    with pytest.raises(CancelledError):
        engine.train("old", [style_clips], TrainSettings(steps=4, checkpoint_every=100), should_cancel=lambda: True)
    path = engine.library.checkpoint_path("old")
    state = torch.load(path, weights_only=True)
    state["run_key"].pop("noising", None)  # what the trainer of 53dd409 up to the fix wrote
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="start again without --resume"):
        engine.train("old", [style_clips], TrainSettings(steps=4), resume=True)


def test_existing_style_is_not_overwritten_by_accident(engine, style_clips):
    engine.train("bells", [style_clips], TrainSettings(steps=1))
    with pytest.raises(StyleExistsError):
        engine.train("bells", [style_clips], TrainSettings(steps=1))
    engine.train("bells", [style_clips], TrainSettings(steps=2), overwrite=True)
    assert len(engine.library.info("bells").loss_history) == 2


def test_resume_after_kill_9_continues_from_the_checkpoint(style_clips, tmp_path):
    styles = tmp_path / "styles"
    command = [sys.executable, "-m", "restyle", "train", "killed", str(style_clips), "--model", "tiny",
               "--dtype", "fp32", "--device", "cpu", "--steps", "400", "--checkpoint-every", "5",
               "--styles-dir", str(styles)]
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    checkpoint = styles / ".checkpoints" / "killed" / "checkpoint.pt"
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not checkpoint.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert checkpoint.exists(), "no checkpoint was written"
        time.sleep(0.3)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    saved = torch.load(checkpoint, weights_only=True)
    assert 5 <= saved["step"] < 400 and not (styles / "killed").exists()

    resume = command[:]
    resume[resume.index("400")] = str(saved["step"] + 5)
    done = subprocess.run(resume + ["--resume", "--json"], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    info = json.loads((styles / "killed" / "style.json").read_text())
    assert len(info["loss_history"]) == saved["step"] + 5
    assert info["loss_history"][: saved["step"]] == saved["history"]


def test_training_noises_each_timestep_by_the_base_models_own_schedule(engine):
    """The UNet must see x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise at the t it is told (a solver's add_noise,
    such as UniPC's before set_timesteps, maps t elsewhere: styles then learn a corrupted objective)."""
    config = engine.base.scheduler_config
    assert config["beta_schedule"] == "scaled_linear"  # Stable Diffusion's and Riffusion's, as tiny's
    betas = torch.linspace(config["beta_start"] ** 0.5, config["beta_end"] ** 0.5, config["num_train_timesteps"],
                           dtype=torch.float64) ** 2
    alphas_cumprod = torch.cumprod(1 - betas, dim=0)
    seen = []

    def capture(_module, args, kwargs):
        seen.append((args[0].detach().clone(), args[1].detach().clone()))

    trainer = StyleTrainer(engine.base, engine.conditioner)
    latents = torch.zeros(1, 4, 8, 16)  # zero signal: the UNet's input is the scaled noise alone
    handle = engine.base.unet.register_forward_pre_hook(capture, with_kwargs=True)
    try:
        with torch.no_grad():
            trainer.loss(trainer.new_module(TrainSettings()), latents, torch.Generator().manual_seed(0), 16)
    finally:
        handle.remove()
    (noisy, timesteps), = seen
    for sample, t in zip(noisy, timesteps):
        expected = float((1 - alphas_cumprod[int(t)]) ** 0.5)
        assert abs(sample.float().std().item() - expected) < 0.15 * expected + 0.02, f"t={int(t)}"
