"""Training one style: only the TVE module learns (and, with an adapter, a LoRA on the UNet's attention, see
adapters.py); the base model stays frozen (and bitwise unchanged).

The clips become spectrogram windows (a window every quarter window along longer clips), are encoded once by
the VAE, and each step draws windows, a uniform timestep and noise, and regresses the UNet's noise prediction
under the prompt "*" onto the true noise (MSE), with AdamW. Checkpoints make a killed run resumable.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler

from .adapters import LoraSettings, UNetAdapters
from .atomic import atomic_path
from .audio import AudioLimits, check_audio_path, fit_length, probe, read_audio, resample
from .backends import TorchVae
from .base_model import BaseModel
from .conditioning import TextConditioner
from .errors import AudioError, CancelledError, CheckpointError, SettingsError
from .progress import CancelCheck, Progress, ProgressCallback
from .spectrogram import SpectrogramConverter, image_to_model_input
from .style import Style, StyleInfo, TimeVaryingEmbedding

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}


@dataclass(frozen=True)
class TrainSettings:
    """Defaults are the method's official settings (AdamW 5e-3, weight decay 0.01, batch 1, 3000 steps)."""

    steps: int = 3000
    learning_rate: float = 5e-3
    weight_decay: float = 0.01
    batch_size: int = 1
    seed: int = 0
    checkpoint_every: int = 250
    checkpoint_seconds: float = 60.0  # ...and at least this often, so a killed run loses at most about a minute
    init_word: str = "music"
    window_hop: float = 0.25  # training windows start every quarter window along clips longer than one
    adapter: LoraSettings | None = None  # None: the method's TVE-only style; a LoRA learns along with the TVE

    def validate(self) -> "TrainSettings":
        if self.steps < 1:
            raise SettingsError(f"steps {self.steps}: train for at least 1 step (3000 is typical).")
        if not 0 < self.learning_rate <= 1:
            raise SettingsError(f"learning rate {self.learning_rate} is out of range: use a value in (0, 1].")
        if not 1 <= self.batch_size <= 64:
            raise SettingsError(f"batch size {self.batch_size} is out of range: use 1 to 64.")
        if self.checkpoint_every < 1:
            raise SettingsError("checkpoint-every must be at least 1 step.")
        if not 0 < self.checkpoint_seconds < float("inf"):
            raise SettingsError("checkpoint-seconds must be a number of seconds above 0.")
        if not 0 < self.window_hop <= 1:
            raise SettingsError("window hop must be a fraction of a window in (0, 1].")
        if self.adapter is not None:
            self.adapter.validate()
        return self

    def run_key(self) -> dict:
        """Settings that must match for a checkpoint to be resumed (the step count may grow)."""
        data = asdict(self)
        for how_long_or_often in ("steps", "checkpoint_every", "checkpoint_seconds"):
            data.pop(how_long_or_often)
        return data


def collect_clips(paths: list[str | Path]) -> list[Path]:
    """Expand folders into the audio files they hold (sorted), keep files as given."""
    clips: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            clips.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES))
        else:
            clips.append(check_audio_path(path))
    if not clips:
        raise AudioError("No style clips given: pass audio files or a folder holding .wav/.flac/.ogg/.mp3 files.")
    return clips


def file_fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


class StyleTrainer:
    """Trains a style module for one base model."""

    def __init__(self, base: BaseModel, conditioner: TextConditioner, limits: AudioLimits = AudioLimits()):
        self.base = base
        self.conditioner = conditioner
        self.limits = limits
        # The training noise is the base model's forward process at exactly the timestep the UNet is told; a
        # solver's add_noise is for its own inference schedule (UniPC's, before set_timesteps, maps t to 999 - t).
        self.scheduler = DDPMScheduler.from_config(base.scheduler_config)
        self.converter = SpectrogramConverter(base.spectrogram, base.device)

    def clip_windows(self, clips: list[Path], window_hop: float) -> torch.Tensor:
        """Every training window of every clip as 8-bit spectrogram images, (N, n_mels, width)."""
        fmt = self.base.spectrogram
        window = fmt.window_samples
        hop = max(1, int(window * window_hop))
        images = []
        for path in clips:
            clip = read_audio(path, self.limits)
            signal = resample(clip.mono()[None], clip.sample_rate, fmt.sample_rate)[0]
            starts = list(range(0, max(1, len(signal) - window + 1), hop))
            if len(signal) > window and starts[-1] != len(signal) - window:
                starts.append(len(signal) - window)  # cover the clip's end too
            for start in starts:
                chunk = torch.from_numpy(fit_length(signal[start : start + window], window).copy())
                images.append(self.converter.audio_to_image(chunk)[0])
        return torch.stack(images)

    def encode(self, images: torch.Tensor, batch: int = 8) -> torch.Tensor:
        """VAE latents (mean of the posterior, scaled), computed once for the whole run."""
        vae = TorchVae(self.base)
        chunks = [vae.encode(image_to_model_input(c).to(self.base.device)) for c in images.split(batch)]
        return torch.cat(chunks) * self.base.vae_scale

    def new_module(self, settings: TrainSettings) -> TimeVaryingEmbedding:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            module = TimeVaryingEmbedding(self.base.embed_dim, self.conditioner.word_embedding(settings.init_word))
        return module.to(self.base.device)

    def loss(self, module: TimeVaryingEmbedding, latents: torch.Tensor, generator: torch.Generator, batch: int):
        """One draw of windows, timesteps and noise; MSE between the true and the predicted noise."""
        device = self.base.device
        index = torch.randint(0, latents.shape[0], (batch,), generator=generator).to(device)
        timesteps = torch.randint(0, self.scheduler.config.num_train_timesteps, (batch,), generator=generator)
        noise = torch.randn((batch, *latents.shape[1:]), generator=generator).to(device)
        timesteps = timesteps.to(device)
        noisy = self.scheduler.add_noise(latents[index], noise, timesteps)
        context = self.conditioner.style_context(module(timesteps))
        with self.base.autocast():
            predicted = self.base.unet(noisy, timesteps, encoder_hidden_states=context).sample
        return F.mse_loss(predicted.float(), noise)

    def train(
        self,
        name: str,
        clips: list[Path],
        settings: TrainSettings,
        checkpoint: Path,
        resume: bool = False,
        progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> Style:
        """Train and return the style (the caller saves it). Checkpoints go to ``checkpoint`` every N steps."""
        settings.validate()
        with UNetAdapters.of(self.base).training(settings.adapter, settings.seed) as adapter_params:
            return self._train(name, clips, settings, checkpoint, resume, progress, should_cancel, adapter_params)

    def _train(
        self,
        name: str,
        clips: list[Path],
        settings: TrainSettings,
        checkpoint: Path,
        resume: bool,
        progress: ProgressCallback | None,
        should_cancel: CancelCheck | None,
        adapter_params: list[torch.nn.Parameter],
    ) -> Style:
        started = time.monotonic()
        for path in clips:  # every clip is checked before any is read in full
            probe(path, self.limits)
        clip_prints = [file_fingerprint(p) for p in clips]
        # "noising" marks checkpoints made since the trainer noises by the forward process: older ones (53dd409
        # up to that fix) continued a corrupted objective, so they are refused like other settings.
        run_key = {"base": self.base.fingerprint, "clips": clip_prints, "settings": settings.run_key(),
                   "noising": "forward-process"}
        latents = self.encode(self.clip_windows(clips, settings.window_hop))

        module = self.new_module(settings)
        groups = [{"params": list(module.parameters())}]
        if adapter_params:
            groups.append({"params": adapter_params, "lr": settings.adapter.learning_rate})
        optimizer = torch.optim.AdamW(groups, lr=settings.learning_rate, weight_decay=settings.weight_decay)
        adapter = _ParameterSet(adapter_params)  # the LoRA's weights in checkpoints
        generator = torch.Generator().manual_seed(settings.seed)
        # fp16 gradients through the frozen UNet can underflow: scale the loss (a no-op for fp32 and bf16).
        scaler = torch.amp.GradScaler(self.base.device.type, enabled=self.base.dtype == torch.float16)
        history: list[float] = []
        step = 0
        if resume:
            step, history = _load_checkpoint(checkpoint, run_key, module, optimizer, generator, adapter)
            if step >= settings.steps:
                raise CheckpointError(f"The checkpoint is at step {step}; ask for more than {step} steps to continue.")

        module.train()
        last_saved = time.monotonic()
        while step < settings.steps:
            if should_cancel is not None and should_cancel():
                _save_checkpoint(checkpoint, run_key, step, module, optimizer, generator, history, adapter)
                raise CancelledError(f"Training stopped at step {step}; continue it later with --resume.")
            loss = self.loss(module, latents, generator, settings.batch_size)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            step += 1
            history.append(round(loss.item(), 6))
            if not math.isfinite(history[-1]):
                raise SettingsError("Training diverged (loss is not a number); lower the learning rate.")
            due = step % settings.checkpoint_every == 0 or time.monotonic() - last_saved >= settings.checkpoint_seconds
            if due and step < settings.steps:
                _save_checkpoint(checkpoint, run_key, step, module, optimizer, generator, history, adapter)
                last_saved = time.monotonic()
            if progress is not None:
                progress(Progress("train", step, settings.steps, loss=history[-1]))

        module.eval().requires_grad_(False)
        info = StyleInfo(
            name=name,
            base_model=self.base.model_id,
            base_fingerprint=self.base.fingerprint,
            embed_dim=module.embed_dim,
            init_word=settings.init_word,
            training={
                "settings": asdict(settings),
                "clips": [{"file": p.name, "path": str(p.resolve()), "sha256_16": fp}
                          for p, fp in zip(clips, clip_prints)],
                "windows": int(latents.shape[0]),
                "seconds": round(time.monotonic() - started, 1),
                "device": self.base.device.type,
                "dtype": str(self.base.dtype).replace("torch.", ""),
            },
            loss_history=history,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            produces_noise=self.base.produces_noise,
            adapter=None if settings.adapter is None else settings.adapter.to_info(),
        )
        adapter_state = UNetAdapters.of(self.base).training_state() if adapter_params else None
        return Style(info, module, adapter_state)


class _ParameterSet(torch.nn.Module):
    """The training adapter's parameters as one module, for checkpoints (no parameters: a TVE-only run)."""

    def __init__(self, params: list[torch.nn.Parameter]):
        super().__init__()
        self.params = torch.nn.ParameterList(params)


def _save_checkpoint(path: Path, run_key: dict, step: int, module, optimizer, generator, history,
                     adapter: torch.nn.Module | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "run_key": run_key,
        "step": step,
        "module": module.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "history": history,
    }
    if adapter is not None and len(adapter.state_dict()):
        state["adapter"] = adapter.state_dict()
    with atomic_path(path) as tmp:  # a kill -9 mid-write leaves the previous checkpoint intact
        torch.save(state, tmp)


def _load_checkpoint(path: Path, run_key: dict, module, optimizer, generator,
                     adapter: torch.nn.Module | None = None) -> tuple[int, list[float]]:
    if not path.is_file():
        raise CheckpointError("There is no checkpoint to resume for this style (the run stopped before its first "
                              "one); start it again without --resume.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise CheckpointError(f"The checkpoint {path} is damaged ({exc}); start again without --resume.") from None
    if state["run_key"] != run_key:
        raise CheckpointError(
            "The checkpoint was made with other clips, settings or base model; start again without --resume."
        )
    module.load_state_dict(state["module"])
    if "adapter" in state and adapter is not None:
        adapter.load_state_dict(state["adapter"])
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    return int(state["step"]), list(state["history"])
