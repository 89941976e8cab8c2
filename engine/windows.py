"""Cutting long audio into overlapping model-sized windows, and joining them with equal-power crossfades."""

from __future__ import annotations

import math

import numpy as np


def window_starts(num_samples: int, window: int, overlap: int) -> list[int]:
    """Start offsets of windows of ``window`` samples, overlapping by ``overlap``, covering ``num_samples``."""
    if num_samples <= window:
        return [0]
    stride = window - overlap
    count = 1 + math.ceil((num_samples - window) / stride)
    return [i * stride for i in range(count)]


def split(signal: np.ndarray, window: int, overlap: int) -> np.ndarray:
    """(samples,) -> (windows, window); the last window is zero-padded."""
    starts = window_starts(len(signal), window, overlap)
    padded = np.pad(signal, (0, starts[-1] + window - len(signal)))
    return np.stack([padded[s : s + window] for s in starts])


def join(windows: np.ndarray, num_samples: int, overlap: int) -> np.ndarray:
    """Overlap-add windows with cos/sin (equal-power) fades across each overlap; trim to ``num_samples``."""
    count, window = windows.shape
    stride = window - overlap
    ramp = np.linspace(0.0, np.pi / 2, overlap, dtype=np.float64) if overlap else np.zeros(0)
    fade_in, fade_out = np.sin(ramp), np.cos(ramp)
    out = np.zeros(stride * (count - 1) + window, dtype=np.float64)
    for i, chunk in enumerate(windows.astype(np.float64)):
        chunk = chunk.copy()
        if i > 0 and overlap:
            chunk[:overlap] *= fade_in
        if i < count - 1 and overlap:
            chunk[-overlap:] *= fade_out
        out[i * stride : i * stride + window] += chunk
    return out[:num_samples].astype(np.float32)
