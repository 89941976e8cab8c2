"""ONNX export of the tiny model and the ONNX Runtime backend: parity with torch, refusals, clear errors."""

import json
import shutil
import sys

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from restyle.engine import (  # noqa: E402
    AdapterNotSupportedError,
    BaseModelMismatchError,
    Engine,
    SamplerSettings,
    SettingsError,
    StyleLibrary,
)
from restyle.engine.backends import create_backend  # noqa: E402
from restyle.cli import main  # noqa: E402
from restyle.engine.onnx_export import ExportSettings, export_onnx  # noqa: E402

TOLERANCE = 1e-4  # max |ORT - torch| / max |torch| per component, fp32 (measured: about 1e-6)
# The same on the stylized audio, which the mel inversion amplifies (measured 1.1e-3 with Griffin-Lim's phase).
AUDIO_TOLERANCE = 3e-3


@pytest.fixture(scope="session")
def exported(tiny_base, tmp_path_factory):
    return export_onnx(tiny_base, tmp_path_factory.mktemp("onnx") / "tiny-fp32")


def test_each_component_matches_torch(exported):
    assert set(exported.relative_errors) == {"unet", "vae_encoder", "vae_decoder"}
    assert all(error < TOLERANCE for error in exported.relative_errors.values()), exported.relative_errors
    record = json.loads((exported.folder / "export.json").read_text())
    assert record["precision"] == "fp32" and record["model_id"] == "tiny"


def test_onnx_backend_stylizes_like_torch(tiny_base, styles_dir, exported, content_wav, tmp_path):
    settings = SamplerSettings(strength=0.5, steps=6, seed=5)
    library = StyleLibrary(styles_dir)
    torch_engine = Engine(tiny_base, library)
    onnx_engine = Engine(tiny_base, library, backend=create_backend(tiny_base, "onnx", exported.folder))
    a = sf.read(torch_engine.stylize(content_wav, "bells", settings, tmp_path / "torch.wav").path)[0]
    b = sf.read(onnx_engine.stylize(content_wav, "bells", settings, tmp_path / "onnx.wav").path)[0]
    assert a.shape == b.shape
    assert np.abs(a - b).max() / np.abs(a).max() < AUDIO_TOLERANCE


def test_cli_backend_onnx(tmp_path, styles_dir, exported, content_wav, capsys):
    out = tmp_path / "o.wav"
    code = main(["stylize", str(content_wav), "--style", "bells", "--steps", "4", "--backend", "onnx",
                 "--onnx", str(exported.folder), "--styles-dir", str(styles_dir), "-o", str(out), "--device", "cpu",
                 "--dtype", "fp32"])
    assert code == 0, capsys.readouterr().err
    assert sf.info(out).frames == 44100


def test_export_from_other_weights_is_refused(tiny_base, exported, tmp_path):
    stale = tmp_path / "stale"
    shutil.copytree(exported.folder, stale)
    record = json.loads((stale / "export.json").read_text())
    (stale / "export.json").write_text(json.dumps(dict(record, fingerprint="0000000000000000")))
    with pytest.raises(BaseModelMismatchError, match="other weights"):
        create_backend(tiny_base, "onnx", stale)


def test_incomplete_or_missing_exports_are_explained(tiny_base, exported, tmp_path, monkeypatch):
    broken = tmp_path / "broken"
    shutil.copytree(exported.folder, broken)
    (broken / "vae_decoder.onnx").unlink()
    with pytest.raises(SettingsError, match="incomplete"):
        create_backend(tiny_base, "onnx", broken)
    monkeypatch.setenv("RESTYLE_HOME", str(tmp_path / "home"))
    with pytest.raises(SettingsError, match="restyle export-onnx"):
        create_backend(tiny_base, "onnx")


def test_missing_onnxruntime_gives_a_clear_error(tiny_base, exported, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(SettingsError, match="pip install 'restyle\\[onnx\\]'"):
        create_backend(tiny_base, "onnx", exported.folder)


@pytest.mark.parametrize("precision, message", [("bf16", "bf16"), ("int4", "Unknown ONNX precision")])
def test_unsupported_precisions_are_refused(precision, message):
    with pytest.raises(SettingsError, match=message):
        ExportSettings(precision=precision).validate()


def test_int8_export_runs_close_to_torch(tiny_base, tmp_path):
    report = export_onnx(tiny_base, tmp_path / "int8", ExportSettings(precision="int8"))
    assert report.relative_errors["unet"] < 0.1 and report.relative_errors["vae_decoder"] < TOLERANCE


def test_onnx_backend_refuses_an_adapter_style_in_one_line(tiny_base, adapter_styles_dir, exported, content_wav,
                                                           tmp_path, capsys):
    onnx_engine = Engine(tiny_base, StyleLibrary(adapter_styles_dir),
                         backend=create_backend(tiny_base, "onnx", exported.folder))
    with pytest.raises(AdapterNotSupportedError, match="LoRA adapter.*--backend torch"):
        onnx_engine.stylize(content_wav, "lora-bells", SamplerSettings(strength=0.5, steps=2), tmp_path / "o.wav")
    code = main(["stylize", str(content_wav), "--style", "lora-bells", "--steps", "2", "--backend", "onnx",
                 "--onnx", str(exported.folder), "--styles-dir", str(adapter_styles_dir), "-o", str(tmp_path / "o.wav"),
                 "--device", "cpu", "--dtype", "fp32"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and "--backend torch" in err[-1] and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "o.wav").exists()


def test_auto_backend_picks_torch_for_an_adapter_style(adapter_styles_dir, exported, content_wav, tmp_path, capsys):
    common = ["--steps", "2", "--backend", "auto", "--onnx", str(exported.folder), "--styles-dir",
              str(adapter_styles_dir), "--device", "cpu", "--dtype", "fp32"]
    assert main(["stylize", str(content_wav), "--style", "lora-bells", "-o", str(tmp_path / "a.wav"), *common]) == 0
    assert "backend: torch" in capsys.readouterr().err
