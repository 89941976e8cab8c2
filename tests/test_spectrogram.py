"""Riffusion's spectrogram format: the filterbank, the image mapping, and the round trip with the input's phase or
Griffin-Lim's."""

from dataclasses import replace

import librosa
import numpy as np
import pytest
import torch

from restyle.engine.spectrogram import (
    SpectrogramConverter,
    SpectrogramFormat,
    image_to_model_input,
    mel_filterbank,
    model_output_to_image,
)
from signals import chord, noise_bursts, sweep

RIFFUSION = SpectrogramFormat()


@pytest.fixture(scope="module")
def converter():
    return SpectrogramConverter(RIFFUSION)


def test_mel_filterbank_equals_librosa_htk_without_normalisation():
    ours = mel_filterbank(RIFFUSION).T.numpy()
    reference = librosa.filters.mel(sr=44100, n_fft=17640, n_mels=512, fmin=0.0, fmax=10000.0, htk=True, norm=None)
    assert ours.shape == reference.shape == (512, 8821)
    np.testing.assert_allclose(ours, reference, atol=1e-6)


def test_512_pixels_are_5_11_seconds_and_the_image_is_8_bit(converter):
    audio = torch.from_numpy(chord([440.0], RIFFUSION.window_samples / 44100, 44100))
    image, _ = converter.audio_to_image(audio)
    assert RIFFUSION.window_samples == 225351 and abs(RIFFUSION.window_seconds - 5.11) < 1e-9
    assert image.shape == (512, 512) and image.dtype == torch.uint8
    assert RIFFUSION.frames_for(44100) == 101  # 1 + floor(samples / 441)


def test_loud_is_dark_and_low_frequencies_are_at_the_bottom(converter):
    audio = torch.from_numpy(chord([200.0], 1.0, 44100, level=0.5))
    image, _ = converter.audio_to_image(audio)
    rows = image.float().mean(dim=1)
    darkest = int(rows.argmin())
    assert darkest > 400, "a 200 Hz tone must sit near the bottom rows"
    assert image.min() == 0, "the loudest pixel is black"
    assert rows[:100].mean() > 240, "bands far above the tone are near white"


def test_image_mapping_inverts_exactly_up_to_quantisation(converter):
    mel = torch.rand(512, 40) ** 2 * 7.0
    image, peak = converter.mel_to_image(mel)
    back = converter.image_to_mel(image, peak)
    level = (mel / peak) ** 0.25
    np.testing.assert_allclose((back / peak) ** 0.25, level, atol=1.0 / 255 + 1e-6)


@pytest.mark.parametrize(
    "name, signal",
    [
        ("chord", chord([220.0, 277.2, 329.6], 1.5, 44100)),
        ("sweep", sweep(100.0, 8000.0, 1.5, 44100)),
        ("noise bursts", noise_bursts(1.5, 44100)),
    ],
)
def test_round_trip_keeps_spectral_convergence_below_0_2(converter, name, signal):
    """audio -> image -> audio; the mel magnitudes of the result stay within 20 % (Frobenius) of the input's."""
    audio = torch.from_numpy(signal)
    image, peak = converter.audio_to_image(audio)
    rebuilt = converter.image_to_audio(image, peak, torch.Generator().manual_seed(0))
    assert rebuilt.shape[-1] == 441 * (image.shape[-1] - 1)
    original = converter.mel(audio[: rebuilt.shape[-1]])
    again = converter.mel(rebuilt)
    convergence = float((original - again).norm() / original.norm())
    assert convergence < 0.2, f"{name}: spectral convergence {convergence:.3f}"


def test_model_input_and_output_mappings_are_inverse():
    image = torch.randint(0, 256, (2, 8, 8), dtype=torch.uint8)
    x = image_to_model_input(image)
    assert x.shape == (2, 3, 8, 8) and x.min() >= -1 and x.max() <= 1
    torch.testing.assert_close(model_output_to_image(x), image.float())


def test_griffin_lim_started_from_the_true_phase_returns_the_signal(converter):
    """A consistent spectrogram is a fixed point of Griffin-Lim: from the clip's own phase it gives the clip back,
    where the default random start does not."""
    audio = torch.from_numpy(chord([220.0, 277.2, 329.6], 1.0, 44100))
    spectrum = converter._stft(audio)
    length = len(audio)
    from_true = converter.griffin_lim(spectrum.abs(), length, initial_phase=torch.angle(spectrum))
    from_random = converter.griffin_lim(spectrum.abs(), length, torch.Generator().manual_seed(0))
    error = lambda rebuilt: float((rebuilt - audio).norm() / audio.norm())  # noqa: E731
    assert error(from_true) < 0.01 and error(from_random) > 0.5


def test_an_image_rebuilt_with_its_clips_phase_stays_in_phase_with_the_clip(converter):
    """Given the input's own phase (stylizing knows it) the rebuilt audio lines up with the input sample for
    sample, so the two can be mixed without comb filtering; Griffin-Lim's estimate does not."""
    audio = torch.from_numpy(chord([220.0, 277.2, 329.6], 1.5, 44100) + 0.05 * noise_bursts(1.5, 44100))
    image, peak = converter.audio_to_image(audio)
    length = 441 * (image.shape[-1] - 1)
    original = audio[:length]
    image_again, peak_again, phase = converter.audio_to_image_and_phase(original)  # one STFT for both
    assert torch.equal(image_again, converter.audio_to_image(original)[0]) and torch.equal(peak_again, peak)
    torch.testing.assert_close(phase, converter.phase(original))
    with_phase = converter.image_to_audio(image, peak, phase=phase)
    estimated = converter.image_to_audio(image, peak, torch.Generator().manual_seed(0))
    correlation = lambda rebuilt: float(np.corrcoef(rebuilt.numpy(), original.numpy())[0, 1])  # noqa: E731
    assert with_phase.shape == estimated.shape == original.shape
    assert correlation(with_phase) > 0.9 and abs(correlation(estimated)) < 0.3


def test_mel_inversion_gives_non_negative_magnitudes_whose_mel_matches_better_than_the_clamped_inverse():
    fmt = SpectrogramFormat(sample_rate=16000, n_fft=2048, hop_length=320, win_length=1280, n_mels=128,
                            f_max=8000.0, width=64)
    nnls, clamped = SpectrogramConverter(fmt), SpectrogramConverter(replace(fmt, mel_inversion_iters=0))
    audio = torch.from_numpy(chord([220.0, 277.2, 329.6], 1.0, 16000) + 0.01 * noise_bursts(1.0, 16000))
    mel = nnls.mel(audio)

    def mel_error(converter):
        magnitude = converter.mel_to_magnitude(mel)
        assert magnitude.min() >= 0 and magnitude.shape[-2] == fmt.n_fft // 2 + 1
        return float((torch.einsum("fm,...ft->...mt", converter.filterbank, magnitude) - mel).norm() / mel.norm())

    assert mel_error(nnls) < 0.5 * mel_error(clamped)
