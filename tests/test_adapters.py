"""Style adapters (a LoRA on the UNet's attention): training, the style file, stylizing, blends, refusals."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel

from restyle.engine import (
    CancelledError,
    Engine,
    LoraSettings,
    SamplerSettings,
    SettingsError,
    StyleLibrary,
    StyleNotFoundError,
    TrainSettings,
    load_base_model,
    parse_adapter,
)
from restyle.engine.adapters import ADAPTER_FILE, TRAINING_ADAPTER, UNetAdapters
from restyle.engine.audio import Clip
from restyle.cli import main
from restyle.engine.mini import BUNDLED_STYLES
from restyle.engine.style import Style, StyleMix
from signals import chord

FAST = SamplerSettings(strength=0.5, scale=4.0, steps=6, seed=3)


@pytest.fixture
def adapter_engine(tiny_base, adapter_styles_dir) -> Engine:
    return Engine(tiny_base, StyleLibrary(adapter_styles_dir))


@pytest.fixture
def content() -> Clip:
    return Clip(chord([220.0, 277.2, 329.6], 1.0, 44100)[None].astype(np.float32), 44100)


class RecordingUNet:
    """Wraps the noise predictor; records each call's batch size and the adapters the UNet applied in it."""

    def __init__(self, inner, adapters: UNetAdapters):
        self.inner, self.adapters = inner, adapters
        self.calls: list[tuple[int, list[str]]] = []

    def __call__(self, latents, timestep, context):
        self.calls.append((latents.shape[0], self.adapters.active()))
        return self.inner(latents, timestep, context)


def _snapshot(base) -> dict[str, torch.Tensor]:
    return {f"{part}.{name}": tensor.clone()
            for part, module in (("unet", base.unet), ("vae", base.vae), ("text", base.text_encoder))
            for name, tensor in module.state_dict().items()}


def _lora_layers(unet: torch.nn.Module) -> list[str]:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [name for name, module in unet.named_modules() if isinstance(module, BaseTunerLayer)]


def _without_adapter(style: Style) -> Style:
    info = type(style.info).from_dict({**style.info.to_dict(), "adapter": None})
    return Style(info, style.module)


# -- training -----------------------------------------------------------------------------------------------------
def test_training_with_an_adapter_changes_only_the_tve_and_the_lora(engine, style_clips):
    before = _snapshot(engine.base)
    fingerprint = engine.base.fingerprint
    settings = TrainSettings(steps=3, checkpoint_every=10, adapter=LoraSettings(learning_rate=1e-2))
    style = engine.train("lora", [style_clips], settings)
    after = _snapshot(engine.base)
    assert before.keys() == after.keys(), "the UNet keeps its plain layers after training"
    assert all(torch.equal(before[k], after[k]) for k in before), "a base-model weight changed"
    assert _lora_layers(engine.base.unet) == [] and UNetAdapters.of(engine.base).active() == []
    from restyle.engine.base_model import weights_fingerprint
    assert weights_fingerprint(engine.base.unet, engine.base.vae, engine.base.text_encoder) == fingerprint
    lora_b = [t for k, t in style.adapter.items() if ".lora_B." in k]
    assert lora_b and all(t.abs().max() > 0 for t in lora_b), "LoRA B starts at zero and must have learned"


def test_adapter_learns_on_every_attention_projection_self_and_cross(tiny_base):
    with UNetAdapters.of(tiny_base).training(LoraSettings(rank=3), seed=0) as params:
        wrapped = _lora_layers(tiny_base.unet)
        assert len(params) == 2 * len(wrapped) and all(p.requires_grad for p in params)
        assert all(p.shape[0] == 3 or p.shape[1] == 3 for p in params)
    attentions = [n for n, m in tiny_base.unet.named_modules() if n.endswith(("attn1", "attn2"))]
    expected = {f"{a}.{p}" for a in attentions for p in ("to_q", "to_k", "to_v", "to_out.0")}
    assert set(wrapped) == expected and any("attn1" in n for n in wrapped) and any("attn2" in n for n in wrapped)


def test_adapter_fits_riffusions_architecture_exactly():
    """SD 1.5's block layout (Riffusion) at tiny widths: module names depend on the layout only."""
    unet = UNet2DConditionModel(
        sample_size=8, layers_per_block=2, block_out_channels=(8, 8, 16, 16), norm_num_groups=4,
        cross_attention_dim=16, attention_head_dim=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    )
    unet.add_adapter(LoraSettings().peft_config(), TRAINING_ADAPTER)
    # 16 transformer blocks (6 down, 1 mid, 9 up), each with self- and cross-attention, 4 projections each.
    assert len(_lora_layers(unet)) == 16 * 2 * 4


def test_adapter_fits_the_shipped_mini_model():
    mini = load_base_model("mini", device="cpu", dtype="fp32")
    fingerprint = mini.fingerprint
    attentions = [n for n, m in mini.unet.named_modules() if n.endswith(("attn1", "attn2"))]
    with UNetAdapters.of(mini).training(LoraSettings(), seed=0):
        assert len(_lora_layers(mini.unet)) == 4 * len(attentions) > 0
    assert _lora_layers(mini.unet) == []
    from restyle.engine.base_model import weights_fingerprint
    assert weights_fingerprint(mini.unet, mini.vae, mini.text_encoder) == fingerprint


def test_resume_with_an_adapter_matches_an_uninterrupted_run(engine, style_clips):
    settings = TrainSettings(steps=6, checkpoint_every=100, adapter=LoraSettings(learning_rate=1e-2))
    straight = engine.train("straight", [style_clips], settings)
    calls = {"n": 0}

    def cancel_after_three():
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(CancelledError, match="resume"):
        engine.train("split", [style_clips], settings, should_cancel=cancel_after_three)
    resumed = engine.train("split", [style_clips], settings, resume=True)
    assert resumed.info.loss_history == straight.info.loss_history
    for name, tensor in straight.adapter.items():
        torch.testing.assert_close(resumed.adapter[name], tensor, rtol=0, atol=1e-6)


# -- the style file -----------------------------------------------------------------------------------------------
def test_style_file_stores_the_adapter_and_its_config(adapter_styles_dir):
    folder = adapter_styles_dir / "lora-bells"
    info = json.loads((folder / "style.json").read_text())
    assert info["adapter"] == {"type": "lora", "file": ADAPTER_FILE, "rank": 4, "alpha": 4.0,
                               "target_modules": ["to_q", "to_k", "to_v", "to_out.0"], "learning_rate": 0.01}
    from safetensors.torch import load_file
    tensors = load_file(str(folder / ADAPTER_FILE))
    assert all(k.endswith((".lora_A.weight", ".lora_B.weight")) for k in tensors)
    assert not any("lora" in k for k in load_file(str(folder / "style.safetensors")))


def test_save_and_load_round_trip_gives_identical_outputs(engine, style_clips, content):
    settings = TrainSettings(steps=2, checkpoint_every=10, adapter=LoraSettings(learning_rate=1e-2))
    trained = engine.train("round", [style_clips], settings)
    first = engine.stylize_samples(content, StyleMix(((trained, 1.0),)), FAST)
    UNetAdapters.of(engine.base).clear()  # the loaded style must bring its own weights
    loaded = Style.load(engine.library.locate("round"))
    assert loaded.info.adapter == trained.info.adapter and loaded.adapter.keys() == trained.adapter.keys()
    assert all(torch.equal(loaded.adapter[k], trained.adapter[k]) for k in trained.adapter)
    second = engine.stylize_samples(content, StyleMix(((loaded, 1.0),)), FAST)
    np.testing.assert_array_equal(first, second)


def test_tve_only_is_the_default_and_shipped_styles_load_unchanged(engine, style_clips):
    assert TrainSettings().adapter is None and parse_adapter("none") is None
    style = engine.train("plain", [style_clips], TrainSettings(steps=1))
    folder = engine.library.locate("plain")
    assert style.adapter is None and style.info.adapter is None and not (folder / ADAPTER_FILE).exists()
    assert json.loads((folder / "style.json").read_text())["adapter"] is None
    shipped = StyleLibrary(engine.library.root)
    for name in BUNDLED_STYLES:
        loaded = shipped.load(name)
        assert loaded.adapter is None and loaded.info.adapter is None and StyleMix(((loaded, 1.0),)).adapters == ()


# -- stylizing ----------------------------------------------------------------------------------------------------
def test_adapter_style_sounds_different_from_its_tve_alone(adapter_engine, content):
    style = adapter_engine.style("lora-bells")
    with_adapter = adapter_engine.stylize_samples(content, StyleMix(((style, 1.0),)), FAST)
    tve_only = adapter_engine.stylize_samples(content, StyleMix(((_without_adapter(style), 1.0),)), FAST)
    assert np.all(np.isfinite(with_adapter)) and not np.allclose(with_adapter, tve_only, atol=1e-4)


@pytest.mark.parametrize("brs", [True, False])
def test_unconditional_branch_runs_without_the_adapter(adapter_engine, content, brs):
    adapters = UNetAdapters.of(adapter_engine.base)
    recorder = RecordingUNet(adapter_engine.sampler.noise_predictor, adapters)
    adapter_engine.sampler.noise_predictor = recorder
    settings = SamplerSettings(strength=0.5, steps=6, brs=brs)
    adapter_engine.stylize_samples(content, adapter_engine.style_mix("lora-bells"), settings)
    steps, windows = math.floor(0.5 * 6), 2  # 1 s at the tiny model's 0.73 s windows
    assert len(recorder.calls) == windows * (int(brs) + 2 * steps), "BRS once, then (uncond, style) per step"
    per_window = recorder.calls[: int(brs) + 2 * steps]
    style_names = per_window[0][1] if brs else per_window[1][1]
    assert len(style_names) == 1 and all(batch == 1 for batch, _ in recorder.calls)
    expected = ([style_names] if brs else []) + [[], style_names] * steps
    assert [names for _, names in per_window] == expected
    assert _lora_layers(adapter_engine.base.unet) == [], "after stylizing the UNet has its plain layers again"


def test_unconditional_prediction_is_the_base_models(adapter_engine, tiny_base):
    latents, t = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0)), torch.tensor([500])
    uncond = adapter_engine.conditioner.unconditional()
    plain = adapter_engine.sampler.noise_predictor(latents, t, uncond)
    mix = adapter_engine.style_mix("lora-bells")
    context = adapter_engine.sampler.style_contexts(mix, t)
    eps_plain, eps_style = adapter_engine.sampler.guidance_pair(latents, t[0], uncond, context, mix)
    torch.testing.assert_close(eps_plain, plain, rtol=0, atol=0)
    with adapter_engine.sampler.styled(mix):
        torch.testing.assert_close(eps_style, adapter_engine.sampler.noise_predictor(latents, t, context))
    assert not torch.allclose(eps_style, adapter_engine.sampler.noise_predictor(latents, t, context))


def test_blend_mixes_the_adapters_with_the_blend_weights(adapter_engine, content):
    adapters = UNetAdapters.of(adapter_engine.base)
    mix = adapter_engine.style_mix("lora-bells:0.7,lora-chimes:0.3")
    assert [round(use.weight, 6) for use in mix.adapters] == [0.7, 0.3]
    with adapter_engine.sampler.styled(mix):
        active = adapters.active()
        layer = adapter_engine.base.unet.get_submodule(_lora_layers(adapter_engine.base.unet)[0])
        scalings = [layer.scaling[name] for name in active]
    assert len(active) == 2 and scalings == pytest.approx([0.7 * 4 / 4, 0.3 * 2 / 2])
    blend = adapter_engine.stylize_samples(content, mix, FAST)
    alone = adapter_engine.stylize_samples(content, adapter_engine.style_mix("lora-bells"), FAST)
    assert np.all(np.isfinite(blend)) and not np.allclose(blend, alone, atol=1e-4)


def test_blend_of_an_adapter_style_and_a_tve_only_style(tiny_base, adapter_styles_dir, styles_dir, content, tmp_path):
    library = StyleLibrary(tmp_path / "both")
    for folder in (adapter_styles_dir / "lora-bells", styles_dir / "bells"):
        library.save(Style.load(folder))
    engine = Engine(tiny_base, library)
    mix = engine.style_mix("lora-bells:0.5,bells:0.5")
    assert [use.weight for use in mix.adapters] == [0.5]
    assert np.all(np.isfinite(engine.stylize_samples(content, mix, FAST)))


# -- refusals -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, message", [
    ("lora:0", "rank 0 is out of range"),
    ("lora:x", "'x' in 'lora:x' is not a whole number"),
    ("foo", "Unknown adapter 'foo'"),
    ("lora:4:2", "is not a whole number"),
])
def test_bad_adapter_specs_are_refused_in_one_line(spec, message):
    with pytest.raises(SettingsError, match=message) as caught:
        parse_adapter(spec)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("spec", ["none", "lora", "lora:8", " LoRA:16 "])
def test_adapter_specs(spec):
    parsed = parse_adapter(spec)
    expected = {"none": None, "lora": LoraSettings(), "lora:8": LoraSettings(rank=8, alpha=8.0),
                " LoRA:16 ": LoraSettings(rank=16, alpha=16.0)}[spec]
    assert parsed == expected


def test_cli_refuses_a_bad_adapter_before_loading_anything(style_clips, tmp_path, capsys):
    code = main(["train", "x", str(style_clips), "--adapter", "lora:x", "--model", "tiny",
                 "--styles-dir", str(tmp_path / "styles")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "lora:4" in err and "Traceback" not in err


def test_cli_trains_an_adapter_style(style_clips, tmp_path, capsys):
    lib = ["--styles-dir", str(tmp_path / "styles")]
    code = main(["train", "cli-lora", str(style_clips), "--adapter", "lora:2", "--steps", "1", "--model", "tiny",
                 "--device", "cpu", "--dtype", "fp32", *lib])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["styles", "list", "--json", *lib]) == 0
    listed = {s["name"]: s for s in json.loads(capsys.readouterr().out)}
    assert listed["cli-lora"]["adapter"] == "lora:2"


@pytest.mark.parametrize("damage", ["missing file", "bad entry", "corrupt file"])
def test_damaged_adapter_is_refused_in_one_line(adapter_styles_dir, tmp_path, damage):
    folder = tmp_path / "lora-bells"
    shutil.copytree(adapter_styles_dir / "lora-bells", folder)
    if damage == "missing file":
        (folder / ADAPTER_FILE).unlink()
    elif damage == "corrupt file":
        (folder / ADAPTER_FILE).write_bytes(b"not safetensors")
    else:
        info = json.loads((folder / "style.json").read_text())
        (folder / "style.json").write_text(json.dumps(dict(info, adapter={"type": "lora"})))
    with pytest.raises(StyleNotFoundError, match="adapter") as caught:
        Style.load(folder)
    assert "\n" not in str(caught.value)
