"""Pictures of spectrograms: panels side by side, each under a label line, with seconds across and Hz up.

A panel holds a clip's spectrogram in the model's image format (loud is dark, low notes at the bottom), drawn
``zoom`` pixels per frame and per mel bin, or one line of text where there is no clip to show.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .atomic import atomic_path
from .audio import Clip, mono_at
from .spectrogram import SpectrogramConverter, SpectrogramFormat, mel_bin

ZOOM = 2
LABEL_HEIGHT = 20  # the label line above each spectrogram
AXIS_WIDTH = 56  # the frequencies left of it
AXIS_HEIGHT = 18  # the seconds under it
RIGHT_MARGIN = 16  # keeps the last second's label clear of the next panel
TICK = 4
NOTE_PADDING = 24
ROUND_FREQUENCIES = (250, 500, 1000, 2000, 4000, 8000, 16000)
FONT_SIZE = 12


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's own font at FONT_SIZE (Pillow before 10.1 has one size only)."""
    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except TypeError:
        return ImageFont.load_default()


FONT = _font()


@dataclass(frozen=True)
class Panel:
    """One panel: a uint8 spectrogram image (n_mels, frames) under ``label``, or ``note`` where there is none."""

    label: str
    image: np.ndarray | None = None
    note: str = ""


def clip_image(clip: Clip, converter: SpectrogramConverter) -> np.ndarray:
    """A clip's whole mono spectrogram in the model's image format (uint8, loud is dark, low notes at the bottom)."""
    audio = mono_at(clip, converter.format.sample_rate)
    image, _ = converter.audio_to_image(torch.from_numpy(audio))
    return image.cpu().numpy()


def hz_to_row(hz: float, fmt: SpectrogramFormat, zoom: int = ZOOM) -> float:
    """The pixel row, from the spectrogram's top, of the centre of the mel bin at ``hz``."""
    return (fmt.n_mels - 0.5 - mel_bin(fmt, hz)) * zoom


def seconds_to_column(seconds: float, fmt: SpectrogramFormat, zoom: int = ZOOM) -> float:
    """The pixel column, from the spectrogram's left, of the centre of the frame at ``seconds``."""
    return (seconds * fmt.sample_rate / fmt.hop_length + 0.5) * zoom


def frequency_label(hz: float) -> str:
    """'250 Hz', '1 kHz', '16 kHz'."""
    return f"{hz / 1000:g} kHz" if hz >= 1000 else f"{hz:g} Hz"


def frequency_ticks(fmt: SpectrogramFormat, zoom: int = ZOOM) -> list[tuple[float, str]]:
    """(row, label) for the round frequencies whose bins lie inside the spectrogram."""
    rows = [(hz_to_row(hz, fmt, zoom), frequency_label(hz)) for hz in ROUND_FREQUENCIES if fmt.f_min <= hz <= fmt.f_max]
    return [(row, label) for row, label in rows if 0 <= row < fmt.n_mels * zoom]


def time_ticks(frames: int, fmt: SpectrogramFormat, zoom: int = ZOOM) -> list[tuple[float, str]]:
    """(column, label) for every whole second inside a spectrogram of ``frames`` frames."""
    ticks, second = [], 0
    while (column := seconds_to_column(second, fmt, zoom)) < frames * zoom:
        ticks.append((column, f"{second} s"))
        second += 1
    return ticks


def text_width(text: str) -> int:
    """Width in pixels of one line in the picture's font."""
    left, _, right, _ = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=FONT)
    return int(right - left)


def plot_width(panel: Panel, zoom: int = ZOOM) -> int:
    """Width of the panel's spectrogram (or of the box holding its note)."""
    return panel.image.shape[1] * zoom if panel.image is not None else text_width(panel.note) + 2 * NOTE_PADDING


def panel_size(panel: Panel, fmt: SpectrogramFormat, zoom: int = ZOOM) -> tuple[int, int]:
    """(width, height) of a panel with its label line and axes."""
    width = max(AXIS_WIDTH + plot_width(panel, zoom), text_width(panel.label)) + RIGHT_MARGIN
    return width, LABEL_HEIGHT + fmt.n_mels * zoom + AXIS_HEIGHT


def draw_axes(draw: ImageDraw.ImageDraw, left: int, frames: int, fmt: SpectrogramFormat, zoom: int) -> None:
    """Frequency ticks left of the spectrogram whose top-left pixel is (left, LABEL_HEIGHT), seconds under it."""
    bottom = LABEL_HEIGHT + fmt.n_mels * zoom
    for row, label in frequency_ticks(fmt, zoom):
        y = LABEL_HEIGHT + round(row)
        draw.line([(left - TICK, y), (left - 1, y)], fill=0)
        draw.text((left - TICK - 2, y), label, fill=0, font=FONT, anchor="rm")
    for column, label in time_ticks(frames, fmt, zoom):
        x = left + round(column)
        draw.line([(x, bottom), (x, bottom + TICK - 1)], fill=0)
        draw.text((x, bottom + TICK), label, fill=0, font=FONT, anchor="mt")


def draw_panel(canvas: Image.Image, x: int, panel: Panel, fmt: SpectrogramFormat, zoom: int) -> None:
    """Draw one panel with its left edge at column ``x``."""
    draw = ImageDraw.Draw(canvas)
    draw.text((x + 2, 3), panel.label, fill=0, font=FONT)
    left, height = x + AXIS_WIDTH, fmt.n_mels * zoom
    box = [(left - 1, LABEL_HEIGHT - 1), (left + plot_width(panel, zoom), LABEL_HEIGHT + height)]
    if panel.image is None:
        draw.rectangle(box, outline=160)
        draw.text((left + NOTE_PADDING, LABEL_HEIGHT + height // 2), panel.note, fill=0, font=FONT, anchor="lm")
        return
    image = panel.image
    canvas.paste(Image.fromarray(image).resize((image.shape[1] * zoom, image.shape[0] * zoom), Image.NEAREST),
                 (left, LABEL_HEIGHT))
    draw.rectangle(box, outline=0)
    draw_axes(draw, left, image.shape[1], fmt, zoom)


def write_panels(path: str | os.PathLike, panels: list[Panel], fmt: SpectrogramFormat, zoom: int = ZOOM) -> Path:
    """Write the panels left to right as one greyscale PNG (atomically)."""
    sizes = [panel_size(panel, fmt, zoom) for panel in panels]
    canvas = Image.new("L", (sum(w for w, _ in sizes), max(h for _, h in sizes)), color=255)
    x = 0
    for panel, (width, _) in zip(panels, sizes):
        draw_panel(canvas, x, panel, fmt, zoom)
        x += width
    path = Path(path)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path
