"""One process at a time: an exclusive lock on a file, refused at once (never waited for) when another holds it.

The operating system drops the lock when its process ends, even by kill -9, so a stale lock never blocks anyone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import BusyError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt


def _try_lock(fd: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def exclusive(path: Path, busy: str) -> Iterator[None]:
    """Hold the lock at ``path`` for the block; BusyError(``busy``) at once if another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            raise BusyError(busy)
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file as we opened it: lock the new one
    try:
        yield
    finally:
        if fcntl is not None:  # POSIX: remove while still holding, so nobody locks a file about to vanish
            path.unlink(missing_ok=True)
        os.close(fd)
        if fcntl is None:
            with contextlib.suppress(OSError):
                path.unlink()
