"""Where ``restyle serve`` logs, and the one place logging is configured (the CLI edge; library modules only log).

The server keeps a rotating log file (requests, jobs with the traceback of any internal error, client
registrations) in the user log folder, ``$RESTYLE_HOME/logs`` when that is set, or the file ``--log-file`` names.
The console (stderr) shows warnings and errors unless ``-v`` (more) or ``-q`` (less) says otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import logging.handlers
import os
from dataclasses import dataclass
from pathlib import Path

LOGGER = "restyle"  # every module's logger (``logging.getLogger(__name__)``) is a child of this one
LOG_NAME = "serve.log"
MAX_BYTES = 1_000_000  # per file; with the backups at most about 5 MB of logs on disk
BACKUPS = 4
FILE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(threadName)s] %(message)s"
CONSOLE_FORMAT = "restyle: %(levelname)s: %(message)s"


@dataclass(frozen=True)
class LogSettings:
    """Where the log file goes and how much the console shows."""

    file: Path | None
    console_level: int = logging.WARNING


def default_log_dir() -> Path:
    """``$RESTYLE_HOME/logs`` when RESTYLE_HOME is set, else the user log folder (platformdirs)."""
    if os.environ.get("RESTYLE_HOME"):
        return Path(os.environ["RESTYLE_HOME"]).expanduser() / "logs"
    from platformdirs import user_log_dir

    return Path(user_log_dir("restyle", appauthor=False))


def add_log_options(parser: argparse.ArgumentParser) -> None:
    """--log-file, -v/--verbose, -q/--quiet."""
    group = parser.add_argument_group("logging")
    group.add_argument("--log-file", metavar="FILE",
                       help=f"rotating log of requests, jobs and errors (default: {LOG_NAME} in $RESTYLE_HOME/logs "
                            "or the user log folder, e.g. ~/.local/state/restyle/log on Linux)")
    group.add_argument("-v", "--verbose", action="count", default=0,
                       help="show more on the console: -v for each request and job, -vv for debug detail "
                            "(default: warnings and errors only)")
    group.add_argument("-q", "--quiet", action="store_true", help="show only errors on the console (default: off)")


def settings_from(args: argparse.Namespace) -> LogSettings:
    """The log settings the command line asked for."""
    if args.quiet:
        level = logging.ERROR
    else:
        level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    file = Path(args.log_file).expanduser() if args.log_file else default_log_dir() / LOG_NAME
    return LogSettings(file=file, console_level=level)


def configure(settings: LogSettings) -> list[logging.Handler]:
    """Attach the file and console handlers to the ``restyle`` logger; returns them (for :func:`unconfigure`)."""
    logger = logging.getLogger(LOGGER)
    handlers: list[logging.Handler] = []
    console = logging.StreamHandler()
    console.setLevel(settings.console_level)
    console.setFormatter(logging.Formatter(CONSOLE_FORMAT))
    handlers.append(console)
    if settings.file is not None:
        handlers.append(_file_handler(settings.file))
    for handler in handlers:
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if settings.console_level <= logging.DEBUG else logging.INFO)
    logger.propagate = False
    return handlers


@contextlib.contextmanager
def logging_for(args: argparse.Namespace):
    """Logging as the command line asked for, for the length of a command; yields the file (last) handler."""
    handlers = configure(settings_from(args))
    try:
        yield handlers[-1]
    finally:
        unconfigure(handlers)


def unconfigure(handlers: list[logging.Handler]) -> None:
    """Detach and close handlers that :func:`configure` attached; the logger goes back to its defaults."""
    logger = logging.getLogger(LOGGER)
    for handler in handlers:
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


def _file_handler(path: Path) -> logging.Handler:
    from restyle.engine.errors import SettingsError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                                       encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"Cannot write the log file {path} ({exc.strerror}); pass --log-file with a "
                            "writable path.") from None
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    return handler
