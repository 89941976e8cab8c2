"""A result's level: as loud as its input (RMS over the whole clip, all channels), and never peaking above the
input's peak or -1 dBFS, whichever is higher, nor above full scale.

Loudness is matched with one gain for the clip, so window joins cannot pump. Peaks that the gain pushes over the
ceiling are brought under it by a look-ahead limiter whose gain glides over ``LIMITER_SECONDS``: it holds the
lowest gain any sample in the window needs, then averages over the same window, which never lets a sample over.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

CEILING = 10 ** (-1 / 20)  # -1 dBFS
LIMITER_SECONDS = 0.02
SILENT_RMS = 1e-9
MAX_GAIN = 10 ** (24 / 20)  # +24 dB: a near-silent result is not blown up into loud noise


def rms(samples: np.ndarray) -> float:
    """Root mean square over every sample of every channel."""
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def match_loudness(result: np.ndarray, reference: np.ndarray, rate: int) -> np.ndarray:
    """``result`` (channels, samples) at ``reference``'s RMS (at most +24 dB of gain), limited to
    max(reference peak, -1 dBFS) <= 1.0."""
    level = rms(result)
    if level < SILENT_RMS:
        return result
    matched = result * min(rms(reference) / level, MAX_GAIN)
    ceiling = min(1.0, max(float(np.abs(reference).max()), CEILING))
    return limit(matched, ceiling, rate).astype(np.float32)


def limit(samples: np.ndarray, ceiling: float, rate: int) -> np.ndarray:
    """Bring (channels, samples) under ``ceiling`` with one smooth gain for all channels; untouched elsewhere."""
    peak = np.abs(samples).max(axis=0).astype(np.float64)  # float64: the averaging must not round past the ceiling
    if peak.max() <= ceiling:
        return samples
    half = max(1, int(LIMITER_SECONDS * rate) // 2)
    width = 2 * half + 1
    need = torch.from_numpy(np.minimum(1.0, ceiling * (1 - 1e-6) / np.maximum(peak, 1e-12)))[None, None]
    padded = F.pad(need, (2 * half, 2 * half), value=1.0)
    held = -F.max_pool1d(-padded, width, stride=1)  # lowest gain needed within +-half of each sample
    smooth = F.avg_pool1d(held, width, stride=1)  # averaged over the same width: a glide, never above the need
    return samples * smooth[0, 0].numpy()
