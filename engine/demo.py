"""``restyle demo``: the whole loop offline, from synthesized clips: learn a bell style, stylize a melody."""

from __future__ import annotations

from pathlib import Path

from .audio import Clip, write_audio
from .engine import Engine
from .progress import ProgressCallback
from .sampler import SamplerSettings
from .synth import bells, melody
from .training import TrainSettings

DEMO_STYLE = "demo-bells"


def run_demo(engine: Engine, out: Path, steps: int, progress: ProgressCallback | None = None) -> dict[str, Path]:
    """Write style clips and a content clip into ``out``, train a style on them, stylize; return the files."""
    rate = engine.base.spectrogram.sample_rate
    seconds = 2 * engine.base.spectrogram.window_seconds
    clips = out / "style-clips"
    clips.mkdir(parents=True, exist_ok=True)
    for i, notes in enumerate(([523.3, 659.3, 784.0], [440.0, 587.3, 880.0], [392.0, 493.9, 698.5])):
        write_audio(clips / f"bells-{i + 1}.wav", Clip(bells(notes, seconds, rate, seed=i)[None], rate))
    content = write_audio(out / "melody.wav", Clip(melody([261.6, 329.6, 392.0, 329.6, 293.7, 261.6], seconds, rate)[None], rate))

    engine.train(DEMO_STYLE, [clips], TrainSettings(steps=steps, checkpoint_every=max(1, steps // 4)),
                 overwrite=True, progress=progress)
    result = engine.stylize(content, DEMO_STYLE, SamplerSettings(strength=0.6, scale=4.5, steps=50), progress=progress)
    return {"style clips": clips, "content": content, "style": engine.library.folder(DEMO_STYLE), "stylized": result.path}
