"""Which files a job may read and write: no path escapes, never the input overwritten, no surprise folders."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from engine import SettingsError

OUTPUT_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif"}


class PathRefusedError(SettingsError):
    code = "path_refused"


@dataclass(frozen=True)
class PathPolicy:
    """``allowed_dirs`` (if any) bound what jobs may read; writes go to the input's folder, ``output_dir``, or them."""

    allowed_dirs: tuple[Path, ...] = ()
    output_dir: Path | None = None

    def input(self, path: str) -> Path:
        raw = Path(path).expanduser()
        if not raw.is_absolute():
            raise PathRefusedError(f"Send an absolute path (the server does not know your folder): {path}")
        resolved = raw.resolve()
        if self.allowed_dirs and not any(_inside(resolved, d) for d in self.allowed_dirs):
            raise PathRefusedError(f"{resolved} is outside the folders this server may read; see --allow-dir.")
        return resolved

    def writable_dirs(self, source: Path) -> list[Path]:
        dirs = [source.parent, *self.allowed_dirs]
        return dirs + [self.output_dir] if self.output_dir else dirs

    def output(self, path: str | None, source: Path, label: str) -> Path:
        """The output path asked for, checked; or a fresh name next to the input (or in ``output_dir``)."""
        if path:
            raw = Path(path).expanduser()
            if not raw.is_absolute():
                raise PathRefusedError(f"Send an absolute output path: {path}")
            target = raw.resolve()
            if not any(_inside(target, d) for d in self.writable_dirs(source)):
                raise PathRefusedError(f"{target} is outside the folders this server may write to.")
        else:
            folder = (self.output_dir or source.parent).resolve()
            target = unique_path(folder / f"{source.stem}_{label}_{time.strftime('%Y%m%d-%H%M%S')}.wav")
        if target == source:
            raise PathRefusedError("The output would overwrite the input; choose another output path.")
        if target.suffix.lower() not in OUTPUT_SUFFIXES:
            raise PathRefusedError(f"Output {target.name} must end in .wav, .flac, .ogg or .aiff.")
        return target


def _inside(path: Path, folder: Path) -> bool:
    return path.is_relative_to(folder.resolve())


def unique_path(path: Path) -> Path:
    """``path``, or ``name-2.wav``, ``name-3.wav``... so earlier results in a DAW project are never replaced."""
    candidate, n = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate
