"""Training the mini model: both phases run, a cancelled run resumes, and the result loads as a base model."""

import json
import shutil

import pytest
import torch

from restyle.engine import load_base_model
from restyle.engine.errors import SettingsError
from restyle.engine.mini.architecture import MINI_SPECTROGRAM
from restyle.engine.mini.corpus import CorpusSettings
from restyle.engine.mini.decoder import DecoderSettings, DecoderTrainer, restamp_styles
from restyle.engine.mini.train import MiniTrainer, MiniTrainSettings, cosine_with_warmup, min_snr_weights, random_crops

pytestmark = pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="FluidSynth is not installed")

CORPUS = CorpusSettings(instruments=("piano", "accordion"), soundfonts=("fluidr3",), seconds_per_program=12.0,
                        effect_seconds=6.0, mixtures=1, recordings=False, chunk_frames=256)
SMOKE = MiniTrainSettings(corpus=CORPUS, vae_steps=2, vae_batch=2, vae_crop=64, scale_crops=2, unet_steps=3,
                          unet_batch=2, warmup_steps=1, checkpoint_every=1)


def test_a_cancelled_run_resumes_and_writes_a_loadable_model(tmp_path):
    work, out = tmp_path / "work", tmp_path / "model"
    seen = []

    def cancel_in_unet_phase() -> bool:
        return len([p for p in seen if p.stage == "train unet"]) == 1

    with pytest.raises(KeyboardInterrupt):
        MiniTrainer(work, SMOKE, device="cpu").run(out, progress=seen.append, cancel=cancel_in_unet_phase)
    assert torch.load(work / "checkpoint.pt", weights_only=False)["phase"] == "unet"
    assert not out.exists()

    resumed = []
    MiniTrainer(work, SMOKE, device="cpu").run(out, progress=resumed.append)
    assert [p.done for p in resumed] == [2, 3]  # only the steps the first run did not finish
    base = load_base_model(str(out), device="cpu", dtype="fp32")
    assert base.spectrogram == MINI_SPECTROGRAM
    assert not base.produces_noise
    assert base.tokenizer.tokenize("accordion") == ["accordion"]
    assert next(base.unet.parameters()).dtype == torch.float32  # stored in fp16, loaded as fp32
    log = json.loads((out / "training.json").read_text())
    assert set(log["seconds"]) >= {"corpus", "vae", "encode", "unet"}
    assert log["settings"]["unet_steps"] == 3


def test_a_checkpoint_from_other_settings_is_refused(tmp_path):
    work = tmp_path / "work"
    MiniTrainer(work, SMOKE).run(tmp_path / "model")
    with pytest.raises(SettingsError, match="other settings"):
        MiniTrainer(work, MiniTrainSettings(**{**SMOKE.__dict__, "unet_steps": 4})).run(tmp_path / "model2")


def test_the_unet_phase_moves_machines_with_the_latents_alone_and_may_change_its_settings(tmp_path):
    work = tmp_path / "work"
    seen = []

    def cancel_when_the_vae_is_done() -> bool:
        return len([p for p in seen if p.stage == "train vae"]) == SMOKE.vae_steps

    with pytest.raises(KeyboardInterrupt):
        MiniTrainer(work, SMOKE, device="cpu").run(tmp_path / "model", progress=seen.append,
                                                   cancel=cancel_when_the_vae_is_done)
    state = torch.load(work / "checkpoint.pt", weights_only=False)
    assert (state["phase"], state["step"]) == ("unet", 0)
    shutil.rmtree(work / "corpus")  # another machine: only the checkpoint and the cached latents travel
    with pytest.raises(SettingsError, match="other settings"):  # the VAE's settings are fixed by now
        MiniTrainer(work, MiniTrainSettings(**{**SMOKE.__dict__, "vae_steps": 5})).run(tmp_path / "model")
    bigger = MiniTrainSettings(**{**SMOKE.__dict__, "unet_batch": 3, "unet_steps": 2})
    trainer = MiniTrainer(work, bigger, device="cpu")
    trainer.run(tmp_path / "model")
    assert len(trainer.log["loss"]["unet"]) == 2 and trainer.log["settings"]["unet_batch"] == 3
    assert load_base_model(str(tmp_path / "model"), device="cpu", dtype="fp32").tokenizer.tokenize("piano") == ["piano"]


def test_settings_that_cannot_train_are_refused_when_made():
    with pytest.raises(SettingsError, match="unet batch must be at least 1"):
        MiniTrainSettings(unet_batch=0)
    with pytest.raises(SettingsError, match="cannot be negative"):
        MiniTrainSettings(unet_minutes=-1)


def test_min_snr_weights_cap_the_easy_timesteps_and_leave_the_hard_ones():
    alphas = torch.linspace(0.999, 0.001, 1000)
    t = torch.tensor([0, 500, 999])
    weights = min_snr_weights(alphas, t, gamma=5.0)
    snr = alphas[t] / (1 - alphas[t])
    assert weights[0] == pytest.approx(5.0 / snr[0].item())  # low noise: SNR above 5 is capped
    assert weights[2] == pytest.approx(1.0)  # high noise: SNR below 5 keeps full weight
    assert torch.equal(min_snr_weights(alphas, t, gamma=0.0), torch.ones(3))


def test_the_learning_rate_warms_up_then_decays_to_zero():
    factors = [cosine_with_warmup(k, 10, 100) for k in range(101)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[55] == pytest.approx(0.5, abs=1e-6) and factors[100] == pytest.approx(0.0, abs=1e-9)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))


def test_random_crops_take_the_columns_they_say():
    images = torch.arange(3 * 2 * 10).reshape(3, 2, 10)
    crops, rows = random_crops(images, 5, 4, torch.Generator().manual_seed(0))
    assert crops.shape == (5, 2, 4)
    for crop, row in zip(crops, rows):
        start = int(crop[0, 0] - images[row, 0, 0])
        assert torch.equal(crop, images[row, :, start : start + 4])


def test_a_time_budget_fixes_the_step_count_after_timing(tmp_path):
    budgeted = MiniTrainSettings(**{**SMOKE.__dict__, "vae_steps": 10_000, "vae_minutes": 0.001, "unet_steps": 25})
    trainer = MiniTrainer(tmp_path / "work", budgeted, device="cpu")
    trainer.run(tmp_path / "model")
    assert 25 <= trainer.log["steps"]["vae"] < 10_000  # a millisecond's budget: the warm-up and timed steps only
    assert "unet" not in trainer.log["steps"]  # no budget: the given count
    assert len(trainer.log["loss"]["unet"]) == 25


def test_a_decoder_fine_tune_resumes_changes_only_the_decoder_and_keeps_the_latent_space(tmp_path):
    work, model, out = tmp_path / "work", tmp_path / "model", tmp_path / "tuned"
    MiniTrainer(work, SMOKE, device="cpu").run(model)
    settings = DecoderSettings(steps=3, batch=2, crop=64, warmup_steps=1, checkpoint_every=1, validation_crops=2)
    seen = []
    with pytest.raises(KeyboardInterrupt):
        DecoderTrainer(work, settings, device="cpu").run(model, out, progress=seen.append,
                                                          cancel=lambda: len(seen) == 1)
    assert not out.exists()
    resumed = []
    record = DecoderTrainer(work, settings, device="cpu").run(model, out, progress=resumed.append)
    assert [p.done for p in resumed] == [2, 3]
    assert len(record["loss"]) == 3 and record["validation_l1_after"] > 0

    before = load_base_model(str(model), device="cpu", dtype="fp32")
    after = load_base_model(str(out), device="cpu", dtype="fp32")
    x = torch.rand(1, 3, MINI_SPECTROGRAM.n_mels, 64) * 2 - 1
    with torch.no_grad():  # the latent space every style was trained in is unchanged...
        assert torch.equal(before.vae.encode(x).latent_dist.mean, after.vae.encode(x).latent_dist.mean)
        z = before.vae.encode(x).latent_dist.mean
        assert not torch.equal(before.vae.decode(z).sample, after.vae.decode(z).sample)  # ...its decoding is not
    for name in ("unet", "text_encoder", "tokenizer", "scheduler"):
        for file in (model / name).iterdir():
            assert (out / name / file.name).read_bytes() == file.read_bytes()
    notes = json.loads((out / "training.json").read_text())
    assert notes["decoder_finetune"]["settings"]["steps"] == 3 and notes["settings"]["unet_steps"] == 3
    assert "_name_or_path" not in json.loads((out / "vae" / "config.json").read_text())

    styles = tmp_path / "styles"
    for name, fingerprint in (("learned-on-it", before.fingerprint), ("learned-elsewhere", "0123456789abcdef")):
        (styles / name).mkdir(parents=True)
        (styles / name / "style.json").write_text(json.dumps({"name": name, "base_fingerprint": fingerprint}))
    assert after.fingerprint != before.fingerprint
    assert restamp_styles(styles, before, after) == ["learned-on-it"]
    assert json.loads((styles / "learned-on-it" / "style.json").read_text())["base_fingerprint"] == after.fingerprint
    assert json.loads((styles / "learned-elsewhere" / "style.json").read_text())["base_fingerprint"] == "0123456789abcdef"
    other = load_base_model("tiny", device="cpu", dtype="fp32")
    with pytest.raises(SettingsError, match="more than its decoder"):
        restamp_styles(styles, other, after)

    with pytest.raises(SettingsError, match="another model or with other settings"):
        DecoderTrainer(work, DecoderSettings(**{**settings.__dict__, "steps": 4}), device="cpu").run(model, out)


def test_a_decoder_fine_tune_needs_a_packed_corpus(tmp_path):
    with pytest.raises(SettingsError, match="restyle mini train --work"):
        DecoderTrainer(tmp_path, DecoderSettings(steps=1)).run(tmp_path / "model", tmp_path / "out")
