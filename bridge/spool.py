"""The HTTP API's spool: uploads and results live in folders the server names, and are deleted when done with.

Clients never name a path on the server. Each job gets a folder with a random name; an upload is written there
under a fixed name (``input.wav``, ``clip-1.flac``...) with only its suffix taken from the client's file name, and
is refused past a size limit. A job's folder is deleted ``keep_seconds`` after the job finishes (time enough to
download the result), and at start-up every folder left by an earlier run is removed.
"""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from restyle.engine import RestyleError
from restyle.engine.outputs import OUTPUT_SUFFIXES

CHUNK = 1 << 20


class UploadTooLargeError(RestyleError):
    code = "too_large"


@dataclass(frozen=True)
class SpoolSettings:
    """How much a client may upload and how long results are kept."""

    max_upload_bytes: int = 512 * 2**20  # 512 MiB: about 45 min of 48 kHz stereo float WAV
    keep_seconds: float = 3600.0  # results stay downloadable an hour after their job ends


def upload_suffix(filename: str | None) -> str:
    """The suffix to store an upload under: the client's, if it is an audio suffix we can write back, else .wav."""
    name = PureWindowsPath(PurePosixPath(filename or "").name).name  # no folders, whichever OS named it
    suffix = Path(name).suffix.lower()
    return suffix if suffix in OUTPUT_SUFFIXES else ".wav"


def display_name(filename: str | None) -> str:
    """The client's file name without any folder part, for messages and the result's download name."""
    name = PureWindowsPath(PurePosixPath(filename or "").name).name
    return "".join(c for c in name if c.isprintable() and c not in '"\\\\/') or "upload.wav"


class Spool:
    """Job folders under ``root``, created on demand and deleted once they are no longer needed."""

    def __init__(self, root: Path, settings: SpoolSettings = SpoolSettings()):
        self.root = root
        self.settings = settings
        self._expiry: dict[Path, float] = {}
        self._lock = threading.Lock()
        if root.exists():
            shutil.rmtree(root, ignore_errors=True)  # folders of an earlier run: nobody can ask for them any more
        root.mkdir(parents=True, exist_ok=True)

    def new_folder(self) -> Path:
        """A fresh folder for one job's files."""
        folder = self.root / secrets.token_hex(8)
        folder.mkdir()
        return folder

    def receive(self, source, folder: Path, name: str) -> Path:
        """Copy a readable binary stream into ``folder/name``, refusing it past the size limit."""
        path = folder / name
        written = 0
        with open(path, "wb") as out:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                if written > self.settings.max_upload_bytes:
                    out.close()
                    path.unlink(missing_ok=True)
                    raise UploadTooLargeError(f"The upload is larger than this server accepts "
                                              f"({self.settings.max_upload_bytes // 2**20} MiB); send a shorter clip.")
                out.write(chunk)
        return path

    def release(self, folder: Path, now: float | None = None) -> None:
        """``folder``'s job is over: delete it after the retention time."""
        with self._lock:
            self._expiry[folder] = (time.monotonic() if now is None else now) + self.settings.keep_seconds

    def remove(self, folder: Path) -> None:
        """Delete ``folder`` now (a refused or deleted job)."""
        with self._lock:
            self._expiry.pop(folder, None)
        shutil.rmtree(folder, ignore_errors=True)

    def sweep(self, now: float | None = None) -> int:
        """Delete every folder whose retention time has passed; returns how many."""
        now = time.monotonic() if now is None else now
        with self._lock:
            due = [f for f, t in self._expiry.items() if t <= now]
            for folder in due:
                del self._expiry[folder]
        for folder in due:
            shutil.rmtree(folder, ignore_errors=True)
        return len(due)

    def close(self) -> None:
        """Delete everything (the server is stopping)."""
        shutil.rmtree(self.root, ignore_errors=True)
