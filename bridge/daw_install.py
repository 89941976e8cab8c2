"""Installing the shipped DAW scripts (package data ``restyle.daw_templates``) where each host looks for them.

REAPER: its resource path (Options > Show REAPER resource path), actions under ``Scripts/Restyle/`` and the OSC
pattern config under ``OSC/``. Ableton Live: the User Library's ``Remote Scripts/Restyle/``. Pure Data: a folder
of the user's choice (default ``~/Documents/Pd/restyle``, beside the ``externals`` folder Pd 0.48+ offers there).

Never overwrites a file the user changed: ``.restyle-installed.json`` next to the scripts remembers what was
installed, so a file still as Restyle left it is updated, one with the user's edits is kept unless ``force``.
The platform (OS, home, %APPDATA%) is a value, so tests install into temporary folders for every OS layout.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from restyle.engine.atomic import atomic_path, write_json
from restyle.engine.errors import SettingsError
from restyle.engine.package_data import shipped_path

HOSTS = ("reaper", "ableton", "pd")
SYSTEMS = ("windows", "macos", "linux")
TEMPLATES = "restyle.daw_templates"
MANIFEST = ".restyle-installed.json"


@dataclass(frozen=True)
class Platform:
    """Where a user's folders are: the OS family, the home folder and (Windows) %APPDATA%."""

    system: str  # windows, macos or linux
    home: Path
    appdata: Path | None = None  # Windows' roaming application data; default HOME/AppData/Roaming

    @classmethod
    def current(cls) -> "Platform":
        """This machine's layout (HOME and APPDATA are read from the environment)."""
        system = {"win32": "windows", "darwin": "macos"}.get(sys.platform, "linux")
        appdata = os.environ.get("APPDATA")
        return cls(system, Path.home(), Path(appdata) if appdata else None)

    def reaper_resources(self) -> Path:
        """REAPER's default resource path (a portable install keeps it next to reaper.exe: use --to)."""
        if self.system == "windows":
            return (self.appdata or self.home / "AppData" / "Roaming") / "REAPER"
        if self.system == "macos":
            return self.home / "Library" / "Application Support" / "REAPER"
        return self.home / ".config" / "REAPER"

    def live_user_library(self) -> Path | None:
        """Ableton Live's default User Library; None on Linux, where Live does not run."""
        if self.system == "windows":
            return self.home / "Documents" / "Ableton" / "User Library"
        if self.system == "macos":
            return self.home / "Music" / "Ableton" / "User Library"
        return None

    def pd_folder(self) -> Path:
        """Where the Pd patch goes by default: a folder in Pd's documents folder."""
        return self.home / "Documents" / "Pd" / "restyle"


@dataclass(frozen=True)
class Copy:
    """One shipped file and where it goes."""

    source: Path
    target: Path


@dataclass(frozen=True)
class Plan:
    """A host's files, the folder they were placed relative to, and where the install record is kept."""

    host: str
    root: Path
    copies: tuple[Copy, ...]
    manifest: Path


def templates_folder() -> Path:
    """The shipped DAW scripts, as installed with Restyle."""
    return shipped_path(TEMPLATES)


def check_host(host: str) -> str:
    """``host`` if it is one Restyle ships scripts for; SettingsError otherwise."""
    if host not in HOSTS:
        raise SettingsError(f"Unknown DAW '{host}': use one of {', '.join(HOSTS)}.")
    return host


def host_root(host: str, platform: Platform, to: str | os.PathLike | None = None) -> Path:
    """The folder a host's files are placed under: ``to`` if given, else the host's default on ``platform``."""
    check_host(host)
    if to is not None:
        return Path(to).expanduser()
    if host == "reaper":
        return platform.reaper_resources()
    if host == "pd":
        return platform.pd_folder()
    library = platform.live_user_library()
    if library is None:
        raise SettingsError("Ableton Live does not run on Linux, so there is no User Library to install into: pass "
                            "--to FOLDER (Live's User Library, e.g. on a shared drive).")
    return library


def plan(host: str, platform: Platform, to: str | os.PathLike | None = None,
         templates: Path | None = None) -> Plan:
    """Every file ``host`` needs and where it goes (nothing is written)."""
    root = host_root(host, platform, to)
    templates = templates or templates_folder()
    if host == "reaper":
        scripts = root / "Scripts" / "Restyle"
        copies = [Copy(p, scripts / p.name) for p in sorted((templates / "reaper").glob("*.lua"))]
        copies += [Copy(p, root / "OSC" / p.name) for p in sorted((templates / "reaper").glob("*.ReaperOSC"))]
        return Plan(host, root, tuple(copies), scripts / MANIFEST)
    if host == "ableton":
        folder = root / "Remote Scripts" / "Restyle"
        copies = [Copy(p, folder / p.name) for p in sorted((templates / "ableton" / "Restyle").glob("*.py"))]
        return Plan(host, root, tuple(copies), folder / MANIFEST)
    copies = [Copy(p, root / p.name) for p in sorted((templates / "pd").glob("*.pd"))]
    return Plan(host, root, tuple(copies), root / MANIFEST)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_manifest(path: Path) -> dict[str, str]:
    """Relative path -> sha256 of what Restyle last installed there; empty when unknown or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return {k: v for k, v in files.items() if isinstance(v, str)} if isinstance(files, dict) else {}


def _key(plan_: Plan, target: Path) -> str:
    return target.relative_to(plan_.root).as_posix()


def install(plan_: Plan, dry_run: bool = False, force: bool = False) -> list[tuple[str, Path]]:
    """Copy each file of the plan unless it is already there; returns (what happened, target) per file.

    What happened: ``copied``, ``updated`` (Restyle's own older copy), ``unchanged``, ``would copy`` /
    ``would update`` / ``would replace your changes`` (dry run), ``kept: changed by you, use --force``, or
    ``replaced your changes (--force)``.
    """
    installed = _read_manifest(plan_.manifest)
    record = dict(installed)
    report = []
    for copy in plan_.copies:
        key = _key(plan_, copy.target)
        shipped = _digest(copy.source)
        status = _status(copy.target, shipped, installed.get(key), force)
        if status in ("copy", "update", "replace") and not dry_run:
            copy.target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(copy.target) as tmp:
                shutil.copyfile(copy.source, tmp)
        if status != "keep":
            record[key] = shipped
        report.append((_describe(status, dry_run), copy.target))
    if not dry_run and record != installed:
        write_json(plan_.manifest, {"restyle": "DAW scripts installed by `restyle daw install`", "files": record})
    return report


def _status(target: Path, shipped: str, installed: str | None, force: bool) -> str:
    """copy (new), same, update (our own older file), keep or replace (the user's changes)."""
    if not target.exists():
        return "copy"
    current = _digest(target)
    if current == shipped:
        return "same"
    if current == installed:
        return "update"
    return "replace" if force else "keep"


def _describe(status: str, dry_run: bool) -> str:
    if status == "same":
        return "unchanged"
    if status == "keep":
        return "kept: changed by you, use --force"
    if dry_run:
        return {"copy": "would copy", "update": "would update", "replace": "would replace your changes"}[status]
    return {"copy": "copied", "update": "updated", "replace": "replaced your changes (--force)"}[status]


def describe_targets(host: str, platform: Platform) -> list[str]:
    """Lines saying where ``host``'s files go by default on ``platform``."""
    try:
        p = plan(host, platform)
    except SettingsError:
        return [f"{host}: no default folder on this system (Ableton Live does not run on Linux); use --to FOLDER"]
    folders = sorted({c.target.parent for c in p.copies})
    return [f"{host}: {folder}" for folder in folders]
