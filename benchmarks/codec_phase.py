"""Where does the codec's loss come from, and what does the mel inversion buy?

Each content clip of an acceptance run (model rate, one 5 s window) is rebuilt several ways with no diffusion,
and measured as `restyle mini acceptance` measures the codec (log-mel distance to the content, note F1 against the
content by basic-pitch). The baseline, measured in the same run, is the clamped pseudo-inverse that the engine used
before (`mel_inversion_iters=0`, Riffusion's own inverse); "NNLS" is the format's default (non-negative least
squares updates, `SpectrogramConverter.mel_to_magnitude`):

    VAE + GL             the codec of `restyle mini acceptance`: image -> VAE -> mel -> magnitude -> Griffin-Lim
    GL alone             image -> mel -> magnitude -> Griffin-Lim (32 iterations, random start)
    GL zero start        the same from a zero phase
    true phase           the image's magnitude with the clip's own STFT phase (a perfect phase: no Griffin-Lim)
    STFT + GL            the clip's own linear magnitude (no image, no mel inversion) -> Griffin-Lim
    STFT + true phase    the clip's own STFT inverted (the floor of the measure itself)
    VAE + GL (FOLDER)    with --also-model FOLDER: the codec with that model's VAE instead (e.g. another decoder)

    .venv/bin/python benchmarks/codec_phase.py --model mini --pairs mini-acceptance/pairs --out result.json

`--timing` instead times one window's mel -> audio (inverse and Griffin-Lim) in mini's and Riffusion's formats,
with the NNLS updates and without (the baseline of the ratio), on this machine's CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from restyle.engine.audio import mono_at, read_audio
from restyle.engine.engine import Engine
from restyle.engine.mini.acceptance import codec_round_trip, log_mel_distance
from restyle.engine.spectrogram import SpectrogramConverter
from restyle.engine.transcription import Transcriber, note_f1


@torch.no_grad()
def rebuild(engine: Engine, converter: SpectrogramConverter, audio: np.ndarray, seed: int = 0,
            others: dict[str, Engine] | None = None) -> dict[str, np.ndarray]:
    """The clip rebuilt each way with ``converter``'s mel inversion (one window: the clip fits the model's);
    ``others`` adds the codec of each of those engines, by name."""
    signal = torch.from_numpy(audio.astype(np.float32))
    length = len(signal)
    spectrum = converter._stft(signal)
    image, peak = converter.audio_to_image(signal)
    magnitude = converter.mel_to_magnitude(converter.image_to_mel(image, peak))[..., : spectrum.shape[-1]]
    start = lambda: torch.Generator().manual_seed(seed)  # noqa: E731: the same random start for each way
    out = {
        "VAE + GL": torch.from_numpy(codec_round_trip(engine, audio, seed, converter=converter)),
        "GL alone": converter.griffin_lim(magnitude, length, start()),
        "GL zero start": converter.griffin_lim(magnitude, length, initial_phase=torch.zeros_like(magnitude)),
        "true phase": converter._istft(torch.polar(magnitude, torch.angle(spectrum)), length),
        "STFT + GL": converter.griffin_lim(spectrum.abs(), length, start()),
        "STFT + true phase": converter._istft(spectrum, length),
        **{f"VAE + GL ({name})": torch.from_numpy(codec_round_trip(other, audio, seed, converter=converter))
           for name, other in (others or {}).items()},
    }
    return {way: clip.reshape(-1).cpu().numpy()[:length] for way, clip in out.items()}


def time_inversions(repeats: int = 3) -> list[dict]:
    """Seconds for one window's mel -> audio in each format, with and without the NNLS updates (best of N)."""
    from restyle.engine.mini.architecture import MINI_SPECTROGRAM
    from restyle.engine.spectrogram import SpectrogramFormat

    rows = []
    for name, fmt in (("mini", MINI_SPECTROGRAM), ("riffusion", SpectrogramFormat())):
        mel = torch.rand(fmt.n_mels, fmt.width, generator=torch.Generator().manual_seed(0))
        seconds = {}
        for iters in (0, fmt.mel_inversion_iters):
            converter = SpectrogramConverter(replace(fmt, mel_inversion_iters=iters))
            times = []
            for _ in range(repeats):
                began = time.perf_counter()
                converter.mel_to_audio(mel, torch.Generator().manual_seed(0))
                times.append(time.perf_counter() - began)
            seconds[iters] = min(times)
        row = {"format": name, "baseline_s": seconds[0], "nnls_s": seconds[fmt.mel_inversion_iters],
               "ratio": seconds[fmt.mel_inversion_iters] / seconds[0], "threads": torch.get_num_threads()}
        rows.append(row)
        print(f"{name:10s} mel -> audio: pseudo-inverse {row['baseline_s']:.3f} s, NNLS x{fmt.mel_inversion_iters} "
              f"{row['nnls_s']:.3f} s ({row['ratio']:.2f}x)", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mini", help="base model (default mini)")
    parser.add_argument("--pairs", default="mini-acceptance/pairs", help="an acceptance run's pairs folder")
    parser.add_argument("--out", help="write the per-clip rows and the summary as JSON here")
    parser.add_argument("--also-model", action="append", default=[], metavar="FOLDER",
                        help="also measure the codec with this model's VAE (repeatable; same spectrogram format)")
    parser.add_argument("--timing", action="store_true", help="time the mel inversion instead (no pairs needed)")
    args = parser.parse_args(argv)
    if args.timing:
        rows = time_inversions()
        if args.out:
            Path(args.out).write_text(json.dumps({"timing": rows}, indent=2) + "\n")
        return 0
    engine = Engine.load(args.model, device="cpu", styles_dir=tempfile.mkdtemp())
    fmt, rate = engine.base.spectrogram, engine.base.spectrogram.sample_rate
    others = {name: Engine.load(name, device="cpu", styles_dir=tempfile.mkdtemp()) for name in args.also_model}
    if any(other.base.spectrogram != fmt for other in others.values()):
        sys.exit("--also-model needs models of the same spectrogram format as --model.")
    inversions = {"pseudo-inverse (baseline)": SpectrogramConverter(replace(fmt, mel_inversion_iters=0)),
                  f"NNLS x{fmt.mel_inversion_iters}": SpectrogramConverter(fmt)}
    transcriber = Transcriber()
    contents = sorted(Path(args.pairs).glob("*-content.wav"))
    if not contents:
        sys.exit(f"No *-content.wav in {args.pairs}: run `restyle mini acceptance` first.")
    rows = []
    for path in contents:
        audio = mono_at(read_audio(path), rate)[: fmt.window_samples]
        reference = transcriber.notes(audio, rate)
        for inversion, converter in inversions.items():
            for way, clip in rebuild(engine, converter, audio, others=others).items():
                rows.append({"clip": path.name, "inversion": inversion, "way": way,
                             "log_mel_db": log_mel_distance(clip, audio, converter),
                             "note_f1": note_f1(reference, transcriber.notes(clip, rate))})
    summary = []
    for inversion in inversions:
        for way in dict.fromkeys(r["way"] for r in rows):
            mine = [r for r in rows if r["inversion"] == inversion and r["way"] == way]
            if way.startswith("STFT") and inversion != next(iter(inversions)):
                continue  # no mel inversion in these: measured once
            line = {"inversion": inversion, "way": way, "clips": len(mine)}
            for measure in ("log_mel_db", "note_f1"):
                values = [r[measure] for r in mine]
                line[measure] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
            summary.append(line)
            print(f"{inversion:26s} {way:18s} log-mel {line['log_mel_db']['mean']:.2f} ± "
                  f"{line['log_mel_db']['std']:.2f} dB   note F1 {line['note_f1']['mean']:.2f} ± "
                  f"{line['note_f1']['std']:.2f}", flush=True)
    if args.out:
        record = {"model": engine.base.describe(), "clips": len(contents), "summary": summary, "rows": rows}
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
