"""What every area's commands share: the parser, common options, progress bars, notes, each error as one line.

Light on purpose (no torch, no diffusers at import): the DAW client commands (``restyle send``, ``status``) use it
too, so anything heavy is imported inside the function that needs it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator

from restyle import __version__
from restyle.engine.errors import RestyleError
from restyle.engine.progress import Progress

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class PlainProgress:
    """Progress as whole lines, for a stderr that is no terminal (a DAW's or a service's log): no carriage returns.

    A line at the start of each stage, then every ``percent_step`` % or ``seconds`` s (whichever comes first), and
    one at the end.
    """

    def __init__(self, label: str, stream=None, percent_step: float = 10.0, seconds: float = 5.0):
        self.label = label
        self.stream = stream
        self.percent_step = percent_step
        self.seconds = seconds
        self.stage = None
        self._last_percent = -1.0
        self._last_time = 0.0

    def __call__(self, progress: Progress) -> None:
        percent = 100.0 * progress.done / progress.total if progress.total else 100.0
        now = time.monotonic()
        new_stage = progress.stage != self.stage
        due = percent - self._last_percent >= self.percent_step or now - self._last_time >= self.seconds
        if new_stage or due or (progress.done >= progress.total and self._last_percent < 100.0):
            self.stage = progress.stage
            self._last_percent, self._last_time = percent, now
            loss = f", loss {progress.loss:.4f}" if progress.loss is not None else ""
            print(f"{self.label} ({progress.stage}): {progress.done}/{progress.total} steps, {percent:.0f} %{loss}",
                  file=self.stream or sys.stderr, flush=True)

    def close(self) -> None:
        """Nothing to tidy: every line is already complete."""


class ProgressBar:
    """A tqdm bar on stderr fed by the engine's progress callback (a new bar for each stage); plain lines instead
    when stderr is not a terminal."""

    def __init__(self, label: str):
        self.label = label
        self.bar = None
        self.stage = None
        self.plain = None if _is_terminal(sys.stderr) else PlainProgress(label)

    def __call__(self, progress: Progress) -> None:
        if self.plain is not None:
            self.plain(progress)
            return
        from tqdm import tqdm

        if self.bar is None or progress.stage != self.stage:
            self.close()
            self.stage = progress.stage
            self.bar = tqdm(total=progress.total, desc=f"{self.label} ({progress.stage})", unit="step",
                            file=sys.stderr, dynamic_ncols=True, initial=progress.done - 1)
        self.bar.update(progress.done - self.bar.n)
        if progress.loss is not None:
            self.bar.set_postfix(loss=f"{progress.loss:.4f}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def new_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The ``restyle`` parser with no commands yet."""
    parser = argparse.ArgumentParser(prog="restyle", description="Learn a sound's style from a few clips, then "
                                     "re-render any clip in that style.")
    parser.add_argument("--version", action="version", version=f"restyle {__version__}")
    return parser, parser.add_subparsers(dest="command", required=True, metavar="COMMAND")


def add_model_options(parser: argparse.ArgumentParser, model_default: str | None,
                      default_help: str = "the style’s own base model", rebuilds_audio: bool = True) -> None:
    """--model, --device, --dtype, --max-seconds: which base model runs where; and --phase, how audio is rebuilt,
    for commands that rebuild audio."""
    from restyle.engine.base_model import DEFAULT_MODEL, TINY
    from restyle.engine.mini import MINI
    from restyle.engine.spectrogram import PHASE_SOURCES

    group = parser.add_argument_group("model")
    group.add_argument("--model", default=model_default,
                       help=f"base model: '{MINI}' (shipped, small, offline), a hub id such as {DEFAULT_MODEL}, a "
                            f"local diffusers folder, or '{TINY}' (random weights, noise, for smoke runs). "
                            f"Default: {model_default or default_help}")
    group.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:1, mps (default: auto)")
    group.add_argument("--dtype", default="auto", help="auto (fp16 on GPU, bf16 on CPUs with AMX), fp32, bf16, fp16 "
                                                        "(default: auto)")
    group.add_argument("--max-seconds", type=float, default=600.0, help="refuse audio longer than this many seconds (default: 600)")
    if not rebuilds_audio:
        return
    group.add_argument("--phase", default="input", choices=PHASE_SOURCES,
                       help="phase of the rebuilt audio: the input's own, so the result stays in phase with the "
                            "input (default), or griffin-lim, Riffusion's estimate from a random start")


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    """--backend and --onnx: where the UNet and VAE run."""
    parser.add_argument("--backend", default="torch", choices=["torch", "onnx", "auto"],
                        help="where the UNet and VAE run: torch, onnx (needs `restyle export-onnx` once), or auto (default: torch)")
    parser.add_argument("--onnx", metavar="FOLDER", help="an ONNX export elsewhere than the engine's cache (default: the cache)")


def add_library_option(parser: argparse.ArgumentParser) -> None:
    """--styles-dir: which style library."""
    parser.add_argument("--styles-dir", default=None,
                        help="style library folder (default: $RESTYLE_HOME/styles or the user data folder)")


def load_engine(args: argparse.Namespace, model: str):
    """The engine the model options describe, loaded once."""
    from restyle.engine.audio import AudioLimits
    from restyle.engine.engine import Engine, EngineSettings

    settings = EngineSettings(limits=AudioLimits(max_seconds=args.max_seconds), phase=getattr(args, "phase", "input"))
    engine = Engine.load(model, args.device, args.dtype, args.styles_dir, settings,
                         getattr(args, "backend", "torch"), getattr(args, "onnx", None))
    note(f"base model: {engine.base.describe()}; backend: {engine.backend.detail or engine.backend.name}")
    return engine


@contextlib.contextmanager
def stop_requests() -> Iterator[threading.Event]:
    """An event set by the first Ctrl-C or SIGTERM (a second one interrupts at once), for work that stops cleanly."""
    stop = threading.Event()

    def request_stop(signum, _frame) -> None:
        stop.set()
        signal.signal(signum, previous[signum])

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def note(message: str) -> None:
    """One line for the user on stderr."""
    print(message, file=sys.stderr)


def _quiet_libraries() -> None:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    logging.getLogger("diffusers").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)


def run(parser: argparse.ArgumentParser, commands: dict, argv: list[str] | None = None) -> int:
    """Parse, run the command, and turn every RestyleError into one line on stderr and exit status 1."""
    args = parser.parse_args(argv)
    _quiet_libraries()
    try:
        return commands[args.command](args)
    except RestyleError as exc:
        print(f"restyle: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("restyle: interrupted; no half-written file was left.", file=sys.stderr)
        return EXIT_INTERRUPTED
