"""The shipped mini model: it loads offline, its styles are listed read-only, and `restyle demo` works on it."""

import json
import shutil

import pytest
import soundfile as sf
from PIL import Image

from restyle.engine import Engine, StyleLibrary, load_base_model
from restyle.cli import main
from restyle.engine.mini import BUNDLED_STYLES, DEMO_CONTENT
from restyle.engine.mini.acceptance import AcceptanceSettings
from restyle.engine.mini.architecture import MINI_SPECTROGRAM
from restyle.engine.training import TrainSettings

needs_fluidsynth = pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="FluidSynth is not installed")


@pytest.fixture(scope="module")
def mini_base():
    return load_base_model("mini", device="cpu")


def test_the_shipped_model_loads_offline_with_its_own_format(mini_base):
    assert mini_base.model_id == "mini"
    assert mini_base.spectrogram == MINI_SPECTROGRAM
    assert not mini_base.produces_noise


def test_shipped_styles_are_listed_and_match_the_shipped_model(mini_base, tmp_path):
    library = StyleLibrary(tmp_path / "styles")
    assert set(BUNDLED_STYLES) <= set(library.names())
    for name in BUNDLED_STYLES:
        assert library.is_shipped(name)
        assert library.info(name).base_model == "mini"
        assert library.info(name).base_fingerprint == mini_base.fingerprint


def test_shipped_styles_cannot_be_removed_or_renamed(tmp_path, capsys):
    lib = ["--styles-dir", str(tmp_path / "styles")]
    assert main(["styles", "rm", "accordion", *lib]) == 1
    assert "shipped with Restyle" in capsys.readouterr().err
    assert main(["styles", "rename", "accordion", "squeezebox", *lib]) == 1
    assert main(["styles", "list", *lib]) == 0
    assert "accordion" in capsys.readouterr().out


def test_a_users_style_hides_the_shipped_one_of_the_same_name(tiny_base, style_clips, tmp_path):
    engine = Engine(tiny_base, StyleLibrary(tmp_path / "styles"))
    engine.train("accordion", [style_clips], TrainSettings(steps=2))
    assert not engine.library.is_shipped("accordion")
    assert engine.library.locate("accordion") == tmp_path / "styles" / "accordion"
    assert engine.style("accordion").info.base_model == "tiny"


def test_demo_writes_content_stylized_audio_and_a_side_by_side_picture(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "10", "--styles-dir", str(tmp_path / "styles")]) == 0
    printed = capsys.readouterr().out
    content, stylized = sf.info(str(out / "content.wav")), sf.info(str(out / "content_accordion.wav"))
    assert stylized.frames == content.frames == sf.info(str(DEMO_CONTENT)).frames
    assert stylized.samplerate == content.samplerate
    picture = Image.open(out / "spectrograms.png")
    frames = MINI_SPECTROGRAM.frames_for(round(content.frames * MINI_SPECTROGRAM.sample_rate / content.samplerate))
    assert picture.size == (2 * 2 * frames + 8, 2 * MINI_SPECTROGRAM.n_mels + 16)
    assert "spectrograms.png" in printed


@needs_fluidsynth
def test_acceptance_script_runs_on_a_tiny_subset(tmp_path, capsys):
    out = tmp_path / "acceptance"
    code = main(["mini", "acceptance", "--model", "tiny", "--out", str(out), "--groups", "a,c", "--targets",
                 "accordion", "--recordings", "glass", "--style-types", "tve", "--pairs", "2", "--strength", "0.7",
                 "--sampling-steps", "4", "--train-steps", "2", "--styles-dir", str(tmp_path / "styles")])
    assert code == 0
    results = json.loads((out / "acceptance.json").read_text())
    assert len(results["rows"]) == 4  # 2 targets x 2 pairs x 1 strength
    assert {r["strength"] for r in results["rows"]} == {0.7}
    assert {r["content_effect"] for r in results["rows"] if r["group"] == "a"} == {"dry", "reverb"}
    in_distribution = [r for r in results["rows"] if r["group"] == "a"]
    recordings = [r for r in results["rows"] if r["group"] == "c"]
    assert all("reduction_db" in r and 0.0 <= r["f1_vs_content"] <= 1.0 for r in in_distribution)
    assert all("reduction_db" not in r and -1.0 <= r["similarity_gain"] <= 2.0 for r in recordings)
    assert len(results["codec"]) == 4 and all(r["codec_distance_db"] > 0 for r in results["codec"])
    table = (out / "acceptance.md").read_text()
    assert "| a | tve | 0.7 | all | 2 |" in table and "Griffin-Lim alone" in table
    assert "style sim." in capsys.readouterr().out


def test_acceptance_settings_default_to_the_published_protocol():
    settings = AcceptanceSettings()
    targets = settings.targets()
    assert {t.group for t in targets} == {"a", "b", "c"}
    assert sum(t.group == "a" for t in targets) * settings.pairs_per_target >= 20
    assert {t.style_type for t in targets if t.group in "bc"} == {"tve", "lora"}
    assert settings.strengths == (0.3, 0.5, 0.7)


def test_demo_takes_content_at_any_rate_and_channel_count(tmp_path, content_wav):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--content", str(content_wav), "--steps", "4",
                 "--styles-dir", str(tmp_path / "styles")]) == 0
    assert sf.info(str(out / "content_accordion.wav")).frames == sf.info(str(content_wav)).frames
    frames = MINI_SPECTROGRAM.frames_for(MINI_SPECTROGRAM.sample_rate)  # the 1 s content, at 16 kHz
    assert Image.open(out / "spectrograms.png").size == (2 * 2 * frames + 8, 2 * MINI_SPECTROGRAM.n_mels + 16)


@pytest.mark.parametrize("args, message", [
    (["--pairs", "0"], "at least one target, one pair"),
    (["--targets", "kazoo"], "Unknown instrument 'kazoo'"),
    (["--recordings", "kazoo"], "Unknown recording family 'kazoo'"),
    (["--groups", "d"], "Unknown acceptance group 'd'"),
    (["--train-steps", "0"], "train for at least 1 step"),
])
def test_bad_acceptance_settings_are_one_line_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "acceptance"
    assert main(["mini", "acceptance", "--model", "tiny", "--out", str(out), *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and err[-1].startswith("restyle: error:")
    assert not out.exists()
