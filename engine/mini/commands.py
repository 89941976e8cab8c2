"""``restyle mini train | decoder | styles | acceptance``: rebuild and measure the shipped mini model.

Each is one reproducible command (fixed seeds, settings recorded next to the results). They need FluidSynth
and the General MIDI soundfont (``apt install fluidsynth fluid-soundfont-gm``) and ``pip install restyle[mini]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from restyle.options import ProgressBar, add_library_option, add_model_options, load_engine

from ..training import TrainSettings
from .decoder import DecoderSettings
from . import MINI, MODEL_DIR, STYLES_DIR

DEFAULT_WORK = "mini-training"


def add_commands(commands: argparse._SubParsersAction) -> dict:
    """``restyle mini ...``, added to the ``restyle`` parser; returns its handler."""

    mini = commands.add_parser("mini", help="train the shipped mini model, its styles, and measure them")
    actions = mini.add_subparsers(dest="action", required=True, metavar="ACTION")

    train = actions.add_parser("train", help="render the training audio and train the mini model (resumable)")
    train.add_argument("--work", default=DEFAULT_WORK, help=f"folder for the audio, latents and checkpoint (default {DEFAULT_WORK})")
    train.add_argument("--out", default=str(MODEL_DIR), help="where the model is written (default: the shipped one)")
    train.add_argument("--seed", type=int, help="default 0")
    train.add_argument("--device", default="auto", help="cuda, cpu or auto (default: a GPU if there is one)")
    train.add_argument("--vae-steps", type=int, help="VAE steps, or their ceiling with --vae-minutes (default 3000)")
    train.add_argument("--unet-steps", type=int, help="UNet steps, or their ceiling with --unet-minutes (default 6000)")
    train.add_argument("--unet-batch", type=int, help="UNet batch size (default 32)")
    train.add_argument("--vae-minutes", type=float, help="wall-clock budget of the VAE phase (default: none)")
    train.add_argument("--unet-minutes", type=float, help="wall-clock budget of the UNet phase (default: none)")
    train.add_argument("--seconds-per-program", type=float, help="dry audio per program and soundfont (default 30)")

    decoder = actions.add_parser("decoder", help="fine-tune the model's VAE decoder alone (styles stay valid; resumable)")
    decoder.add_argument("--work", default=DEFAULT_WORK, help=f"folder holding the packed corpus; the checkpoint goes there (default {DEFAULT_WORK})")
    decoder.add_argument("--model", default=str(MODEL_DIR), help="the mini model to start from (default: the shipped one)")
    decoder.add_argument("--out", required=True, help="where the model with the new decoder is written (may be --model)")
    decoder.add_argument("--steps", type=int, help=f"fine-tuning steps (default {DecoderSettings().steps})")
    decoder.add_argument("--styles", metavar="FOLDER",
                         help="also move the styles in FOLDER learned on --model to the new model (default: none)")
    decoder.add_argument("--device", default="auto", help="cuda, cpu or auto (default: a GPU if there is one)")

    styles = actions.add_parser("styles", help="learn the shipped styles on the mini model")
    styles.add_argument("--out", default=str(STYLES_DIR), help="style folder (default: the shipped one)")
    styles.add_argument("--steps", type=int, default=TrainSettings().steps,
                        help=f"training steps per style (default {TrainSettings().steps})")
    add_model_options(styles, MINI, rebuilds_audio=False)
    styles.set_defaults(styles_dir=None)

    acceptance = actions.add_parser("acceptance", help="measure styles against rendered ground truth (v2)")
    acceptance.add_argument("--out", default="mini-acceptance", help="folder for clips, audio and results (default mini-acceptance)")
    acceptance.add_argument("--groups", help="comma-separated groups a (in distribution), b (held-out programs), "
                                             "c (real recordings) (default: a,b,c)")
    acceptance.add_argument("--targets", help="comma-separated group (a) instruments (default: the shipped styles')")
    acceptance.add_argument("--held-out", help="comma-separated group (b) programs (default: bassoon,shamisen,bagpipe)")
    acceptance.add_argument("--recordings", help="comma-separated group (c) families (default: tabla,guitar,glass)")
    acceptance.add_argument("--style-types", help="style types measured in (b) and (c): tve,lora (default: both)")
    acceptance.add_argument("--in-distribution-style-types", metavar="TYPES",
                            help="style types measured in (a): tve,lora (default: tve, as the shipped styles)")
    acceptance.add_argument("--pairs", type=int, help="held-out melodies per target (default 8)")
    acceptance.add_argument("--strength", help="comma-separated strengths (default 0.3,0.5,0.7)")
    acceptance.add_argument("--scale", type=float, help="guidance scale for every style (default: each style's own)")
    acceptance.add_argument("--sampling-steps", type=int, default=50, help="sampler steps (default 50)")
    acceptance.add_argument("--sampler", default="ddim", help="diffusion solver (default ddim, the published "
                                                              "reference; see stylize --sampler)")
    acceptance.add_argument("--train-steps", type=int,
                            help="learn the target styles anew with this many steps (default: use the library's)")
    add_model_options(acceptance, MINI)
    add_library_option(acceptance)
    return {"mini": cmd_mini}


def cmd_mini(args: argparse.Namespace) -> int:

    action = {"train": _train, "decoder": _decoder, "styles": _styles, "acceptance": _acceptance}[args.action]
    bar = ProgressBar(f"mini {args.action}")
    try:
        return action(args, bar)
    finally:
        bar.close()


def _styles(args: argparse.Namespace, bar) -> int:
    from .shipped import render_demo_content, train_shipped_styles

    engine = load_engine(args, args.model)
    for folder in train_shipped_styles(engine, TrainSettings(steps=args.steps), Path(args.out), progress=bar):
        print(folder)
    if Path(args.out) == STYLES_DIR:
        print(render_demo_content(engine.base.spectrogram.sample_rate))
    return 0


def _acceptance(args: argparse.Namespace, bar) -> int:
    from .acceptance import markdown, run_acceptance

    settings = _acceptance_settings(args).validate()  # before the model loads: bad input fails at once
    train = TrainSettings(steps=args.train_steps).validate() if args.train_steps is not None else None
    engine = load_engine(args, args.model)
    results = run_acceptance(engine, Path(args.out), settings, train, progress=bar)
    print(markdown(results))
    return 0


def _acceptance_settings(args: argparse.Namespace):
    from dataclasses import replace

    from .acceptance import AcceptanceSettings

    settings = AcceptanceSettings(steps=args.sampling_steps, sampler=args.sampler, scale=args.scale)
    lists = {"groups": args.groups, "in_distribution": args.targets, "held_out": args.held_out,
             "recordings": args.recordings, "style_types": args.style_types,
             "in_distribution_style_types": args.in_distribution_style_types}
    for key, value in lists.items():
        if value is not None:
            settings = replace(settings, **{key: tuple(t.strip() for t in value.split(",") if t.strip())})
    if args.pairs is not None:
        settings = replace(settings, pairs_per_target=args.pairs)
    if args.strength is not None:
        from ..evaluation import parse_grid

        settings = replace(settings, strengths=tuple(parse_grid(args.strength, "strength")))
    return settings


def _decoder(args: argparse.Namespace, bar) -> int:
    from ..base_model import load_base_model
    from .decoder import DecoderTrainer, restamp_styles

    settings = DecoderSettings(**({"steps": args.steps} if args.steps is not None else {}))
    before = load_base_model(args.model, device="cpu", dtype="fp32") if args.styles else None  # --out may be --model
    record = DecoderTrainer(args.work, settings, device=args.device).run(args.model, args.out, progress=bar)
    restamped = []
    if before is not None:
        restamped = restamp_styles(args.styles, before, load_base_model(args.out, device="cpu", dtype="fp32"))
    print(json.dumps({"model": args.out, "seconds": round(record["seconds"], 1), "styles": restamped,
                      "validation_l1": [record["validation_l1_before"], record["validation_l1_after"]]}))
    return 0


def _train(args: argparse.Namespace, bar) -> int:
    from .train import MiniTrainer, MiniTrainSettings

    from dataclasses import replace

    given = {"seed": args.seed, "vae_steps": args.vae_steps, "unet_steps": args.unet_steps,
             "unet_batch": args.unet_batch,
             "vae_minutes": args.vae_minutes, "unet_minutes": args.unet_minutes}
    settings = MiniTrainSettings(**{k: v for k, v in given.items() if v is not None})
    if args.seconds_per_program is not None:
        settings = replace(settings, corpus=replace(settings.corpus, seconds_per_program=args.seconds_per_program))
    trainer = MiniTrainer(args.work, settings, device=args.device)
    out = trainer.run(args.out, progress=bar)
    print(json.dumps({"model": str(out), "seconds": trainer.log["seconds"]}))
    return 0
