"""Stylizing: the sampler's UNet budget and schedule, determinism, exact output shapes, cancel, blends, refusals."""

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from restyle.engine import BaseModelMismatchError, CancelledError, SamplerSettings, SettingsError, StyleNotFoundError
from restyle.engine.library import StyleLibrary
from signals import chord
from tests.conftest import write_wav

FAST = SamplerSettings(strength=0.5, scale=4.0, steps=6, seed=3)


class CountingUNet:
    """Wraps the noise predictor to count UNet batches and record their timesteps and batch sizes."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[tuple[int, int]] = []

    def __call__(self, latents, timestep, context):
        self.calls.append((int(timestep.reshape(-1)[0]), latents.shape[0]))
        return self.inner(latents, timestep, context)


@pytest.mark.parametrize("strength, steps", [(0.5, 10), (0.7, 50), (0.45, 20), (1.0, 7), (0.3, 4)])
def test_transfer_runs_one_plus_floor_strength_times_steps_unet_batches(trained_engine, content_wav, tmp_path,
                                                                        strength, steps):
    counter = CountingUNet(trained_engine.sampler.noise_predictor)
    trained_engine.sampler.noise_predictor = counter
    settings = SamplerSettings(strength=strength, steps=steps)
    trained_engine.stylize(content_wav, "bells", settings, tmp_path / "out.wav")
    windows = 2  # 1 s at the tiny model's 0.73 s windows
    assert len(counter.calls) == windows * (1 + math.floor(strength * steps))
    brs, *guided = counter.calls[: 1 + math.floor(strength * steps)]
    assert brs[1] == 1 and all(batch == 2 for _, batch in guided), "BRS is one conditional call, CFG a batch of 2"
    assert brs[0] == guided[0][0], "denoising starts at the timestep the content was noised to"


def test_schedule_starts_where_n_steps_remain(trained_engine):
    timesteps = trained_engine.sampler.timesteps(SamplerSettings(strength=0.7, steps=50, sampler="ddim"))
    assert len(timesteps) == 35 and int(timesteps[0]) == 681 and int(timesteps[-1]) == 1


def test_no_brs_skips_the_extra_call(trained_engine, content_wav, tmp_path):
    counter = CountingUNet(trained_engine.sampler.noise_predictor)
    trained_engine.sampler.noise_predictor = counter
    trained_engine.stylize(content_wav, "bells", SamplerSettings(strength=0.5, steps=10, brs=False), tmp_path / "o.wav")
    assert len(counter.calls) == 2 * 5


def test_same_seed_same_audio_other_seed_other_audio(trained_engine, content_wav, tmp_path):
    a = trained_engine.stylize(content_wav, "bells", FAST, tmp_path / "a.wav")
    b = trained_engine.stylize(content_wav, "bells", FAST, tmp_path / "b.wav")
    c = trained_engine.stylize(content_wav, "bells", SamplerSettings(strength=0.5, scale=4.0, steps=6, seed=4),
                               tmp_path / "c.wav")
    audio = [sf.read(r.path)[0] for r in (a, b, c)]
    np.testing.assert_array_equal(audio[0], audio[1])
    assert not np.allclose(audio[0], audio[2])


@pytest.mark.parametrize("rate", [22050, 44100, 48000])
@pytest.mark.parametrize("seconds", [0.3, 12.0])
@pytest.mark.parametrize("channels, stereo", [(1, False), (2, False), (2, True)], ids=["mono", "stereo-mix", "stereo"])
def test_output_matches_input_length_rate_and_channels(trained_engine, tmp_path, rate, seconds, channels, stereo):
    signal = np.stack([chord([220.0 * (c + 1)], seconds, rate) for c in range(channels)])
    source = write_wav(tmp_path / "in.wav", signal, rate)
    settings = SamplerSettings(strength=0.5, steps=2)
    result = trained_engine.stylize(source, "bells", settings, tmp_path / "out.wav", stereo=stereo)
    audio, out_rate = sf.read(result.path, always_2d=True)
    assert out_rate == rate and audio.shape == (signal.shape[1], channels)
    assert np.all(np.isfinite(audio)) and np.abs(audio).max() > 0
    assert (result.sample_rate, result.channels, result.num_samples) == (rate, channels, signal.shape[1])


def test_stereo_mode_treats_channels_separately(trained_engine, tmp_path):
    signal = np.stack([chord([220.0], 1.0, 44100), chord([880.0], 1.0, 44100)])
    source = write_wav(tmp_path / "in.wav", signal, 44100)
    mixed = sf.read(trained_engine.stylize(source, "bells", FAST, tmp_path / "m.wav").path)[0]
    split = sf.read(trained_engine.stylize(source, "bells", FAST, tmp_path / "s.wav", stereo=True).path)[0]
    np.testing.assert_array_equal(mixed[:, 0], mixed[:, 1])
    assert not np.allclose(split[:, 0], split[:, 1])


def test_region_is_cut_before_stylizing(trained_engine, content_wav, tmp_path):
    result = trained_engine.stylize(content_wav, "bells", FAST, tmp_path / "r.wav", start=0.25, end=0.75)
    assert result.num_samples == 22050


def test_cancel_between_steps_writes_nothing(trained_engine, content_wav, tmp_path):
    seen = []

    def progress(p):
        seen.append(p)

    with pytest.raises(CancelledError):
        trained_engine.stylize(content_wav, "bells", FAST, tmp_path / "x.wav", progress=progress,
                               should_cancel=lambda: len(seen) >= 2)
    assert len(seen) == 2 and not (tmp_path / "x.wav").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["content.wav"]


def test_progress_counts_every_unet_batch(trained_engine, content_wav, tmp_path):
    seen = []
    trained_engine.stylize(content_wav, "bells", FAST, tmp_path / "p.wav", progress=seen.append)
    assert [p.done for p in seen] == list(range(1, len(seen) + 1))
    assert seen[-1].done == seen[-1].total == 2 * FAST.unet_batches


def test_style_contexts_are_computed_once_per_schedule(trained_engine, content_wav, tmp_path, monkeypatch):
    encodes = []
    original = trained_engine.conditioner.style_context
    monkeypatch.setattr(trained_engine.conditioner, "style_context", lambda e: encodes.append(1) or original(e))
    for i in range(2):
        trained_engine.stylize(content_wav, "bells", SamplerSettings(strength=0.5, steps=8, seed=11),
                               tmp_path / f"{i}.wav")
    assert len(encodes) <= 1, "the text encoder ran again for a cached style and schedule"


def test_blended_styles_differ_from_either_style(trained_engine, content_wav, tmp_path):
    t = torch.tensor([500])
    bells, chimes = trained_engine.style("bells"), trained_engine.style("chimes")
    blend = trained_engine.style_mix("bells:0.5,chimes:0.5")
    torch.testing.assert_close(blend.embedding(t), 0.5 * bells.module(t) + 0.5 * chimes.module(t))
    result = trained_engine.stylize(content_wav, "bells:0.5,chimes:0.5", FAST)
    assert result.path.name == "content_bells50+chimes50.wav"


@pytest.mark.parametrize(
    "settings, match",
    [
        (dict(strength=0.0), "strength"),
        (dict(strength=1.5), "strength"),
        (dict(scale=-1.0), "scale"),
        (dict(steps=0), "steps"),
        (dict(strength=0.1, steps=5), "no step"),
        (dict(seed=-1), "seed"),
        (dict(sampler="euler-a"), "Unknown sampler 'euler-a': use ddim, dpm"),
    ],
)
def test_out_of_range_knobs_are_refused_when_the_settings_are_made(settings, match):
    with pytest.raises(SettingsError, match=match):
        SamplerSettings(**settings)


def test_unknown_style_and_overwriting_the_input_are_refused(trained_engine, content_wav):
    with pytest.raises(StyleNotFoundError, match="No style named 'owl'.* Known styles: .*bells.*chimes"):
        trained_engine.stylize(content_wav, "owl", FAST)
    with pytest.raises(SettingsError, match="overwrite the input"):
        trained_engine.stylize(content_wav, "bells", FAST, content_wav)


def test_style_from_another_base_model_is_refused(trained_engine, styles_dir, tmp_path, content_wav):
    import shutil

    from restyle.engine import Engine
    from restyle.engine.atomic import write_json

    other = tmp_path / "other"
    shutil.copytree(styles_dir / "bells", other / "bells")
    info = StyleLibrary(other).info("bells").to_dict()
    write_json(other / "bells" / "style.json", dict(info, base_fingerprint="0123456789abcdef", base_model="elsewhere"))
    engine = Engine(trained_engine.base, StyleLibrary(other))
    with pytest.raises(BaseModelMismatchError, match="elsewhere"):
        engine.stylize(content_wav, "bells", FAST, tmp_path / "x.wav")
