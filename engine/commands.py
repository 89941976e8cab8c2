"""The engine's commands: train, stylize, styles, evaluate, export-onnx, demo (gathered by restyle/cli.py).

Errors from the engine are caught once (restyle/options.py's ``run``) and printed as one line on stderr with a
non-zero exit.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from restyle.options import (EXIT_INTERRUPTED, ProgressBar, add_backend_options, add_library_option,
                             add_model_options, load_engine, note, stop_requests)

from .adapters import DEFAULT_LEARNING_RATE as ADAPTER_LR
from .adapters import parse_adapter
from .backends import backend_for_styles
from .base_model import DEFAULT_MODEL
from .errors import BaseModelMismatchError, CancelledError, DamagedStyleError
from .library import StyleLibrary
from .mini import BUNDLED_STYLES, DEMO_CONTENT, DEMO_STYLE
from .sampler import DEFAULT_SAMPLER, SAMPLERS, SamplerSettings
from .style import parse_style_mix
from .training import TrainSettings

# -- argument parsing ---------------------------------------------------------------------------------------------
def add_commands(commands: argparse._SubParsersAction) -> dict:
    """The engine's commands, added to the ``restyle`` parser; returns their handlers."""
    train = commands.add_parser("train", help="learn a new style from audio clips or a folder of them")
    train.add_argument("name", help="the style's name")
    train.add_argument("clips", nargs="+", help="audio files or folders")
    defaults = TrainSettings()
    train.add_argument("--steps", type=int, default=defaults.steps,
                       help=f"training steps (default {defaults.steps})")
    train.add_argument("--lr", type=float, default=defaults.learning_rate, help=f"AdamW learning rate (default {defaults.learning_rate:g})")
    train.add_argument("--batch-size", type=int, default=defaults.batch_size,
                       help=f"style images per step (default {defaults.batch_size})")
    train.add_argument("--seed", type=int, default=defaults.seed, help=f"random seed (default {defaults.seed})")
    train.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every, metavar="N",
                       help=f"save a checkpoint every N steps (default {defaults.checkpoint_every})...")
    train.add_argument("--checkpoint-seconds", type=float, default=defaults.checkpoint_seconds, metavar="S",
                       help="...and at least every S seconds (default: a minute)")
    train.add_argument("--init-word", default=defaults.init_word, help=f"word whose embedding the style starts from (default '{defaults.init_word}')")
    train.add_argument("--adapter", default="none", metavar="none|lora[:RANK]",
                       help="none (default): the method's embedding-only style; lora[:RANK] also learns a small LoRA "
                            "on the UNet's attention (rank 4 unless given), for sounds the base model never made")
    train.add_argument("--adapter-lr", type=float, default=ADAPTER_LR, help=f"AdamW learning rate of the LoRA (default {ADAPTER_LR:g})")
    train.add_argument("--preset", help="recommended scale/strength from presets/styles (default: the preset "
                                         "named like the style, else 5.0 / 0.7)")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace an existing style of that name")
    train.add_argument("--json", action="store_true", help="print the result as JSON")
    add_model_options(train, DEFAULT_MODEL, rebuilds_audio=False)
    add_library_option(train)

    stylize = commands.add_parser("stylize", help="re-render an audio file in a style")
    stylize.add_argument("input", help="audio file")
    stylize.add_argument("--style", required=True, help="a style name, or a blend such as bird:0.7,chime:0.3")
    stylize.add_argument("--strength", type=float,
                         help="above 0, up to 1: how far from the original (style's default)")
    stylize.add_argument("--scale", type=float, help="0..30: how strongly the style is pushed (style's default)")
    stylize.add_argument("--sampler", choices=SAMPLERS, default=DEFAULT_SAMPLER,
                         help=f"diffusion solver (default: {DEFAULT_SAMPLER}; docs/performance.md compares them)")
    stylize.add_argument("--steps", type=int, default=SamplerSettings().steps,
                         help=f"schedule length; strength x steps of them run (default: {SamplerSettings().steps})")
    stylize.add_argument("--seed", type=int, default=0, help="random seed: the same seed gives the same result (default 0)")
    stylize.add_argument("--no-brs", action="store_true", help="plain noise instead of bias-reduced stylization")
    stylize.add_argument("--stereo", action="store_true", help="stylize each channel (default: a mono mix)")
    stylize.add_argument("--start", type=float, help="region start in seconds")
    stylize.add_argument("--end", type=float, help="region end in seconds")
    stylize.add_argument("-o", "--output", help="output file (default: INPUT_STYLE.wav next to the input, or "
                                                "INPUT_STYLE-2.wav... if taken); an existing file is refused")
    stylize.add_argument("--overwrite", action="store_true", help="replace the -o file if it exists")
    stylize.add_argument("--json", action="store_true", help="print the result as JSON")
    stylize.add_argument("--compile", action="store_true",
                         help="torch.compile the UNet (torch backend; the first run compiles for minutes, then "
                              "cached; worth it on a GPU for many clips; default: off)")
    add_model_options(stylize, None)
    add_backend_options(stylize)
    add_library_option(stylize)

    styles = commands.add_parser("styles", help="list, show, remove, rename, export or import styles")
    actions = styles.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="all styles")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    show = actions.add_parser("show", help="one style's details")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="every field of style.json")
    remove = actions.add_parser("rm", help="delete a style")
    remove.add_argument("name")
    rename = actions.add_parser("rename", help="rename a style")
    rename.add_argument("old")
    rename.add_argument("new")
    export = actions.add_parser("export", help="write a style into one .restyle file to share")
    export.add_argument("name")
    export.add_argument("-o", "--output", help="the file to write (default: NAME.restyle in the current folder)")
    export.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    load = actions.add_parser("import", help="install a style from a .restyle file (checked against its base model)")
    load.add_argument("file", help="a .restyle file made by `restyle styles export`")
    load.add_argument("--name", help="install under this name (default: the style's own name)")
    load.add_argument("--force", action="store_true", help="replace a style of the same name (default: refuse)")
    load.add_argument("--model", help="the base model to check the style against (default: the one it was trained "
                                      "on, as recorded in the file; it must be on this machine)")
    for action in (listing, show, remove, rename, export, load):
        add_library_option(action)

    evaluate = commands.add_parser("evaluate", help="score stylized audio: CLAP content preservation and style fit")
    evaluate.add_argument("--content", required=True, help="folder of the original (content) clips")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--stylized", help="folder of stylized files named <content>_<style>.wav")
    source.add_argument("--manifest", help="CSV with columns content, stylized[, style, scale, strength]")
    source.add_argument("--run", action="store_true", help="stylize the content folder first (needs --style)")
    evaluate.add_argument("--style", help="a Restyle style: its training clips are the style reference")
    evaluate.add_argument("--style-clips", help="folder of style reference clips (any system's)")
    evaluate.add_argument("--prompt", help="text for SF (text) (default: the style's name)")
    evaluate.add_argument("--scale", help="with --run: one value or a grid, e.g. 3,4.5,6")
    evaluate.add_argument("--strength", help="with --run: one value or a grid, e.g. 0.3,0.45,0.6")
    evaluate.add_argument("--steps", type=int, default=50, help="with --run: sampler steps (default 50)")
    evaluate.add_argument("--seed", type=int, default=0, help="with --run: random seed (default 0)")
    evaluate.add_argument("--out", default="restyle-eval", help="folder for results (and --run's audio) (default restyle-eval)")
    evaluate.add_argument("--clap", default="laion/clap-htsat-unfused", help="CLAP hub id or folder ('tiny': tests) (default laion/clap-htsat-unfused)")
    evaluate.add_argument("--write-recommended", action="store_true",
                          help="store the balanced Pareto setting as the style's recommended scale/strength")
    add_model_options(evaluate, None)
    add_library_option(evaluate)

    export = commands.add_parser("export-onnx", help="export the base model's UNet and VAE to ONNX for --backend onnx")
    export.add_argument("--out", help="export folder (default: the engine's cache, where --backend onnx finds it)")
    export.add_argument("--precision", default="fp32", help="fp32, fp16 (GPUs) or int8 (CPUs) (default fp32)")
    export.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    add_model_options(export, DEFAULT_MODEL, rebuilds_audio=False)

    demo = commands.add_parser("demo", help="stylize a melody with a shipped style, offline; write audio and a PNG")
    demo.add_argument("--out", default="restyle-demo", help="folder for the content, the result and the picture (default restyle-demo)")
    demo.add_argument("--style", default=DEMO_STYLE,
                      help=f"style or blend (default {DEMO_STYLE}; shipped: {', '.join(BUNDLED_STYLES)})")
    demo.add_argument("--content", default=str(DEMO_CONTENT), help="audio file to stylize (default: a piano melody)")
    demo.add_argument("--strength", type=float,
                      help="above 0, up to 1: how far from the original (style's default)")
    demo.add_argument("--scale", type=float, help="0..30: how strongly the style is pushed (style's default)")
    demo.add_argument("--steps", type=int, default=SamplerSettings().steps,
                      help=f"sampler steps (default {SamplerSettings().steps})")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--style-clip", metavar="FILE",
                      help="a clip of the style for the picture's third panel (default: the example.flac the "
                           "style keeps, if any)")
    add_model_options(demo, None)
    add_library_option(demo)

    return COMMANDS


# -- commands -----------------------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    adapter = parse_adapter(args.adapter)
    if adapter is not None:
        adapter = replace(adapter, learning_rate=args.adapter_lr)
    settings = TrainSettings(steps=args.steps, learning_rate=args.lr, batch_size=args.batch_size, seed=args.seed,
                             checkpoint_every=args.checkpoint_every, checkpoint_seconds=args.checkpoint_seconds,
                             init_word=args.init_word, adapter=adapter).validate()
    check_train_inputs(args)  # a bad name or clip is reported before the model loads
    engine = load_engine(args, args.model)
    bar = ProgressBar(f"training {args.name}")
    try:
        with stop_requests() as stop:  # Ctrl-C or SIGTERM: a checkpoint at the next step, then exit
            style = engine.train(args.name, args.clips, settings, resume=args.resume, overwrite=args.overwrite,
                                 progress=bar, preset=args.preset, should_cancel=stop.is_set)
    except CancelledError as exc:
        bar.close()
        print(f"restyle: interrupted: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()
    folder = engine.library.folder(style.name)
    history = style.info.loss_history
    if args.json:
        print(json.dumps({"style": style.name, "folder": str(folder), "steps": len(history),
                          "final_loss": history[-1], "produces_noise": style.info.produces_noise}))
    else:
        print(f"Trained style '{style.name}' ({len(history)} steps, last loss {history[-1]:.4f}): {folder}")
    return 0


def cmd_stylize(args: argparse.Namespace) -> int:
    from .audio import AudioLimits, probe
    from .outputs import check_output

    probe(args.input, AudioLimits(max_seconds=args.max_seconds))  # the input and the output before the model loads
    if args.output:
        check_output(args.output, args.overwrite)
    _sampler_settings(args, SamplerSettings())  # out-of-range strength, scale, steps or seed: refused now
    known_base = _style_base_model(args)  # unknown styles too
    model = args.model or known_base
    if args.backend == "auto":
        args.backend = backend_for_styles(args.backend, _has_adapter(args))
    engine = load_engine(args, model)
    if args.compile:
        engine.compile_unet()
    mix = engine.style_mix(args.style)
    settings = _sampler_settings(args, engine.recommended_settings(mix))
    bar = ProgressBar(f"stylizing with {mix.label}")
    try:
        result = engine.stylize(args.input, args.style, settings, args.output, stereo=args.stereo,
                                start=args.start, end=args.end, progress=bar, overwrite=args.overwrite)
    finally:
        bar.close()
    if args.json:
        print(json.dumps({"output": str(result.path), "sample_rate": result.sample_rate, "channels": result.channels,
                          "seconds": round(result.seconds, 6), "style": result.style, "strength": settings.strength,
                          "scale": settings.scale, "steps": settings.steps, "seed": settings.seed,
                          "sampler": settings.sampler,
                          "produces_noise": engine.base.produces_noise}))
    else:
        print(result.path)
    return 0


def check_train_inputs(args: argparse.Namespace) -> None:
    """The style name and the clips (each one probed), checked before the model loads."""
    from .audio import AudioLimits, probe
    from .library import check_name
    from .training import collect_clips

    check_name(args.name)
    for clip in collect_clips(args.clips):
        probe(clip, AudioLimits(max_seconds=args.max_seconds))


def _sampler_settings(args: argparse.Namespace, recommended: SamplerSettings) -> SamplerSettings:
    """The command line's strength/scale where given, else the style's recommended ones."""
    return SamplerSettings(
        strength=recommended.strength if args.strength is None else args.strength,
        scale=recommended.scale if args.scale is None else args.scale,
        steps=args.steps, seed=args.seed, brs=not getattr(args, "no_brs", False),
        sampler=getattr(args, "sampler", DEFAULT_SAMPLER),
    )


def _style_base_model(args: argparse.Namespace) -> str:
    """The base model the named styles were trained on (they must agree)."""
    library = StyleLibrary(args.styles_dir)
    infos = [library.info(name) for name, _ in parse_style_mix(args.style)]
    if len({info.base_fingerprint for info in infos}) > 1:
        raise BaseModelMismatchError("The blended styles were trained on different base models; blend styles of one.")
    return infos[0].base_model


def _has_adapter(args: argparse.Namespace) -> bool:
    """Whether any style of ``--style`` carries a LoRA adapter."""
    library = StyleLibrary(args.styles_dir)
    return any(library.info(name).adapter is not None for name, _ in parse_style_mix(args.style))


def cmd_styles(args: argparse.Namespace) -> int:
    library = StyleLibrary(args.styles_dir)
    if args.action == "list":
        _list_styles(library, args.json)
    elif args.action == "show":
        info = library.info(args.name)
        data = info.to_dict()
        if args.json:
            print(json.dumps(data))
        else:
            print("\n".join(describe_style(info, library)))
    elif args.action == "rm":
        library.remove(args.name)
        print(f"Removed style '{args.name}'.")
    elif args.action == "rename":
        library.rename(args.old, args.new)
        print(f"Renamed style '{args.old}' to '{args.new}'.")
    elif args.action == "export":
        _export_style(library, args)
    elif args.action == "import":
        _import_style(library, args)
    return 0


def _export_style(library: StyleLibrary, args: argparse.Namespace) -> None:
    from .style_file import SUFFIX, export_style

    path = export_style(library, args.name, args.output or f"{args.name}{SUFFIX}", overwrite=args.overwrite)
    print(f"Exported style '{args.name}' to {path}")


def _import_style(library: StyleLibrary, args: argparse.Namespace) -> None:
    """Read the file first (a damaged one is refused before any model loads), then check it against the model."""
    from .base_model import load_base_model
    from .style_file import free_folder, import_style, read_style_file

    style_file = read_style_file(args.file)
    free_folder(library, style_file, args.name, args.force)  # a taken name is refused before the model loads
    model = args.model or style_file.info.base_model
    base = load_base_model(model, "cpu", "fp32")  # only the weights' fingerprint is needed
    folder = import_style(library, style_file, base.fingerprint, model, name=args.name, overwrite=args.force)
    print(f"Imported style '{folder.name}' (trained on {style_file.info.base_model}) into {folder}")


def describe_style(info, library: StyleLibrary) -> list[str]:
    """A style as lines a person reads: what it is, how to use it, how it was trained."""
    training = info.training or {}
    settings = training.get("settings", {})
    clips = [c.get("file") or Path(c.get("path", "?")).name for c in training.get("clips", [])]
    history = info.loss_history
    where = "shipped with Restyle" if library.is_shipped(info.name) else str(library.locate(info.name))
    lines = [
        f"Style '{info.name}' ({where})",
        f"  base model      {info.base_model} (fingerprint {info.base_fingerprint})"
        + ("  [random weights: output is noise]" if info.produces_noise else ""),
        f"  recommended     strength {info.recommended_strength:g}, scale {info.recommended_scale:g}",
        f"  adapter         {_adapter_spec(info)}",
        f"  trained         {len(history)} steps"
        + (f", final loss {history[-1]:.4f}" if history else "")
        + (f", learning rate {settings['learning_rate']:g}" if "learning_rate" in settings else "")
        + (f", from the word '{info.init_word}'" if getattr(info, "init_word", None) else ""),
    ]
    if clips:
        lines.append(f"  clips           {len(clips)}: {', '.join(clips)}")
    if "device" in training:
        lines.append(f"  on              {training['device']} ({training.get('dtype', '?')})")
    lines.append(f"  created         {info.created}")
    lines.append(f"Use it: restyle stylize CLIP.wav --style {info.name}   (all fields: restyle styles show "
                 f"{info.name} --json)")
    return lines


def _list_styles(library: StyleLibrary, as_json: bool) -> None:
    """Every style, one line each; a damaged one says what is wrong and how to remove it, the others still work."""
    infos, damaged = [], {}
    for name in library.names():
        try:
            infos.append(library.info(name))
        except DamagedStyleError as exc:
            damaged[name] = str(exc)
    if as_json:
        print(json.dumps([{**_summary(i), "shipped": library.is_shipped(i.name)} for i in infos]
                         + [{"name": name, "damaged": why} for name, why in damaged.items()]))
        return
    if not damaged and all(library.is_shipped(i.name) for i in infos):
        print(f"No styles of your own yet in {library.root}. Train one with: restyle train NAME CLIPS...")
    for info in infos:
        noise = "  (tiny model: noise)" if info.produces_noise else ""
        shipped = "  (shipped with Restyle)" if library.is_shipped(info.name) else ""
        print(f"{info.name:24s} scale {info.recommended_scale:<4} strength {info.recommended_strength:<5} "
              f"base {info.base_model}{noise}{shipped}")
    for name, why in damaged.items():
        print(f"{name:24s} DAMAGED: {why}")


def _summary(info) -> dict:
    return {"name": info.name, "base_model": info.base_model, "recommended_scale": info.recommended_scale,
            "recommended_strength": info.recommended_strength, "created": info.created,
            "produces_noise": info.produces_noise, "adapter": _adapter_spec(info)}


def _adapter_spec(info) -> str:
    """'none' or 'lora:RANK', as `restyle train --adapter` writes it."""
    return "none" if info.adapter is None else f"{info.adapter['type']}:{info.adapter['rank']}"


def cmd_demo(args: argparse.Namespace) -> int:
    from .audio import AudioLimits, probe
    from .demo import run_demo

    if args.style_clip:
        probe(args.style_clip, AudioLimits(max_seconds=args.max_seconds))  # before the model loads
    engine = load_engine(args, args.model or _style_base_model(args))
    settings = _sampler_settings(args, engine.recommended_settings(engine.style_mix(args.style)))
    bar = ProgressBar(f"stylizing with {args.style}")
    try:
        outputs = run_demo(engine, Path(args.out), args.style, Path(args.content), settings, progress=bar,
                           style_clip=Path(args.style_clip) if args.style_clip else None)
    finally:
        bar.close()
    for label, path in outputs.items():
        print(f"{label}: {path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from . import evaluation as ev
    from .atomic import write_json
    from .embedders import ClapEmbedder
    from .errors import SettingsError

    library = StyleLibrary(args.styles_dir)
    out, content_dir = Path(args.out), Path(args.content)
    if not content_dir.is_dir():
        raise SettingsError(f"Content folder not found: {content_dir}")
    info = library.info(args.style) if args.style else None
    if args.run:
        if info is None:
            raise SettingsError("--run needs --style NAME (the style to stylize with).")
        engine = load_engine(args, args.model or info.base_model)
        contents = ev.audio_files(content_dir)
        pairs = ev.stylize_grid(engine, contents, args.style, ev.parse_grid(args.scale, "scale"),
                                ev.parse_grid(args.strength, "strength"), args.steps, args.seed, out / "stylized",
                                progress=ProgressBar("stylizing"))
    elif args.manifest:
        pairs = ev.pairs_from_manifest(Path(args.manifest))
    else:
        pairs = ev.pairs_by_name(Path(args.stylized), content_dir)
    style_clips = _style_clips(args, info)
    embedder = ClapEmbedder.load(args.clap)
    out.mkdir(parents=True, exist_ok=True)
    cache = ev.EmbeddingCache(out / "embeddings-cache.json", embedder)
    bar = ProgressBar("scoring")
    try:
        report = ev.score_pairs(pairs, embedder, style_clips, args.prompt or (info.name if info else "music"), cache,
                                progress=bar)
    finally:
        bar.close()
    rows = ev.summarize(report)
    paths = ev.write_reports(report, rows, out, embedder.name)
    print(paths["markdown"].read_text())
    choice = ev.balanced(rows)
    if args.write_recommended and info is not None and choice is not None:
        info.recommended_scale, info.recommended_strength = choice["scale"], choice["strength"]
        write_json(library.writable_folder(info.name) / "style.json", info.to_dict())
        print(f"Style '{info.name}' now recommends scale {choice['scale']:g}, strength {choice['strength']:g}.")
    for name, why in report.skipped:
        note(f"skipped {name}: {why}")
    return 0


def _style_clips(args: argparse.Namespace, info) -> list[Path]:
    from .errors import SettingsError

    if args.style_clips:
        folder = Path(args.style_clips)
        clips = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
    elif info is not None:
        clips = [Path(c["path"]) for c in info.training.get("clips", []) if "path" in c]
        clips = [c for c in clips if c.is_file()]
    else:
        clips = []
    if not clips:
        raise SettingsError("No style reference clips: pass --style-clips FOLDER (the style's own training clips "
                            "were not found).")
    return clips


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from .base_model import load_base_model
    from .onnx_export import ExportSettings, export_onnx

    settings = ExportSettings(precision=args.precision, opset=args.opset).validate()
    base = load_base_model(args.model, args.device, "fp32")
    note(f"Exporting {base.describe()} to ONNX ({settings.precision}, opset {settings.opset})...")
    report = export_onnx(base, args.out, settings)
    for component, error in report.relative_errors.items():
        print(f"{component:12s} ONNX Runtime vs torch, max relative error {error:.2e}")
    print(report.folder)
    return 0


COMMANDS = {"train": cmd_train, "stylize": cmd_stylize, "styles": cmd_styles, "evaluate": cmd_evaluate,
            "export-onnx": cmd_export_onnx, "demo": cmd_demo}
