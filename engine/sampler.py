"""Style transfer in latent space: bias-reduced stylization (BRS), then DDIM with classifier-free guidance.

For a strength s and a schedule of N steps, n = floor(s * N) DDIM steps run, from the schedule timestep t_p
where n steps remain down to the end. The content latent is noised to exactly t_p (no off-by-one), and with BRS
the noise is the UNet's own estimate at t_p under the style. UNet batches per call: 1 (BRS) + n (CFG, batch 2B).
A style with a LoRA adapter (adapters.py) runs the style's predictions with the adapter and the unconditional one
without it, so each CFG step is two calls of B: 1 + 2n calls.
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler

from .adapters import UNetAdapters
from .base_model import BaseModel
from .conditioning import TextConditioner
from .errors import CancelledError, SettingsError
from .style import DEFAULT_SCALE, DEFAULT_STRENGTH, StyleMix

NoisePredictor = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class SamplerSettings:
    """The user's knobs. Defaults are the method's published example (scale 5.0, strength 0.7, 50 steps)."""

    strength: float = DEFAULT_STRENGTH
    scale: float = DEFAULT_SCALE
    steps: int = 50
    seed: int = 0
    brs: bool = True

    @property
    def denoise_steps(self) -> int:
        return math.floor(self.strength * self.steps + 1e-9)

    @property
    def unet_batches(self) -> int:
        """Progress ticks per window batch: one for BRS plus one per guided step (whatever its UNet calls)."""
        return int(self.brs) + self.denoise_steps

    def validate(self) -> "SamplerSettings":
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
        return self


class TorchUNet:
    """The base model's UNet as a noise predictor: (latents, timestep, context) -> predicted noise."""

    def __init__(self, base: BaseModel):
        self.base = base

    @torch.inference_mode()
    def __call__(self, latents: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        with self.base.autocast():
            return self.base.unet(latents, timestep, encoder_hidden_states=context).sample.float()


def make_scheduler(base: BaseModel) -> DDIMScheduler:
    """DDIM (eta 0) from the base model's betas; no x0 clipping (latents are not bounded to [-1, 1])."""
    return DDIMScheduler.from_config(base.scheduler_config, clip_sample=False, set_alpha_to_one=False)


class Sampler:
    """Runs BRS + guided DDIM for one base model; style contexts are cached per (style mix, schedule)."""

    def __init__(self, base: BaseModel, conditioner: TextConditioner, noise_predictor: NoisePredictor | None = None):
        self.base = base
        self.conditioner = conditioner
        self.noise_predictor = noise_predictor or TorchUNet(base)
        self.scheduler = make_scheduler(base)
        self._contexts: OrderedDict[tuple, torch.Tensor] = OrderedDict()

    def timesteps(self, settings: SamplerSettings) -> torch.Tensor:
        """The last floor(strength * steps) timesteps of a ``steps``-step DDIM schedule, noisiest first."""
        self.scheduler.set_timesteps(settings.steps, device=self.base.device)
        return self.scheduler.timesteps[settings.steps - settings.denoise_steps:]

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
        settings.validate()
        timesteps = self.timesteps(settings)
        contexts = self.style_contexts(mix, timesteps)
        batch = content_latents.shape[0]
        generator = torch.Generator().manual_seed(settings.seed)
        noise = torch.randn(content_latents.shape[1:], generator=generator).to(content_latents.device)
        noise = noise.expand_as(content_latents)

        start = timesteps[:1]
        if settings.brs:
            _check(should_cancel)
            noisy = self.scheduler.add_noise(content_latents, noise, start)
            with self.styled(mix):
                noise = self.noise_predictor(noisy, start.expand(batch), contexts[0:1].expand(batch, -1, -1))
            _tick(on_step)
        latents = self.scheduler.add_noise(content_latents, noise, start)

        unconditional = self.conditioner.unconditional().expand(batch, -1, -1)
        for i, t in enumerate(timesteps):
            _check(should_cancel)
            eps_plain, eps_style = self.guidance_pair(latents, t, unconditional, contexts[i : i + 1], mix)
            guided = eps_plain + settings.scale * (eps_style - eps_plain)
            latents = self.scheduler.step(guided, t, latents, eta=0.0).prev_sample
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
