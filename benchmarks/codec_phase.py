"""Where does the codec's loss come from, and what does the mel inversion buy?

Each content clip of an acceptance run (model rate, one 5 s window) is rebuilt several ways with no diffusion,
and measured as `restyle mini acceptance` measures the codec (log-mel distance to the content, note F1 against the
content by basic-pitch). The baseline, measured in the same run, is the clamped pseudo-inverse that the engine used
before (`mel_inversion_iters=0`, Riffusion's own inverse); "NNLS" is the format's default (non-negative least
squares updates, `SpectrogramConverter.mel_to_magnitude`):

    VAE + GL             the codec with Griffin-Lim: image -> VAE -> mel -> magnitude -> Griffin-Lim
    VAE + input phase    the codec of stylizing (the default since 2026-11-28): the VAE's magnitudes with the clip's
                         own STFT phase, no Griffin-Lim
    VAE + GL from input phase x8 / x32
                         Griffin-Lim (8 or 32 iterations) started from the clip's own phase instead of at random
    GL alone             image -> mel -> magnitude -> Griffin-Lim (32 iterations, random start)
    GL zero start        the same from a zero phase
    true phase           the image's magnitude with the clip's own STFT phase (no VAE, no Griffin-Lim)
    STFT + GL            the clip's own linear magnitude (no image, no mel inversion) -> Griffin-Lim
    STFT + true phase    the clip's own STFT inverted (the floor of the measure itself)
    VAE + GL (FOLDER)    with --also-model FOLDER: the codec with that model's VAE instead (e.g. another decoder)

    .venv/bin/python benchmarks/codec_phase.py --model mini --pairs mini-acceptance/pairs --out result.json

`--timing` instead times one window's mel -> audio in mini's and Riffusion's formats on this machine's CPU: the
clamped pseudo-inverse + Griffin-Lim (the baseline of the ratios), NNLS + Griffin-Lim, and NNLS + the input's
phase (the default).
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
from restyle.engine.windows import join, split


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
        "VAE + GL": torch.from_numpy(codec_round_trip(engine, audio, seed, converter=converter, phase="griffin-lim")),
        "VAE + input phase": torch.from_numpy(codec_round_trip(engine, audio, seed, converter=converter,
                                                                phase="input")),
        **{f"VAE + GL from input phase x{iters}": torch.from_numpy(
            vae_then_griffin_lim_from_input_phase(engine, converter, audio, iters)) for iters in (8, 32)},
        "GL alone": converter.griffin_lim(magnitude, length, start()),
        "GL zero start": converter.griffin_lim(magnitude, length, initial_phase=torch.zeros_like(magnitude)),
        "true phase": converter._istft(torch.polar(magnitude, torch.angle(spectrum)), length),
        "STFT + GL": converter.griffin_lim(spectrum.abs(), length, start()),
        "STFT + true phase": converter._istft(spectrum, length),
        **{f"VAE + GL ({name})": torch.from_numpy(codec_round_trip(other, audio, seed, converter=converter,
                                                                    phase="griffin-lim"))
           for name, other in (others or {}).items()},
    }
    return {way: clip.reshape(-1).cpu().numpy()[:length] for way, clip in out.items()}


@torch.no_grad()
def vae_then_griffin_lim_from_input_phase(engine: Engine, converter: SpectrogramConverter, audio: np.ndarray,
                                          iters: int) -> np.ndarray:
    """The codec as `codec_round_trip` cuts and joins it, with Griffin-Lim (``iters``) started from the input's phase."""
    fmt = engine.base.spectrogram
    overlap = int(round(engine.settings.overlap_seconds * fmt.sample_rate))
    windows = torch.from_numpy(split(audio.astype(np.float32), fmt.window_samples, overlap))
    images, maxima, phase = converter.audio_to_image_and_phase(windows)
    with engine.base.autocast():
        decoded = engine.decode(engine.encode(images)).float()
    magnitude = converter.mel_to_magnitude(converter.image_to_mel(decoded, maxima))
    griffin_lim = SpectrogramConverter(replace(converter.format, griffin_lim_iters=iters))
    rebuilt = griffin_lim.griffin_lim(magnitude, windows.shape[-1], initial_phase=phase)
    return join(rebuilt.cpu().numpy(), len(audio), overlap)


def time_inversions(repeats: int = 3) -> list[dict]:
    """Seconds for one window's mel -> audio in each format (best of N): the clamped pseudo-inverse and Griffin-Lim
    (the baseline), with the NNLS updates, and with the NNLS updates and the input's phase (the default)."""
    from restyle.engine.mini.architecture import MINI_SPECTROGRAM
    from restyle.engine.spectrogram import SpectrogramFormat

    def best(converter: SpectrogramConverter, mel: torch.Tensor, phase: torch.Tensor | None) -> float:
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            converter.mel_to_audio(mel, torch.Generator().manual_seed(0), phase)
            times.append(time.perf_counter() - began)
        return min(times)

    rows = []
    for name, fmt in (("mini", MINI_SPECTROGRAM), ("riffusion", SpectrogramFormat())):
        mel = torch.rand(fmt.n_mels, fmt.width, generator=torch.Generator().manual_seed(0))
        phase = 6.28 * torch.rand(fmt.n_fft // 2 + 1, fmt.width, generator=torch.Generator().manual_seed(1))
        nnls = SpectrogramConverter(fmt)
        baseline = best(SpectrogramConverter(replace(fmt, mel_inversion_iters=0)), mel, None)
        row = {"format": name, "baseline_s": baseline, "nnls_s": best(nnls, mel, None),
               "nnls_input_phase_s": best(nnls, mel, phase), "threads": torch.get_num_threads()}
        row |= {"ratio": row["nnls_s"] / baseline, "input_phase_ratio": row["nnls_input_phase_s"] / baseline}
        rows.append(row)
        print(f"{name:10s} mel -> audio: pseudo-inverse + GL {baseline:.3f} s, NNLS x{fmt.mel_inversion_iters} + GL "
              f"{row['nnls_s']:.3f} s ({row['ratio']:.2f}x), NNLS + input phase {row['nnls_input_phase_s']:.3f} s "
              f"({row['input_phase_ratio']:.2f}x)", flush=True)
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
            print(f"{inversion:26s} {way:20s} log-mel {line['log_mel_db']['mean']:.2f} ± "
                  f"{line['log_mel_db']['std']:.2f} dB   note F1 {line['note_f1']['mean']:.2f} ± "
                  f"{line['note_f1']['std']:.2f}", flush=True)
    if args.out:
        record = {"model": engine.base.describe(), "clips": len(contents), "summary": summary, "rows": rows}
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
