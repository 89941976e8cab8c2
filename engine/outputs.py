"""Where results go: output paths checked before any work, fresh names never reused, no file replaced unasked.

The rule at every edge (CLI, OSC, library): an output path the user names must not exist yet (``overwrite`` opts
in on the CLI); a name the engine picks is fresh: ``NAME.wav``, else ``NAME-2.wav``, ``NAME-3.wav``...
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import OutputExistsError, SettingsError

OUTPUT_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")


def fresh_path(path: Path, taken: Callable[[Path], bool] = lambda _path: False) -> Path:
    """``path``, or ``name-2.wav``, ``name-3.wav``...: the first that neither exists nor is ``taken``."""
    candidate, n = path, 2
    while candidate.exists() or taken(candidate):
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


def check_output(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse at once an output that could not be written: wrong type, a folder, an existing file, no access."""
    path = Path(path)
    if path.is_dir():
        raise SettingsError(f"Output {path} is a folder; give a file name such as {path / 'result.wav'}.")
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise SettingsError(f"Cannot write {path.name}: use a .wav, .flac, .ogg or .aiff file name.")
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"{path} already exists and is never replaced; choose another name (the CLI's --overwrite replaces it)."
        )
    if path.exists() and not path.is_file():
        raise SettingsError(f"Output {path} is not a regular file; choose another name.")
    _check_writable(path.parent)
    return path


def _check_writable(folder: Path) -> None:
    """Create and delete a probe file in ``folder`` (or the nearest folder above it that exists)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".restyle-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise SettingsError(f"Cannot write into {folder} ({exc.strerror}); choose another output folder.") from None
