"""The shipped mini model: it loads offline, its styles are listed read-only, and `restyle demo` works on it."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image
from signals import bells

from restyle.engine import Engine, StyleLibrary, load_base_model
from restyle.engine.audio import Clip
from restyle.engine.engine import EngineSettings
from restyle.engine.errors import SettingsError
from restyle.engine.sampler import SamplerSettings
from restyle.cli import main
from restyle.engine.demo import EXAMPLE_FILE, style_panel
from restyle.engine.figures import (AXIS_HEIGHT, LABEL_HEIGHT, RIGHT_MARGIN, ZOOM, frequency_ticks, hz_to_row,
                                    seconds_to_column, time_ticks)
from restyle.engine.mini import BUNDLED_STYLES, DEMO_CONTENT, DEMO_STYLE
from restyle.engine.mini.acceptance import AcceptanceSettings
from restyle.engine.mini.architecture import MINI_SPECTROGRAM
from restyle.engine.mini.shipped import RECOMMENDED, train_shipped_styles, write_style_example
from restyle.engine.spectrogram import SpectrogramFormat, _hz_to_mel, _mel_to_hz
from restyle.engine.style_check import check_style
from restyle.engine.style_file import export_style, import_style, read_style_file
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


def framed_panels(picture: Image.Image) -> list[int]:
    """The width of each panel's frame, left to right, read along the frames' top edge."""
    row = np.asarray(picture)[LABEL_HEIGHT - 1] < 200
    edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(int), [0]])))
    return [int(end - start) for start, end in zip(edges[::2], edges[1::2])]


def test_demo_writes_content_stylized_audio_and_a_three_panel_picture(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "10", "--styles-dir", str(tmp_path / "styles")]) == 0
    printed = capsys.readouterr().out
    content, stylized = sf.info(str(out / "content.wav")), sf.info(str(out / f"content_{DEMO_STYLE}.wav"))
    assert stylized.frames == content.frames == sf.info(str(DEMO_CONTENT)).frames
    assert stylized.samplerate == content.samplerate
    picture = Image.open(out / "spectrograms.png")
    frames = MINI_SPECTROGRAM.frames_for(round(content.frames * MINI_SPECTROGRAM.sample_rate / content.samplerate))
    content_frame, stylized_frame, style_frame = framed_panels(picture)
    assert content_frame == stylized_frame == ZOOM * frames + 2
    assert picture.height == LABEL_HEIGHT + ZOOM * MINI_SPECTROGRAM.n_mels + AXIS_HEIGHT
    assert "spectrograms.png" in printed
    example = sf.info(str(StyleLibrary().locate(DEMO_STYLE) / EXAMPLE_FILE))  # the shipped style's own clip
    assert style_frame == ZOOM * MINI_SPECTROGRAM.frames_for(example.frames) + 2


def test_demo_shows_a_note_for_a_style_that_keeps_no_clip(tmp_path):
    styles = tmp_path / "styles"
    shutil.copytree(StyleLibrary().locate("accordion"), styles / "accordion", ignore=shutil.ignore_patterns(EXAMPLE_FILE))
    out = tmp_path / "demo"  # the user's accordion (no example.flac) hides the shipped one
    assert main(["demo", "--out", str(out), "--steps", "4", "--style", "accordion", "--styles-dir", str(styles)]) == 0
    picture = Image.open(out / "spectrograms.png")
    note_frame = framed_panels(picture)[-1]
    note_box = np.asarray(picture)[LABEL_HEIGHT:-AXIS_HEIGHT, -note_frame:-RIGHT_MARGIN]
    assert (note_box < 100).any()  # the note's text (the box's frame is grey)


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
    assert "| a | tve | 0.7 | all | 2 |" in table and "| image -> audio, no VAE (the input's phase) |" in table
    assert "style sim." in capsys.readouterr().out


def test_acceptance_settings_default_to_the_published_protocol():
    settings = AcceptanceSettings()
    targets = settings.targets()
    assert {t.group for t in targets} == {"a", "b", "c"}
    assert sum(t.group == "a" for t in targets) * settings.pairs_per_target >= 20
    assert {t.style_type for t in targets if t.group in "bc"} == {"tve", "lora"}
    assert settings.strengths == (0.3, 0.5, 0.7)
    assert {t.style_type for t in targets if t.group == "a"} == {"tve"}  # the shipped styles


def test_acceptance_measures_group_a_with_adapters_too_when_asked():
    settings = AcceptanceSettings(groups=("a",), in_distribution_style_types=("tve", "lora")).validate()
    styles = [t.style for t in settings.targets()]
    assert styles == ["accordion", "accordion-lora", "tubular-bells", "tubular-bells-lora", "bird-tweet",
                      "bird-tweet-lora"]
    with pytest.raises(SettingsError, match="Unknown style type 'loar'"):
        AcceptanceSettings(groups=("a",), in_distribution_style_types=("loar",)).validate()
    with pytest.raises(SettingsError, match="at least one target, style type"):
        AcceptanceSettings(groups=("a", "b"), in_distribution_style_types=()).validate()


def test_demo_takes_content_and_a_stereo_44k_style_clip_at_any_rate(tmp_path, content_wav, capsys):
    out, style_clip = tmp_path / "demo", tmp_path / "style-clip.wav"
    sf.write(str(style_clip), np.stack([np.sin(np.arange(88200) * 0.05)] * 2, axis=1) * 0.3, 44100)  # 2 s, stereo
    assert main(["demo", "--out", str(out), "--content", str(content_wav), "--steps", "4",
                 "--style-clip", str(style_clip), "--styles-dir", str(tmp_path / "styles")]) == 0
    assert sf.info(str(out / f"content_{DEMO_STYLE}.wav")).frames == sf.info(str(content_wav)).frames
    frames = MINI_SPECTROGRAM.frames_for(MINI_SPECTROGRAM.sample_rate)  # the 1 s content, at 16 kHz
    picture = Image.open(out / "spectrograms.png")
    assert framed_panels(picture) == [ZOOM * frames + 2] * 2 + [ZOOM * MINI_SPECTROGRAM.frames_for(32000) + 2]


@pytest.mark.parametrize("style_clip, message", [
    ("missing.wav", "Audio file not found"),
    (".", "is a folder, not an audio file"),
])
def test_demo_refuses_a_bad_style_clip_in_one_line_before_the_model_loads(tmp_path, cli, monkeypatch,
                                                                          style_clip, message):
    import restyle.engine.commands as commands

    monkeypatch.setattr(commands, "load_engine", lambda *_: pytest.fail("the model was loaded"))
    result = cli("demo", "--out", tmp_path / "demo", "--style-clip", tmp_path / style_clip)
    assert result.returncode == 1
    assert result.stderr.startswith("restyle: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr and not (tmp_path / "demo").exists()


def test_demo_picture_third_panel_is_the_styles_example_else_a_note(engine, tmp_path, content_wav):
    shipped = style_panel(engine, "accordion", None)  # the shipped accordion keeps its first clip
    assert shipped.image is not None and EXAMPLE_FILE in shipped.label
    assert style_panel(engine, "accordion:0.5,bird-tweet:0.5", None).image is None  # a blend has no one clip
    users = tmp_path / "styles" / "accordion"  # a user's accordion hides the shipped one, and keeps no clip
    shutil.copytree(StyleLibrary().locate("accordion"), users, ignore=shutil.ignore_patterns(EXAMPLE_FILE))
    note = style_panel(engine, "accordion", None)
    assert note.image is None and "--style-clip" in note.note
    example = users / EXAMPLE_FILE  # then it keeps one
    sf.write(str(example), sf.read(str(content_wav))[0], 44100)
    kept = style_panel(engine, "accordion", None)
    assert kept.image is not None and EXAMPLE_FILE in kept.label
    given = style_panel(engine, "accordion", content_wav)  # --style-clip comes first
    assert given.image is not None and "content.wav" in given.label and EXAMPLE_FILE not in given.label


def test_demo_picture_ticks_sit_on_the_mel_bins_and_frames_of_the_format():
    fmt = MINI_SPECTROGRAM
    peaks = _mel_to_hz(torch.linspace(float(_hz_to_mel(fmt.f_min)), float(_hz_to_mel(fmt.f_max)), fmt.n_mels + 2,
                                     dtype=torch.float64))
    for k in (0, 40, fmt.n_mels - 1):  # filter k peaks at peaks[k + 1]; its image row is n_mels - 1 - k
        assert hz_to_row(float(peaks[k + 1]), fmt, zoom=2) == pytest.approx((fmt.n_mels - 1 - k) * 2 + 1)
    assert seconds_to_column(0.0, fmt, zoom=2) == 1.0  # the first frame's centre
    assert seconds_to_column(1.0, fmt, zoom=2) == pytest.approx(2 * fmt.sample_rate / fmt.hop_length + 1)
    assert [label for _, label in frequency_ticks(fmt)] == ["250 Hz", "500 Hz", "1 kHz", "2 kHz", "4 kHz"]
    assert all(0 <= row < fmt.n_mels * ZOOM for row, _ in frequency_ticks(fmt))  # 8 kHz is f_max: above the top bin
    assert "8 kHz" in [label for _, label in frequency_ticks(SpectrogramFormat())]  # Riffusion's goes to 10 kHz
    assert [label for _, label in time_ticks(fmt.frames_for(5 * fmt.sample_rate), fmt)] == [f"{s} s" for s in range(6)]


@needs_fluidsynth
def test_a_shipped_style_keeping_a_demo_example_stays_healthy_and_exports(tmp_path):
    shipped = tmp_path / "shipped"
    shutil.copytree(StyleLibrary().locate("accordion"), shipped / "accordion")
    example = write_style_example("accordion", shipped / "accordion", MINI_SPECTROGRAM.sample_rate)
    assert example == shipped / "accordion" / EXAMPLE_FILE
    written = sf.info(str(example))
    assert written.samplerate == MINI_SPECTROGRAM.sample_rate and 0 < written.duration <= 5.0
    library = StyleLibrary(tmp_path / "styles", shipped=shipped)
    assert library.names() == ["accordion"] and library.info("accordion").base_model == "mini"
    info = library.info("accordion")
    style_file = read_style_file(export_style(library, "accordion", tmp_path / "accordion.restyle"))
    imported = import_style(StyleLibrary(tmp_path / "friend"), style_file, info.base_fingerprint, "mini")
    assert check_style(imported).name == "accordion" and not (imported / EXAMPLE_FILE).exists()


@needs_fluidsynth
def test_shipped_styles_are_rebuilt_with_the_grids_settings_and_no_temporary_paths(tiny_base, tmp_path):
    engine = Engine(tiny_base, StyleLibrary(tmp_path / "unused"))
    written = train_shipped_styles(engine, TrainSettings(steps=1), folder=tmp_path / "shipped")
    assert sorted(folder.name for folder in written) == sorted(BUNDLED_STYLES)
    for folder in written:
        info = json.loads((folder / "style.json").read_text())
        assert (info["recommended_scale"], info["recommended_strength"]) == RECOMMENDED[folder.name]
        assert all("path" not in clip for clip in info["training"]["clips"]) and (folder / EXAMPLE_FILE).is_file()


def test_committed_shipped_styles_carry_the_grids_recommended_settings(tmp_path):
    shipped = StyleLibrary(tmp_path / "no-user-styles")  # the package's styles only
    infos = {name: shipped.info(name) for name in BUNDLED_STYLES}
    assert {name: (i.recommended_scale, i.recommended_strength) for name, i in infos.items()} == RECOMMENDED


@pytest.mark.parametrize("args, message", [
    (["--pairs", "0"], "at least one target, style type, pair"),
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


@pytest.mark.parametrize("phase, in_phase", [("input", True), ("griffin-lim", False)])
def test_stylized_audio_stays_in_phase_with_the_input_so_dry_and_wet_mix_cleanly(mini_base, tmp_path, phase, in_phase):
    """By default the rebuilt audio takes the input's own phase: at a low strength it lines up with the input
    sample for sample (a producer blending dry and wet hears no comb filtering); Griffin-Lim's phase does not."""
    rate = MINI_SPECTROGRAM.sample_rate
    content = Clip((0.5 * bells([262.0, 330.0, 392.0], 2.0, rate))[None].astype(np.float32), rate)
    engine = Engine(mini_base, StyleLibrary(tmp_path / "styles"), EngineSettings(phase=phase))
    mix = engine.style_mix("accordion")
    wet = engine.stylize_samples(content, mix, SamplerSettings(strength=0.2, steps=10))[0]
    correlation = float(np.corrcoef(wet, content.samples[0])[0, 1])
    assert (correlation > 0.5) if in_phase else (abs(correlation) < 0.2), correlation


def test_an_unknown_phase_source_is_refused_in_one_line():
    with pytest.raises(SettingsError, match="phase"):
        EngineSettings(phase="zero")
