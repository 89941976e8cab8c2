"""`restyle daw install` / `daw path`: the shipped scripts land where each host looks, per OS layout, in
temporary folders; a file the user changed is kept unless --force; a dry run writes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from restyle.bridge.daw_install import MANIFEST, Platform, install, plan, templates_folder
from restyle.engine.errors import SettingsError

REAPER_SCRIPTS = sorted(p.name for p in (templates_folder() / "reaper").glob("*.lua"))
ABLETON_FILES = sorted(p.name for p in (templates_folder() / "ableton" / "Restyle").glob("*.py"))

# Where each host looks, per OS, relative to the home folder (Windows: %APPDATA% is HOME/AppData/Roaming here).
REAPER_ROOTS = {"windows": "AppData/Roaming/REAPER", "macos": "Library/Application Support/REAPER",
                "linux": ".config/REAPER"}
LIVE_LIBRARIES = {"windows": "Documents/Ableton/User Library", "macos": "Music/Ableton/User Library"}


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("system", sorted(REAPER_ROOTS))
def test_reaper_scripts_go_to_the_resource_path_of_each_os(tmp_path, system):
    report = install(plan("reaper", Platform(system, tmp_path)))
    root = tmp_path / REAPER_ROOTS[system]
    expected = sorted([f"Scripts/Restyle/{name}" for name in REAPER_SCRIPTS] + ["OSC/Restyle.ReaperOSC",
                                                                                 f"Scripts/Restyle/{MANIFEST}"])
    assert files_under(tmp_path) == [f"{REAPER_ROOTS[system]}/{name}" for name in expected]
    assert {status for status, _ in report} == {"copied"}
    shipped = templates_folder() / "reaper" / "Restyle - Cancel.lua"
    assert (root / "Scripts" / "Restyle" / shipped.name).read_bytes() == shipped.read_bytes()


def test_reaper_on_windows_follows_appdata(tmp_path):
    appdata = tmp_path / "roaming-elsewhere"
    install(plan("reaper", Platform("windows", tmp_path / "home", appdata)))
    assert (appdata / "REAPER" / "OSC" / "Restyle.ReaperOSC").is_file()
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("system", sorted(LIVE_LIBRARIES))
def test_ableton_script_goes_to_the_user_librarys_remote_scripts(tmp_path, system):
    install(plan("ableton", Platform(system, tmp_path)))
    folder = tmp_path / LIVE_LIBRARIES[system] / "Remote Scripts" / "Restyle"
    assert sorted(p.name for p in folder.glob("*.py")) == ABLETON_FILES
    assert "__init__.py" in ABLETON_FILES


def test_ableton_on_linux_needs_a_folder(tmp_path):
    with pytest.raises(SettingsError, match="--to"):
        plan("ableton", Platform("linux", tmp_path))
    install(plan("ableton", Platform("linux", tmp_path), to=tmp_path / "Library"))
    assert (tmp_path / "Library" / "Remote Scripts" / "Restyle" / "__init__.py").is_file()


@pytest.mark.parametrize("system", ["windows", "macos", "linux"])
def test_pd_patch_goes_to_the_documents_folder_or_the_chosen_one(tmp_path, system):
    install(plan("pd", Platform(system, tmp_path)))
    assert (tmp_path / "Documents" / "Pd" / "restyle" / "restyle.pd").is_file()
    install(plan("pd", Platform(system, tmp_path), to=tmp_path / "patches"))
    assert (tmp_path / "patches" / "restyle.pd").is_file()


def test_reaper_portable_install_via_to(tmp_path):
    install(plan("reaper", Platform("windows", tmp_path / "home"), to=tmp_path / "REAPER-portable"))
    assert (tmp_path / "REAPER-portable" / "Scripts" / "Restyle" / "restyle_common.lua").is_file()
    assert not (tmp_path / "home").exists()


def test_dry_run_writes_nothing(tmp_path):
    report = install(plan("reaper", Platform("linux", tmp_path)), dry_run=True)
    assert {status for status, _ in report} == {"would copy"}
    assert list(tmp_path.iterdir()) == []


def test_second_install_reports_unchanged(tmp_path):
    pd = plan("pd", Platform("macos", tmp_path))
    install(pd)
    assert install(pd) == [("unchanged", tmp_path / "Documents" / "Pd" / "restyle" / "restyle.pd")]


def test_a_file_the_user_changed_is_kept_unless_forced(tmp_path):
    reaper = plan("reaper", Platform("macos", tmp_path))
    install(reaper)
    edited = reaper.copies[0].target
    edited.write_text("-- my own tweak\n", encoding="utf-8")
    report = dict((target, status) for status, target in install(reaper))
    assert report[edited] == "kept: changed by you, use --force"
    assert edited.read_text(encoding="utf-8") == "-- my own tweak\n"
    assert dict((t, s) for s, t in install(reaper, dry_run=True, force=True))[edited] == "would replace your changes"
    assert edited.read_text(encoding="utf-8") == "-- my own tweak\n"
    assert dict((t, s) for s, t in install(reaper, force=True))[edited] == "replaced your changes (--force)"
    assert edited.read_bytes() == reaper.copies[0].source.read_bytes()


def test_a_file_a_user_made_before_any_install_is_kept(tmp_path):
    target = tmp_path / "Documents" / "Pd" / "restyle" / "restyle.pd"
    target.parent.mkdir(parents=True)
    target.write_text("#N canvas 0 0 100 100 10;\n", encoding="utf-8")
    [(status, _)] = install(plan("pd", Platform("linux", tmp_path)))
    assert status == "kept: changed by you, use --force"


def test_restyles_own_older_copy_is_updated(tmp_path):
    """A file still as the last install left it (e.g. from an older Restyle) is updated without --force."""
    old_templates = tmp_path / "old"
    (old_templates / "pd").mkdir(parents=True)
    (old_templates / "pd" / "restyle.pd").write_text("#N canvas 0 0 1 1 10;\n", encoding="utf-8")
    home = tmp_path / "home"
    install(plan("pd", Platform("linux", home), templates=old_templates))
    [(status, target)] = install(plan("pd", Platform("linux", home)))
    assert status == "updated"
    assert target.read_bytes() == (templates_folder() / "pd" / "restyle.pd").read_bytes()


def test_no_temporary_files_are_left(tmp_path):
    install(plan("reaper", Platform("macos", tmp_path)))
    assert not [p for p in tmp_path.rglob("*") if ".partial-" in p.name or ".old-" in p.name]
    assert len(files_under(tmp_path)) == len(REAPER_SCRIPTS) + 2  # the scripts, the pattern file, the record


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home), "APPDATA": str(home / "AppData" / "Roaming")}
    return subprocess.run([sys.executable, "-m", "restyle", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_cli_install_prints_one_line_per_file_and_path_names_the_folders(tmp_path):
    result = run_cli("daw", "install", "pd", "--to", str(tmp_path / "pd"), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"copied: {tmp_path / 'pd' / 'restyle.pd'}\n"
    where = run_cli("daw", "path", home=tmp_path)
    assert where.returncode == 0, where.stderr
    assert f"shipped scripts: {templates_folder()}" in where.stdout
    assert str(Platform.current().reaper_resources().relative_to(Path.home())) in where.stdout


def test_cli_refuses_ableton_without_folder_on_linux_in_one_line(tmp_path):
    if Platform.current().system != "linux":
        pytest.skip("Live's default User Library exists on this OS")
    result = run_cli("daw", "install", "ableton", home=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "--to" in result.stderr
