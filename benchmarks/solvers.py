"""Which sampler setting sounds like DDIM-50 for less time? Quality and wall time in the same run, on the mini model.

The acceptance protocol's pairs and measures (engine/mini/acceptance.py, group a: the shipped styles, held-out
melodies, seed 0): log-mel reduction towards the rendered target (dB) and chroma correlation with the content. Every
setting (solver x steps) stylizes the same pairs at the same strengths and seed as DDIM at 50 steps; each row is
the per-pair paired difference against DDIM-50 (mean, standard deviation, 95 % t interval). The noise floor is DDIM-50
against itself with another seed: what changing nothing but the noise does to the same pair. Wall time is per
stylization (5 s clip, end to end, the mel inverse and phase included), interleaved per pair so background load hits every setting
alike; ratios are against DDIM-50 in the same run.

    nice -n 5 .venv/bin/python benchmarks/solvers.py --pairs 3 --threads 1 --out solvers-run

``--clip-timing MODEL`` instead times a 5.11 s chord (one window) end to end at the default setting and at DDIM-50,
interleaved, on ``mini`` or ``random-riffusion`` (Riffusion's architecture, random weights, a random style).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]

from restyle.engine.audio import Clip  # noqa: E402
from restyle.engine.engine import Engine  # noqa: E402
from restyle.engine.machine import cpu_name  # noqa: E402
from restyle.engine.mini.acceptance import (  # noqa: E402
    AcceptanceSettings,
    _mono,
    chroma,
    correlation,
    db_distance,
    log_mel_db,
    render_pairs,
)
from restyle.engine.sampler import SamplerSettings  # noqa: E402

BASELINE = ("ddim", 50)
NOISE = "ddim:50 seed+1"  # the noise floor's label


def parse_settings(text: str) -> list[tuple[str, int]]:
    """'ddim:50,dpm++2m:10' -> [('ddim', 50), ('dpm++2m', 10)]; the baseline is always first."""
    chosen = [BASELINE]
    for item in text.split(","):
        name, steps = item.strip().rsplit(":", 1)
        if (name, int(steps)) != BASELINE:
            chosen.append((name, int(steps)))
    return chosen


def interval(values: list[float]) -> dict:
    """Mean, standard deviation and 95 % t interval of the mean."""
    from scipy.stats import t

    n = len(values)
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if n > 1 else 0.0
    half = float(t.ppf(0.975, n - 1)) * std / math.sqrt(n) if n > 1 else math.inf
    return {"mean": mean, "std": std, "ci95": [mean - half, mean + half], "n": n}


def measure(engine: Engine, args: argparse.Namespace) -> list[dict]:
    """One row per (pair, strength, setting): the measures and the wall time of the stylization."""
    accept = AcceptanceSettings(groups=("a",), pairs_per_target=args.pairs, seed=0,
                                in_distribution=tuple(args.targets.split(",")))
    rate = engine.base.spectrogram.sample_rate
    settings = parse_settings(args.settings)
    rows = []
    for target in accept.targets():
        mix = engine.style_mix(target.style)
        recommended = engine.recommended_settings(mix)
        for pair in render_pairs(target, Path(args.out) / "pairs", accept, rate):
            content_audio, goal_audio = _mono(pair.content, rate), _mono(pair.target_audio, rate)
            content_db, goal_db = log_mel_db(content_audio, engine.converter), log_mel_db(goal_audio, engine.converter)
            content_chroma, start_distance = chroma(content_audio, rate), db_distance(content_db, goal_db)
            for strength in args.strengths:
                runs = [(f"{n}:{s}", SamplerSettings(strength=strength, scale=recommended.scale, steps=s, seed=0,
                                                      sampler=n)) for n, s in settings]
                runs.append((NOISE, SamplerSettings(strength=strength, scale=recommended.scale, steps=50, seed=1)))
                for label, sampler in runs:
                    began = time.perf_counter()
                    audio = engine.stylize_samples(Clip(content_audio[None], rate), mix, sampler)[0]
                    seconds = time.perf_counter() - began
                    db = log_mel_db(audio, engine.converter)
                    rows.append({"target": target.name, "pair": pair.content.stem, "strength": strength,
                                 "setting": label, "unet_batches": sampler.unet_batches, "seconds": seconds,
                                 "reduction_db": start_distance - db_distance(db, goal_db),
                                 "chroma_vs_content": correlation(chroma(audio, rate), content_chroma)})
                    print(f"{pair.content.stem} s{strength:g} {label:16s} {seconds:6.2f} s "
                          f"red {rows[-1]['reduction_db']:+.2f} dB chroma {rows[-1]['chroma_vs_content']:.3f}",
                          flush=True)
    return rows


def compare(rows: list[dict]) -> list[dict]:
    """Per strength and setting: paired differences against DDIM-50 and time ratios."""
    base = {(r["pair"], r["strength"]): r for r in rows if r["setting"] == "ddim:50"}
    table = []
    for strength in sorted({r["strength"] for r in rows}):
        labels = list(dict.fromkeys(r["setting"] for r in rows if r["strength"] == strength))
        base_seconds = statistics.fmean(b["seconds"] for k, b in base.items() if k[1] == strength)
        for label in labels:
            members = [r for r in rows if r["strength"] == strength and r["setting"] == label]
            entry = {"strength": strength, "setting": label, "unet_batches": members[0]["unet_batches"],
                     "seconds": statistics.fmean(r["seconds"] for r in members)}
            entry["time_ratio"] = entry["seconds"] / base_seconds
            for measure in ("reduction_db", "chroma_vs_content"):
                entry[measure] = statistics.fmean(r[measure] for r in members)
                entry[f"{measure}_diff"] = interval([r[measure] - base[(r["pair"], strength)][measure]
                                                     for r in members])
            table.append(entry)
    return table


def verdict(table: list[dict]) -> list[dict]:
    """Mark settings within the noise: at every strength, each measure's 95 % interval of the paired difference
    lies inside +-(the seed noise floor's standard deviation of the same difference)."""
    floors = {(e["strength"], m): e[f"{m}_diff"]["std"] for e in table if e["setting"] == NOISE
              for m in ("reduction_db", "chroma_vs_content")}
    for entry in table:
        entry["within_noise"] = all(
            -floors[(entry["strength"], m)] <= entry[f"{m}_diff"]["ci95"][0]
            and entry[f"{m}_diff"]["ci95"][1] <= floors[(entry["strength"], m)]
            for m in ("reduction_db", "chroma_vs_content"))
    return table


def markdown(table: list[dict]) -> str:
    lines = ["| strength | setting | UNet batches | s / stylization | time vs DDIM-50 | reduction (dB) | "
             "diff vs DDIM-50 (mean ± std, 95 % CI) | chroma r | diff vs DDIM-50 | within noise |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for e in table:
        cells = [f"{e['strength']:g}", e["setting"], str(e["unet_batches"]), f"{e['seconds']:.2f}",
                 f"{e['time_ratio']:.2f}x", f"{e['reduction_db']:.2f}", _diff(e["reduction_db_diff"]),
                 f"{e['chroma_vs_content']:.3f}", _diff(e["chroma_vs_content_diff"], 3),
                 "yes" if e["within_noise"] else "no"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _diff(stats: dict, digits: int = 2) -> str:
    low, high = stats["ci95"]
    return f"{stats['mean']:+.{digits}f} ± {stats['std']:.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def clip_timing(model: str, strengths: list[float], reps: int, dtype: str, device: str = "cpu") -> dict:
    """Seconds per 5 s stylization (median of ``reps``), default setting vs DDIM-50, interleaved."""
    import tempfile

    from restyle.engine.style import Style, StyleInfo, StyleMix, TimeVaryingEmbedding

    sys.path.insert(0, str(REPO / "tests"))
    from signals import chord

    engine = Engine.load(model, device=device, dtype=dtype, styles_dir=tempfile.mkdtemp())
    base = engine.base
    if model == "mini":
        mix = engine.style_mix("accordion")
    else:
        info = StyleInfo(name="bench", base_model=base.model_id, base_fingerprint=base.fingerprint,
                         embed_dim=base.embed_dim)
        module = TimeVaryingEmbedding(base.embed_dim, torch.zeros(base.embed_dim)).to(base.device).eval()
        mix = StyleMix(((Style(info, module), 1.0),))
    fmt = base.spectrogram
    clip = Clip(chord([220.0, 277.2, 329.6], fmt.window_samples / fmt.sample_rate, fmt.sample_rate)[None],
                fmt.sample_rate)
    engine.stylize_samples(clip, mix, SamplerSettings(strength=0.5, steps=2))  # warm-up
    default = SamplerSettings()
    results = []
    for strength in strengths:
        runs = {"default": replace(default, strength=strength),
                "ddim:50": SamplerSettings(strength=strength, steps=50, sampler="ddim")}
        seconds: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(reps):
            for label, settings in runs.items():
                began = time.perf_counter()
                engine.stylize_samples(clip, mix, settings)
                seconds[label].append(time.perf_counter() - began)
        entry = {"strength": strength, "default": f"{default.sampler}:{default.steps}",
                 **{f"{k}_s": statistics.median(v) for k, v in seconds.items()}, "all_s": seconds}
        entry["speed_up"] = entry["ddim:50_s"] / entry["default_s"]
        print(json.dumps({k: v for k, v in entry.items() if k != "all_s"}), flush=True)
        results.append(entry)
    gpu = torch.cuda.get_device_name(base.device) if base.device.type == "cuda" else None
    return {"machine": cpu_name(), "gpu": gpu, "device": str(base.device), "dtype": str(base.dtype),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "model": base.describe(),
            "results": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=8, help="held-out melodies per target (default 8)")
    parser.add_argument("--targets", default="accordion,tubular bells,bird tweet", help="group (a) targets")
    parser.add_argument("--strengths", default="0.5,0.7", type=lambda s: [float(x) for x in s.split(",")])
    parser.add_argument("--settings", default="ddim:25,dpm++2m:8,dpm++2m:10,dpm++2m:15,dpm++2m:20,dpm++2m:25,"
                                              "unipc:8,unipc:10,unipc:15,unipc:20,unipc:25",
                        help="solver:steps, comma-separated (DDIM-50 always runs)")
    parser.add_argument("--dtype", default="auto", help="as `restyle mini acceptance` (default auto)")
    parser.add_argument("--clip-timing", choices=["mini", "random-riffusion"],
                        help="time one 5 s clip, default setting vs DDIM-50, instead of the quality comparison")
    parser.add_argument("--reps", type=int, default=3, help="--clip-timing repetitions (default 3)")
    parser.add_argument("--device", default="cpu", help="--clip-timing device: cpu or cuda (default cpu)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own choice)")
    parser.add_argument("--out", default="solvers-run", help="folder for the rendered pairs and results")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clip_timing:
        record = clip_timing(args.clip_timing, args.strengths, args.reps, args.dtype, args.device)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / f"clip-timing-{args.clip_timing}.json").write_text(json.dumps(record, indent=1) + "\n")
        return 0
    engine = Engine.load("mini", device="cpu", dtype=args.dtype)
    warm = SamplerSettings(strength=0.5, steps=4)
    engine.stylize_samples(Clip(np.zeros((1, engine.base.spectrogram.window_samples), np.float32),
                                engine.base.spectrogram.sample_rate), engine.style_mix("accordion"), warm)
    rows = measure(engine, args)
    table = verdict(compare(rows))
    record = {"machine": cpu_name(), "torch_threads": torch.get_num_threads(),
              "model": engine.base.describe(), "args": {k: v for k, v in vars(args).items()},
              "rows": rows, "table": table}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "solvers.json").write_text(json.dumps(record, indent=1) + "\n")
    print(markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
