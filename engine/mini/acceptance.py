"""Does a style learned on the mini model work? Acceptance v2: measured against ground truth where the renderer
gives one, and by judges nobody on this project trained everywhere.

Three groups of targets (docs/mini-model.md has the protocol and the figures):
- (a) in distribution: instruments the model was trained on; content rendered dry and, every other pair, with
  reverb or chorus;
- (b) held out: General MIDI programs that appear in no training caption and no training audio;
- (c) real recordings: CC0 Sonic Pi samples of held-out families as style clips (no ground truth).

For each target B a style is learned from a few clips of B; held-out melodies (a seed stream training never
saw) are rendered with a content instrument A (the content), with B (the target, in (a) and (b)) and another
melody with A (unrelated). Each content is stylized at every strength, and compared with floors (the content
itself, the codec round trip: content -> image -> VAE -> audio with no diffusion) and ceilings (the true
target): log-mel distance to the target, chroma correlation and note F1 (basic-pitch) against the content and
against the unrelated melody, and style similarity (cosine of aiSFX embeddings to the mean of the style clips).
In (b) and (c) every style type is learned and measured side by side (TVE only, TVE + LoRA adapter).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from ..atomic import atomic_path, write_json
from ..audio import mono_at, read_audio
from ..engine import Engine
from ..errors import SettingsError
from ..progress import ProgressCallback
from ..sampler import SamplerSettings
from ..spectrogram import SpectrogramConverter, check_phase_source
from ..training import TrainSettings
from ..windows import join, split
from .corpus import HELD_OUT_RECORDINGS, apply_effects, held_out_recordings, sequence
from .melodies import melody, phrase
from .render import instrument, render_notes

DB_FLOOR = -80.0  # dB below a clip's loudest bin: quieter detail does not count in the distance
GROUPS = ("a", "b", "c")
PHASE_LABELS = {"input": "the input's phase", "griffin-lim": "Griffin-Lim"}
STYLE_TYPES = {"tve": None, "lora": "lora:4"}  # style type -> the --adapter it is learned with


@dataclass(frozen=True)
class AcceptanceSettings:
    """The v2 protocol: 3 targets per group x 8 held-out melodies, strengths 0.3 / 0.5 / 0.7."""

    seed: int = 0
    groups: tuple[str, ...] = GROUPS
    in_distribution: tuple[str, ...] = ("accordion", "tubular bells", "bird tweet")
    held_out: tuple[str, ...] = ("bassoon", "shamisen", "bagpipe")
    recordings: tuple[str, ...] = ("tabla", "guitar", "glass")
    contents: tuple[str, ...] = ("piano", "flute", "violin", "trumpet", "marimba", "nylon guitar", "clarinet",
                                 "vibraphone")
    pairs_per_target: int = 8
    style_clips: int = 4
    seconds: float = 5.0
    strengths: tuple[float, ...] = (0.3, 0.5, 0.7)
    steps: int = 50
    sampler: str = "ddim"  # the published reference (DDIM, 50 steps), so figures compare across sessions
    scale: float | None = None  # None: each style's recommended scale
    style_types: tuple[str, ...] = ("tve", "lora")  # measured side by side in groups (b) and (c)
    in_distribution_style_types: tuple[str, ...] = ("tve",)  # group (a): the shipped styles are TVE only

    def validate(self) -> "AcceptanceSettings":
        for group in self.groups:  # first: an unknown group would otherwise read as "no target"
            if group not in GROUPS:
                raise SettingsError(f"Unknown acceptance group '{group}': use a, b or c.")
        if (not self.targets() or self.pairs_per_target < 1 or not self.strengths
                or any(not self.style_types_for(group) for group in self.groups)):
            raise SettingsError("The acceptance run needs at least one target, style type, pair and strength.")
        if self.seconds <= 0 or self.style_clips < 1:
            raise SettingsError("Clips must be longer than 0 s, and a style needs at least one clip.")
        for kind in (*self.style_types, *self.in_distribution_style_types):
            if kind not in STYLE_TYPES:
                raise SettingsError(f"Unknown style type '{kind}': use {' or '.join(STYLE_TYPES)}.")
        for name in (*self.in_distribution, *self.held_out, *self.contents):
            instrument(name)  # an unknown name fails here, before anything is rendered
        for name in self.recordings:
            if name not in HELD_OUT_RECORDINGS:
                raise SettingsError(f"Unknown recording family '{name}'. Known: {', '.join(HELD_OUT_RECORDINGS)}.")
        return self

    def style_types_for(self, group: str) -> tuple[str, ...]:
        """The style types measured in a group."""
        return self.in_distribution_style_types if group == "a" else self.style_types

    def targets(self) -> list["Target"]:
        """Every (group, target, style type) to learn and measure."""
        chosen = []
        for group, names in (("a", self.in_distribution), ("b", self.held_out), ("c", self.recordings)):
            if group in self.groups:
                chosen += [Target(group, name, kind) for name in names for kind in self.style_types_for(group)]
        return chosen


@dataclass(frozen=True)
class Target:
    group: str
    name: str  # an instrument's name, or a recording family
    style_type: str = "tve"

    @property
    def style(self) -> str:
        """The style's library name: 'tubular bells' -> 'tubular-bells'; adapter styles end in '-lora'."""
        base = self.name.replace(" ", "-")
        return base if self.style_type == "tve" else f"{base}-{self.style_type}"

    @property
    def has_ground_truth(self) -> bool:
        return self.group != "c"


def style_name(instrument_name: str) -> str:
    """The style learned from an instrument: 'tubular bells' -> 'tubular-bells'."""
    return instrument_name.replace(" ", "-")


# -- clips ------------------------------------------------------------------------------------------------------
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


def recording_style_clips(family: str, folder: Path, count: int, seconds: float, rate: int) -> Path:
    """``count`` clips cut from a held-out Sonic Pi family's samples played one after another."""
    paths = [folder / f"{family}-{k + 1}.wav" for k in range(count)]
    if all(p.is_file() for p in paths):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    length = int(seconds * rate)
    audio = sequence(held_out_recordings(family), rate, min_seconds=count * seconds)
    for k, path in enumerate(paths):
        with atomic_path(path) as tmp:
            sf.write(str(tmp), audio[k * length : (k + 1) * length], rate, subtype="FLOAT")
    return folder


def style_clips_for(target: Target, folder: Path, settings: AcceptanceSettings, rate: int) -> Path:
    """The clips a target's style is learned from (the same for every style type)."""
    clips = folder / style_name(target.name)
    if target.group == "c":
        return recording_style_clips(target.name, clips, settings.style_clips, settings.seconds, rate)
    return render_style_clips(target.name, clips, settings.style_clips, settings.seconds, rate, settings.seed)


@dataclass(frozen=True)
class Pair:
    target: str
    content_instrument: str
    content_effect: str  # "dry", "reverb" or "chorus"
    content: Path  # held-out melody, instrument A
    target_audio: Path | None  # the same melody, instrument B (None: no ground truth)
    unrelated: Path  # another held-out melody, instrument A


def render_pairs(target: Target, folder: Path, settings: AcceptanceSettings, rate: int) -> list[Pair]:
    """Held-out melodies for one target, each as content, target (where there is one) and unrelated melody."""
    pairs = []
    contents = [c for c in settings.contents if c != target.name]
    for i in range(settings.pairs_per_target):
        rng = random.Random(f"heldout-{settings.seed}-{target.name}-{i}")
        notes, other = melody(rng, settings.seconds), melody(rng, settings.seconds)
        content_name = contents[i % len(contents)]
        effect = ("dry", "reverb", "dry", "chorus")[i % 4] if target.group == "a" else "dry"
        stem = folder / f"{style_name(target.name)}-{i + 1:02d}"
        files = {"content": (notes, content_name, effect), "unrelated": (other, content_name, effect)}
        if target.has_ground_truth:
            files["target"] = (notes, target.name, "dry")
        paths = {}
        for role, (melody_notes, name, fx) in files.items():
            paths[role] = Path(f"{stem}-{role}.wav")
            if not paths[role].is_file():
                render_notes(melody_notes, instrument(name), paths[role], rate, settings.seconds)
                if fx != "dry":
                    _add_effect(paths[role], fx, random.Random(f"{stem.name}-{role}-{fx}"))
        pairs.append(Pair(target.name, content_name, effect, paths["content"], paths.get("target"),
                          paths["unrelated"]))
    return pairs


def _add_effect(path: Path, effect: str, rng: random.Random) -> None:
    audio, rate = sf.read(str(path), dtype="float32")
    with atomic_path(path) as tmp:
        sf.write(str(tmp), apply_effects(audio, rate, (effect,), rng), rate, subtype="FLOAT")


# -- measures ---------------------------------------------------------------------------------------------------
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


class Judges:
    """The measures' models, loaded once: the model's own mel converter, the transcriber and the embedder."""

    def __init__(self, converter: SpectrogramConverter):
        from ..embedders import SoundEffectsEmbedder
        from ..transcription import Transcriber

        self.converter = converter
        self.transcriber = Transcriber()
        self.embedder = SoundEffectsEmbedder()

    def features(self, audio: np.ndarray) -> "Features":
        rate = self.converter.format.sample_rate
        embedding = self.embedder.embed_audio([mono_at_rate(audio, rate, self.embedder.sample_rate)])[0]
        return Features(log_mel_db(audio, self.converter), chroma(audio, rate),
                        self.transcriber.notes(audio, rate), embedding)

    def style_embedding(self, folder: Path) -> np.ndarray:
        """The unit mean of the style clips' embeddings."""
        clips = [mono_at(read_audio(p), self.embedder.sample_rate) for p in sorted(folder.glob("*.wav"))]
        mean = self.embedder.embed_audio(clips).mean(axis=0)
        return mean / np.linalg.norm(mean)


def mono_at_rate(audio: np.ndarray, rate: int, to_rate: int) -> np.ndarray:
    from ..audio import resample

    return resample(audio[None], rate, to_rate)[0]


@dataclass
class Features:
    """What the measures compare, computed once per clip."""

    db: torch.Tensor
    chroma: np.ndarray
    notes: object
    embedding: np.ndarray = field(repr=False)

    def compare(self, other: "Features", prefix: str) -> dict:
        from ..transcription import note_f1

        return {f"chroma_{prefix}": correlation(self.chroma, other.chroma),
                f"f1_{prefix}": note_f1(other.notes, self.notes)}


@torch.no_grad()
def codec_round_trip(engine: Engine, audio: np.ndarray, seed: int = 0, vae: bool = True,
                     converter: SpectrogramConverter | None = None, phase: str | None = None) -> np.ndarray:
    """A model-rate clip through the codec alone, as stylizing rebuilds it but with no diffusion:
    image -> (VAE encode -> decode) -> mel inverse -> the input's phase, or Griffin-Lim's.

    ``converter`` replaces the engine's own spectrogram converter (e.g. another mel inversion); ``phase`` its
    phase source ("input" or "griffin-lim"; None: the engine's)."""
    fmt = engine.base.spectrogram
    converter = converter or engine.converter
    source = check_phase_source(phase or engine.settings.phase)
    overlap = int(round(engine.settings.overlap_seconds * fmt.sample_rate))
    windows = torch.from_numpy(split(audio.astype(np.float32), fmt.window_samples, overlap))
    images, maxima, input_phase = converter.audio_to_image_and_phase(windows)
    if vae:
        with engine.base.autocast():
            images = engine.decode(engine.encode(images)).float()
    rebuilt = converter.image_to_audio(images, maxima, torch.Generator().manual_seed(seed),
                                       input_phase if source == "input" else None)
    return join(rebuilt.cpu().numpy(), len(audio), overlap)


# -- the run ----------------------------------------------------------------------------------------------------
def learn_styles(engine: Engine, out: Path, settings: AcceptanceSettings, train: TrainSettings | None = None,
                 progress: ProgressCallback | None = None, only_missing: bool = True) -> None:
    """Learn every target's style (of each style type) that the library lacks, or all of them given ``train``."""
    rate = engine.base.spectrogram.sample_rate
    for target in settings.targets():
        if only_missing and train is None and target.style in engine.library:
            continue
        clips = style_clips_for(target, out / "style-clips", settings, rate)
        engine.train(target.style, [clips], train_settings(train or TrainSettings(), target.style_type),
                     overwrite=True, progress=progress)


def train_settings(base: TrainSettings, style_type: str) -> TrainSettings:
    """The trainer's settings for a style type (the adapter it learns, if any)."""
    from ..adapters import parse_adapter

    return replace(base, adapter=parse_adapter(STYLE_TYPES[style_type] or "none"))


def run_acceptance(
    engine: Engine, out: Path, settings: AcceptanceSettings = AcceptanceSettings(),
    train: TrainSettings | None = None, progress: ProgressCallback | None = None,
) -> dict:
    """Measure every pair at every strength; learn missing styles first (or all of them, given ``train``)."""
    settings.validate()
    learn_styles(engine, out, settings, train, progress)
    rate = engine.base.spectrogram.sample_rate
    judges = Judges(engine.converter)
    rows, codec_rows = [], []
    for target in settings.targets():
        clips = style_clips_for(target, out / "style-clips", settings, rate)
        style_embedding = judges.style_embedding(clips)
        scale = settings.scale if settings.scale is not None else \
            engine.recommended_settings(engine.style_mix(target.style)).scale
        for pair in render_pairs(target, out / "pairs", settings, rate):
            content_audio = _mono(pair.content, rate)
            content, unrelated = judges.features(content_audio), judges.features(_mono(pair.unrelated, rate))
            codec_audio = codec_round_trip(engine, content_audio, settings.seed)
            codec = judges.features(codec_audio)
            goal = judges.features(_mono(pair.target_audio, rate)) if pair.target_audio else None
            if target.style_type == settings.style_types_for(target.group)[0]:  # the codec once per pair
                codec_rows.append(_codec_row(engine, judges, target, pair, content_audio, content, codec))
            base = {"group": target.group, "target": target.name, "style_type": target.style_type,
                    "content_instrument": pair.content_instrument, "content_effect": pair.content_effect,
                    "pair": pair.content.stem, "scale": scale,
                    "similarity_content": float(content.embedding @ style_embedding),
                    "similarity_round_trip": float(codec.embedding @ style_embedding),
                    **{k + "_round_trip": v for k, v in codec.compare(content, "vs_content").items()},
                    **{k: v for k, v in content.compare(unrelated, "content_vs_unrelated").items()}}
            if goal is not None:
                base |= {"distance_content_to_target": db_distance(content.db, goal.db),
                         "distance_round_trip_to_target": db_distance(codec.db, goal.db),
                         "similarity_target": float(goal.embedding @ style_embedding),
                         **goal.compare(content, "target_vs_content")}
            for strength in settings.strengths:
                sampler = SamplerSettings(strength=strength, scale=scale, steps=settings.steps, seed=settings.seed,
                                          sampler=settings.sampler)
                stylized = judges.features(_stylize(engine, pair.content, target.style, sampler, out, progress))
                row = {**base, "strength": strength, **stylized.compare(content, "vs_content"),
                       **stylized.compare(unrelated, "vs_unrelated"),
                       "similarity_stylized": float(stylized.embedding @ style_embedding)}
                row["similarity_gain"] = row["similarity_stylized"] - row["similarity_content"]
                if goal is not None:
                    after = db_distance(stylized.db, goal.db)
                    row |= {"distance_stylized_to_target": after,
                            "reduction_db": row["distance_content_to_target"] - after,
                            "reduction_vs_round_trip_db": row["distance_round_trip_to_target"] - after}
                rows.append(row)
    results = {"settings": asdict(settings), "model": engine.base.model_id, "phase": engine.settings.phase,
               "fingerprint": engine.base.fingerprint, "rows": rows, "codec": codec_rows,
               "summary": summarize(rows), "codec_summary": summarize_codec(codec_rows)}
    write_json(out / "acceptance.json", results)
    with atomic_path(out / "acceptance.md") as tmp:
        tmp.write_text(markdown(results))
    return results


def _codec_row(engine: Engine, judges: Judges, target: Target, pair: Pair, audio: np.ndarray,
               content: "Features", codec: "Features") -> dict:
    """What the codec loses on one content clip: with the VAE, and from the image alone (no VAE)."""
    image_only = judges.features(codec_round_trip(engine, audio, vae=False))
    return {"group": target.group, "pair": pair.content.stem, "content_effect": pair.content_effect,
            "codec_distance_db": db_distance(codec.db, content.db),
            "codec_f1": codec.compare(content, "vs_content")["f1_vs_content"],
            "image_only_distance_db": db_distance(image_only.db, content.db),
            "image_only_f1": image_only.compare(content, "vs_content")["f1_vs_content"]}


def _mono(path: Path, rate: int) -> np.ndarray:
    return mono_at(read_audio(path), rate)


def _stylize(engine: Engine, content: Path, style: str, sampler: SamplerSettings, out: Path,
             progress: ProgressCallback | None) -> np.ndarray:
    """Stylize into ``out/stylized`` (named by content, style, scale and strength); return the model-rate audio."""
    path = out / "stylized" / f"{content.stem}_{style}_scale{sampler.scale:g}_s{sampler.strength:g}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        engine.stylize(content, style, sampler, path, progress=progress)
    return _mono(path, engine.base.spectrogram.sample_rate)


def _stats(values: list[float]) -> dict:
    data = np.asarray(values, dtype=np.float64)
    return {"mean": float(data.mean()), "std": float(data.std()), "min": float(data.min()), "max": float(data.max()),
            "n": int(data.size)}


MEASURES = ("distance_content_to_target", "distance_round_trip_to_target", "distance_stylized_to_target",
            "reduction_db", "reduction_vs_round_trip_db", "chroma_vs_content", "chroma_vs_unrelated",
            "chroma_target_vs_content", "f1_vs_content", "f1_vs_unrelated", "f1_vs_content_round_trip",
            "f1_target_vs_content", "similarity_content", "similarity_round_trip", "similarity_stylized",
            "similarity_target", "similarity_gain")


def summarize(rows: list[dict]) -> list[dict]:
    """Per group, style type and strength, over all targets and per target: mean, spread and range of each measure."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        for target in ("all", row["target"]):
            groups.setdefault((row["group"], row["style_type"], row["strength"], target), []).append(row)
    summary = []
    for (group, kind, strength, target), members in sorted(
            groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], kv[0][3] != "all", kv[0][3])):
        stats = {m: _stats([r[m] for r in members]) for m in MEASURES if m in members[0]}
        summary.append({"group": group, "style_type": kind, "strength": strength, "target": target,
                        "n": len(members), **stats})
    return summary


def summarize_codec(rows: list[dict]) -> dict:
    """The codec's losses over every content clip measured (mean and spread)."""
    keys = ("codec_distance_db", "codec_f1", "image_only_distance_db", "image_only_f1")
    return {k: _stats([r[k] for r in rows]) for k in keys} if rows else {}


def _cell(row: dict, measure: str) -> str:
    stats = row.get(measure)
    return f"{stats['mean']:.2f} ± {stats['std']:.2f}" if stats else "-"


COLUMNS = (
    ("log-mel dist. to target (dB): content", "distance_content_to_target"),
    ("codec", "distance_round_trip_to_target"), ("stylized", "distance_stylized_to_target"),
    ("reduction (dB)", "reduction_db"), ("chroma r vs content", "chroma_vs_content"),
    ("vs unrelated", "chroma_vs_unrelated"), ("note F1 vs content", "f1_vs_content"),
    ("codec", "f1_vs_content_round_trip"), ("vs unrelated", "f1_vs_unrelated"),
    ("style sim.: content", "similarity_content"), ("codec", "similarity_round_trip"),
    ("stylized", "similarity_stylized"), ("target", "similarity_target"), ("gain", "similarity_gain"),
)


def markdown(results: dict) -> str:
    """The summary as Markdown tables: mean ± standard deviation over pairs, and the codec's losses."""
    lines = ["| group | style | strength | target | n | " + " | ".join(c for c, _ in COLUMNS) + " |",
             "|" + "---|" * (5 + len(COLUMNS))]
    for row in results["summary"]:
        cells = [row["group"], row["style_type"], f"{row['strength']:g}", row["target"], str(row["n"])]
        lines.append("| " + " | ".join(cells + [_cell(row, m) for _, m in COLUMNS]) + " |")
    codec = results.get("codec_summary") or {}
    phase = PHASE_LABELS[results.get("phase", "griffin-lim")]  # runs before the input's phase had Griffin-Lim's
    if codec:
        lines += ["", "| codec round trip vs content | log-mel distance (dB) | note F1 |", "|---|---|---|",
                  f"| image -> VAE -> audio ({phase}) | {_cell(codec, 'codec_distance_db')} | "
                  f"{_cell(codec, 'codec_f1')} |",
                  f"| image -> audio, no VAE ({phase}) | {_cell(codec, 'image_only_distance_db')} | "
                  f"{_cell(codec, 'image_only_f1')} |"]
    return "\n".join(lines) + "\n"


def read_results(out: Path) -> dict:
    return json.loads((out / "acceptance.json").read_text())
