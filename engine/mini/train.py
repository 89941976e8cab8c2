"""Trains the mini base model from scratch on the packed v2 corpus (``corpus.py``), resumably, on a GPU or CPU.

Two phases, as latent diffusion is trained: first the VAE (L1 reconstruction of spectrogram crops plus a
small KL term), then the UNet and the text encoder together on the frozen VAE's latents: noise prediction
under Stable Diffusion's noise schedule with Min-SNR-5 loss weights (Hang et al., ICCV 2023: the same
quality in about a third of the steps, and the epsilon target the engine's sampler and style trainer expect),
a cosine learning-rate schedule after a linear warm-up, an EMA of the weights with warm-up (shipped), and
captions dropped 10 % of the time so guidance works. Each phase can be given a wall-clock budget: after 5
warm-up and 20 timed steps its step count is fixed to what fits, and the schedule follows it. A checkpoint is
written atomically every ``checkpoint_every`` steps; rerunning the same command resumes. Once the latents are
cached, the UNet phase needs only them and the checkpoint (not the corpus), and until its first step its
settings may change: the VAE can train on one machine and the UNet on another (a GPU, with a larger batch).
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from diffusers.training_utils import EMAModel
from transformers import CLIPTextModel, CLIPTokenizer

from ..atomic import atomic_folder, atomic_path, write_json
from ..base_model import SPECTROGRAM_FILE
from ..devices import pick_device
from ..seeding import fixed_seed
from ..errors import SettingsError
from ..machine import cpu_name
from ..progress import CancelCheck, Progress, ProgressCallback
from ..spectrogram import image_to_model_input
from ..tiny import SD_SCHEDULER_CONFIG
from .architecture import (
    MINI_SPECTROGRAM,
    VAE_FACTOR,
    build_text_encoder,
    build_tokenizer,
    build_unet,
    build_vae,
)
from .corpus import CorpusBuilder, CorpusSettings, corpus_words, load_corpus

LATENTS = "latents.pt"
CORPUS = "corpus"
TIMING_STEPS = 20  # steps timed before a phase with a time budget fixes its step count
WARMUP_STEPS = 5  # untimed first steps of a budgeted phase (a GPU's first steps pay for kernel selection)
UNET_FIELDS = ("unet_steps", "unet_batch", "unet_learning_rate", "warmup_steps", "min_snr_gamma", "caption_dropout",
               "ema_decay", "checkpoint_every", "unet_minutes")  # free to change while the UNet has not started


@dataclass(frozen=True)
class MiniTrainSettings:
    """Everything that decides the shipped weights; the defaults are mini v2's recipe (see docs/mini-model.md)."""

    seed: int = 0
    corpus: CorpusSettings = CorpusSettings()
    vae_steps: int = 3000
    vae_batch: int = 8
    vae_crop: int = 128  # frames per VAE training crop (the VAE is convolutional: full images not needed)
    vae_learning_rate: float = 5e-4
    kl_weight: float = 1e-6
    scale_crops: int = 64  # images encoded to measure the latents' spread (the VAE's scaling factor)
    unet_steps: int = 6000
    unet_batch: int = 32
    unet_learning_rate: float = 5e-4
    warmup_steps: int = 500
    min_snr_gamma: float = 5.0  # 0 = plain MSE
    caption_dropout: float = 0.1
    ema_decay: float = 0.9995  # the EMA's ceiling; it warms up as 1 - (1 + step) ** -2/3
    checkpoint_every: int = 500
    vae_minutes: float = 0.0  # wall-clock budgets (0: none): the step counts above become ceilings
    unet_minutes: float = 0.0

    def __post_init__(self):
        counts = ("vae_steps", "vae_batch", "vae_crop", "scale_crops", "unet_steps", "unet_batch", "checkpoint_every")
        for name in counts:
            if getattr(self, name) < 1:
                raise SettingsError(f"{name.replace('_', ' ')} must be at least 1, not {getattr(self, name)}.")
        if self.vae_minutes < 0 or self.unet_minutes < 0:
            raise SettingsError("a time budget in minutes cannot be negative (0 means none).")


@dataclass
class Networks:
    tokenizer: CLIPTokenizer
    text_encoder: CLIPTextModel
    vae: AutoencoderKL
    unet: UNet2DConditionModel


def new_networks(seed: int, words: list[str]) -> Networks:
    with fixed_seed(seed):
        tokenizer = build_tokenizer(words)
        return Networks(tokenizer, build_text_encoder(tokenizer), build_vae(), build_unet())


def random_crops(images: torch.Tensor, count: int, width: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random crops ``width`` wide from random rows of (N, ..., W) ``images``, and the rows chosen.

    The random numbers come from the CPU ``generator`` (the same on every device); the gather runs where the
    images are.
    """
    rows = torch.randint(len(images), (count,), generator=generator)
    starts = torch.randint(images.shape[-1] - width + 1, (count,), generator=generator)
    columns = (starts[:, None] + torch.arange(width)).to(images.device)
    picked = images[rows.to(images.device)]
    index = columns.reshape(count, *([1] * (picked.dim() - 2)), width).expand(*picked.shape[:-1], width)
    return torch.gather(picked, -1, index), rows


def sample_latents(posterior, generator: torch.Generator) -> torch.Tensor:
    """A draw from a VAE posterior, with the CPU ``generator``'s numbers (the same on every device)."""
    noise = torch.randn(posterior.mean.shape, generator=generator).to(posterior.mean.device)
    return posterior.mean + posterior.std * noise


def min_snr_weights(alphas_cumprod: torch.Tensor, t: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma loss weights for noise prediction: min(SNR(t), gamma) / SNR(t); all ones when gamma is 0."""
    if gamma <= 0:
        return torch.ones(len(t), device=t.device)
    snr = alphas_cumprod[t] / (1 - alphas_cumprod[t])
    return torch.clamp(snr, max=gamma) / snr


def cosine_with_warmup(step: int, warmup: int, total: int) -> float:
    """Learning-rate factor: linear warm-up to 1, then a cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class MiniTrainer:
    """Runs both phases in a work folder (corpus, latents, checkpoint) and writes the model in diffusers layout."""

    def __init__(self, work: str | Path, settings: MiniTrainSettings = MiniTrainSettings(), device: str = "auto"):
        self.work = Path(work)
        self.settings = settings
        self.device = pick_device(device)
        self.checkpoint = self.work / "checkpoint.pt"
        self.log: dict = {"settings": asdict(settings), "seconds": {}, "steps": {}, "machine": _machine(self.device)}
        self._timing_began = 0.0  # when a budgeted phase's timed steps began

    def run(self, out: str | Path, progress: ProgressCallback | None = None, cancel: CancelCheck | None = None) -> Path:
        s = self.settings
        self.work.mkdir(parents=True, exist_ok=True)
        state = torch.load(self.checkpoint, weights_only=False, map_location="cpu") if self.checkpoint.is_file() else None
        self._check_settings(state)
        if state is None:
            (self.work / LATENTS).unlink(missing_ok=True)  # made by an earlier run's VAE
        else:
            self.log = {**state["log"], "machine": self.log["machine"], "settings": asdict(s)}
        from_latents = state is not None and state["phase"] == "unet" and (self.work / LATENTS).is_file()
        if not from_latents:
            nets, state = self._networks_from_corpus(state, progress, cancel)
        cached = torch.load(self.work / LATENTS, map_location=self.device)
        if from_latents:  # the corpus is not needed again: the UNet phase can move machines
            nets = self._networks_from_latents(state, cached["captions"])
        self._train_unet(nets, cached["latents"].float(), cached["captions"], state, progress, cancel)
        return self.save(nets, Path(out))

    def _check_settings(self, state: dict | None) -> None:
        """A checkpoint continues only under its own settings, except the UNet's before its first step."""
        if state is None:
            return
        ours, theirs = asdict(self.settings), state["settings"]
        if state["phase"] == "unet" and state["step"] == 0:
            ours, theirs = ({k: v for k, v in d.items() if k not in UNET_FIELDS} for d in (ours, theirs))
        if ours != theirs:
            raise SettingsError(f"{self.checkpoint} was made with other settings: remove it or use another --work.")

    def _networks_from_corpus(self, state: dict | None, progress, cancel) -> tuple[Networks, dict]:
        """Render or load the corpus, train the VAE if it is not done, and cache the latents."""
        began = time.perf_counter()
        images, captions = load_corpus(CorpusBuilder(self.work / CORPUS, self.settings.corpus).build())
        self._add_seconds("corpus", began)
        self.log["chunks"] = len(images)
        nets = self._networks(corpus_words(captions))
        images = images.to(self.device)
        if state is None or state["phase"] == "vae":
            state = self._train_vae(nets, images, state, progress, cancel)
        self._load_vae(nets, state)
        if not (self.work / LATENTS).is_file():
            self._encode(nets.vae, images, captions)
        return nets, state

    def _networks_from_latents(self, state: dict, captions: list[str]) -> Networks:
        """The networks for a run whose VAE is trained and whose latents are cached: no corpus needed."""
        nets = self._networks(corpus_words(captions))
        self._load_vae(nets, state)
        return nets

    def _networks(self, words: list[str]) -> Networks:
        nets = new_networks(self.settings.seed, words)
        nets.vae.to(self.device); nets.unet.to(self.device); nets.text_encoder.to(self.device)
        return nets

    @staticmethod
    def _load_vae(nets: Networks, state: dict) -> None:
        nets.vae.load_state_dict(state["vae"])
        nets.vae.register_to_config(scaling_factor=state["scaling_factor"])

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _budgeted_total(self, phase: str, step: int, ceiling: int, minutes: float, began: float) -> int | None:
        """After the warm-up and timed steps of a budgeted phase: the step count that fits its budget (None: not yet)."""
        if minutes <= 0 or step not in (WARMUP_STEPS, WARMUP_STEPS + TIMING_STEPS):
            return None
        now = time.perf_counter()
        if step == WARMUP_STEPS:
            self._timing_began = now
            return None
        per_step = (now - self._timing_began) / TIMING_STEPS
        left = minutes * 60 - (now - began)
        total = max(step, min(ceiling, step + int(left / per_step)))
        self.log["steps"][phase] = total
        return total

    # -- phase 1: the VAE ---------------------------------------------------------------------------------------
    def _train_vae(self, nets: Networks, images: torch.Tensor, state: dict | None, progress, cancel) -> dict:
        s, vae = self.settings, nets.vae
        total = self.log["steps"].get("vae", s.vae_steps)
        optimizer = torch.optim.AdamW(vae.parameters(), lr=s.vae_learning_rate)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: cosine_with_warmup(k, 100, total))
        generator = torch.Generator().manual_seed(s.seed)
        step = 0
        if state is not None:
            vae.load_state_dict(state["vae"]); optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"]); generator.set_state(state["generator"]); step = state["step"]
        vae.train()
        began = phase_began = time.perf_counter()
        while step < total:
            if cancel and cancel():
                raise KeyboardInterrupt
            crops, _ = random_crops(images, s.vae_batch, s.vae_crop, generator)
            x = image_to_model_input(crops)
            with self._autocast():
                posterior = vae.encode(x).latent_dist
                rebuilt = vae.decode(sample_latents(posterior, generator)).sample
            loss = F.l1_loss(rebuilt.float(), x) + s.kl_weight * posterior.kl().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step(); schedule.step()
            step += 1
            total = self._budgeted_total("vae", step, s.vae_steps, s.vae_minutes, phase_began) or total
            self._record("vae", step, loss.item(), total, progress)
            if step % s.checkpoint_every == 0 or step == total:
                self._add_seconds("vae", began)
                began = time.perf_counter()
                self._save("vae", step, {"vae": vae.state_dict(), "optimizer": optimizer.state_dict(),
                                         "schedule": schedule.state_dict(), "generator": generator.get_state()})
        vae.eval()
        scaling = self._scaling_factor(vae, images)
        state = {"vae": vae.state_dict(), "scaling_factor": scaling}
        self._save("unet", 0, state)
        return state

    @torch.no_grad()
    def _scaling_factor(self, vae: AutoencoderKL, images: torch.Tensor) -> float:
        """1 / std of the latents, as Stable Diffusion scales its latents to unit variance."""
        generator = torch.Generator().manual_seed(self.settings.seed)
        crops, _ = random_crops(images, self.settings.scale_crops, MINI_SPECTROGRAM.width, generator)
        latents = torch.cat([vae.encode(image_to_model_input(c)).latent_dist.mean for c in crops.split(16)])
        return float(1.0 / latents.std())

    @torch.no_grad()
    def _encode(self, vae: AutoencoderKL, images: torch.Tensor, captions: list[str]) -> None:
        """Cache the scaled latent means of every chunk, with their captions, in the work folder (once)."""
        began = time.perf_counter()
        vae.eval()
        scale = vae.config.scaling_factor
        with self._autocast():
            means = [vae.encode(image_to_model_input(c)).latent_dist.mean.float() for c in images.split(16)]
        with atomic_path(self.work / LATENTS) as tmp:
            torch.save({"latents": (torch.cat(means) * scale).cpu(), "captions": captions}, tmp)
        self._add_seconds("encode", began)

    # -- phase 2: the UNet and the text encoder -----------------------------------------------------------------
    def _train_unet(self, nets: Networks, latents: torch.Tensor, captions: list[str], state: dict, progress, cancel):
        s = self.settings
        total = self.log["steps"].get("unet", s.unet_steps)
        params = list(nets.unet.parameters()) + list(nets.text_encoder.parameters())
        optimizer = torch.optim.AdamW(params, lr=s.unet_learning_rate, weight_decay=0.01)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: cosine_with_warmup(k, s.warmup_steps, total))
        ema = EMAModel(params, decay=s.ema_decay, use_ema_warmup=True, power=2 / 3)
        noise_schedule = DDPMScheduler.from_config(SD_SCHEDULER_CONFIG)
        alphas = noise_schedule.alphas_cumprod.to(self.device)
        generator = torch.Generator().manual_seed(s.seed + 1)
        step = state.get("step", 0) if state.get("phase") == "unet" else 0
        if "unet" in state:
            nets.unet.load_state_dict(state["unet"]); nets.text_encoder.load_state_dict(state["text_encoder"])
            optimizer.load_state_dict(state["optimizer"]); schedule.load_state_dict(state["schedule"])
            ema.load_state_dict(state["ema"]); generator.set_state(state["generator"])
        ema.to(self.device)
        caption_ids = self._caption_ids(nets.tokenizer, captions).to(self.device)
        empty_ids = self._caption_ids(nets.tokenizer, [""])[0].to(self.device)
        latent_width = MINI_SPECTROGRAM.width // VAE_FACTOR
        nets.unet.train(); nets.text_encoder.train()
        began = phase_began = time.perf_counter()
        while step < total:
            if cancel and cancel():
                raise KeyboardInterrupt
            x0, rows = random_crops(latents, s.unet_batch, latent_width, generator)
            dropped = (torch.rand(len(rows), generator=generator) < s.caption_dropout).to(self.device)
            ids = torch.where(dropped[:, None], empty_ids, caption_ids[rows.to(self.device)])
            noise = torch.randn(x0.shape, generator=generator).to(self.device)
            t = torch.randint(0, noise_schedule.config.num_train_timesteps, (len(rows),), generator=generator)
            t = t.to(self.device)
            with self._autocast():
                context = nets.text_encoder(ids).last_hidden_state
                predicted = nets.unet(noise_schedule.add_noise(x0, noise, t), t, context).sample
            per_sample = F.mse_loss(predicted.float(), noise, reduction="none").mean(dim=(1, 2, 3))
            loss = (per_sample * min_snr_weights(alphas, t, s.min_snr_gamma)).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step(); schedule.step(); ema.step(params)
            step += 1
            total = self._budgeted_total("unet", step, s.unet_steps, s.unet_minutes, phase_began) or total
            self._record("unet", step, per_sample.mean().item(), total, progress)
            if step % s.checkpoint_every == 0 or step == total:
                self._add_seconds("unet", began)
                began = time.perf_counter()
                self._save("unet", step, {
                    "vae": nets.vae.state_dict(), "scaling_factor": nets.vae.config.scaling_factor,
                    "unet": nets.unet.state_dict(), "text_encoder": nets.text_encoder.state_dict(),
                    "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(), "ema": ema.state_dict(),
                    "generator": generator.get_state()})
        ema.copy_to(params)  # ship the averaged weights
        nets.unet.eval(); nets.text_encoder.eval()

    @staticmethod
    def _caption_ids(tokenizer: CLIPTokenizer, captions: list[str]) -> torch.Tensor:
        return tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length,
                         truncation=True, return_tensors="pt").input_ids

    # -- bookkeeping --------------------------------------------------------------------------------------------
    def _record(self, phase: str, step: int, loss: float, total: int, progress: ProgressCallback | None) -> None:
        self.log.setdefault("loss", {}).setdefault(phase, []).append(round(loss, 5))
        if progress:
            progress(Progress(f"train {phase}", step, total, loss))

    def _add_seconds(self, phase: str, began: float) -> None:
        self.log["seconds"][phase] = self.log["seconds"].get(phase, 0.0) + time.perf_counter() - began

    def _save(self, phase: str, step: int, tensors: dict) -> None:
        state = {"phase": phase, "step": step, "settings": asdict(self.settings), "log": self.log, **tensors}
        with atomic_path(self.checkpoint) as tmp:
            torch.save(state, tmp)

    def save(self, nets: Networks, out: Path) -> Path:
        """Write the model (fp16 weights: half the size, loaded back as fp32) in diffusers layout, atomically."""
        with atomic_folder(out) as tmp:
            for name in ("unet", "vae", "text_encoder"):
                module = getattr(nets, name).cpu()
                module.to(torch.float16).save_pretrained(tmp / name)
                module.to(torch.float32)
            nets.tokenizer.save_pretrained(tmp / "tokenizer")
            DDIMScheduler.from_config(SD_SCHEDULER_CONFIG).save_config(tmp / "scheduler")
            notes = {"format": MINI_SPECTROGRAM.to_dict(), "random_weights": False}
            (tmp / SPECTROGRAM_FILE).write_text(json.dumps(notes, indent=2) + "\n")
            summary = {k: v for k, v in self.log.items() if k != "loss"}
            summary["final_loss"] = {p: float(np.mean(v[-100:])) for p, v in self.log.get("loss", {}).items()}
            write_json(tmp / "training.json", summary)
        return out


def _machine(device: torch.device) -> dict:
    machine = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
               "python": platform.python_version(), "device": str(device)}
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(device)
    return machine
