"""A result is as loud as its input (RMS over the clip) and never peaks above max(input peak, -1 dBFS), capped
at full scale: tested on loud drum loops, quiet pads and clips that already peak at 0 dBFS, mono and stereo."""

import numpy as np
import pytest

from restyle.engine.audio import Clip
from restyle.engine.loudness import CEILING, limit, match_loudness
from restyle.engine.sampler import SamplerSettings
from signals import chord, noise_bursts


def _db(x: float) -> float:
    return 20 * np.log10(x)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _drum_loop(seconds: float, rate: int) -> np.ndarray:
    """Kick thumps under hi-hat noise, pushed to 1.10 (a float file over full scale, as DAWs bounce them)."""
    t = np.arange(int(seconds * rate)) / rate
    kick = np.sin(2 * np.pi * 55 * t) * np.exp(-(t % 0.5) * 12)
    loop = kick + 2.5 * noise_bursts(seconds, rate, 8.0)
    return (1.10 * loop / np.abs(loop).max()).astype(np.float32)


def _inputs() -> dict[str, tuple[np.ndarray, int]]:
    pad = chord([110.0, 164.8, 220.0, 277.2], 3.0, 32000, level=0.05)  # quiet pad, odd rate
    at_zero = chord([220.0, 330.0], 2.0, 44100)
    wide = np.stack([_drum_loop(2.5, 44100), 0.62 / 1.10 * _drum_loop(2.5, 44100)[::-1]])
    return {
        "loud drum loop": (_drum_loop(3.0, 44100)[None], 44100),
        "quiet pad": (pad[None], 32000),
        "peaks at 0 dBFS": ((at_zero / np.abs(at_zero).max())[None], 44100),
        "stereo drums": (wide, 48000),
    }


@pytest.mark.parametrize("name", list(_inputs()))
def test_results_keep_the_input_loudness_and_stay_under_the_ceiling(trained_engine, name):
    samples, rate = _inputs()[name]
    clip = Clip(samples.astype(np.float32), rate)
    mix = trained_engine.style_mix("bells")
    settings = SamplerSettings(strength=0.5, steps=4)
    out = trained_engine.stylize_samples(clip, mix, settings, stereo=clip.channels > 1)
    in_peak = float(np.abs(samples).max())
    ceiling = min(1.0, max(in_peak, CEILING))
    assert float(np.abs(out).max()) <= ceiling + 1e-6, f"{name}: peak {np.abs(out).max():.3f} over {ceiling:.3f}"
    assert _db(_rms(out)) <= _db(_rms(samples)) + 0.1, f"{name}: louder than it went in"
    assert _db(_rms(out)) >= _db(_rms(samples)) - 6.0, f"{name}: far quieter than it went in"


def test_loudness_is_matched_over_the_clip_not_per_window():
    rate = 22050
    quiet_then_loud = np.concatenate([0.05 * np.ones(rate), 0.4 * np.ones(rate)]) * np.sin(np.arange(2 * rate))
    flat = 0.3 * np.sin(np.arange(2 * rate) * 0.7)  # a result that lost the input's dynamics
    out = match_loudness(flat[None], quiet_then_loud[None], rate)
    assert _rms(out) == pytest.approx(_rms(quiet_then_loud), rel=1e-3)
    assert np.allclose(out, flat * (out[0, 1] / flat[1]), atol=1e-6), "one gain for the whole clip"


def test_the_limiter_only_touches_the_samples_around_a_peak():
    rate = 44100
    rng = np.random.default_rng(0)
    steady = (0.2 * rng.standard_normal(rate)).clip(-0.8, 0.8)
    spiky = steady.copy()
    spiky[rate // 2] = 1.6
    out = limit(spiky[None], CEILING, rate)[0]
    assert np.abs(out).max() <= CEILING + 1e-9
    far = np.abs(np.arange(rate) - rate // 2) > 0.02 * rate
    assert np.array_equal(out[far], spiky[far]), "no gain change (no pumping) away from the peak"
    gain = out[~far] / np.where(spiky[~far] == 0, 1, spiky[~far])
    assert np.abs(np.diff(gain)).max() < 0.01, "the gain glides, it does not jump"


def test_a_silent_result_is_left_silent():
    assert not np.any(match_loudness(np.zeros((1, 100)), np.ones((1, 100)), 100))


def test_a_near_silent_result_is_raised_by_at_most_24_db():
    rate = 16000
    reference = chord([220.0, 330.0], 1.0, rate)[None] * 0.5
    faint = reference * 1e-4  # -80 dB: what an out-of-phase stereo mix or a failed style can leave
    out = match_loudness(faint, reference, rate)
    assert np.sqrt(np.mean(out**2)) <= np.sqrt(np.mean(faint**2)) * 10 ** (24 / 20) * 1.0001
