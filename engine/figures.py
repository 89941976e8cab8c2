"""Pictures of spectrograms: content and stylized side by side, to see what a style did."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .atomic import atomic_path
from .audio import Clip, mono_at
from .spectrogram import SpectrogramConverter

LABEL_HEIGHT = 16
GAP = 8


def clip_image(clip: Clip, converter: SpectrogramConverter) -> np.ndarray:
    """A clip's whole mono spectrogram in the model's image format (uint8, loud is dark, low notes at the bottom)."""
    audio = mono_at(clip, converter.format.sample_rate)
    image, _ = converter.audio_to_image(torch.from_numpy(audio))
    return image.cpu().numpy()


def write_side_by_side(path: str | os.PathLike, images: list[np.ndarray], labels: list[str], zoom: int = 2) -> Path:
    """Write uint8 images left to right, each under its label, as one PNG (atomically)."""
    scaled = [Image.fromarray(img).resize((img.shape[1] * zoom, img.shape[0] * zoom), Image.NEAREST) for img in images]
    width = sum(s.width for s in scaled) + GAP * (len(scaled) - 1)
    height = max(s.height for s in scaled) + LABEL_HEIGHT
    canvas = Image.new("L", (width, height), color=255)
    draw = ImageDraw.Draw(canvas)
    x = 0
    for picture, label in zip(scaled, labels):
        draw.text((x + 2, 2), label, fill=0)
        canvas.paste(picture, (x, LABEL_HEIGHT))
        x += picture.width + GAP
    path = Path(path)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path
