"""Fine-tunes a trained mini model's VAE decoder alone, resumably: a cleaner codec that keeps every style valid.

The encoder, and so the latent space the UNet and every style were trained in, stays frozen; only the decoder
(and its post-quantisation convolution) learns more, on the same corpus and loss as the VAE's first phase (L1
between the spectrogram crop and its reconstruction from a sampled latent). Stability AI made their
``sd-vae-ft-mse`` decoder for Stable Diffusion the same way, so that it could be swapped into existing pipelines.
A checkpoint is written atomically every ``checkpoint_every`` steps; rerunning the same command resumes.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from ..atomic import atomic_folder, atomic_path, write_json
from ..base_model import BaseModel, weights_fingerprint
from ..devices import pick_device
from ..errors import SettingsError
from ..progress import CancelCheck, Progress, ProgressCallback
from ..spectrogram import image_to_model_input
from ..style import INFO_FILE
from .corpus import load_corpus
from .train import CORPUS, cosine_with_warmup, random_crops, sample_latents

CHECKPOINT = "decoder-checkpoint.pt"


@dataclass(frozen=True)
class DecoderSettings:
    """The decoder fine-tune behind the shipped mini v2 codec (see docs/mini-model.md)."""

    seed: int = 0
    steps: int = 8000
    batch: int = 8
    crop: int = 128  # frames per crop, as in the VAE's own training
    learning_rate: float = 1e-4  # a fifth of the VAE's first phase: it refines, it does not relearn
    warmup_steps: int = 100
    checkpoint_every: int = 250
    validation_crops: int = 64  # fixed crops whose L1 is measured before and after

    def __post_init__(self):
        for name in ("steps", "batch", "crop", "checkpoint_every", "validation_crops"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name.replace('_', ' ')} must be at least 1, not {getattr(self, name)}.")
        if self.learning_rate <= 0:
            raise SettingsError("the learning rate must be above 0.")


class DecoderTrainer:
    """Fine-tunes ``model``'s decoder on the packed corpus in ``work`` and writes the model with it to ``out``."""

    def __init__(self, work: str | Path, settings: DecoderSettings = DecoderSettings(), device: str = "auto"):
        self.work = Path(work)
        self.settings = settings
        self.device = pick_device(device)
        self.checkpoint = self.work / CHECKPOINT

    def run(self, model: str | Path, out: str | Path, progress: ProgressCallback | None = None,
            cancel: CancelCheck | None = None) -> dict:
        """Train (or resume), write the model to ``out`` atomically, and return the record of the run."""
        model, out = Path(model), Path(out)
        packed = self.work / CORPUS / "corpus.npz"
        if not packed.is_file():
            raise SettingsError(f"No packed corpus at {packed}: run `restyle mini train --work {self.work}` first.")
        images, _ = load_corpus(packed)
        vae = AutoencoderKL.from_pretrained(model / "vae", torch_dtype=torch.float32).to(self.device)
        source = weights_fingerprint(vae)
        record = self._train(vae, images.to(self.device), source, progress, cancel)
        self._write(model, out, vae, record)
        return record

    def _train(self, vae: AutoencoderKL, images: torch.Tensor, source: str, progress, cancel) -> dict:
        s = self.settings
        vae.requires_grad_(False)
        params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
        for p in params:
            p.requires_grad_(True)
        optimizer = torch.optim.AdamW(params, lr=s.learning_rate)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: cosine_with_warmup(k, s.warmup_steps, s.steps))
        generator = torch.Generator().manual_seed(s.seed)
        validation, _ = random_crops(images, s.validation_crops, s.crop, torch.Generator().manual_seed(s.seed + 1))
        record = {"settings": asdict(s), "source_vae": source, "seconds": 0.0}
        step = self._resume(vae, optimizer, schedule, generator, record)
        if step == 0:
            record["validation_l1_before"] = self.validation_l1(vae, validation)
        vae.decoder.train()
        began = time.perf_counter()
        while step < s.steps:
            if cancel and cancel():
                raise KeyboardInterrupt
            crops, _ = random_crops(images, s.batch, s.crop, generator)
            x = image_to_model_input(crops)
            with torch.no_grad():
                latents = sample_latents(vae.encode(x).latent_dist, generator)
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                rebuilt = vae.decode(latents).sample
            loss = F.l1_loss(rebuilt.float(), x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step(); schedule.step()
            step += 1
            record.setdefault("loss", []).append(round(loss.item(), 5))
            if progress:
                progress(Progress("fine-tune decoder", step, s.steps, loss.item()))
            if step % s.checkpoint_every == 0 or step == s.steps:
                record["seconds"] += time.perf_counter() - began
                began = time.perf_counter()
                self._save(step, vae, optimizer, schedule, generator, record)
        vae.eval()
        record["validation_l1_after"] = self.validation_l1(vae, validation)
        return record

    @torch.no_grad()
    def validation_l1(self, vae: AutoencoderKL, crops: torch.Tensor) -> float:
        """Mean L1 of fixed crops reconstructed from their latent means (how the engine decodes)."""
        vae.eval()
        errors = []
        for chunk in crops.split(16):
            x = image_to_model_input(chunk)
            errors.append(F.l1_loss(vae.decode(vae.encode(x).latent_dist.mean).sample, x).item() * len(chunk))
        return round(sum(errors) / len(crops), 5)

    def _resume(self, vae, optimizer, schedule, generator, record: dict) -> int:
        if not self.checkpoint.is_file():
            return 0
        state = torch.load(self.checkpoint, weights_only=False, map_location="cpu")
        if state["record"]["settings"] != record["settings"] or state["record"]["source_vae"] != record["source_vae"]:
            raise SettingsError(f"{self.checkpoint} was made from another model or with other settings: "
                                "remove it or use another --work.")
        vae.decoder.load_state_dict(state["decoder"]); vae.post_quant_conv.load_state_dict(state["post_quant_conv"])
        optimizer.load_state_dict(state["optimizer"]); schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"])
        record.update(state["record"])
        return state["step"]

    def _save(self, step: int, vae, optimizer, schedule, generator, record: dict) -> None:
        state = {"step": step, "decoder": vae.decoder.state_dict(), "post_quant_conv": vae.post_quant_conv.state_dict(),
                 "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                 "generator": generator.get_state(), "record": record}
        with atomic_path(self.checkpoint) as tmp:
            torch.save(state, tmp)

    def _write(self, model: Path, out: Path, vae: AutoencoderKL, record: dict) -> None:
        """Copy ``model`` to ``out`` with the new VAE (fp16, as shipped) and the run noted in training.json."""
        summary = {k: v for k, v in record.items() if k != "loss"}
        summary["final_loss"] = float(np.mean(record["loss"][-100:])) if record.get("loss") else None
        with atomic_folder(out) as tmp:
            shutil.copytree(model, tmp, dirs_exist_ok=True)
            shutil.rmtree(tmp / "vae")
            vae.cpu().to(torch.float16).save_pretrained(tmp / "vae")
            vae.to(torch.float32)
            config = json.loads((tmp / "vae" / "config.json").read_text())
            config.pop("_name_or_path", None)  # where it was loaded from on this machine: not part of the model
            write_json(tmp / "vae" / "config.json", config)
            notes = json.loads((tmp / "training.json").read_text()) if (tmp / "training.json").is_file() else {}
            write_json(tmp / "training.json", {**notes, "decoder_finetune": summary})


def restamp_styles(folder: str | Path, old: BaseModel, new: BaseModel) -> list[str]:
    """Move the styles in ``folder`` learned on ``old`` to ``new``, which must differ from it in the decoder
    alone (a style depends on the encoder, UNet and text encoder only); returns their names."""
    if conditioning_fingerprint(old) != conditioning_fingerprint(new):
        raise SettingsError(f"{new.model_id} differs from {old.model_id} in more than its decoder: styles learned "
                            "on one must be learned again on the other (restyle train).")
    restamped = []
    for info_file in sorted(Path(folder).glob(f"*/{INFO_FILE}")):
        info = json.loads(info_file.read_text())
        if info.get("base_fingerprint") == old.fingerprint:
            write_json(info_file, {**info, "base_fingerprint": new.fingerprint})
            restamped.append(info["name"])
    return restamped


def conditioning_fingerprint(base: BaseModel) -> str:
    """The fingerprint of everything a style depends on: the VAE's encoder, the UNet and the text encoder."""
    return weights_fingerprint(base.vae.encoder, base.vae.quant_conv, base.unet, base.text_encoder)
