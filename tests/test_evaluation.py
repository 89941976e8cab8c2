"""Evaluation: the metrics on hand-made embeddings, and the whole path with a tiny random CLAP."""

import json

import numpy as np
import pytest

from restyle.cli import main
from restyle.engine.embedders import ClapEmbedder, repeat_pad
from restyle.engine.evaluation import EmbeddingCache, pairs_by_name, score_pairs, summarize
from restyle.engine.metrics import bootstrap_interval, clap_score, content_preservation, pareto_front, style_fit
from signals import bells, chord
from tests.conftest import write_wav


def test_clap_score_is_relu_of_cosine():
    x, y = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert clap_score(x, x) == pytest.approx(1.0)
    assert clap_score(x, y) == 0.0  # orthogonal
    assert clap_score(x, -x) == 0.0  # opposite: the ReLU clamps -1 to 0
    assert clap_score(x, np.array([1.0, 1.0])) == pytest.approx(np.sqrt(0.5))
    assert content_preservation(x, 3 * x) == pytest.approx(1.0)


def test_style_fit_uses_the_mean_embedding_not_the_mean_of_cosines():
    stylized = np.array([1.0, 0.0])
    style = np.array([[1.0, 0.0], [0.0, 1.0]])
    mean_of_cosines = (1.0 + 0.0) / 2
    assert style_fit(stylized, style) == pytest.approx(np.sqrt(0.5))
    assert style_fit(stylized, style) != pytest.approx(mean_of_cosines)
    assert style_fit(stylized, np.array([0.0, 1.0])) == 0.0  # a text embedding is one row


def test_bootstrap_interval_brackets_the_mean():
    mean, low, high = bootstrap_interval([0.2, 0.4, 0.6, 0.8] * 5)
    assert mean == pytest.approx(0.5) and low < mean < high


def test_pareto_front():
    assert pareto_front([(0.5, 0.5), (0.6, 0.4), (0.4, 0.4), (0.5, 0.6)]) == [1, 3]


def test_repeat_pad_fills_ten_seconds():
    padded = repeat_pad(np.arange(3.0), 8)
    assert padded.tolist() == [0, 1, 2, 0, 1, 2, 0, 1]


@pytest.fixture
def eval_folders(tmp_path):
    content, stylized, style = tmp_path / "content", tmp_path / "stylized", tmp_path / "style"
    for folder in (content, stylized, style):
        folder.mkdir()
    for name, notes in (("a", [220.0]), ("a_b", [330.0])):  # "a_b" tests the longest-stem rule
        write_wav(content / f"{name}.wav", chord(notes, 1.0, 44100), 44100)
    write_wav(stylized / "a_bells.wav", bells([440.0], 1.0, 44100), 44100)
    write_wav(stylized / "a_b_bells.wav", bells([660.0], 1.0, 44100), 44100)
    (stylized / "a_b_broken.wav").write_bytes(b"not audio")
    write_wav(style / "s1.wav", bells([880.0], 1.0, 48000), 48000)
    return content, stylized, style


def test_pairs_are_matched_by_name_not_order(eval_folders):
    content, stylized, _ = eval_folders
    pairs = {(p.content.name, p.stylized.name, p.style) for p in pairs_by_name(stylized, content)}
    assert pairs == {("a.wav", "a_bells.wav", "bells"), ("a_b.wav", "a_b_bells.wav", "bells"),
                     ("a_b.wav", "a_b_broken.wav", "broken")}


def test_unreadable_files_are_skipped_and_the_rest_scored(eval_folders, tmp_path):
    content, stylized, style = eval_folders
    embedder = ClapEmbedder.tiny()
    cache = EmbeddingCache(tmp_path / "cache.json", embedder)
    report = score_pairs(pairs_by_name(stylized, content), embedder, [style / "s1.wav"], "bells", cache)
    assert len(report.scores) == 2 and [name for name, _ in report.skipped] == ["a_b_broken.wav"]
    assert all(0.0 <= s.cp <= 1.0 and 0.0 <= s.sf_audio <= 1.0 for s in report.scores)
    rows = summarize(report)
    assert rows[0]["n"] == 2 and rows[0]["cp_low"] <= rows[0]["cp"] <= rows[0]["cp_high"]
    cached = json.loads((tmp_path / "cache.json").read_text())
    assert len(cached) == 5  # two contents, two stylized, one style clip: the broken file is not cached
    assert all(k.startswith("tiny-clap") for k in cached)


def test_cli_with_a_manifest_writes_markdown_csv_and_json(eval_folders, tmp_path, capsys):
    content, stylized, style = eval_folders
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("content,stylized,style,scale,strength\n"
                        "content/a.wav,stylized/a_bells.wav,bells,3.5,0.45\n"
                        "content/a_b.wav,missing/a_b_bells.wav,bells,3.5,0.45\n")
    out = tmp_path / "results"
    assert main(["evaluate", "--content", str(content), "--manifest", str(manifest), "--style-clips", str(style),
                 "--clap", "tiny", "--out", str(out)]) == 0
    table = (out / "results.md").read_text()
    assert "| bells * | 3.5 | 0.45 |" in table and "Skipped a_b_bells.wav" in table
    assert (out / "results.csv").read_text().count("\n") == 2
    assert json.loads((out / "results.json").read_text())["summary"][0]["n"] == 1
    capsys.readouterr()


def test_run_mode_stylizes_a_grid_scores_it_and_writes_the_recommendation(trained_engine, styles_dir, tmp_path,
                                                                           capsys):
    import shutil

    library = tmp_path / "styles"
    shutil.copytree(styles_dir, library)
    content = tmp_path / "content"
    content.mkdir()
    write_wav(content / "loop.wav", chord([220.0, 330.0], 1.0, 44100), 44100)
    out = tmp_path / "eval"
    code = main(["evaluate", "--content", str(content), "--run", "--style", "bells", "--scale", "3,6",
                 "--strength", "0.5", "--steps", "4", "--clap", "tiny", "--out", str(out), "--model", "tiny",
                 "--device", "cpu", "--dtype", "fp32", "--styles-dir", str(library), "--write-recommended"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert sorted(r["scale"] for r in summary) == [3.0, 6.0] and any(r["pareto"] for r in summary)
    assert (out / "stylized" / "scale3_strength0.5" / "loop_bells.wav").is_file()
    info = json.loads((library / "bells" / "style.json").read_text())
    assert info["recommended_scale"] in (3.0, 6.0) and info["recommended_strength"] == 0.5


def test_missing_clap_weights_offline_name_what_to_download():
    from restyle.engine import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="hf download laion/clap-htsat-unfused"):
        ClapEmbedder.load("laion/clap-htsat-unfused")
