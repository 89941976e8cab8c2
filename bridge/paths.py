"""Which files a job may read and write: no path escapes, no file replaced, no name given to two jobs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from restyle.engine import SettingsError
from restyle.engine.errors import OutputExistsError
from restyle.engine.outputs import check_output, fresh_path


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

    def output(self, path: str | None, source: Path, label: str,
               taken: Callable[[Path], bool] = lambda _path: False) -> Path:
        """The output path asked for, checked; or a fresh name next to the input (or in ``output_dir``).

        ``taken`` says which names queued jobs already hold: they are never handed out twice.
        """
        if path:
            raw = Path(path).expanduser()
            if not raw.is_absolute():
                raise PathRefusedError(f"Send an absolute output path: {path}")
            target = raw.resolve()
            if not any(_inside(target, d) for d in self.writable_dirs(source)):
                raise PathRefusedError(f"{target} is outside the folders this server may write to.")
            if taken(target):
                raise OutputExistsError(f"Another queued job already writes {target}; choose another output name.")
        else:
            folder = (self.output_dir or source.parent).resolve()
            target = fresh_path(folder / f"{source.stem}_{label}_{time.strftime('%Y%m%d-%H%M%S')}.wav", taken)
        if target == source:
            raise PathRefusedError("The output would overwrite the input; choose another output path.")
        return check_output(target)


def _inside(path: Path, folder: Path) -> bool:
    return path.is_relative_to(folder.resolve())


class OutputReservations:
    """Output paths promised to accepted jobs, from acceptance until the job ends: no two jobs share a file."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: set[Path] = set()

    def reserve(self, choose: Callable[[Callable[[Path], bool]], Path]) -> Path:
        """Run ``choose(taken)`` and hold the path it returns, as one step."""
        with self._lock:
            path = choose(self._held.__contains__)
            self._held.add(path)
            return path

    def release(self, path: Path | None) -> None:
        with self._lock:
            self._held.discard(path)
