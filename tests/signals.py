"""Small synthesized signals (chords, sweeps, noise bursts, bells, melodies) for tests and benchmarks: no files needed."""

from __future__ import annotations

import numpy as np


def _time(seconds: float, rate: int) -> np.ndarray:
    return np.arange(int(round(seconds * rate))) / rate


def chord(freqs: list[float], seconds: float, rate: int, level: float = 0.2) -> np.ndarray:
    """Sustained sine partials with a short fade in and out."""
    t = _time(seconds, rate)
    signal = sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)
    envelope = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02 + 1e-3)
    return (level * signal * envelope).astype(np.float32)


def sweep(start_hz: float, end_hz: float, seconds: float, rate: int, level: float = 0.2) -> np.ndarray:
    """An exponential sine sweep."""
    t = _time(seconds, rate)
    k = np.log(end_hz / start_hz) / seconds
    return (level * np.sin(2 * np.pi * start_hz * (np.exp(k * t) - 1) / k)).astype(np.float32)


def noise_bursts(seconds: float, rate: int, bursts_per_second: float = 4.0, seed: int = 0) -> np.ndarray:
    """Short decaying white-noise hits, like a hi-hat pattern."""
    rng = np.random.default_rng(seed)
    t = _time(seconds, rate)
    phase = (t * bursts_per_second) % 1.0
    return (0.3 * rng.standard_normal(len(t)) * np.exp(-phase * 25)).astype(np.float32)


def bells(notes: list[float], seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Struck bell-like tones: inharmonic partials, sharp attack, long decay, one note after another."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(round(seconds * rate)), dtype=np.float64)
    step = len(out) // max(1, len(notes))
    for i, f in enumerate(notes):
        t = _time((len(out) - i * step) / rate, rate)
        tone = sum(a * np.sin(2 * np.pi * f * r * t + rng.uniform(0, 6.3)) for r, a in ((1, 1), (2.76, 0.5), (5.4, 0.25)))
        out[i * step :] += 0.2 * tone * np.exp(-t * 2.5)
    return out.astype(np.float32)


def melody(notes: list[float], seconds: float, rate: int) -> np.ndarray:
    """A plain sawtooth-ish melody (a few harmonics), evenly spaced notes."""
    t = _time(seconds, rate)
    step = len(t) / max(1, len(notes))
    freqs = np.array([notes[min(int(i / step), len(notes) - 1)] for i in range(len(t))])
    phase = 2 * np.pi * np.cumsum(freqs) / rate
    signal = sum(np.sin(h * phase) / h for h in (1, 2, 3, 4))
    return (0.15 * signal).astype(np.float32)
