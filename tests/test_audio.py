"""Reading and checking audio, resampling, atomic writes, windowing and crossfades."""

import numpy as np
import pytest

from restyle.engine.audio import AudioLimits, Clip, fit_length, read_audio, resample, write_audio
from restyle.engine.errors import AudioError
from signals import chord
from restyle.engine.windows import join, split, window_starts
from tests.conftest import write_wav


def test_reads_channels_first_float32(tmp_path):
    stereo = np.stack([chord([220.0], 0.5, 48000), chord([330.0], 0.5, 48000)])
    clip = read_audio(write_wav(tmp_path / "a.wav", stereo, 48000))
    assert clip.samples.shape == (2, 24000) and clip.samples.dtype == np.float32 and clip.sample_rate == 48000


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p, "not found"),
        (lambda p: (p.write_bytes(b"RIFF\x00\x00garbage" * 10), p)[1], "Cannot read"),
        (lambda p: write_wav(p, np.zeros(0, np.float32), 44100), "empty"),
        (lambda p: write_wav(p, np.zeros(4410, np.float32), 44100), "silent"),
        (lambda p: write_wav(p, np.full(4410, np.nan, np.float32), 44100), "NaN"),
        (lambda p: write_wav(p, np.full(44100 * 3, 0.1, np.float32), 44100), "limit is 2 s"),
    ],
    ids=["missing", "corrupt", "empty", "silent", "nan", "too-long"],
)
def test_bad_audio_gives_one_clear_line(tmp_path, make, message):
    path = make(tmp_path / "bad.wav")
    with pytest.raises(AudioError, match=message) as caught:
        read_audio(path, AudioLimits(max_seconds=2.0))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("rate", [22050, 48000, 96000])
def test_resampling_round_trip_keeps_a_tone(rate):
    tone = chord([1000.0], 0.5, rate)[None]
    there = resample(tone, rate, 44100)
    back = resample(there, 44100, rate)
    assert abs(there.shape[1] - round(tone.shape[1] * 44100 / rate)) <= 1
    n = min(back.shape[1], tone.shape[1])
    assert np.max(np.abs(back[0, 200 : n - 200] - tone[0, 200 : n - 200])) < 1e-2


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch, suffix):
    import soundfile

    from restyle.engine import audio

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(soundfile, "write", broken)
    monkeypatch.setattr(audio, "write_float_wav", broken)
    with pytest.raises(OSError):
        write_audio(tmp_path / f"out{suffix}", Clip(np.zeros((1, 10), np.float32), 44100))
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_unknown_extensions(tmp_path):
    with pytest.raises(AudioError, match="wav"):
        write_audio(tmp_path / "out.mp4", Clip(np.zeros((1, 10), np.float32), 44100))


def test_fit_length_trims_and_pads():
    x = np.ones((2, 5), np.float32)
    assert fit_length(x, 3).shape == (2, 3)
    padded = fit_length(x, 8)
    assert padded.shape == (2, 8) and padded[:, 5:].sum() == 0


def test_windows_cover_the_signal_and_overlap():
    assert window_starts(50, 100, 10) == [0]
    starts = window_starts(1000, 100, 20)
    assert starts[1] - starts[0] == 80 and starts[-1] + 100 >= 1000


def test_equal_power_join_of_identical_constant_windows_is_flat_outside_fades():
    signal = np.ones(1000, np.float32)
    windows = split(signal, 100, 20)
    joined = join(windows, 1000, 20)
    assert joined.shape == (1000,)
    # cos + sin peaks at sqrt(2) mid-fade for correlated signals; equal power means cos^2 + sin^2 = 1.
    ramp = np.linspace(0, np.pi / 2, 20)
    np.testing.assert_allclose(np.cos(ramp) ** 2 + np.sin(ramp) ** 2, 1.0)
    np.testing.assert_allclose(joined[20:80], 1.0)
    assert joined.max() <= np.sqrt(2) + 1e-6


def test_join_inverts_split_without_overlap():
    signal = np.random.default_rng(0).standard_normal(950).astype(np.float32)
    np.testing.assert_allclose(join(split(signal, 100, 0), 950, 0), signal)
