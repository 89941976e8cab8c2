"""`restyle styles export` / `styles import`: one .restyle file carries a style (and its LoRA adapter) to another
library; a file for other base-model weights, a damaged or foreign file, or a taken name is refused in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from restyle.engine import Engine, StyleLibrary
from restyle.engine.style_file import read_style_file


def one_line_error(result, *words: str) -> None:
    assert result.returncode == 1
    assert result.stderr.startswith("restyle: error: ") and result.stderr.count("\n") == 1, result.stderr
    for word in words:
        assert word in result.stderr


def export(cli, library: Path, name: str, out: Path):
    result = cli("styles", "export", name, "-o", out, "--styles-dir", library)
    assert result.returncode == 0, result.stderr
    return result


def folder_tensors(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {p.name: load_file(str(p)) for p in sorted(folder.glob("*.safetensors"))}


def assert_same_style(original: Path, imported: Path, new_name: str) -> None:
    before, after = folder_tensors(original), folder_tensors(imported)
    assert before.keys() == after.keys()
    for file, tensors in before.items():
        assert tensors.keys() == after[file].keys()
        for key, tensor in tensors.items():
            assert torch.equal(tensor, after[file][key]), (file, key)
    info_before = json.loads((original / "style.json").read_text())
    info_after = json.loads((imported / "style.json").read_text())
    assert info_after == {**info_before, "name": new_name}


def test_round_trip_to_another_library(cli, styles_dir, tiny_base, tmp_path):
    out = tmp_path / "bells.restyle"
    assert f"Exported style 'bells' to {out}" in export(cli, styles_dir, "bells", out).stdout
    other = tmp_path / "friend" / "styles"
    result = cli("styles", "import", out, "--styles-dir", other)
    assert result.returncode == 0, result.stderr
    assert_same_style(styles_dir / "bells", other / "bells", "bells")
    engine = Engine(tiny_base, StyleLibrary(other))
    assert engine.style_names() == ["bells"]  # usable with the model it was trained on


def test_round_trip_keeps_the_lora_adapter_and_renames(cli, adapter_styles_dir, tiny_base, tmp_path):
    out = tmp_path / "shared.restyle"
    export(cli, adapter_styles_dir, "lora-chimes", out)
    other = tmp_path / "styles"
    result = cli("styles", "import", out, "--name", "their chimes", "--styles-dir", other)
    assert result.returncode == 0, result.stderr
    assert_same_style(adapter_styles_dir / "lora-chimes", other / "their chimes", "their chimes")
    style = Engine(tiny_base, StyleLibrary(other)).style("their chimes")
    assert style.adapter is not None and style.adapter_settings.rank == 2


def test_default_output_is_name_dot_restyle_and_is_never_replaced(cli, styles_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli("styles", "export", "chimes", "--styles-dir", styles_dir).returncode == 0
    written = tmp_path / "chimes.restyle"
    first = written.read_bytes()
    one_line_error(cli("styles", "export", "chimes", "--styles-dir", styles_dir), "already exists")
    assert written.read_bytes() == first
    assert cli("styles", "export", "chimes", "--overwrite", "--styles-dir", styles_dir).returncode == 0


def test_an_existing_style_is_not_overwritten_without_force(cli, styles_dir, tmp_path):
    out = tmp_path / "bells.restyle"
    export(cli, styles_dir, "bells", out)
    other = tmp_path / "styles"
    shutil.copytree(styles_dir / "chimes", other / "bells")  # a different style already named 'bells'
    marker = (other / "bells" / "style.safetensors").read_bytes()
    one_line_error(cli("styles", "import", out, "--styles-dir", other), "already exists", "--force")
    assert (other / "bells" / "style.safetensors").read_bytes() == marker
    assert cli("styles", "import", out, "--force", "--styles-dir", other).returncode == 0
    assert_same_style(styles_dir / "bells", other / "bells", "bells")


def test_a_style_for_other_base_weights_is_refused(cli, styles_dir, tmp_path):
    foreign = tmp_path / "theirs" / "bells"
    shutil.copytree(styles_dir / "bells", foreign)
    info = json.loads((foreign / "style.json").read_text())
    info["base_fingerprint"] = "0123456789abcdef"  # trained on other weights of a model also called 'tiny'
    (foreign / "style.json").write_text(json.dumps(info))
    out = tmp_path / "bells.restyle"
    export(cli, foreign.parent, "bells", out)
    other = tmp_path / "styles"
    one_line_error(cli("styles", "import", out, "--styles-dir", other), "0123456789abcdef", "base model")
    assert not other.exists() or list(other.iterdir()) == []


def test_a_truncated_file_is_refused_and_nothing_is_installed(cli, styles_dir, tmp_path):
    out = tmp_path / "bells.restyle"
    export(cli, styles_dir, "bells", out)
    data = out.read_bytes()
    out.write_bytes(data[: len(data) * 2 // 3])
    other = tmp_path / "styles"
    one_line_error(cli("styles", "import", out, "--styles-dir", other), "bells.restyle", "damaged")
    assert not other.exists() or list(other.iterdir()) == []


def test_altered_weights_are_refused_by_the_checksum(cli, styles_dir, tmp_path):
    out = tmp_path / "bells.restyle"
    export(cli, styles_dir, "bells", out)
    data = bytearray(out.read_bytes())
    data[-3] ^= 0xFF  # one byte of the last tensor's data
    out.write_bytes(bytes(data))
    one_line_error(cli("styles", "import", out, "--styles-dir", tmp_path / "styles"), "checksum")


@pytest.mark.parametrize("content", ["wav", "safetensors"])
def test_a_file_that_is_no_style_is_refused(cli, tmp_path, content):
    path = tmp_path / "not-a-style.restyle"
    if content == "wav":
        path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt ")
    else:
        save_file({"weight": torch.zeros(3)}, str(path))  # a valid safetensors file, but someone else's
    one_line_error(cli("styles", "import", path, "--styles-dir", tmp_path / "styles"), "not-a-style.restyle",
                   "not a usable Restyle style file")


def test_a_damaged_style_is_not_exported(cli, styles_dir, tmp_path):
    library = tmp_path / "styles"
    shutil.copytree(styles_dir / "bells", library / "bells")
    (library / "bells" / "style.safetensors").write_bytes(b"cut")
    one_line_error(cli("styles", "export", "bells", "-o", tmp_path / "b.restyle", "--styles-dir", library), "damaged")
    assert not (tmp_path / "b.restyle").exists()


def test_the_file_holds_one_style_readable_by_the_api(cli, adapter_styles_dir, tmp_path):
    out = tmp_path / "lora-bells.restyle"
    export(cli, adapter_styles_dir, "lora-bells", out)
    style_file = read_style_file(out)
    assert style_file.info.name == "lora-bells" and style_file.info.adapter is not None
    assert style_file.adapter and style_file.tve.keys() == load_file(
        str(adapter_styles_dir / "lora-bells" / "style.safetensors")).keys()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left
