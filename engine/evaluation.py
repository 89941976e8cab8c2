"""Scoring style transfer the way the published table does: CP, SF against audio, SF against text.

Pairs come from a folder of stylized files named ``<content>_<style>.wav`` (matched to content files by name,
never by listing order) or from a CSV manifest (columns ``content``, ``stylized``, optional ``style``, ``scale``,
``strength``). Embeddings are cached by file content hash, so a re-run only embeds what is new.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_path, write_json
from .audio import mono_at, probe, read_audio
from .embedders import Embedder
from .errors import AudioError, SettingsError
from .metrics import bootstrap_interval, content_preservation, pareto_front, style_fit
from .progress import Progress, ProgressCallback
from .training import AUDIO_SUFFIXES


@dataclass
class Pair:
    content: Path
    stylized: Path
    style: str = ""
    scale: float | None = None
    strength: float | None = None


@dataclass
class Score:
    pair: Pair
    cp: float
    sf_audio: float
    sf_text: float


@dataclass
class Report:
    scores: list[Score] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)


def audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)


def pairs_by_name(stylized_dir: Path, content_dir: Path) -> list[Pair]:
    """``<content>_<style>.ext`` in ``stylized_dir`` pairs with ``<content>.*`` in ``content_dir`` (longest stem wins)."""
    contents = {p.stem: p for p in audio_files(content_dir)}
    pairs = []
    for path in audio_files(stylized_dir):
        stems = [s for s in contents if path.stem.startswith(s + "_")]
        if stems:
            stem = max(stems, key=len)
            pairs.append(Pair(contents[stem], path, path.stem[len(stem) + 1:]))
    if not pairs:
        raise SettingsError(f"No file in {stylized_dir} is named <content>_<style> after a file in {content_dir}.")
    return pairs


def pairs_from_manifest(manifest: Path) -> list[Pair]:
    try:
        with open(manifest, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise SettingsError(f"Cannot read manifest {manifest}: {exc}") from None
    if not rows or not {"content", "stylized"} <= set(rows[0]):
        raise SettingsError(f"Manifest {manifest} needs the columns content and stylized.")
    base = manifest.parent

    def number(value):
        return float(value) if value not in (None, "") else None

    return [Pair(base / r["content"], base / r["stylized"], r.get("style", ""), number(r.get("scale")),
                 number(r.get("strength"))) for r in rows]


class EmbeddingCache:
    """Embeddings by (embedder, file content hash), kept in a JSON file next to the results."""

    def __init__(self, path: Path, embedder: Embedder):
        self.path, self.embedder = path, embedder
        self.data: dict[str, list[float]] = json.loads(path.read_text()) if path.is_file() else {}

    def key(self, file: Path) -> str:
        probe(file)  # a folder, pipe or device is refused before its bytes are read
        return f"{self.embedder.name}:{hashlib.sha256(file.read_bytes()).hexdigest()}"

    def audio(self, files: list[Path]) -> list[np.ndarray]:
        keys = [self.key(f) for f in files]
        missing = [(k, f) for k, f in zip(keys, files) if k not in self.data]
        if missing:
            clips = [mono_at(read_audio(f), self.embedder.sample_rate) for _, f in missing]
            for (k, _), row in zip(missing, self.embedder.embed_audio(clips)):
                self.data[k] = row.tolist()
            write_json(self.path, self.data)
        return [np.asarray(self.data[k]) for k in keys]


def score_pairs(pairs: list[Pair], embedder: Embedder, style_clips: list[Path], prompt: str,
                cache: EmbeddingCache, progress: ProgressCallback | None = None) -> Report:
    """Score every readable pair; unreadable or missing files are reported and skipped, the rest still scored."""
    style = np.stack(cache.audio(style_clips))
    text = embedder.embed_text([prompt])[0]
    report = Report()
    for done, pair in enumerate(pairs, 1):
        if progress is not None:
            progress(Progress("evaluate", done, len(pairs)))
        try:
            content, stylized = cache.audio([pair.content, pair.stylized])
        except (AudioError, OSError) as exc:
            report.skipped.append((pair.stylized.name, str(exc)))
            continue
        report.scores.append(Score(pair, content_preservation(content, stylized), style_fit(stylized, style),
                                   style_fit(stylized, text)))
    return report


def summarize(report: Report) -> list[dict]:
    """One row per (style, scale, strength): means with 95 % bootstrap intervals, n, and the Pareto front."""
    groups: dict[tuple, list[Score]] = {}
    for s in report.scores:
        groups.setdefault((s.pair.style, s.pair.scale, s.pair.strength), []).append(s)
    rows = []
    for (style, scale, strength), scores in groups.items():
        row = {"style": style, "scale": scale, "strength": strength, "n": len(scores)}
        for metric in ("cp", "sf_audio", "sf_text"):
            mean, low, high = bootstrap_interval([getattr(s, metric) for s in scores])
            row.update({metric: mean, f"{metric}_low": low, f"{metric}_high": high})
        rows.append(row)
    front = set(pareto_front([(r["cp"], r["sf_audio"]) for r in rows]))
    for i, row in enumerate(rows):
        row["pareto"] = i in front
    return rows


def balanced(rows: list[dict]) -> dict | None:
    """The Pareto setting with the best harmonic mean of CP and SF (audio): neither is given up for the other."""
    front = [r for r in rows if r["pareto"] and r["scale"] is not None]
    if not front:
        return None
    return max(front, key=lambda r: 2 * r["cp"] * r["sf_audio"] / max(1e-12, r["cp"] + r["sf_audio"]))


def write_reports(report: Report, rows: list[dict], out: Path, embedder_name: str) -> dict[str, Path]:
    """results.md (the published table's shape), results.csv (per file), results.json (everything)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "results.md", "csv": out / "results.csv", "json": out / "results.json"}
    lines = [f"Scores by {embedder_name}; mean [95 % bootstrap interval]; * = on the CP/SF Pareto front.", "",
             "| style | scale | strength | CP | SF (audio) | SF (text) | n |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [f"{r[m]:.3f} [{r[m + '_low']:.3f}, {r[m + '_high']:.3f}]" for m in ("cp", "sf_audio", "sf_text")]
        mark = " *" if r["pareto"] else ""
        lines.append(f"| {r['style']}{mark} | {_show(r['scale'])} | {_show(r['strength'])} | "
                     + " | ".join(cells) + f" | {r['n']} |")
    for name, why in report.skipped:
        lines.append(f"\nSkipped {name}: {why}")
    with atomic_path(paths["markdown"]) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with atomic_path(paths["csv"]) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["content", "stylized", "style", "scale", "strength", "cp", "sf_audio", "sf_text"])
        for s in report.scores:
            p = s.pair
            writer.writerow([p.content.name, p.stylized.name, p.style, _show(p.scale), _show(p.strength),
                             f"{s.cp:.6f}", f"{s.sf_audio:.6f}", f"{s.sf_text:.6f}"])
    write_json(paths["json"], {
        "embedder": embedder_name, "summary": rows, "skipped": [{"file": n, "why": w} for n, w in report.skipped],
        "scores": [{**{k: str(v) if isinstance(v, os.PathLike) else v for k, v in asdict(s.pair).items()},
                    "cp": s.cp, "sf_audio": s.sf_audio, "sf_text": s.sf_text} for s in report.scores],
    })
    return paths


def _show(value) -> str:
    return "" if value is None else f"{value:g}"


def parse_grid(text: str | None, what: str) -> list[float | None]:
    if not text:
        return [None]
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise SettingsError(f"--{what} takes numbers separated by commas, e.g. 3,4.5,6.") from None



def stylize_grid(engine, contents: list[Path], style: str, scales: list, strengths: list, steps: int, seed: int,
                 out: Path, progress=None) -> list[Pair]:
    """``--run``: stylize every content file at every (scale, strength) into ``out``; returns the pairs."""
    from .sampler import SamplerSettings

    recommended = engine.recommended_settings(engine.style_mix(style))
    pairs = []
    for scale in scales:
        for strength in strengths:
            settings = SamplerSettings(strength=recommended.strength if strength is None else strength,
                                       scale=recommended.scale if scale is None else scale, steps=steps, seed=seed)
            folder = out / f"scale{settings.scale:g}_strength{settings.strength:g}"
            for content in contents:
                target = folder / f"{content.stem}_{style}.wav"
                if not target.is_file():  # resumable: finished files are kept
                    engine.stylize(content, style, settings, target, progress=progress)
                pairs.append(Pair(content, target, style, settings.scale, settings.strength))
    return pairs
