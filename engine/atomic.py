"""Write files and folders so that readers only ever see a complete result (temporary name, then rename).

Temporary names carry the writer's process id: a later write to the same place removes what a killed writer
left (``.NAME.partial-PID-...``) and puts back a folder it had moved aside (``.NAME.old-PID-...``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TEST_WRITE_DELAY = "RESTYLE_TEST_WRITE_DELAY"  # test hook: seconds to wait before each rename (fault injection)


def _temporary_sibling(path: Path, kind: str = "partial") -> Path:
    # Same folder (so the rename is atomic), same suffix (so writers that infer a format from it still work).
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")


def _owner(leftover: Path) -> int | None:
    """The process id in a temporary name, or None if it has none (older versions)."""
    tail = leftover.name.rsplit(".partial-", 1)[-1].rsplit(".old-", 1)[-1]
    pid = tail.split("-", 1)[0]
    return int(pid) if pid.isdigit() else None


def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # Windows' os.kill would end the process: never guess there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_leftovers(path: str | os.PathLike) -> None:
    """Remove what killed writers of ``path`` left next to it; restore a folder one had moved aside."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    for kind in ("old", "partial"):
        for leftover in sorted(path.parent.glob(f".{_glob_escape(path.name)}.{kind}-*")):
            pid = _owner(leftover)
            if pid is None or _alive(pid):
                continue
            if kind == "old" and not path.exists():
                os.replace(leftover, path)  # killed between moving the old folder aside and the new one in
            elif leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


def _pause_for_tests() -> None:
    delay = float(os.environ.get(TEST_WRITE_DELAY) or 0)
    if delay > 0:
        time.sleep(delay)


def _publish(tmp: Path, path: Path, replace: bool) -> None:
    """Rename ``tmp`` to ``path``; without ``replace``, raise FileExistsError rather than replace a file."""
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if path exists: no window in which another file could be replaced
    except FileExistsError:
        raise
    except OSError:  # file systems without hard links (FAT, some network shares)
        if path.exists():
            raise FileExistsError(f"{path} already exists") from None
        os.replace(tmp, path)
        return
    tmp.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed to ``path``, on error removed.

    With ``replace=False`` an existing ``path`` is never replaced: FileExistsError instead.
    """
    path = Path(path)
    clean_leftovers(path)
    tmp = _temporary_sibling(path)
    try:
        yield tmp
        _pause_for_tests()
        _publish(tmp, path, replace)
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
    clean_leftovers(path)
    tmp = _temporary_sibling(path)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        _pause_for_tests()
        retired = _temporary_sibling(path, "old") if path.exists() else None
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
