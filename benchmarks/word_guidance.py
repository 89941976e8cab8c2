"""Is it the base model or the learned style? Guide with a caption word the base model was trained on, not a style.

The prompt "*" gets, instead of a style's e(t), the base model's own input embedding of one caption word
(``accordion``) at every timestep; content clips of acceptance group (a) are stylized with it and the log-mel
reduction towards the rendered target is measured as `restyle mini acceptance` measures it. If a base model moves
clips towards the target under its own word but not under a style learned from clips of the same instrument, the
style learning is what fails, not the base model. Reads the pairs an acceptance run wrote:

    .venv/bin/python benchmarks/word_guidance.py --model mini --pairs mini-acceptance/pairs --word accordion
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from restyle.engine.audio import Clip, mono_at, read_audio
from restyle.engine.engine import Engine
from restyle.engine.mini.acceptance import log_mel_distance
from restyle.engine.sampler import SamplerSettings
from restyle.engine.style import Style, StyleInfo, StyleMix, TimeVaryingEmbedding


class WordEmbedding(TimeVaryingEmbedding):
    """e(t) = one fixed word embedding at every timestep."""

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        return self.init_embedding.expand(len(timesteps.reshape(-1)), -1)


def word_mix(engine: Engine, word: str) -> StyleMix:
    """A 'style' that is the base model's own embedding of ``word`` (one token)."""
    base = engine.base
    pieces = base.tokenizer.tokenize(word)
    if len(pieces) != 1:
        sys.exit(f"'{word}' is {len(pieces)} tokens for this model: pick a one-token caption word.")
    embedding = engine.conditioner.word_embedding(word)
    info = StyleInfo(name=word, base_model=base.model_id, base_fingerprint=base.fingerprint, embed_dim=base.embed_dim)
    return StyleMix(((Style(info, WordEmbedding(base.embed_dim, embedding).eval()), 1.0),))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mini", help="base model (default mini)")
    parser.add_argument("--pairs", default="mini-acceptance/pairs", help="an acceptance run's pairs folder")
    parser.add_argument("--word", default="accordion", help="caption word, also the target's file prefix")
    parser.add_argument("--count", type=int, default=4, help="pairs measured (default 4)")
    parser.add_argument("--scales", default="1,2,3.5", help="guidance scales (default 1,2,3.5)")
    parser.add_argument("--strength", type=float, default=0.7, help="strength (default 0.7)")
    args = parser.parse_args(argv)
    engine = Engine.load(args.model, device="cpu", styles_dir=tempfile.mkdtemp())
    mix, converter = word_mix(engine, args.word), engine.converter
    rate = engine.base.spectrogram.sample_rate
    prefix = args.word.replace(" ", "-")
    record = {"model": engine.base.describe(), "word": args.word, "strength": args.strength, "rows": []}
    for scale in (float(s) for s in args.scales.split(",")):
        reductions = []
        for k in range(1, args.count + 1):
            content = read_audio(Path(args.pairs) / f"{prefix}-{k:02d}-content.wav")
            target = mono_at(read_audio(Path(args.pairs) / f"{prefix}-{k:02d}-target.wav"), rate)
            settings = SamplerSettings(strength=args.strength, scale=scale, steps=50, sampler="ddim")
            stylized = Clip(engine.stylize_samples(content, mix, settings), content.sample_rate)
            stylized = mono_at(stylized, rate)
            before = log_mel_distance(mono_at(content, rate), target, converter)
            reductions.append(before - log_mel_distance(stylized, target, converter))
        row = {"scale": scale, "reduction_db": float(np.mean(reductions)), "per_pair": reductions}
        record["rows"].append(row)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
