"""``restyle demo``: stylize a melody with a style shipped with Restyle, offline, and show what changed.

Writes the content clip, the stylized clip and a PNG of both spectrograms side by side.
"""

from __future__ import annotations

from pathlib import Path

from .audio import read_audio, write_audio
from .engine import Engine, StylizeResult
from .figures import clip_image, write_side_by_side
from .mini import DEMO_CONTENT, DEMO_STYLE
from .progress import ProgressCallback
from .sampler import SamplerSettings


def run_demo(
    engine: Engine, out: Path, style: str = DEMO_STYLE, content: Path = DEMO_CONTENT,
    settings: SamplerSettings | None = None, progress: ProgressCallback | None = None,
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
    picture = write_side_by_side(out / "spectrograms.png", [clip_image(clip, converter), clip_image(stylized, converter)],
                                 ["content", label])
    return {"content": content_wav, "stylized": result.path, "spectrograms": picture}
