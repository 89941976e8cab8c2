"""Makes what ships with the mini model besides its weights: its styles and the demo's content clip.

The styles are learned exactly as a user would (``Engine.train``) from clips rendered from the style seed
stream, and written into the package's read-only style folder with the first clip as ``example.flac`` (the
third panel of ``restyle demo``'s picture).
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

from ..atomic import write_json
from ..audio import read_audio, write_audio
from ..demo import EXAMPLE_FILE, first_seconds
from ..engine import Engine
from ..library import StyleLibrary
from ..progress import ProgressCallback
from ..style import INFO_FILE
from ..training import TrainSettings
from . import BUNDLED_STYLES, DEMO_CONTENT, STYLES_DIR
from .acceptance import render_style_clips
from .melodies import melody
from .render import instrument, render_notes

# Each shipped style learns with the preset of its sound family; its recommended (scale, strength) then comes
# from the grid of acceptance (a) on the shipped model (docs/mini-model.md, "Shipped styles"): the setting with
# the largest reduction towards the true target whose chroma against the content stays at least 0.8.
PRESETS = {"accordion": "accordion", "tubular-bells": "chime", "bird-tweet": "bird"}
RECOMMENDED = {"accordion": (2.5, 0.5), "tubular-bells": (2.5, 0.7), "bird-tweet": (2.0, 0.7)}
CLIPS_PER_STYLE = 4
CLIP_SECONDS = 5.0
EXAMPLE_SECONDS = 5.0  # the longest example.flac a shipped style keeps


def train_shipped_styles(
    engine: Engine, settings: TrainSettings = TrainSettings(), folder: Path = STYLES_DIR, seed: int = 0,
    progress: ProgressCallback | None = None,
) -> list[Path]:
    """Learn every shipped style on ``engine``'s base model into ``folder``."""
    engine.library = StyleLibrary(folder, shipped=None)
    rate = engine.base.spectrogram.sample_rate
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in BUNDLED_STYLES:
            clips = render_style_clips(name.replace("-", " "), Path(tmp) / name, CLIPS_PER_STYLE, CLIP_SECONDS,
                                       rate, seed)
            engine.train(name, [clips], settings, overwrite=True, progress=progress, preset=PRESETS[name])
            style_folder = engine.library.folder(name)
            keep_example(clips, style_folder)
            written.append(finish_record(style_folder, *RECOMMENDED[name]))
    return written


def write_style_example(name: str, style_folder: Path, rate: int, seed: int = 0) -> Path:
    """Write ``example.flac`` into a shipped style's folder: its first training clip, rendered as training does."""
    with tempfile.TemporaryDirectory() as tmp:
        clips = render_style_clips(name.replace("-", " "), Path(tmp) / name, CLIPS_PER_STYLE, CLIP_SECONDS, rate, seed)
        return keep_example(clips, style_folder)


def keep_example(clips: Path, style_folder: Path) -> Path:
    """Copy the first rendered clip in ``clips`` (at most EXAMPLE_SECONDS) into ``style_folder``, atomically."""
    clip = first_seconds(read_audio(min(clips.glob("*.wav"))), EXAMPLE_SECONDS)
    return write_audio(style_folder / EXAMPLE_FILE, clip)


def finish_record(style_folder: Path, scale: float, strength: float) -> Path:
    """Set a shipped style's recommended settings and drop its clips' (temporary) paths; names and hashes stay."""
    path = style_folder / INFO_FILE
    info = json.loads(path.read_text())
    info["recommended_scale"], info["recommended_strength"] = scale, strength
    for clip in info.get("training", {}).get("clips", []):
        clip.pop("path", None)
    write_json(path, info)
    return style_folder


def render_demo_content(rate: int, path: Path = DEMO_CONTENT, seed: int = 0) -> Path:
    """A piano melody from the held-out stream, stored as FLAC (small) for the demo."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = render_notes(melody(random.Random(f"demo-{seed}"), CLIP_SECONDS), instrument("piano"),
                           Path(tmp) / "demo.wav", rate, CLIP_SECONDS)
        return write_audio(path, read_audio(wav))
