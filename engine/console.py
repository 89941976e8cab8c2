"""What every ``restyle`` command prints through: progress bars, notes, and each error as one line.

Light on purpose (no torch, no diffusers): the DAW client commands (``restyle send``, ``status``) use it too.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings

from .errors import RestyleError
from .progress import Progress

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class ProgressBar:
    """A tqdm bar on stderr fed by the engine's progress callback; a new bar for each stage."""

    def __init__(self, label: str):
        self.label = label
        self.bar = None
        self.stage = None

    def __call__(self, progress: Progress) -> None:
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


def new_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The ``restyle`` parser with no commands yet."""
    parser = argparse.ArgumentParser(prog="restyle", description="Learn a sound's style from a few clips, then "
                                     "re-render any clip in that style.")
    return parser, parser.add_subparsers(dest="command", required=True, metavar="COMMAND")


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
