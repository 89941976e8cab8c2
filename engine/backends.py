"""Where the UNet and VAE run: torch (the loaded modules) or ONNX Runtime (an export of the same weights).

The sampler and the engine see only a noise predictor and a VAE codec, so both backends run the same
BRS + DDIM + CFG loop with the same cached style contexts. The rule behind ``auto`` lives here, in one place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from .base_model import BaseModel
from .errors import SettingsError
from .sampler import NoisePredictor, TorchUNet

BACKENDS = ("torch", "onnx", "auto")


class VaeCodec(Protocol):
    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> unscaled posterior mean latents."""

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Unscaled latents -> (B, 3, H, W) images in about [-1, 1]."""


class TorchVae:
    def __init__(self, base: BaseModel):
        self.base = base

    @torch.inference_mode()
    def encode(self, image: torch.Tensor) -> torch.Tensor:
        with self.base.vae_autocast():
            return self.base.vae.encode(image).latent_dist.mean.float()

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        with self.base.vae_autocast():
            return self.base.vae.decode(latents).sample.float()


@dataclass(frozen=True)
class Backend:
    name: str
    noise_predictor: NoisePredictor
    vae: VaeCodec
    detail: str = ""


def auto_backend(device: torch.device, dtype: torch.dtype, export_available: bool) -> str:
    """The backend measured fastest for this device and precision (docs/performance.md has the numbers).

    CPU, fp32: ONNX Runtime, 1.15x faster than torch end to end on the Riffusion architecture (when exported).
    CPU, bf16: torch; its bf16 autocast beats every ONNX Runtime variant (fp32 1.37x slower, int8 1.18x slower).
    CUDA and MPS: not measured yet, so torch, until a benchmark on a GPU says otherwise.
    """
    if device.type == "cpu" and dtype == torch.float32 and export_available:
        return "onnx"
    return "torch"


def backend_for_styles(name: str, adapters: bool) -> str:
    """``auto`` with styles that carry a LoRA adapter is torch: the ONNX export holds only the plain UNet."""
    return "torch" if name == "auto" and adapters else name


def create_backend(base: BaseModel, name: str = "torch", onnx_dir: str | os.PathLike | None = None,
                   compile: bool = False) -> Backend:
    """The backend ``name`` for ``base``; ``compile`` runs the torch UNet through torch.compile (torch only)."""
    if name not in BACKENDS:
        raise SettingsError(f"Unknown backend '{name}': use {', '.join(BACKENDS)}.")
    if name == "auto":
        name = auto_backend(base.device, base.dtype, onnx_dir is not None or _cached_export(base))
    if name == "torch":
        return Backend("torch", TorchUNet(base, compile), TorchVae(base), "torch, compiled UNet" if compile else "")
    if compile:
        raise SettingsError("--compile applies to the torch backend only; drop it or use --backend torch.")
    from .onnx_backend import load_onnx_models

    unet, vae, detail = load_onnx_models(base, Path(onnx_dir) if onnx_dir else None)
    return Backend("onnx", unet, vae, detail)


def _cached_export(base: BaseModel) -> bool:
    from .onnx_backend import find_export

    try:
        find_export(base, None)
        return True
    except SettingsError:
        return False
