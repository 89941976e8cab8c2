"""Write files and folders so that readers only ever see a complete result (temporary name, then rename)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _temporary_sibling(path: Path) -> Path:
    # Same folder (so the rename is atomic), same suffix (so writers that infer a format from it still work).
    return path.with_name(f".{path.stem}.partial-{uuid.uuid4().hex[:8]}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed over ``path``, on error removed."""
    path = Path(path)
    tmp = _temporary_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new temporary folder next to ``path``; on success it takes ``path``'s place (an existing folder is
    moved aside first, then deleted), on error it is removed and ``path`` is untouched."""
    path = Path(path)
    tmp = _temporary_sibling(path)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        retired = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}") if path.exists() else None
        if retired:
            os.replace(path, retired)
        os.replace(tmp, path)
        if retired:
            shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
