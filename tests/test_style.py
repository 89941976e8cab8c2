"""The style module, the placeholder conditioning, style files and the style library."""

import json

import pytest
import torch

from restyle.engine import SettingsError, StyleExistsError, StyleLibrary, StyleNotFoundError
from restyle.engine import load_base_model
from restyle.engine.conditioning import TextConditioner, fit_to_dtype
from restyle.engine.style import Style, StyleInfo, TimeVaryingEmbedding, parse_style_mix


def test_module_width_follows_the_text_encoder(tiny_base):
    width = tiny_base.text_encoder.get_input_embeddings().embedding_dim
    module = TimeVaryingEmbedding(tiny_base.embed_dim, torch.zeros(width))
    out = module(torch.tensor([0, 500, 999]))
    assert out.shape == (3, width)
    assert module.mlp[0].out_features == 4 * width
    assert not torch.allclose(out[0], out[2]), "the embedding must vary with t"


def test_placeholder_replaces_only_its_own_input_embedding(tiny_base):
    conditioner = TextConditioner(tiny_base)
    unconditional = conditioner.unconditional().clone()
    a = conditioner.style_context(torch.zeros(1, tiny_base.embed_dim))
    b = conditioner.style_context(torch.ones(1, tiny_base.embed_dim))
    assert a.shape == (1, conditioner.max_length, tiny_base.embed_dim)
    # Position 0 is the start token, before '*': the causal encoder leaves it untouched; later positions change.
    torch.testing.assert_close(a[:, 0], b[:, 0])
    assert not torch.allclose(a[:, 1], b[:, 1])
    torch.testing.assert_close(conditioner.unconditional(), unconditional)
    assert not tiny_base.text_encoder.get_input_embeddings()._forward_hooks, "the hook is removed after use"


def test_a_style_embedding_too_large_for_fp16_still_conditions_an_fp16_text_encoder():
    base = load_base_model("mini", device="cpu", dtype="fp32")  # a fresh copy: its text encoder goes to fp16
    conditioner = TextConditioner(base)
    huge = conditioner.word_embedding("accordion")[None] * 3e6  # the size learned styles reach (norms of 1e6-1e7)
    reference = conditioner.style_context(huge)
    base.text_encoder.half()  # what the engine stores on CUDA with --dtype auto
    context = conditioner.style_context(huge)
    assert torch.isfinite(context).all(), "an fp16 text encoder turned the style into inf/NaN"
    similarity = torch.nn.functional.cosine_similarity(context.flatten(1), reference.flatten(1))
    assert similarity.item() > 0.9999
    small = conditioner.word_embedding("accordion")[None]
    torch.testing.assert_close(fit_to_dtype(small, torch.float16), small)  # a word-sized embedding is untouched
    torch.testing.assert_close(fit_to_dtype(huge, torch.bfloat16), huge)  # bf16 holds it: nothing to fit


def test_gradients_reach_the_placeholder_embedding_only(tiny_base):
    conditioner = TextConditioner(tiny_base)
    embedding = torch.zeros(1, tiny_base.embed_dim, requires_grad=True)
    conditioner.style_context(embedding).sum().backward()
    assert embedding.grad is not None and embedding.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny_base.text_encoder.parameters())


def test_style_files_round_trip(tmp_path):
    module = TimeVaryingEmbedding(8, torch.arange(8.0))
    info = StyleInfo(name="x", base_model="tiny", base_fingerprint="abc", embed_dim=8, loss_history=[1.0, 0.5])
    Style(info, module).save(tmp_path / "x")
    loaded = Style.load(tmp_path / "x")
    assert loaded.info == info and not loaded.module.training
    t = torch.tensor([3, 700])
    torch.testing.assert_close(loaded.module(t), module(t))


@pytest.mark.parametrize(
    "spec, expected",
    [("bird", [("bird", 1.0)]), ("a:0.7,b:0.3", [("a", 0.7), ("b", 0.3)]), ("a:1, b:1", [("a", 0.5), ("b", 0.5)])],
)
def test_style_mix_specs(spec, expected):
    parsed = parse_style_mix(spec)
    assert [name for name, _ in parsed] == [name for name, _ in expected]
    assert [weight for _, weight in parsed] == pytest.approx([weight for _, weight in expected])


@pytest.mark.parametrize("spec", ["a:x", "a:-1", ":0.5", "a:0,b:0"])
def test_bad_style_mix_specs_are_refused(spec):
    with pytest.raises(SettingsError):
        parse_style_mix(spec)


def _save(library, name):
    info = StyleInfo(name=name, base_model="tiny", base_fingerprint="f", embed_dim=4)
    return library.save(Style(info, TimeVaryingEmbedding(4, torch.zeros(4))))


def test_library_lists_renames_and_removes(tmp_path):
    library = StyleLibrary(tmp_path, shipped=None)
    _save(library, "bird")
    _save(library, "accordion")
    assert library.names() == ["accordion", "bird"]
    library.rename("bird", "bird song")
    assert library.names() == ["accordion", "bird song"]
    assert json.loads((tmp_path / "bird song" / "style.json").read_text())["name"] == "bird song"
    library.remove("accordion")
    assert library.names() == ["bird song"]
    assert [p.name for p in tmp_path.iterdir()] == ["bird song"], "no leftovers"


def test_library_refuses_overwrites_unknown_names_and_path_tricks(tmp_path):
    library = StyleLibrary(tmp_path, shipped=None)
    _save(library, "bird")
    with pytest.raises(StyleExistsError):
        _save(library, "bird")
    with pytest.raises(StyleNotFoundError, match="Known styles: bird"):
        library.info("owl")
    for bad in ["../escape", "a/b", ".hidden", "", "x" * 65]:
        with pytest.raises(SettingsError):
            library.folder(bad)


def test_library_location_follows_restyle_home(tmp_path, monkeypatch):
    monkeypatch.setenv("RESTYLE_HOME", str(tmp_path))
    assert StyleLibrary().root == tmp_path / "styles"
    assert StyleLibrary(tmp_path / "elsewhere").root == tmp_path / "elsewhere"


def test_atomic_folder_replaces_a_whole_folder_or_leaves_it_untouched(tmp_path):
    from restyle.engine.atomic import atomic_folder

    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(target) as tmp:
        (tmp / "new.txt").write_text("half")
        raise RuntimeError("interrupted")
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    with atomic_folder(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"], "no leftovers"
