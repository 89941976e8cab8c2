"""The published metrics (docs/method.md): CLAPscore = ReLU(cos); content preservation; style fit; bootstrap CIs."""

from __future__ import annotations

import numpy as np


def clap_score(a: np.ndarray, b: np.ndarray) -> float:
    """ReLU of the cosine similarity of two embeddings."""
    cosine = float(np.dot(a, b) / max(1e-12, np.linalg.norm(a) * np.linalg.norm(b)))
    return max(0.0, cosine)


def content_preservation(content: np.ndarray, stylized: np.ndarray) -> float:
    """CP(x0, x0_hat) = CLAPscore(content, stylized)."""
    return clap_score(content, stylized)


def style_fit(stylized: np.ndarray, style: np.ndarray) -> float:
    """SF against the *mean embedding* of the style clips (not the mean of per-clip cosines), or a text embedding."""
    reference = style.mean(axis=0) if style.ndim == 2 else style
    return clap_score(stylized, reference)


def bootstrap_interval(values: list[float], level: float = 0.95, resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean and a percentile bootstrap interval."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, (resamples, data.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(data.mean()), float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both coordinates (higher is better)."""
    return [i for i, (a, b) in enumerate(points)
            if not any(c >= a and d >= b and (c > a or d > b) for j, (c, d) in enumerate(points) if j != i)]
