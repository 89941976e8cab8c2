"""Files shipped inside the installed package (presets, the mini model, DAW scripts), found through
importlib.resources so that a wheel install and a source checkout read the same files."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from .errors import RestyleError


class PackageDataError(RestyleError):
    """A file that ships with Restyle is missing: the installation is damaged."""


def shipped_path(package: str, *parts: str) -> Path:
    """A file or folder shipped in ``package`` as a real path (wheels install unzipped, so it is one)."""
    found = files(package).joinpath(*parts)
    if not isinstance(found, Path) or not found.exists():
        name = "/".join((package.replace(".", "/"), *parts))
        raise PackageDataError(f"{name} is missing from this Restyle installation: reinstall it "
                               "(pip install --force-reinstall restyle).")
    return found
