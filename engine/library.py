"""The style library: one folder per style (weights + JSON), under the user's data folder by default.

Location, first match wins: ``--styles-dir``, ``$RESTYLE_HOME/styles``, the platform's user data folder.
Writes are atomic: a style appears complete or not at all.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

import platformdirs
import torch

from .atomic import write_json
from .errors import SettingsError, StyleExistsError, StyleNotFoundError
from .style import INFO_FILE, Style, StyleInfo, read_info

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
    """Lists, loads, saves, renames and removes styles in one folder."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = default_styles_dir(root)

    def folder(self, name: str) -> Path:
        return self.root / check_name(name)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if not p.name.startswith(".") and (p / INFO_FILE).is_file())

    def __contains__(self, name: str) -> bool:
        return NAME_PATTERN.match(name) is not None and (self.root / name / INFO_FILE).is_file()

    def _require(self, name: str) -> Path:
        if name not in self:
            known = ", ".join(self.names()) or "none yet; train one with `restyle train`"
            raise StyleNotFoundError(f"No style named '{name}' in {self.root}. Known styles: {known}.")
        return self.root / name

    def info(self, name: str) -> StyleInfo:
        return read_info(self._require(name))

    def load(self, name: str, device: torch.device | str = "cpu") -> Style:
        return Style.load(self._require(name), device)

    def save(self, style: Style, overwrite: bool = False) -> Path:
        """Write the style into a hidden folder, then rename it into place (replacing an old one if allowed)."""
        final = self.folder(style.name)
        if final.exists() and not overwrite:
            raise StyleExistsError(f"A style named '{style.name}' already exists; pick another name or overwrite it.")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".{style.name}.partial-{uuid.uuid4().hex[:8]}"
        try:
            style.save(staging)
            if final.exists():
                retired = self.root / f".{style.name}.old-{uuid.uuid4().hex[:8]}"
                os.replace(final, retired)
                os.replace(staging, final)
                shutil.rmtree(retired, ignore_errors=True)
            else:
                os.replace(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return final

    def remove(self, name: str) -> None:
        folder = self._require(name)
        retired = self.root / f".{name}.removed-{uuid.uuid4().hex[:8]}"
        os.replace(folder, retired)  # atomic: the style vanishes at once, the files go after
        shutil.rmtree(retired, ignore_errors=True)

    def rename(self, old: str, new: str) -> None:
        folder = self._require(old)
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
