"""Reading, checking, resampling and writing audio clips.

Audio is held as float32 numpy arrays shaped ``(channels, samples)``. Every problem with an input file is
reported as one :class:`~engine.errors.AudioError` line before any work starts.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .atomic import atomic_path
from .errors import AudioError, OutputExistsError
from .outputs import OUTPUT_SUFFIXES

WAVE_FORMAT_IEEE_FLOAT = 3
SILENCE_PEAK = 1e-5  # -100 dBFS: below this a clip holds nothing to learn from or stylize


@dataclass(frozen=True)
class AudioLimits:
    """What the engine accepts; the maximum keeps one careless drag-and-drop from running for hours."""

    max_seconds: float = 600.0


@dataclass(frozen=True)
class Clip:
    """Samples shaped (channels, samples) at ``sample_rate``."""

    samples: np.ndarray
    sample_rate: int

    @property
    def channels(self) -> int:
        return self.samples.shape[0]

    @property
    def num_samples(self) -> int:
        return self.samples.shape[1]

    @property
    def seconds(self) -> float:
        return self.num_samples / self.sample_rate

    def mono(self) -> np.ndarray:
        """The channels averaged into one signal."""
        return self.samples.mean(axis=0)


def check_audio_path(path: str | os.PathLike) -> Path:
    """A path that names a regular file: a folder, pipe or device is refused before anything reads from it."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise AudioError(f"Audio file not found: {path}") from None
    except OSError as exc:
        raise AudioError(f"Cannot open {path} ({exc.strerror}).") from None
    if stat.S_ISDIR(mode):
        raise AudioError(f"{path} is a folder, not an audio file; name one of the files in it.")
    if not stat.S_ISREG(mode):
        raise AudioError(f"{path} is not a regular file (a pipe or a device); save the audio to a file first.")
    return path


def probe(path: str | os.PathLike, limits: AudioLimits = AudioLimits()) -> None:
    """Check from the file's header alone that it exists, opens, holds samples and is not too long."""
    path = check_audio_path(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"Cannot read {path.name}: not an audio file this engine can open (WAV, FLAC, OGG, MP3): {exc}")
    if info.frames <= 0:
        raise AudioError(f"{path.name} is empty: it holds no samples.")
    if info.frames / info.samplerate > limits.max_seconds:
        raise AudioError(
            f"{path.name} is {info.frames / info.samplerate:.0f} s long; the limit is {limits.max_seconds:.0f} s. "
            "Trim it or raise the limit."
        )


def read_audio(path: str | os.PathLike, limits: AudioLimits = AudioLimits()) -> Clip:
    """Read any format soundfile knows and check it is usable; raise AudioError otherwise."""
    path = Path(path)
    probe(path, limits)
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"Cannot read {path.name}: the file is damaged ({exc}).")
    clip = Clip(np.ascontiguousarray(data.T), int(rate))
    check_samples(clip.samples, path.name)
    return clip


def check_samples(samples: np.ndarray, label: str) -> None:
    """Refuse audio that is empty, silent, or holds NaN/inf samples."""
    if samples.size == 0:
        raise AudioError(f"{label} is empty: it holds no samples.")
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"{label} holds NaN or infinite samples; re-export it from your DAW.")
    if float(np.max(np.abs(samples))) < SILENCE_PEAK:
        raise AudioError(f"{label} is silent; pick a clip with sound in it.")


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited resampling of (channels, samples) audio (libsoxr, high quality)."""
    if from_rate == to_rate:
        return samples.astype(np.float32, copy=False)
    out = soxr.resample(samples.T, from_rate, to_rate, quality="HQ")
    return np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, samples.shape[0]).T)


def mono_at(clip: Clip, rate: int) -> np.ndarray:
    """The clip's channels averaged and resampled to ``rate``: one float32 signal."""
    return resample(clip.mono()[None], clip.sample_rate, rate)[0]


def fit_length(samples: np.ndarray, num_samples: int) -> np.ndarray:
    """Trim or zero-pad the last axis to exactly ``num_samples``."""
    have = samples.shape[-1]
    if have >= num_samples:
        return samples[..., :num_samples]
    pad = [(0, 0)] * (samples.ndim - 1) + [(0, num_samples - have)]
    return np.pad(samples, pad)


def write_audio(path: str | os.PathLike, clip: Clip, overwrite: bool = True) -> Path:
    """Write a 32-bit float file atomically; the format follows the file's extension.

    Samples that are not finite are never written; without ``overwrite`` an existing file is never replaced.
    """
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise AudioError(f"Cannot write {path.name}: use a .wav, .flac, .ogg or .aiff file name.")
    if not np.all(np.isfinite(clip.samples)):
        raise AudioError(f"The result for {path.name} holds NaN or infinite samples, so it was not written; check "
                         "the settings and the style (`restyle styles show NAME`).")
    suffix = path.suffix.lower()
    subtype = "FLOAT" if suffix in {".aiff", ".aif"} else None
    samples = clip.samples
    if subtype is None and suffix != ".wav":  # formats without float samples: keep the signal inside full scale
        samples = np.clip(samples, -1.0, 1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path, replace=overwrite) as tmp:
            if suffix == ".wav":
                write_float_wav(tmp, samples, clip.sample_rate)
            else:
                sf.write(str(tmp), samples.T, clip.sample_rate, subtype=subtype)
    except FileExistsError:
        raise OutputExistsError(f"{path} appeared while the result was made and was kept; nothing was replaced. "
                                "Choose another name.") from None
    return path


def float_wav_header(channels: int, frames: int, sample_rate: int) -> bytes:
    """A canonical 32-bit float WAV header: an 18-byte fmt chunk (cbSize 0, as the WAV spec asks of non-PCM
    formats), a fact chunk, then the data chunk's header. libsndfile writes a 16-byte fmt chunk, which sox warns about.
    """
    data_bytes = channels * frames * 4
    fmt = struct.pack("<HHIIHHH", WAVE_FORMAT_IEEE_FLOAT, channels, sample_rate, sample_rate * channels * 4,
                      channels * 4, 32, 0)
    chunks = (b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<II", 4, frames)
              + b"data" + struct.pack("<I", data_bytes))
    return b"RIFF" + struct.pack("<I", 4 + len(chunks) + data_bytes) + b"WAVE" + chunks


def write_float_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> None:
    """Write (channels, samples) audio as a plain IEEE-float WAV file that every reader takes without a warning."""
    interleaved = np.ascontiguousarray(samples.T, dtype="<f4")
    with open(path, "wb") as out:
        out.write(float_wav_header(samples.shape[0], samples.shape[1], sample_rate))
        out.write(interleaved.tobytes())
