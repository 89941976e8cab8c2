"""The built wheel (as `pip install .` builds it): one top-level import package, `restyle`, with every file the
code reads through importlib.resources, and a build free of setuptools warnings. Running the installed wheel
from outside the repository is CI's .ci/wheel_smoke.sh (about two minutes)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[zipfile.ZipFile, str]:
    """The wheel (about 5 s to build, offline) and the build's output."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out), str(REPO)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    [wheel] = out.glob("restyle-*.whl")
    return zipfile.ZipFile(wheel), result.stdout + result.stderr


def test_the_wheel_installs_one_top_level_name(built):
    wheel, _ = built
    tops = {name.split("/")[0] for name in wheel.namelist()}
    dist_info = next(t for t in tops if t.endswith(".dist-info"))
    assert tops == {"restyle", dist_info}
    assert wheel.read(f"{dist_info}/top_level.txt").decode().split() == ["restyle"]
    assert "restyle = restyle.cli:main" in wheel.read(f"{dist_info}/entry_points.txt").decode()


@pytest.mark.parametrize("folder, pattern", [
    ("presets", "**/*.toml"), ("daw_templates", "**/*.lua"), ("daw_templates", "**/*.ReaperOSC"),
    ("daw_templates", "**/*.py"), ("daw_templates", "**/*.pd"), ("engine/mini/model", "**/*"),
    ("engine/mini/styles", "**/*"),
])
def test_the_wheel_carries_the_package_data(built, folder, pattern):
    wheel, _ = built
    names = set(wheel.namelist())
    package = f"restyle/{folder}"  # engine/ -> restyle.engine and so on (pyproject.toml's package-dir)
    shipped = [p for p in (REPO / folder).glob(pattern) if p.is_file() and "__pycache__" not in p.parts]
    assert shipped
    missing = [str(p.relative_to(REPO)) for p in shipped if f"{package}/{p.relative_to(REPO / folder).as_posix()}"
               not in names]
    assert missing == []


def test_the_build_prints_no_setuptools_warnings(built):
    _, output = built
    assert "Warning" not in output and "deprecated" not in output, output
