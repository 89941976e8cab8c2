"""Trains the mini base model from scratch on rendered General MIDI audio, resumably.

Two phases, as latent diffusion is trained: first the VAE (L1 reconstruction of spectrogram crops plus a
small KL term), then the UNet and the text encoder together on the frozen VAE's latents (noise-prediction
MSE under Stable Diffusion's noise schedule, captions dropped 10 % of the time so guidance works). A
checkpoint is written atomically every ``checkpoint_every`` steps; rerunning the same command resumes.
"""

from __future__ import annotations

import json
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
from ..audio import AudioLimits, mono_at, read_audio
from ..base_model import SPECTROGRAM_FILE
from ..errors import SettingsError
from ..progress import CancelCheck, Progress, ProgressCallback
from ..spectrogram import SpectrogramConverter, image_to_model_input
from ..tiny import SD_SCHEDULER_CONFIG
from .architecture import (
    MINI_SPECTROGRAM,
    VAE_FACTOR,
    build_text_encoder,
    build_tokenizer,
    build_unet,
    build_vae,
)
from .render import INSTRUMENTS, instrument, read_manifest, render_training_set

LATENTS = "latents.pt"
VOCABULARY = sorted({word for inst in INSTRUMENTS for word in inst.name.split()} | {"music"})


@dataclass(frozen=True)
class MiniTrainSettings:
    """Everything that decides the shipped weights; the defaults are what we trained and measured."""

    seed: int = 0
    instruments: tuple[str, ...] = ()  # General MIDI instruments to learn (captions); empty: all of INSTRUMENTS
    seconds_per_instrument: float = 150.0
    chunk_frames: int = 512  # spectrogram chunks encoded once; training windows are random crops of them
    vae_steps: int = 1000
    vae_batch: int = 8
    vae_crop: int = 64  # frames per VAE training crop (the VAE is convolutional: full images not needed)
    vae_learning_rate: float = 5e-4
    kl_weight: float = 1e-6
    scale_crops: int = 64  # images encoded to measure the latents' spread (the VAE's scaling factor)
    unet_steps: int = 2000
    unet_batch: int = 16
    unet_learning_rate: float = 5e-4
    warmup_steps: int = 100
    caption_dropout: float = 0.1
    ema_decay: float = 0.999
    checkpoint_every: int = 100


@dataclass
class Networks:
    tokenizer: CLIPTokenizer
    text_encoder: CLIPTextModel
    vae: AutoencoderKL
    unet: UNet2DConditionModel


def new_networks(seed: int) -> Networks:
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(VOCABULARY)
    return Networks(tokenizer, build_text_encoder(tokenizer), build_vae(), build_unet())


def spectrogram_chunks(data_dir: Path, chunk_frames: int) -> tuple[torch.Tensor, list[str]]:
    """Every rendered file cut into chunks of images (uint8), with each chunk's caption."""
    converter = SpectrogramConverter(MINI_SPECTROGRAM)
    images, captions = [], []
    for path, caption in read_manifest(data_dir):
        clip = read_audio(path, limits=AudioLimits(max_seconds=float("inf")))
        mel = converter.mel(torch.from_numpy(mono_at(clip, MINI_SPECTROGRAM.sample_rate)))
        for start in range(0, mel.shape[-1] - chunk_frames + 1, chunk_frames):
            piece = mel[:, start : start + chunk_frames]
            if piece.amax() > 1e-3 * mel.amax():  # skip silent stretches
                images.append(converter.mel_to_image(piece)[0])
                captions.append(caption)
    if not images:
        raise SettingsError(f"The rendered audio is shorter than one {chunk_frames}-frame chunk: raise "
                            "--seconds-per-instrument.")
    return torch.stack(images), captions


def random_crops(images: torch.Tensor, count: int, width: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` random crops ``width`` wide from random rows of (N, ..., W) ``images``, and the rows chosen."""
    rows = torch.randint(len(images), (count,), generator=generator)
    starts = torch.randint(images.shape[-1] - width + 1, (count,), generator=generator)
    return torch.stack([images[r, ..., s : s + width] for r, s in zip(rows.tolist(), starts.tolist())]), rows


class MiniTrainer:
    """Runs both phases in a work folder (data, latents, checkpoint) and writes the model in diffusers layout."""

    def __init__(self, work: str | Path, settings: MiniTrainSettings = MiniTrainSettings()):
        self.work = Path(work)
        self.settings = settings
        self.data_dir = self.work / "data"
        self.checkpoint = self.work / "checkpoint.pt"
        self.log: dict = {"settings": asdict(settings), "seconds": {}, "machine": _machine()}

    def run(self, out: str | Path, progress: ProgressCallback | None = None, cancel: CancelCheck | None = None) -> Path:
        s = self.settings
        self.work.mkdir(parents=True, exist_ok=True)
        state = torch.load(self.checkpoint, weights_only=False) if self.checkpoint.is_file() else None
        if state is not None and state["settings"] != asdict(s):
            raise SettingsError(f"{self.checkpoint} was made with other settings: remove it or use another --work.")
        if state is None:
            (self.work / LATENTS).unlink(missing_ok=True)  # made by an earlier run's VAE
        else:
            self.log = state["log"]
        began = time.perf_counter()
        chosen = tuple(instrument(name) for name in s.instruments) or INSTRUMENTS
        render_training_set(self.data_dir, MINI_SPECTROGRAM.sample_rate, s.seed, s.seconds_per_instrument, chosen)
        self._add_seconds("render", began)
        nets = new_networks(s.seed)
        vae_phase = state is None or state["phase"] == "vae"
        if vae_phase or not (self.work / LATENTS).is_file():  # a resumed UNet phase needs no images
            images, captions = self._spectrograms()
        if vae_phase:
            state = self._train_vae(nets, images, state, progress, cancel)
        nets.vae.load_state_dict(state["vae"])
        nets.vae.register_to_config(scaling_factor=state["scaling_factor"])
        if not (self.work / LATENTS).is_file():
            self._encode(nets.vae, images, captions)
        cached = torch.load(self.work / LATENTS)
        self._train_unet(nets, cached["latents"], cached["captions"], state, progress, cancel)
        return self.save(nets, Path(out))

    def _spectrograms(self) -> tuple[torch.Tensor, list[str]]:
        began = time.perf_counter()
        images, captions = spectrogram_chunks(self.data_dir, self.settings.chunk_frames)
        self._add_seconds("spectrograms", began)
        self.log["chunks"] = len(images)
        return images, captions

    # -- phase 1: the VAE ---------------------------------------------------------------------------------------
    def _train_vae(self, nets: Networks, images: torch.Tensor, state: dict | None, progress, cancel) -> dict:
        s, vae = self.settings, nets.vae
        optimizer = torch.optim.AdamW(vae.parameters(), lr=s.vae_learning_rate)
        generator = torch.Generator().manual_seed(s.seed)
        step = 0
        if state is not None:
            vae.load_state_dict(state["vae"]); optimizer.load_state_dict(state["optimizer"])
            generator.set_state(state["generator"]); step = state["step"]
        vae.train()
        began = time.perf_counter()
        while step < s.vae_steps:
            if cancel and cancel():
                raise KeyboardInterrupt
            crops, _ = random_crops(images, s.vae_batch, s.vae_crop, generator)
            x = image_to_model_input(crops)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                posterior = vae.encode(x).latent_dist
                rebuilt = vae.decode(posterior.sample(generator=generator)).sample
            loss = F.l1_loss(rebuilt.float(), x) + s.kl_weight * posterior.kl().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            self._record("vae", step, loss.item(), s.vae_steps, progress)
            if step % s.checkpoint_every == 0 or step == s.vae_steps:
                self._add_seconds("vae", began)
                began = time.perf_counter()
                self._save("vae", step, {"vae": vae.state_dict(), "optimizer": optimizer.state_dict(),
                                         "generator": generator.get_state()})
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
        with torch.autocast("cpu", dtype=torch.bfloat16):
            means = [vae.encode(image_to_model_input(c)).latent_dist.mean.float() for c in images.split(16)]
        with atomic_path(self.work / LATENTS) as tmp:
            torch.save({"latents": torch.cat(means) * scale, "captions": captions}, tmp)
        self._add_seconds("encode", began)

    # -- phase 2: the UNet and the text encoder -----------------------------------------------------------------
    def _train_unet(self, nets: Networks, latents: torch.Tensor, captions: list[str], state: dict, progress, cancel):
        s = self.settings
        params = list(nets.unet.parameters()) + list(nets.text_encoder.parameters())
        optimizer = torch.optim.AdamW(params, lr=s.unet_learning_rate, weight_decay=0.01)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: min(1.0, (k + 1) / s.warmup_steps))
        ema = EMAModel(params, decay=s.ema_decay)
        noise_schedule = DDPMScheduler.from_config(SD_SCHEDULER_CONFIG)
        generator = torch.Generator().manual_seed(s.seed + 1)
        step = state.get("step", 0) if state.get("phase") == "unet" else 0
        if "unet" in state:
            nets.unet.load_state_dict(state["unet"]); nets.text_encoder.load_state_dict(state["text_encoder"])
            optimizer.load_state_dict(state["optimizer"]); schedule.load_state_dict(state["schedule"])
            ema.load_state_dict(state["ema"]); generator.set_state(state["generator"])
        caption_ids = self._caption_ids(nets.tokenizer, captions)
        empty_ids = self._caption_ids(nets.tokenizer, [""])[0]
        latent_width = MINI_SPECTROGRAM.width // VAE_FACTOR
        nets.unet.train(); nets.text_encoder.train()
        began = time.perf_counter()
        while step < s.unet_steps:
            if cancel and cancel():
                raise KeyboardInterrupt
            x0, rows = random_crops(latents, s.unet_batch, latent_width, generator)
            ids = caption_ids[rows]
            dropped = torch.rand(len(rows), generator=generator) < s.caption_dropout
            ids[dropped] = empty_ids
            noise = torch.randn(x0.shape, generator=generator)
            t = torch.randint(0, noise_schedule.config.num_train_timesteps, (len(rows),), generator=generator)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                context = nets.text_encoder(ids).last_hidden_state
                predicted = nets.unet(noise_schedule.add_noise(x0, noise, t), t, context).sample
            loss = F.mse_loss(predicted.float(), noise)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step(); schedule.step(); ema.step(params)
            step += 1
            self._record("unet", step, loss.item(), s.unet_steps, progress)
            if step % s.checkpoint_every == 0 or step == s.unet_steps:
                self._add_seconds("unet", began)
                began = time.perf_counter()
                self._save("unet", step, {
                    "vae": nets.vae.state_dict(), "scaling_factor": nets.vae.config.scaling_factor,
                    "unet": nets.unet.state_dict(), "text_encoder": nets.text_encoder.state_dict(),
                    "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(), "ema": ema.state_dict(),
                    "generator": generator.get_state()})
        ema.copy_to(params)  # ship the averaged weights: smoother samples from a short run
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
                module = getattr(nets, name)
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


def _machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version()}
