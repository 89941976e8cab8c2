"""Does a style learned on the mini model work? Measured against ground truth the renderer gives us.

For each target instrument B: a style is learned from a few clips of B playing other melodies; held-out
melodies (a seed stream training never saw) are rendered with a content instrument A (the content) and with B
(the target). Stylizing the content should move it towards the target (log-mel distance falls) while the melody
survives (its chroma still correlates with the content's far more than with an unrelated melody's), and the
strength knob should trade one for the other.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path, write_json
from ..audio import mono_at, read_audio
from ..engine import Engine
from ..errors import SettingsError
from ..progress import ProgressCallback
from ..sampler import SamplerSettings
from ..spectrogram import SpectrogramConverter
from ..training import TrainSettings
from .melodies import melody, phrase
from .render import instrument, render_notes

DB_FLOOR = -80.0  # dB below a clip's loudest bin: quieter detail does not count in the distance


@dataclass(frozen=True)
class AcceptanceSettings:
    """The published protocol: 3 target instruments x 8 held-out melodies, strengths 0.3 / 0.5 / 0.7."""

    seed: int = 0
    targets: tuple[str, ...] = ("accordion", "tubular bells", "bird tweet")
    contents: tuple[str, ...] = ("piano", "flute", "violin", "trumpet", "marimba", "nylon guitar", "clarinet",
                                 "vibraphone")
    pairs_per_target: int = 8
    style_clips: int = 4
    seconds: float = 5.0
    strengths: tuple[float, ...] = (0.3, 0.5, 0.7)
    steps: int = 50
    scale: float | None = None  # None: each style's recommended scale

    def validate(self) -> "AcceptanceSettings":
        if not self.targets or self.pairs_per_target < 1 or not self.strengths:
            raise SettingsError("The acceptance run needs at least one target, one pair and one strength.")
        if self.seconds <= 0 or self.style_clips < 1:
            raise SettingsError("Clips must be longer than 0 s, and a style needs at least one clip.")
        for name in (*self.targets, *self.contents):
            instrument(name)  # an unknown name fails here, before anything is rendered
        return self




def style_name(instrument_name: str) -> str:
    """The style learned from an instrument: 'tubular bells' -> 'tubular-bells'."""
    return instrument_name.replace(" ", "-")


def render_style_clips(instrument_name: str, folder: Path, count: int, seconds: float, rate: int, seed: int = 0) -> Path:
    """``count`` clips of the instrument playing phrases from the style seed stream (not training, not held out)."""
    inst = instrument(instrument_name)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        rng = random.Random(f"style-{seed}-{inst.name}-{k}")
        path = folder / f"{style_name(inst.name)}-{k + 1}.wav"
        if not path.is_file():
            render_notes(phrase(rng, seconds, inst.low, inst.high, inst.drums), inst, path, rate, seconds)
    return folder


@dataclass(frozen=True)
class Pair:
    target_instrument: str
    content_instrument: str
    content: Path  # held-out melody, instrument A
    target: Path  # the same melody, instrument B
    unrelated: Path  # another held-out melody, instrument A


def render_pairs(target_name: str, folder: Path, settings: AcceptanceSettings, rate: int) -> list[Pair]:
    """Held-out melodies for one target instrument, each with a content, a target and an unrelated rendering."""
    pairs = []
    contents = [c for c in settings.contents if c != target_name]
    for i in range(settings.pairs_per_target):
        rng = random.Random(f"heldout-{settings.seed}-{target_name}-{i}")
        notes, other = melody(rng, settings.seconds), melody(rng, settings.seconds)
        content_name = contents[i % len(contents)]
        stem = folder / f"{style_name(target_name)}-{i + 1:02d}"
        files = {"content": (notes, content_name), "target": (notes, target_name), "unrelated": (other, content_name)}
        paths = {}
        for role, (melody_notes, name) in files.items():
            paths[role] = Path(f"{stem}-{role}.wav")
            if not paths[role].is_file():
                render_notes(melody_notes, instrument(name), paths[role], rate, settings.seconds)
        pairs.append(Pair(target_name, content_name, paths["content"], paths["target"], paths["unrelated"]))
    return pairs


# -- measures ---------------------------------------------------------------------------------------------------
def _mono(path: Path, rate: int) -> np.ndarray:
    return mono_at(read_audio(path), rate)


def log_mel_db(audio: np.ndarray, converter: SpectrogramConverter) -> torch.Tensor:
    """Mel spectrogram in dB relative to the clip's loudest bin, floored at ``DB_FLOOR``."""
    mel = converter.mel(torch.from_numpy(np.ascontiguousarray(audio)).float())
    db = 20 * torch.log10(mel.clamp_min(1e-10) / mel.max().clamp_min(1e-10))
    return db.clamp_min(DB_FLOOR)


def chroma(audio: np.ndarray, rate: int) -> np.ndarray:
    """A clip's chromagram (12 pitch classes x frames)."""
    import librosa

    return librosa.feature.chroma_stft(y=audio.astype(np.float32), sr=rate, n_fft=2048, hop_length=512)


def db_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean absolute difference of two log-mel spectrograms in dB, over their common frames."""
    n = min(a.shape[-1], b.shape[-1])
    return float((a[..., :n] - b[..., :n]).abs().mean())


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two chromagrams over their common frames."""
    n = min(a.shape[-1], b.shape[-1])
    return float(np.corrcoef(a[..., :n].ravel(), b[..., :n].ravel())[0, 1])


def log_mel_distance(a: np.ndarray, b: np.ndarray, converter: SpectrogramConverter) -> float:
    """How far apart two clips sound: ``db_distance`` of their log-mel spectrograms."""
    n = min(len(a), len(b))
    return db_distance(log_mel_db(a[:n], converter), log_mel_db(b[:n], converter))


def chroma_correlation(a: np.ndarray, b: np.ndarray, rate: int) -> float:
    """How much the same notes sound at the same times in two clips: correlation of their chromagrams."""
    n = min(len(a), len(b))
    return correlation(chroma(a[:n], rate), chroma(b[:n], rate))


@dataclass(frozen=True)
class Features:
    """What the measures compare, computed once per clip."""

    db: torch.Tensor
    chroma: np.ndarray


def features(path: Path, converter: SpectrogramConverter) -> Features:
    audio = _mono(path, converter.format.sample_rate)
    return Features(log_mel_db(audio, converter), chroma(audio, converter.format.sample_rate))


# -- the run ----------------------------------------------------------------------------------------------------
def run_acceptance(
    engine: Engine, out: Path, settings: AcceptanceSettings = AcceptanceSettings(),
    train: TrainSettings | None = None, progress: ProgressCallback | None = None,
) -> dict:
    """Measure every pair at every strength; learn missing styles first (or all of them, given ``train``)."""
    settings.validate()
    rate = engine.base.spectrogram.sample_rate
    converter = engine.converter
    rows = []
    for target in settings.targets:
        name = style_name(target)
        if train is not None or name not in engine.library:
            clips = render_style_clips(target, out / "style-clips" / name, settings.style_clips, settings.seconds,
                                       rate, settings.seed)
            engine.train(name, [clips], train or TrainSettings(), overwrite=True, progress=progress)
        scale = settings.scale if settings.scale is not None else engine.recommended_settings(engine.style_mix(name)).scale
        for pair in render_pairs(target, out / "pairs", settings, rate):
            content, goal, unrelated = (features(p, converter) for p in (pair.content, pair.target, pair.unrelated))
            before = db_distance(content.db, goal.db)
            target_vs_content = correlation(goal.chroma, content.chroma)
            # One denoising step (t = 21 of 1000 at 50 steps): the content through the VAE and Griffin-Lim with no
            # style to speak of, so the codec's own artefacts can be told apart from what the style did.
            sampler = SamplerSettings(strength=1 / settings.steps, scale=scale, steps=settings.steps, seed=settings.seed)
            round_trip = db_distance(_stylize(engine, pair.content, name, sampler, out, progress).db, goal.db)
            for strength in settings.strengths:
                sampler = replace(sampler, strength=strength)
                stylized = _stylize(engine, pair.content, name, sampler, out, progress)
                after = db_distance(stylized.db, goal.db)
                rows.append({
                    "target": target, "content_instrument": pair.content_instrument, "pair": pair.content.stem,
                    "strength": strength, "scale": scale,
                    "distance_content_to_target": before, "distance_stylized_to_target": after,
                    "reduction_db": before - after, "reduction_fraction": (before - after) / before,
                    "distance_round_trip_to_target": round_trip, "reduction_vs_round_trip_db": round_trip - after,
                    "chroma_vs_content": correlation(stylized.chroma, content.chroma),
                    "chroma_vs_unrelated": correlation(stylized.chroma, unrelated.chroma),
                    "chroma_target_vs_content": target_vs_content,
                })
    results = {"settings": asdict(settings), "model": engine.base.model_id, "rows": rows,
               "summary": summarize(rows)}
    write_json(out / "acceptance.json", results)
    with atomic_path(out / "acceptance.md") as tmp:
        tmp.write_text(markdown(results["summary"]))
    return results


def _stylize(engine: Engine, content: Path, style: str, sampler: SamplerSettings, out: Path,
             progress: ProgressCallback | None) -> Features:
    """Stylize into ``out/stylized`` (named by content, style, scale and strength); return the result's features."""
    path = out / "stylized" / f"{content.stem}_{style}_scale{sampler.scale:g}_s{sampler.strength:g}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    engine.stylize(content, style, sampler, path, progress=progress, overwrite=True)  # its own scratch folder
    return features(path, engine.converter)


def _stats(values: list[float]) -> dict:
    data = np.asarray(values, dtype=np.float64)
    return {"mean": float(data.mean()), "std": float(data.std()), "min": float(data.min()), "max": float(data.max()),
            "n": int(data.size)}


MEASURES = ("distance_content_to_target", "distance_stylized_to_target", "reduction_db", "reduction_fraction",
            "distance_round_trip_to_target", "reduction_vs_round_trip_db", "chroma_vs_content", "chroma_vs_unrelated", "chroma_target_vs_content")


def summarize(rows: list[dict]) -> list[dict]:
    """Per strength, over all targets and per target: mean, spread and range of every measure."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["strength"], "all"), []).append(row)
        groups.setdefault((row["strength"], row["target"]), []).append(row)
    return [{"strength": strength, "target": target, **{m: _stats([r[m] for r in group]) for m in MEASURES}}
            for (strength, target), group in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != "all", kv[0][1]))]


HEADER = ("| strength | target | pairs | log-mel distance to target (dB): content | stylized | reduction (dB) "
          "| reduction (%) | reduction vs the codec round trip (dB) "
          "| chroma r: stylized vs content | stylized vs unrelated melody | target vs content |")


def _mean_spread(stats: dict, factor: float = 1.0) -> str:
    return f"{stats['mean'] * factor:.2f} ± {stats['std'] * factor:.2f}"


def markdown(summary: list[dict]) -> str:
    """The summary as a Markdown table: mean ± standard deviation over pairs."""
    lines = [HEADER, "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in summary:
        cells = [f"{row['strength']:g}", row["target"], str(row["reduction_db"]["n"])]
        cells += [_mean_spread(row[m]) for m in ("distance_content_to_target", "distance_stylized_to_target", "reduction_db")]
        cells += [_mean_spread(row["reduction_fraction"], 100), _mean_spread(row["reduction_vs_round_trip_db"])]
        cells += [_mean_spread(row[m]) for m in ("chroma_vs_content", "chroma_vs_unrelated", "chroma_target_vs_content")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def read_results(out: Path) -> dict:
    return json.loads((out / "acceptance.json").read_text())
