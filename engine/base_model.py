"""The frozen base model: a text-conditioned latent diffusion model over spectrogram images.

``load_base_model`` takes the shipped ``mini`` model, the built-in ``tiny`` one, a Hugging Face hub id (from the
local cache, or downloaded when the network allows) or a local folder in diffusers layout. Every weight is frozen; only
style modules are ever trained.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from .devices import pick_device, pick_dtype
from .errors import ModelNotFoundError
from .mini import MINI, MODEL_DIR as MINI_DIR
from .spectrogram import SpectrogramFormat
from .tiny import SD_SCHEDULER_CONFIG, TINY_SPECTROGRAM, build_riffusion_sized_components, build_tiny_components

RIFFUSION = "riffusion/riffusion-model-v1"
TINY = "tiny"
RANDOM_RIFFUSION = "random-riffusion"  # Riffusion's architecture with random weights: for benchmarks
DEFAULT_MODEL = RIFFUSION
SPECTROGRAM_FILE = "spectrogram.json"  # a model's own image format, stored next to its weights


@dataclass
class BaseModel:
    """The loaded, frozen components and what they need to run: device, precision, image format."""

    model_id: str
    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    scheduler_config: dict
    spectrogram: SpectrogramFormat
    device: torch.device
    dtype: torch.dtype
    produces_noise: bool = False  # true for random-weight models (tiny): say so wherever output is shown
    _fingerprint: str | None = field(default=None, repr=False)

    @property
    def embed_dim(self) -> int:
        """Width of the text encoder's token embeddings (768 for CLIP ViT-L/14)."""
        return self.text_encoder.get_input_embeddings().embedding_dim

    @property
    def vae_scale(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def fingerprint(self) -> str:
        """A short hash of the weights, to tell whether a style was trained on these very weights."""
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(self.unet, self.vae, self.text_encoder)
        return self._fingerprint

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision for the UNet and text encoder: matmuls run in ``dtype``. On CUDA their weights are
        already stored in ``dtype`` (``stored_dtypes``), so nothing is re-cast per call; fp32 inputs are."""
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)

    def vae_autocast(self) -> contextlib.AbstractContextManager:
        """The VAE's precision: its stored dtype where it was loaded below fp32 (CUDA), else ``autocast``."""
        stored = self.vae.dtype
        if stored == torch.float32:
            return self.autocast()
        return torch.autocast(self.device.type, dtype=stored)

    def describe(self) -> str:
        label = f"{self.model_id} on {self.device.type} ({self.dtype})".replace("torch.", "")
        if self.produces_noise:
            label += " [random weights: output is noise, for tests and smoke runs]"
        return label


def weights_fingerprint(*modules: torch.nn.Module) -> str:
    """Hash names, shapes and about a thousand evenly spaced values of every tensor (fast even for 1 B weights)."""
    digest = hashlib.sha256()
    for module in modules:
        for name, tensor in sorted(module.state_dict().items()):
            flat = tensor.detach().reshape(-1)
            sample = flat[:: max(1, flat.numel() // 1024)].to("cpu", torch.float32)
            digest.update(f"{name}:{tuple(tensor.shape)}".encode())
            digest.update(sample.numpy().tobytes())
    return digest.hexdigest()[:16]


def _freeze(*modules: torch.nn.Module) -> None:
    for module in modules:
        module.requires_grad_(False)
        module.eval()


def stored_dtypes(device: torch.device, dtype: torch.dtype) -> tuple[torch.dtype, torch.dtype]:
    """(UNet and text encoder, VAE) weight dtypes. On CUDA the weights are stored at ``dtype``, the VAE in bf16
    where fp16 is asked for (same speed, fp32's range: an fp16 VAE can overflow) and the GPU has it; elsewhere fp32
    (CPU autocast to bf16 is measured faster than bf16 weights, docs/performance.md)."""
    if device.type != "cuda" or dtype == torch.float32:
        return torch.float32, torch.float32
    vae = torch.bfloat16 if dtype == torch.float16 and torch.cuda.is_bf16_supported() else dtype
    return dtype, (torch.float32 if vae == torch.float16 else vae)


def load_base_model(model: str = DEFAULT_MODEL, device: str = "auto", dtype: str = "auto") -> BaseModel:
    """Load a base model once; pass the result to everything that needs it."""
    torch_device = pick_device(device)
    torch_dtype = pick_dtype(dtype, torch_device)
    weights_dtype, vae_dtype = stored_dtypes(torch_device, torch_dtype)
    if model == TINY:
        unet, vae, text_encoder, tokenizer = build_tiny_components()
        scheduler_config, fmt, noise = dict(SD_SCHEDULER_CONFIG), TINY_SPECTROGRAM, True
    elif model == MINI:
        if not (MINI_DIR / SPECTROGRAM_FILE).is_file():
            raise ModelNotFoundError(
                f"The shipped mini model is missing from {MINI_DIR}: reinstall Restyle, or train it with "
                "`restyle mini train`.")
        unet, vae, text_encoder, tokenizer, scheduler_config = _load_pretrained(str(MINI_DIR))
        fmt, noise = _read_model_notes(str(MINI_DIR))
    elif model == RANDOM_RIFFUSION:
        unet, vae, text_encoder, tokenizer = build_riffusion_sized_components()
        scheduler_config, fmt, noise = dict(SD_SCHEDULER_CONFIG), SpectrogramFormat(), True
    else:
        unet, vae, text_encoder, tokenizer, scheduler_config = _load_pretrained(model)
        fmt, noise = _read_model_notes(model)
        model = str(Path(model).resolve()) if Path(model).is_dir() else model
    _freeze(unet, vae, text_encoder)
    # the fingerprint is of the weights as published (fp32), whatever precision they are stored at here
    fingerprint = weights_fingerprint(unet, vae, text_encoder) if weights_dtype != torch.float32 else None
    for module, stored in ((unet, weights_dtype), (text_encoder, weights_dtype), (vae, vae_dtype)):
        # CPU: fp32, autocast runs the matmuls at ``dtype`` (no dtype argument: diffusers warns about any)
        module.to(torch_device) if stored == torch.float32 else module.to(torch_device, stored)
    if torch_device.type == "cuda" or (torch_device.type == "cpu" and torch_dtype == torch.bfloat16):
        # oneDNN's bf16 convolutions prefer NHWC: measured 17 % off a Riffusion VAE decode, 3 % off a UNet step;
        # cuDNN's fp16/bf16 tensor-core convolutions do too (not yet measured here)
        unet.to(memory_format=torch.channels_last)
        vae.to(memory_format=torch.channels_last)
    return BaseModel(model, unet, vae, text_encoder, tokenizer, scheduler_config, fmt, torch_device, torch_dtype, noise,
                     _fingerprint=fingerprint)


MODEL_FILES = ["model_index.json", "unet/*", "vae/*", "text_encoder/*", "tokenizer/*", "scheduler/*",
               SPECTROGRAM_FILE]  # the diffusers folders the engine loads; nothing else of a hub repository


def _local_folder(source: str) -> str:
    """A folder holding the model: ``source`` itself, its copy in the hub cache, or (network allowing) a download.

    The cache is checked first without touching the network, so an offline machine without the model gets one
    line at once instead of retries and warnings from each library.
    """
    if Path(source).is_dir():
        return source
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    try:
        return snapshot_download(source, allow_patterns=MODEL_FILES, local_files_only=True)
    except HFValidationError:
        raise ModelNotFoundError(f"Base model '{source}' is neither a folder on this machine nor a hub id such as "
                                 f"{RIFFUSION}.") from None
    except (OSError, ValueError):  # not in the cache: LocalEntryNotFoundError and friends
        pass
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        raise _not_here(source, "HF_HUB_OFFLINE is set")
    try:
        with quiet_logger("huggingface_hub"):
            return snapshot_download(source, allow_patterns=MODEL_FILES)
    except (OSError, ValueError) as exc:  # offline, unreachable, 404, gated: all OSError/ValueError subclasses
        raise _not_here(source, "the hub could not be reached" if "LocalEntry" in type(exc).__name__
                        else type(exc).__name__) from None


def _not_here(source: str, why: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"Base model '{source}' is not on this machine and could not be downloaded ({why}). Download it once with "
        f"`hf download {source}` where there is internet (or copy the folder and pass --model FOLDER), "
        "or use --model mini, the small model shipped with Restyle, which needs no download."
    )


@contextlib.contextmanager
def quiet_logger(name: str):
    """Only errors from logger ``name`` while inside (e.g. huggingface_hub's retry warnings); its level is restored."""
    import logging

    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _load_pretrained(source: str):
    where = "folder" if Path(source).is_dir() else "model"
    source = _local_folder(source)
    try:
        unet = UNet2DConditionModel.from_pretrained(source, subfolder="unet", torch_dtype=torch.float32)
        vae = AutoencoderKL.from_pretrained(source, subfolder="vae", torch_dtype=torch.float32)
        text_encoder = CLIPTextModel.from_pretrained(source, subfolder="text_encoder", dtype=torch.float32)
        tokenizer = CLIPTokenizer.from_pretrained(source, subfolder="tokenizer")
        scheduler_config = dict(DDIMScheduler.load_config(source, subfolder="scheduler"))
    except (OSError, ValueError) as exc:  # hub errors (offline, not cached, 404) are OSError/ValueError subclasses
        if where == "folder":
            raise ModelNotFoundError(
                f"Cannot load the base model from folder {source}: it must hold unet/, vae/, text_encoder/, "
                f"tokenizer/ and scheduler/ in diffusers layout ({type(exc).__name__})."
            ) from None
        raise ModelNotFoundError(f"Base model '{source}' in the hub cache is incomplete or damaged "
                                 f"({type(exc).__name__}): download it again with `hf download {source}`.") from None
    return unet, vae, text_encoder, tokenizer, scheduler_config


def _read_model_notes(source: str) -> tuple[SpectrogramFormat, bool]:
    """A model folder's own spectrogram format and random-weights flag; Riffusion's format when absent."""
    path = Path(source) / SPECTROGRAM_FILE
    if not path.is_file():
        return SpectrogramFormat(), False
    notes = json.loads(path.read_text())
    return SpectrogramFormat.from_dict(notes.get("format", {})), bool(notes.get("random_weights", False))


def save_base_model(base: BaseModel, folder: str | os.PathLike) -> Path:
    """Write a base model in diffusers layout, with its spectrogram format, so it loads from a folder."""
    folder = Path(folder)
    base.unet.save_pretrained(folder / "unet")
    base.vae.save_pretrained(folder / "vae")
    base.text_encoder.save_pretrained(folder / "text_encoder")
    base.tokenizer.save_pretrained(folder / "tokenizer")
    DDIMScheduler.from_config(base.scheduler_config).save_config(folder / "scheduler")
    meta = {"format": base.spectrogram.to_dict(), "random_weights": base.produces_noise}
    (folder / SPECTROGRAM_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return folder
