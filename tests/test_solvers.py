"""Sampler solvers (DDIM, DPM-Solver++ 2M, UniPC, DEIS): UNet budget, timesteps fed to the style, determinism,
cancel, ONNX parity; and the GPU path's choices that can be checked on a CPU (stored dtypes, SDPA, compile, window
batches)."""

import math

import pytest
import torch

from restyle.engine import CancelledError, Engine, SamplerSettings, SettingsError, StyleLibrary
from restyle.engine.backends import create_backend
from restyle.engine.base_model import stored_dtypes
from restyle.engine.engine import EngineSettings
from restyle.engine.sampler import SAMPLERS, Sampler, TorchUNet, img2img_timesteps, make_scheduler

SOLVERS = list(SAMPLERS)


class RecordingUNet:
    """Wraps the noise predictor; records each batch's timestep, size and context."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[tuple[int, int, torch.Tensor]] = []

    def __call__(self, latents, timestep, context):
        self.calls.append((int(timestep.reshape(-1)[0]), latents.shape[0], context.clone()))
        return self.inner(latents, timestep, context)


def content_latents(engine: Engine, batch: int = 1) -> torch.Tensor:
    """Latents of a deterministic pseudo-content of the tiny model's latent shape."""
    fmt = engine.base.spectrogram
    factor = 2 ** (len(engine.base.vae.config.block_out_channels) - 1)
    shape = (batch, engine.base.vae.config.latent_channels, fmt.n_mels // factor, fmt.width // factor)
    return torch.randn(shape, generator=torch.Generator().manual_seed(7))


@pytest.mark.parametrize("solver", SOLVERS)
def test_each_solver_runs_brs_then_one_guided_batch_per_scheduled_timestep(trained_engine, content_wav, tmp_path,
                                                                           solver):
    settings = SamplerSettings(strength=0.6, scale=4.0, steps=10, seed=2, sampler=solver)
    recorder = RecordingUNet(trained_engine.sampler.noise_predictor)
    trained_engine.sampler.noise_predictor = recorder
    trained_engine.stylize(content_wav, "bells", settings, tmp_path / "o.wav")
    schedule = trained_engine.sampler.timesteps(settings).tolist()
    per_window = 1 + math.floor(0.6 * 10)
    assert len(schedule) == settings.denoise_steps == 6 and settings.unet_batches == per_window
    assert len(recorder.calls) == 2 * per_window  # 1 s of audio = 2 windows of the tiny model
    brs, *guided = recorder.calls[:per_window]
    assert (brs[0], brs[1]) == (schedule[0], 1), "BRS: one conditional batch at the first timestep of the schedule"
    assert [(t, b) for t, b, _ in guided] == [(t, 2) for t in schedule], "one CFG batch of 2 per timestep"


@pytest.mark.parametrize("solver", SOLVERS)
def test_the_style_is_fed_the_true_timestep_at_every_call(trained_engine, solver):
    settings = SamplerSettings(strength=0.5, steps=8, seed=1, sampler=solver)
    mix = trained_engine.style_mix("bells")
    recorder = RecordingUNet(trained_engine.sampler.noise_predictor)
    sampler = Sampler(trained_engine.base, trained_engine.conditioner, recorder)
    sampler.sample(content_latents(trained_engine), mix, settings)
    for t, batch, context in recorder.calls:
        expected = trained_engine.conditioner.style_context(mix.embedding(torch.tensor([t])))
        torch.testing.assert_close(context[-1:], expected, msg=f"the style's context at t={t}")


def test_the_schedule_is_the_solvers_own_truncated_like_img2img(tiny_base):
    for solver in SOLVERS:
        scheduler = make_scheduler(tiny_base, solver)
        settings = SamplerSettings(strength=0.7, steps=20, sampler=solver)
        ours = img2img_timesteps(scheduler, settings, tiny_base.device)
        scheduler.set_timesteps(20)
        full = scheduler.timesteps
        assert ours.tolist() == full[20 - 14:].tolist(), solver
    dpm = img2img_timesteps(make_scheduler(tiny_base, "dpm++2m"), SamplerSettings(strength=0.5, steps=10,
                                                                                   sampler="dpm++2m"), tiny_base.device)
    ddim = img2img_timesteps(make_scheduler(tiny_base, "ddim"), SamplerSettings(strength=0.5, steps=10),
                             tiny_base.device)
    assert dpm.tolist() != ddim.tolist(), "each solver spaces its own schedule"


@pytest.mark.parametrize("solver", SOLVERS)
def test_each_solver_is_deterministic_per_seed(trained_engine, solver):
    mix = trained_engine.style_mix("bells")
    latents = content_latents(trained_engine)
    run = lambda seed: trained_engine.sampler.sample(latents, mix, SamplerSettings(strength=0.5, steps=6, seed=seed,
                                                                                    sampler=solver))
    first, again, other = run(3), run(3), run(4)
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert not torch.allclose(first, other)


def test_multistep_solvers_keep_no_state_between_calls(trained_engine):
    """A job in between (another solver, other settings) does not change the next result: one scheduler per call."""
    mix = trained_engine.style_mix("bells")
    latents = content_latents(trained_engine)
    settings = SamplerSettings(strength=0.7, steps=8, seed=5, sampler="dpm++2m")
    first = trained_engine.sampler.sample(latents, mix, settings)
    trained_engine.sampler.sample(latents, mix, SamplerSettings(strength=0.4, steps=10, sampler="unipc"))
    torch.testing.assert_close(trained_engine.sampler.sample(latents, mix, settings), first, rtol=0, atol=0)


@pytest.mark.parametrize("solver", SOLVERS)
def test_cancel_stops_between_steps(trained_engine, solver):
    recorder = RecordingUNet(trained_engine.sampler.noise_predictor)
    sampler = Sampler(trained_engine.base, trained_engine.conditioner, recorder)
    ticks = []
    with pytest.raises(CancelledError):
        sampler.sample(content_latents(trained_engine), trained_engine.style_mix("bells"),
                       SamplerSettings(strength=0.8, steps=10, sampler=solver), on_step=lambda: ticks.append(1),
                       should_cancel=lambda: len(ticks) >= 3)
    assert len(recorder.calls) == len(ticks) == 3, "BRS and two guided steps ran, nothing after the request"


def test_windows_of_a_long_clip_share_unet_batches(tiny_base, styles_dir, content_wav, tmp_path):
    engine = Engine(tiny_base, StyleLibrary(styles_dir), EngineSettings(window_batch=2))
    recorder = RecordingUNet(engine.sampler.noise_predictor)
    engine.sampler.noise_predictor = recorder
    result = engine.stylize(content_wav, "bells", SamplerSettings(strength=0.5, steps=6, sampler="unipc"),
                            tmp_path / "o.wav")
    assert result.num_samples == 44100
    assert [b for _, b, _ in recorder.calls] == [2] + [4] * 3, "both windows in each batch: BRS 2, CFG 2 x 2"


def test_cli_stylize_takes_sampler_and_steps(cli, styles_dir, content_wav, tmp_path):
    import json

    run = cli("stylize", str(content_wav), "--style", "bells", "--sampler", "dpm++2m", "--steps", "8",
                         "--styles-dir", str(styles_dir), "-o", str(tmp_path / "o.wav"), "--device", "cpu",
                         "--dtype", "fp32", "--json")
    assert run.returncode == 0, run.stderr
    record = json.loads(run.stdout)
    assert (record["sampler"], record["steps"]) == ("dpm++2m", 8)
    with pytest.raises(SystemExit):  # argparse: not one of the choices
        cli("stylize", str(content_wav), "--style", "bells", "--sampler", "euler-x")


def test_knobs_carry_the_servers_sampler():
    from restyle.bridge.knobs import Knobs

    knobs = Knobs(style="bells", settings=SamplerSettings(sampler="unipc", steps=12))
    knobs.set("strength", 0.4)
    assert (knobs.settings().sampler, knobs.settings().steps) == ("unipc", 12)


# -- the GPU path's choices, as far as a CPU can check them ------------------------------------------------------
def test_weights_are_stored_at_the_run_precision_only_on_cuda(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert stored_dtypes(cpu, torch.bfloat16) == (torch.float32, torch.float32), "CPU: fp32 weights, bf16 autocast"
    assert stored_dtypes(cuda, torch.float32) == (torch.float32, torch.float32)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert stored_dtypes(cuda, torch.float16) == (torch.float16, torch.bfloat16), "VAE in bf16: no fp16 overflow"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert stored_dtypes(cuda, torch.float16) == (torch.float16, torch.float32)


def test_attention_runs_on_pytorch_sdpa(tiny_base):
    from diffusers.models.attention_processor import AttnProcessor2_0

    processors = tiny_base.unet.attn_processors
    assert processors and all(isinstance(p, AttnProcessor2_0) for p in processors.values())


def test_compile_wraps_the_sampling_unet_only(tiny_base, styles_dir):
    unet = TorchUNet(tiny_base, compile=True)  # lazy: nothing compiles until the first call
    assert unet.compiled is not None and unet.compiled is not tiny_base.unet
    assert type(tiny_base.unet).__name__ == "UNet2DConditionModel", "training and adapters keep the plain UNet"
    engine = Engine(tiny_base, StyleLibrary(styles_dir))
    engine.compile_unet()
    assert engine.sampler.noise_predictor is engine.backend.noise_predictor
    assert engine.backend.noise_predictor.compiled is not None
    with pytest.raises(SettingsError, match="torch backend only"):
        create_backend(tiny_base, "onnx", compile=True)


# -- ONNX Runtime --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def onnx_unet(tiny_base, tmp_path_factory):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from restyle.engine.onnx_export import export_onnx

    report = export_onnx(tiny_base, tmp_path_factory.mktemp("onnx") / "tiny-fp32")
    return create_backend(tiny_base, "onnx", report.folder).noise_predictor


@pytest.mark.parametrize("solver", SOLVERS)
def test_onnx_and_torch_agree_at_fp32_for_each_solver(trained_engine, onnx_unet, solver):
    settings = SamplerSettings(strength=0.6, scale=4.0, steps=10, seed=9, sampler=solver)
    mix = trained_engine.style_mix("bells")
    latents = content_latents(trained_engine, batch=2)
    torch_result = trained_engine.sampler.sample(latents, mix, settings)
    onnx_result = Sampler(trained_engine.base, trained_engine.conditioner, onnx_unet).sample(latents, mix, settings)
    error = float((onnx_result - torch_result).abs().max() / torch_result.abs().max())
    assert error < 1e-4, f"{solver}: relative difference {error:.2e}"
