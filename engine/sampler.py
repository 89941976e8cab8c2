"""Style transfer in latent space: bias-reduced stylization (BRS), then a diffusers solver with classifier-free
guidance (DDIM by default; DPM-Solver++ 2M, UniPC and DEIS by name, see ``SAMPLERS``).

For a strength s and a schedule of N steps, n = floor(s * N) solver steps run: the last n timesteps of the
solver's N-step schedule, as diffusers' img2img pipelines truncate it. The content latent is noised to exactly the
first of them, and with BRS the noise is the UNet's own estimate there under the style. UNet batches per call:
1 (BRS) + n (CFG, batch 2B). A style with a LoRA adapter (adapters.py) runs the style's predictions with the
adapter and the unconditional one without it, so each CFG step is two calls of B: 1 + 2n calls. Solvers are
stateful (multistep solvers keep past predictions), so every ``sample`` call builds its own from the base model's
scheduler config: jobs on other threads never share one.
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler, DEISMultistepScheduler, DPMSolverMultistepScheduler, UniPCMultistepScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from .adapters import UNetAdapters
from .base_model import BaseModel
from .conditioning import TextConditioner
from .errors import CancelledError, SettingsError
from .style import DEFAULT_SCALE, DEFAULT_STRENGTH, StyleMix

NoisePredictor = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
MAX_SEED = 2**63 - 1

# name -> (diffusers scheduler class, config overrides). All are first-order per UNet call (one guided batch per
# step), deterministic (no noise injected), and take integer timesteps (what the ONNX export's UNet takes).
SAMPLERS: dict[str, tuple[type, dict]] = {
    "ddim": (DDIMScheduler, {"clip_sample": False, "set_alpha_to_one": False}),  # eta 0; latents are not in [-1, 1]
    "dpm++2m": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpm++2m-karras": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2,
                                                      "use_karras_sigmas": True}),
    "unipc": (UniPCMultistepScheduler, {"solver_order": 2}),
    "deis": (DEISMultistepScheduler, {"solver_order": 2}),
}
DEFAULT_SAMPLER = "unipc"  # measured: docs/performance.md, "Solvers"
DEFAULT_STEPS = 10


@dataclass(frozen=True)
class SamplerSettings:
    """The user's knobs, checked when made. Defaults: the method's published example (scale 5.0, strength 0.7),
    sampled with UniPC at 10 steps, measured as close to the method's DDIM-50 as DDIM-50 is to itself with another
    seed (docs/performance.md, "Solvers"); ``sampler="ddim", steps=50`` is the method's own."""

    strength: float = DEFAULT_STRENGTH
    scale: float = DEFAULT_SCALE
    steps: int = DEFAULT_STEPS
    seed: int = 0
    brs: bool = True
    sampler: str = DEFAULT_SAMPLER

    def __post_init__(self) -> None:
        self._check()

    @property
    def denoise_steps(self) -> int:
        return math.floor(self.strength * self.steps + 1e-9)

    @property
    def unet_batches(self) -> int:
        """Progress ticks per window batch: one for BRS plus one per guided step (whatever its UNet calls)."""
        return int(self.brs) + self.denoise_steps

    def _check(self) -> None:
        """Raise SettingsError, in words for a musician, for any knob out of range."""
        if self.sampler not in SAMPLERS:
            raise SettingsError(f"Unknown sampler '{self.sampler}': use {', '.join(SAMPLERS)}.")
        if not 0.0 < self.strength <= 1.0:
            raise SettingsError(f"strength {self.strength} is out of range: use a value above 0 (0 would change "
                                "nothing) and at most 1.")
        if not 0.0 <= self.scale <= 30.0:
            raise SettingsError(f"scale {self.scale} is out of range: use 0 to 30 (5 is typical).")
        if not 1 <= self.steps <= 1000:
            raise SettingsError(f"steps {self.steps} is out of range: use 1 to 1000 (50 is typical).")
        if not 0 <= self.seed <= MAX_SEED:
            raise SettingsError(f"seed {self.seed} is out of range: use a whole number from 0 to 2^63-1.")
        if self.denoise_steps < 1:
            raise SettingsError(
                f"strength {self.strength} x {self.steps} steps leaves no step to run: raise strength or steps."
            )


class TorchUNet:
    """The base model's UNet as a noise predictor: (latents, timestep, context) -> predicted noise.

    ``compile``: run it through ``torch.compile`` (compiled on the first call of each shape, minutes; inductor
    keeps its compiled kernels in its on-disk cache). The base model's own UNet is left as it is (training and
    LoRA adapters use it); a changed adapter makes torch recompile.
    """

    def __init__(self, base: BaseModel, compile: bool = False):
        self.base = base
        self.compiled = torch.compile(base.unet, dynamic=False) if compile else None

    @torch.inference_mode()
    def __call__(self, latents: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        unet = self.base.unet if self.compiled is None else self.compiled
        with self.base.autocast():
            return unet(latents, timestep, encoder_hidden_states=context).sample.float()


def make_scheduler(base: BaseModel, name: str = DEFAULT_SAMPLER) -> SchedulerMixin:
    """A fresh solver ``name`` (see ``SAMPLERS``) from the base model's scheduler config (its betas, spacing)."""
    cls, overrides = SAMPLERS[name]
    return cls.from_config(base.scheduler_config, **overrides)


def img2img_timesteps(scheduler: SchedulerMixin, settings: "SamplerSettings", device: torch.device) -> torch.Tensor:
    """Set ``scheduler`` to the last floor(strength * steps) timesteps of its ``steps``-step schedule, noisiest
    first (diffusers' img2img truncation), and return them."""
    scheduler.set_timesteps(settings.steps, device=device)
    begin = (settings.steps - settings.denoise_steps) * scheduler.order
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(begin)
    return scheduler.timesteps[begin:]


class Sampler:
    """Runs BRS + a guided solver for one base model; style contexts are cached per (style mix, schedule)."""

    def __init__(self, base: BaseModel, conditioner: TextConditioner, noise_predictor: NoisePredictor | None = None):
        self.base = base
        self.conditioner = conditioner
        self.noise_predictor = noise_predictor or TorchUNet(base)
        self._contexts: OrderedDict[tuple, torch.Tensor] = OrderedDict()

    def timesteps(self, settings: SamplerSettings) -> torch.Tensor:
        """The timesteps ``settings`` runs (one guided UNet batch each), noisiest first."""
        return img2img_timesteps(make_scheduler(self.base, settings.sampler), settings, self.base.device)

    @torch.no_grad()
    def style_contexts(self, mix: StyleMix, timesteps: torch.Tensor) -> torch.Tensor:
        """Text-encoder contexts for the style at each timestep, (n, length, width); computed once and cached."""
        key = (mix.key, tuple(timesteps.tolist()))
        if key not in self._contexts:
            embeddings = mix.embedding(timesteps)
            self._contexts[key] = self.conditioner.style_context(embeddings)
            while len(self._contexts) > 16:
                self._contexts.popitem(last=False)
        self._contexts.move_to_end(key)
        return self._contexts[key]

    @torch.no_grad()
    def sample(
        self,
        content_latents: torch.Tensor,
        mix: StyleMix,
        settings: SamplerSettings,
        on_step: Callable[[], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> torch.Tensor:
        """Stylize a batch of content latents (B, C, h, w). Every item gets the same noise (same seed)."""
        with self.adapters_kept(mix):
            return self._sample(content_latents, mix, settings, on_step, should_cancel)

    def adapters_kept(self, mix: StyleMix) -> contextlib.AbstractContextManager:
        """Inside: the mix's adapters stay loaded in the UNet between calls (a no-op for TVE-only styles)."""
        return UNetAdapters.of(self.base).kept() if mix.adapters else contextlib.nullcontext()

    def _sample(
        self,
        content_latents: torch.Tensor,
        mix: StyleMix,
        settings: SamplerSettings,
        on_step: Callable[[], None] | None,
        should_cancel: Callable[[], bool] | None,
    ) -> torch.Tensor:
        scheduler = make_scheduler(self.base, settings.sampler)  # this call's own: solvers keep state
        timesteps = img2img_timesteps(scheduler, settings, self.base.device)
        contexts = self.style_contexts(mix, timesteps)
        batch = content_latents.shape[0]
        generator = torch.Generator().manual_seed(settings.seed)
        noise = torch.randn(content_latents.shape[1:], generator=generator).to(content_latents.device)
        noise = noise.expand_as(content_latents)

        start = timesteps[:1]
        if settings.brs:
            _check(should_cancel)
            noisy = scheduler.scale_model_input(scheduler.add_noise(content_latents, noise, start), start)
            with self.styled(mix):
                noise = self.noise_predictor(noisy, start.expand(batch), contexts[0:1].expand(batch, -1, -1))
            _tick(on_step)
        latents = scheduler.add_noise(content_latents, noise, start)

        unconditional = self.conditioner.unconditional().expand(batch, -1, -1)
        for i, t in enumerate(timesteps):
            _check(should_cancel)
            model_input = scheduler.scale_model_input(latents, t)
            eps_plain, eps_style = self.guidance_pair(model_input, t, unconditional, contexts[i : i + 1], mix)
            guided = eps_plain + settings.scale * (eps_style - eps_plain)
            latents = scheduler.step(guided, t, latents).prev_sample
            _tick(on_step)
        return latents

    def styled(self, mix: StyleMix) -> contextlib.AbstractContextManager:
        """Inside: the UNet runs with the mix's adapters (a no-op for TVE-only styles)."""
        adapters = mix.adapters
        return UNetAdapters.of(self.base).applied(adapters) if adapters else contextlib.nullcontext()

    def guidance_pair(
        self, latents: torch.Tensor, t: torch.Tensor, unconditional: torch.Tensor, context: torch.Tensor,
        mix: StyleMix,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(no-style, style) noise predictions: one batch of 2B, or two of B when the style has an adapter."""
        batch = latents.shape[0]
        context = context.expand(batch, -1, -1)
        if not mix.adapters:
            both = self.noise_predictor(torch.cat([latents, latents]), t.expand(2 * batch),
                                        torch.cat([unconditional, context]))
            return both.chunk(2)
        eps_plain = self.noise_predictor(latents, t.expand(batch), unconditional)  # the base model: adapters off
        with self.styled(mix):
            eps_style = self.noise_predictor(latents, t.expand(batch), context)
        return eps_plain, eps_style


def _check(should_cancel: Callable[[], bool] | None) -> None:
    if should_cancel is not None and should_cancel():
        raise CancelledError("Stopped on request; nothing was written.")


def _tick(on_step: Callable[[], None] | None) -> None:
    if on_step is not None:
        on_step()
