"""Audio <-> mel-spectrogram images, in Riffusion's format, in plain torch.

An image is a (n_mels, frames) uint8 array: magnitude mel spectrogram, divided by its maximum, raised to
``power``, scaled to 0..255 and inverted (loud is dark), with low frequencies at the bottom. The inverse undoes
those steps, inverts the mel filterbank by non-negative least squares, and gives the magnitudes a phase: the
input's own when the caller has it (stylizing does), else one estimated by (fast) Griffin-Lim.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch

from .errors import SettingsError

# Where rebuilt audio's phase comes from: the input's own STFT (stylizing has the input), or Griffin-Lim's estimate.
PHASE_SOURCES = ("input", "griffin-lim")


def check_phase_source(source: str) -> str:
    """``source`` if it is a phase source, else a SettingsError in one line."""
    if source not in PHASE_SOURCES:
        raise SettingsError(f"Unknown phase source '{source}': use {' or '.join(PHASE_SOURCES)}.")
    return source


@dataclass(frozen=True)
class SpectrogramFormat:
    """How a model's images encode sound. The defaults are Riffusion v1's (10 ms hop, 512 mel bins to 10 kHz)."""

    sample_rate: int = 44100
    n_fft: int = 17640
    hop_length: int = 441
    win_length: int = 4410
    n_mels: int = 512
    f_min: float = 0.0
    f_max: float = 10000.0
    power: float = 0.25
    width: int = 512  # frames in one image: 512 frames at 10 ms = 5.11 s
    griffin_lim_iters: int = 32
    griffin_lim_momentum: float = 0.99
    # Mel -> linear magnitude: the pseudo-inverse clamped at zero, then this many multiplicative non-negative
    # least-squares updates (0: the clamped pseudo-inverse alone, Riffusion's own inverse). Measured on mini v2's
    # codec: 100 updates halve Griffin-Lim's log-mel loss (benchmarks/codec_phase.py, docs/mini-model.md).
    mel_inversion_iters: int = 100

    @property
    def window_samples(self) -> int:
        """Samples covered by one image (width frames, centred STFT)."""
        return self.hop_length * (self.width - 1)

    @property
    def window_seconds(self) -> float:
        return self.window_samples / self.sample_rate

    def frames_for(self, num_samples: int) -> int:
        return 1 + num_samples // self.hop_length

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SpectrogramFormat":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _hz_to_mel(hz: torch.Tensor | float) -> torch.Tensor:
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(hz, dtype=torch.float64) / 700.0)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_bin(fmt: SpectrogramFormat, hz: float) -> float:
    """Where ``hz`` falls among the mel bins (HTK scale): 0.0 at the first filter's peak, n_mels - 1 at the last's."""
    low, high = _hz_to_mel(fmt.f_min), _hz_to_mel(fmt.f_max)
    return float((_hz_to_mel(hz) - low) * (fmt.n_mels + 1) / (high - low)) - 1.0


def mel_filterbank(fmt: SpectrogramFormat) -> torch.Tensor:
    """HTK-scale triangular filters without area normalisation, shaped (n_fft // 2 + 1, n_mels), float64."""
    n_freqs = fmt.n_fft // 2 + 1
    freqs = torch.linspace(0, fmt.sample_rate / 2, n_freqs, dtype=torch.float64)
    mel_points = torch.linspace(_hz_to_mel(fmt.f_min), _hz_to_mel(fmt.f_max), fmt.n_mels + 2, dtype=torch.float64)
    hz_points = _mel_to_hz(mel_points)
    widths = hz_points[1:] - hz_points[:-1]
    offsets = hz_points[None, :] - freqs[:, None]  # (n_freqs, n_mels + 2)
    rising = -offsets[:, :-2] / widths[:-1]
    falling = offsets[:, 2:] / widths[1:]
    return torch.clamp(torch.minimum(rising, falling), min=0.0)


class SpectrogramConverter:
    """Converts between audio and spectrogram images for one format, on one device (filters built once)."""

    def __init__(self, fmt: SpectrogramFormat = SpectrogramFormat(), device: torch.device | str = "cpu"):
        self.format = fmt
        self.device = torch.device(device)
        filterbank = mel_filterbank(fmt)
        self.filterbank = filterbank.to(self.device, torch.float32)
        # Least-squares (minimum-norm) inverse of the filterbank, computed once in float64 on the CPU.
        self.inverse_filterbank = torch.linalg.pinv(filterbank.T).to(self.device, torch.float32)
        self.window = torch.hann_window(fmt.win_length, device=self.device)

    # -- analysis -----------------------------------------------------------------------------------------------
    def _stft(self, audio: torch.Tensor) -> torch.Tensor:
        fmt = self.format
        return torch.stft(
            audio, fmt.n_fft, fmt.hop_length, fmt.win_length, self.window,
            center=True, pad_mode="reflect", return_complex=True,
        )

    def _istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        fmt = self.format
        return torch.istft(spec, fmt.n_fft, fmt.hop_length, fmt.win_length, self.window, center=True, length=length)

    def mel(self, audio: torch.Tensor) -> torch.Tensor:
        """Magnitude mel spectrogram of (..., samples) audio, shaped (..., n_mels, frames)."""
        return self._mel_of(self._stft(audio.to(self.device, torch.float32)).abs())

    def _mel_of(self, magnitude: torch.Tensor) -> torch.Tensor:
        return torch.einsum("fm,...ft->...mt", self.filterbank, magnitude)

    def mel_to_image(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantise a mel spectrogram to the 8-bit image; also return the maximum it was divided by."""
        max_value = mel.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-8)
        level = (mel / max_value).clamp(0, 1) ** self.format.power
        image = (255.0 - level * 255.0).to(torch.uint8)  # truncation, as an 8-bit image conversion does
        return image.flip(-2), max_value

    def audio_to_image(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., samples) audio -> ((..., n_mels, frames) uint8 image, per-image maximum)."""
        return self.mel_to_image(self.mel(audio))

    def audio_to_image_and_phase(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`audio_to_image` and :meth:`phase` from one STFT: (image, per-image maximum, phase)."""
        spectrum = self._stft(audio.to(self.device, torch.float32))
        image, max_value = self.mel_to_image(self._mel_of(spectrum.abs()))
        return image, max_value, torch.angle(spectrum)

    # -- synthesis ----------------------------------------------------------------------------------------------
    def image_to_mel(self, image: torch.Tensor, max_value: torch.Tensor | float) -> torch.Tensor:
        """Undo the image mapping: pixel values 0..255 (uint8 or float) back to mel magnitudes."""
        level = (255.0 - image.to(self.device, torch.float32).flip(-2)).clamp(0, 255) / 255.0
        return level ** (1.0 / self.format.power) * torch.as_tensor(max_value, device=self.device)

    def phase(self, audio: torch.Tensor) -> torch.Tensor:
        """STFT phase (radians) of (..., samples) audio: (..., n_freqs, frames), the frames of its image."""
        return torch.angle(self._stft(audio.to(self.device, torch.float32)))

    def mel_to_audio(self, mel: torch.Tensor, generator: torch.Generator | None = None,
                     phase: torch.Tensor | None = None) -> torch.Tensor:
        """Invert a (..., n_mels, frames) mel spectrogram to (..., hop * (frames - 1)) samples.

        With ``phase`` (the input's, from :meth:`phase`) the magnitudes take it as it is; without, Griffin-Lim
        estimates one from a random start seeded by ``generator``.
        """
        length = self.format.hop_length * (mel.shape[-1] - 1)
        magnitude = self.mel_to_magnitude(mel)
        if phase is None:
            return self.griffin_lim(magnitude, length, generator)
        return self._istft(torch.polar(magnitude, phase.to(self.device, torch.float32)), length)

    def mel_to_magnitude(self, mel: torch.Tensor) -> torch.Tensor:
        """Non-negative linear magnitudes whose mel is ``mel`` in the least-squares sense, (..., n_freqs, frames).

        Starts from the pseudo-inverse clamped at zero and runs multiplicative updates x <- x * (F m) / (F F^T x)
        (Lee and Seung's, which keep x non-negative and never raise ||F^T x - m||; F, the filterbank, is
        non-negative), so the magnitudes' own mel comes back close to the image's instead of smeared by the clamp.
        """
        mel = mel.to(torch.float32)
        magnitude = torch.einsum("fm,...mt->...ft", self.inverse_filterbank, mel).clamp_min(0.0)
        if self.format.mel_inversion_iters:
            floor = 1e-8 * mel.amax().clamp_min(torch.finfo(torch.float32).tiny)  # a zero bin could never grow
            magnitude = magnitude.clamp_min(floor)
            numerator = torch.einsum("fm,...mt->...ft", self.filterbank, mel)
            for _ in range(self.format.mel_inversion_iters):
                remelled = torch.einsum("fm,...ft->...mt", self.filterbank, magnitude)
                denominator = torch.einsum("fm,...mt->...ft", self.filterbank, remelled)
                magnitude = magnitude * numerator / denominator.clamp_min(torch.finfo(torch.float32).tiny)
        return magnitude

    def image_to_audio(
        self, image: torch.Tensor, max_value: torch.Tensor | float, generator: torch.Generator | None = None,
        phase: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Spectrogram images back to audio (see :meth:`mel_to_audio` for ``phase``)."""
        return self.mel_to_audio(self.image_to_mel(image, max_value), generator, phase)

    def griffin_lim(self, magnitude: torch.Tensor, length: int, generator: torch.Generator | None = None,
                    initial_phase: torch.Tensor | None = None) -> torch.Tensor:
        """Fast Griffin-Lim (with momentum) from ``initial_phase`` (radians), else a random phase seeded by
        ``generator``."""
        fmt = self.format
        if initial_phase is None:
            initial_phase = 2 * math.pi * torch.rand(magnitude.shape, generator=generator, dtype=torch.float32)
        angles = torch.polar(torch.ones_like(magnitude), initial_phase.to(self.device, torch.float32))
        previous = torch.zeros_like(angles)
        momentum = fmt.griffin_lim_momentum / (1 + fmt.griffin_lim_momentum)
        for _ in range(fmt.griffin_lim_iters):
            rebuilt = self._stft(self._istft(magnitude * angles, length))
            angles = rebuilt - previous * momentum
            angles = angles / (angles.abs() + 1e-16)
            previous = rebuilt
        return self._istft(magnitude * angles, length)


def image_to_model_input(image: torch.Tensor) -> torch.Tensor:
    """(B, H, W) uint8 images -> (B, 3, H, W) floats in [-1, 1], three equal channels as Riffusion's RGB."""
    x = image.to(torch.float32) / 127.5 - 1.0
    return x.unsqueeze(1).expand(-1, 3, -1, -1)


def model_output_to_image(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) decoder output in [-1, 1] -> (B, H, W) float pixel values 0..255 (channels averaged)."""
    return ((x.float().mean(dim=1) + 1.0) * 127.5).clamp(0, 255)
