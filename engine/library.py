"""The style library: one folder per style (weights + JSON), under the user's data folder by default.

Location, first match wins: ``--styles-dir``, ``$RESTYLE_HOME/styles``, the platform's user data folder.
Styles shipped with Restyle (trained on the bundled mini model) are listed too, read-only; a user's style of the
same name hides the shipped one. Writes are atomic: a style appears complete or not at all.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from pathlib import Path

import platformdirs
import torch

from .atomic import atomic_folder, clean_leftovers, write_json
from .errors import SettingsError, StyleExistsError, StyleNotFoundError
from .locks import exclusive
from .mini import STYLES_DIR as SHIPPED_STYLES_DIR
from .style import INFO_FILE, Style, StyleInfo, read_info
from .style_check import check_style

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")
CHECKPOINTS = ".checkpoints"


def default_styles_dir(styles_dir: str | os.PathLike | None = None) -> Path:
    if styles_dir:
        return Path(styles_dir).expanduser()
    if os.environ.get("RESTYLE_HOME"):
        return Path(os.environ["RESTYLE_HOME"]).expanduser() / "styles"
    return Path(platformdirs.user_data_dir("restyle", appauthor=False)) / "styles"


def check_name(name: str) -> str:
    """Style names become folder names: letters, digits, space, '_', '-', '.'; up to 64 characters."""
    if not NAME_PATTERN.match(name) or name.endswith((" ", ".")):
        raise SettingsError(
            f"'{name}' cannot be a style name: use letters, digits, spaces, '_', '-' or '.', starting with a "
            "letter or digit, at most 64 characters."
        )
    return name


class StyleLibrary:
    """Lists, loads, saves, renames and removes styles in one folder; shipped styles are found but never changed."""

    def __init__(self, root: str | os.PathLike | None = None, shipped: str | os.PathLike | None = SHIPPED_STYLES_DIR):
        self.root = default_styles_dir(root)
        self.shipped = Path(shipped) if shipped else None

    def folder(self, name: str) -> Path:
        """Where the user's style ``name`` is (or would be) stored."""
        return self.root / check_name(name)

    def _holds(self, folder: Path | None, name: str) -> bool:
        """Every folder of the user's library is a style (damaged ones too, so they are shown and removable)."""
        if folder is None or name.startswith(".") or NAME_PATTERN.match(name) is None:
            return False
        return (folder / name).is_dir() if folder == self.root else (folder / name / INFO_FILE).is_file()

    def names(self) -> list[str]:
        """Every style's name, damaged ones included (``info`` and ``load`` say what is wrong with those)."""
        found = set()
        for folder in (self.root, self.shipped):
            if folder is not None and folder.is_dir():
                found |= {p.name for p in folder.iterdir() if self._holds(folder, p.name)}
        return sorted(found)

    def _find(self, name: str) -> Path | None:
        """The folder of style ``name``: the user's own first, then the shipped one; None when neither exists."""
        for folder in (self.root, self.shipped):
            if self._holds(folder, name):
                return folder / name
        return None

    def __contains__(self, name: str) -> bool:
        return self._find(name) is not None

    def is_shipped(self, name: str) -> bool:
        """True when ``name`` resolves to a style shipped with Restyle (no user style hides it)."""
        found = self._find(name)
        return found is not None and found.parent == self.shipped

    def locate(self, name: str) -> Path:
        """The folder holding style ``name``: the user's own, else the shipped one."""
        found = self._find(name)
        if found is None:
            known = ", ".join(self.names()) or "none yet; train one with `restyle train`"
            raise StyleNotFoundError(f"No style named '{name}' in {self.root}. Known styles: {known}.")
        return found

    def writable_folder(self, name: str) -> Path:
        """The user's own folder of ``name``, for changes; shipped styles are read-only."""
        folder = self.locate(name)
        if folder.parent == self.shipped:
            raise SettingsError(
                f"'{name}' is shipped with Restyle and cannot be changed; train your own style under another name "
                "(or the same name, which then hides the shipped one)."
            )
        return folder

    def info(self, name: str) -> StyleInfo:
        """The style's info, after checking the whole style (DamagedStyleError says what is wrong)."""
        return check_style(self.locate(name))

    def load(self, name: str, device: torch.device | str = "cpu") -> Style:
        folder = self.locate(name)
        check_style(folder)
        return Style.load(folder, device)

    def save(self, style: Style, overwrite: bool = False) -> Path:
        """Write the style into a hidden folder, then rename it into place (replacing an old one if allowed)."""
        final = self.folder(style.name)
        if final.exists() and not overwrite:
            raise StyleExistsError(f"A style named '{style.name}' already exists; pick another name or overwrite it.")
        with atomic_folder(final) as staging:
            style.save(staging)
        return final

    def remove(self, name: str) -> None:
        folder = self.writable_folder(name)
        retired = self.root / f".{name}.removed-{uuid.uuid4().hex[:8]}"
        os.replace(folder, retired)  # atomic: the style vanishes at once, the files go after
        shutil.rmtree(retired, ignore_errors=True)

    def rename(self, old: str, new: str) -> None:
        folder = self.writable_folder(old)
        target = self.folder(new)
        if target.exists():
            raise StyleExistsError(f"A style named '{new}' already exists; remove it first or pick another name.")
        info = read_info(folder)
        info.name = new
        os.replace(folder, target)
        write_json(target / INFO_FILE, info.to_dict())

    def checkpoint_path(self, name: str) -> Path:
        """Where an unfinished training run of ``name`` keeps its checkpoint."""
        return self.root / CHECKPOINTS / check_name(name) / "checkpoint.pt"

    def training_lock(self, name: str):
        """Held while ``name`` trains: a second run of the same name is refused at once (released by any exit)."""
        return exclusive(self.root / CHECKPOINTS / f"{check_name(name)}.lock",
                         f"Style '{name}' is being trained by another run right now; wait for it or pick another name.")

    def remove_checkpoint(self, name: str) -> None:
        """Delete a finished run's checkpoint and the folders it leaves empty."""
        checkpoint = self.checkpoint_path(name)
        checkpoint.unlink(missing_ok=True)
        clean_leftovers(checkpoint)  # half-written checkpoints of killed runs
        for folder in (checkpoint.parent, checkpoint.parent.parent):
            with contextlib.suppress(OSError):  # not empty: another run's checkpoint or lock is there
                folder.rmdir()
