"""``restyle demo``: stylize a melody with a style shipped with Restyle, offline, and show what changed.

Writes the content clip, the stylized clip and a PNG of three spectrograms side by side: the content, the
result, and a clip of the style itself (``--style-clip``, else the ``example.flac`` its folder keeps, else a note).
"""

from __future__ import annotations

from pathlib import Path

from .audio import Clip, fit_length, read_audio, write_audio
from .engine import Engine, StylizeResult
from .figures import Panel, clip_image, write_panels
from .mini import DEMO_CONTENT, DEMO_STYLE
from .progress import ProgressCallback
from .sampler import SamplerSettings
from .style import parse_style_mix

EXAMPLE_FILE = "example.flac"  # a clip of the style, kept in its folder for the demo's picture
STYLE_CLIP_SECONDS = 10.0  # the picture shows at most this much of the style's clip


def run_demo(
    engine: Engine, out: Path, style: str = DEMO_STYLE, content: Path = DEMO_CONTENT,
    settings: SamplerSettings | None = None, progress: ProgressCallback | None = None,
    style_clip: Path | None = None,
) -> dict[str, Path]:
    """Stylize ``content`` with ``style`` into ``out``; return the files written, by what they are."""
    out.mkdir(parents=True, exist_ok=True)
    clip = read_audio(content, engine.settings.limits)
    content_wav = write_audio(out / "content.wav", clip)
    result: StylizeResult = engine.stylize(content_wav, style, settings, out / f"content_{style}.wav",
                                           progress=progress, overwrite=True)  # the demo folder is its own
    stylized = read_audio(result.path, engine.settings.limits)
    converter = engine.converter
    label = f"{result.style} (scale {result.settings.scale:g}, strength {result.settings.strength:g})"
    panels = [Panel(f"content: {Path(content).name}", clip_image(clip, converter)),
              Panel(label, clip_image(stylized, converter)),
              style_panel(engine, style, style_clip)]
    picture = write_panels(out / "spectrograms.png", panels, converter.format)
    return {"content": content_wav, "stylized": result.path, "spectrograms": picture}


def style_example(engine: Engine, style: str) -> Path | None:
    """The clip a single style keeps in its folder, if it keeps one (a blend has none)."""
    parts = parse_style_mix(style)
    if len(parts) != 1:
        return None
    path = engine.library.locate(parts[0][0]) / EXAMPLE_FILE
    return path if path.is_file() else None


def style_panel(engine: Engine, style: str, style_clip: Path | None) -> Panel:
    """The third panel: ``style_clip``, else the style's own example, else a note saying how to give one."""
    path = style_clip or style_example(engine, style)
    if path is None:
        return Panel(f"{style}: its own sound",
                     note=f"No clip of '{style}' is kept here; give one with: restyle demo --style-clip FILE")
    clip = read_audio(path, engine.settings.limits)
    shown = first_seconds(clip, STYLE_CLIP_SECONDS)
    cut = f", first {STYLE_CLIP_SECONDS:g} s" if shown.num_samples < clip.num_samples else ""
    return Panel(f"{style}: its own sound ({Path(path).name}{cut})", clip_image(shown, engine.converter))


def first_seconds(clip: Clip, seconds: float) -> Clip:
    """The clip's first ``seconds`` (all of it if shorter)."""
    return Clip(fit_length(clip.samples, min(clip.num_samples, round(seconds * clip.sample_rate))), clip.sample_rate)
