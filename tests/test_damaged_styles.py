"""A damaged style is named as damaged (with what is wrong and how to remove it); every other style keeps working."""

import json
import shutil

import pytest

from restyle.bridge.client import RestyleClient
from tests.bridge_helpers import running_server


def _truncate(file_name="style.safetensors"):
    def damage(folder):
        weights = folder / file_name
        weights.write_bytes(weights.read_bytes()[:200])
    return damage


def _set(field, value):
    def damage(folder):
        info = json.loads((folder / "style.json").read_text())
        (folder / "style.json").write_text(json.dumps({**info, field: value}))
    return damage


DAMAGE = {
    "weights truncated": (_truncate(), "style.safetensors cannot be read"),
    "weights missing": (lambda f: (f / "style.safetensors").unlink(), "style.safetensors is missing"),
    "info missing": (lambda f: (f / "style.json").unlink(), "style.json is missing"),
    "info not json": (lambda f: (f / "style.json").write_text("{not json"), "style.json cannot be read"),
    "embed_dim text": (_set("embed_dim", "x"), "'embed_dim'"),
    "scale a list": (_set("recommended_scale", [5]), "'recommended_scale'"),
    "wrong size": (_set("embed_dim", 48), "not [48]"),
}


@pytest.fixture
def library(styles_dir, tmp_path):
    copy = tmp_path / "styles"
    shutil.copytree(styles_dir, copy)
    return copy


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_style_is_listed_as_damaged_and_the_others_still_work(library, cli, content_wav, tmp_path, case):
    damage, reason = DAMAGE[case]
    damage(library / "chimes")
    lib = ["--styles-dir", library]

    listed = cli("styles", "list", *lib)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr
    line = next(row for row in listed.stdout.splitlines() if row.startswith("chimes"))
    assert "DAMAGED" in line and reason in line and "restyle styles rm chimes" in line
    as_json = {s["name"]: s for s in json.loads(cli("styles", "list", "--json", *lib).stdout)}
    assert reason in as_json["chimes"]["damaged"] and as_json["bells"]["base_model"] == "tiny"

    for args in (["styles", "show", "chimes"], ["stylize", content_wav, "--style", "chimes", "--steps", "2"]):
        used = cli(*args, *lib)
        assert used.returncode == 1 and "Traceback" not in used.stderr
        assert used.stderr.strip().splitlines()[-1].startswith("restyle: error: Style 'chimes' is damaged")
    fine = cli("stylize", content_wav, "--style", "bells", "--steps", "2", "-o", tmp_path / "ok.wav", *lib)
    assert fine.returncode == 0, fine.stderr

    assert cli("styles", "rm", "chimes", *lib).returncode == 0 and not (library / "chimes").exists()


def test_a_folder_without_info_blocks_train_at_once_and_can_be_removed(library, cli, style_clips):
    (library / "chimes" / "style.json").unlink()
    run = cli("train", "chimes", style_clips, "--model", "tiny", "--steps", "1", "--styles-dir", library)
    assert run.returncode == 1 and "already exists" in run.stderr and "training chimes" not in run.stderr
    assert cli("styles", "rm", "chimes", "--styles-dir", library).returncode == 0


def test_the_server_lists_and_serves_the_healthy_styles(tiny_base, library, tmp_path, content_wav):
    _truncate()(library / "chimes")
    with running_server(tiny_base, library, tmp_path) as server:
        with RestyleClient("127.0.0.1", server.udp_port, timeout=5.0) as osc:
            assert osc.request("styles/list") == ["bells"]
            job, _ = osc.request("stylize", str(content_wav), "style", "bells", "steps", 2)
            assert osc.wait_for_job(job).name == "done"
            with pytest.raises(Exception, match="damaged"):
                osc.request("stylize", str(content_wav), "style", "chimes", "steps", 2)


def _set_adapter(field, value):
    def damage(folder):
        info = json.loads((folder / "style.json").read_text())
        info["adapter"] = value if field is None else {**info["adapter"], field: value}
        (folder / "style.json").write_text(json.dumps(info))
    return damage


ADAPTER_DAMAGE = {
    "adapter truncated": (_truncate("adapter.safetensors"), "adapter.safetensors cannot be read"),
    "adapter missing": (lambda f: (f / "adapter.safetensors").unlink(), "adapter.safetensors is missing"),
    "adapter entry text": (_set_adapter(None, "x"), "adapter entry"),
    "adapter rank wrong": (_set_adapter("rank", 3), "no LoRA weights of rank 3"),
}


@pytest.mark.parametrize("case", list(ADAPTER_DAMAGE))
def test_a_damaged_adapter_makes_its_style_damaged_and_the_others_still_work(adapter_styles_dir, cli, tmp_path, case):
    library = tmp_path / "styles"
    shutil.copytree(adapter_styles_dir, library)
    damage, reason = ADAPTER_DAMAGE[case]
    damage(library / "lora-chimes")
    listed = cli("styles", "list", "--styles-dir", library)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr
    rows = {row.split()[0]: row for row in listed.stdout.splitlines() if row.startswith("lora-")}
    assert "DAMAGED" in rows["lora-chimes"] and reason in rows["lora-chimes"]
    assert "DAMAGED" not in rows["lora-bells"]
