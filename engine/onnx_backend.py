"""Sampling on ONNX Runtime: sessions for the exported UNet and VAE, created once and reused.

On a CUDA device the CUDA execution provider runs with IO binding (inputs and outputs stay in GPU memory as torch
tensors); otherwise the CPU provider runs with every graph optimisation on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import platformdirs
import torch

from .base_model import BaseModel
from .errors import BaseModelMismatchError, SettingsError

EXPORT_FILE = "export.json"
COMPONENTS = ("unet", "vae_encoder", "vae_decoder")
PREFERRED_PRECISIONS = {"cuda": ("fp16", "fp32"), "cpu": ("fp32", "int8")}
_NUMPY_TO_TORCH = {"tensor(float)": torch.float32, "tensor(float16)": torch.float16, "tensor(int64)": torch.int64}


def require_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise SettingsError("ONNX Runtime is not installed: pip install 'restyle[onnx]', or use --backend torch.") from None
    return onnxruntime


def create_session(path: Path, device: torch.device):
    ort = require_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: a missing CUDA provider falls back to the CPU quietly
    if device.type == "cuda":
        providers = [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    return ort.InferenceSession(str(path), options, providers=providers)


class OnnxGraph:
    """One session; takes and returns torch tensors on the model's device."""

    def __init__(self, path: Path, device: torch.device):
        self.session = create_session(path, device)
        self.device = device
        self.on_gpu = device.type == "cuda" and "CUDAExecutionProvider" in self.session.get_providers()
        self.input_types = {i.name: _NUMPY_TO_TORCH[i.type] for i in self.session.get_inputs()}
        self.output = self.session.get_outputs()[0].name

    def __call__(self, output_shape: tuple[int, ...], **inputs: torch.Tensor) -> torch.Tensor:
        feeds = {name: inputs[name].to(self.input_types[name]).contiguous() for name in self.input_types}
        if self.on_gpu:
            return self._run_bound(feeds, output_shape)
        result = self.session.run([self.output], {k: v.cpu().numpy() for k, v in feeds.items()})[0]
        return torch.from_numpy(np.ascontiguousarray(result)).to(self.device, torch.float32)

    def _run_bound(self, feeds: dict[str, torch.Tensor], output_shape: tuple[int, ...]) -> torch.Tensor:
        """Inputs and output stay in GPU memory: ORT reads and writes the torch tensors' buffers directly."""
        device_id = self.device.index or 0
        binding = self.session.io_binding()
        for name, tensor in feeds.items():
            tensor = tensor.to(self.device)
            feeds[name] = tensor  # keep the buffer alive until the run ends
            binding.bind_input(name, "cuda", device_id, _numpy_dtype(tensor.dtype), tuple(tensor.shape),
                               tensor.data_ptr())
        output = torch.empty(output_shape, dtype=torch.float32, device=self.device)  # float32 I/O (keep_io_types)
        binding.bind_output(self.output, "cuda", device_id, np.float32, tuple(output.shape), output.data_ptr())
        self.session.run_with_iobinding(binding)
        return output


def _numpy_dtype(dtype: torch.dtype):
    return {torch.float32: np.float32, torch.float16: np.float16, torch.int64: np.int64}[dtype]


class OnnxUNet:
    def __init__(self, graph: OnnxGraph):
        self.graph = graph

    def __call__(self, latents: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        timestep = timestep.reshape(-1).expand(latents.shape[0])
        return self.graph(tuple(latents.shape), sample=latents, timestep=timestep, context=context)


class OnnxVae:
    def __init__(self, encoder: OnnxGraph, decoder: OnnxGraph, factor: int, latent_channels: int):
        self.encoder, self.decoder = encoder, decoder
        self.factor, self.latent_channels = factor, latent_channels

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        b, _, h, w = image.shape
        return self.encoder((b, self.latent_channels, h // self.factor, w // self.factor), image=image)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        b, _, h, w = latents.shape
        return self.decoder((b, 3, h * self.factor, w * self.factor), latents=latents)


def default_export_dir(base: BaseModel, precision: str) -> Path:
    """The engine's cache folder for this base model's export at ``precision``."""
    root = Path(os.environ["RESTYLE_HOME"]) / "cache" if os.environ.get("RESTYLE_HOME") else Path(
        platformdirs.user_cache_dir("restyle", appauthor=False))
    return root / "onnx" / f"{base.fingerprint}-{precision}"


def find_export(base: BaseModel, folder: Path | None) -> Path:
    """The export to use: ``folder``, or the best one in the engine's cache for this device."""
    if folder is not None:
        return folder
    for precision in PREFERRED_PRECISIONS.get(base.device.type, ("fp32",)):
        candidate = default_export_dir(base, precision)
        if (candidate / EXPORT_FILE).is_file():
            return candidate
    raise SettingsError(f"No ONNX export of {base.model_id} yet: run `restyle export-onnx --model {base.model_id}` "
                        "once, or pass --onnx FOLDER.")


def read_export(base: BaseModel, folder: Path) -> dict:
    """The export's record, after checking it was made from these very weights and is complete."""
    try:
        record = json.loads((folder / EXPORT_FILE).read_text())
    except (OSError, ValueError):
        raise SettingsError(f"{folder} is not an ONNX export of Restyle (no readable {EXPORT_FILE}); re-export it.") from None
    if record.get("fingerprint") != base.fingerprint:
        raise BaseModelMismatchError(
            f"The ONNX export in {folder} was made from other weights ({record.get('model_id')}) than the loaded "
            f"{base.model_id}; export again with `restyle export-onnx`."
        )
    missing = [c for c in COMPONENTS if not (folder / f"{c}.onnx").is_file()]
    if missing:
        raise SettingsError(f"The ONNX export in {folder} is incomplete ({', '.join(missing)} missing); export again.")
    return record


def load_onnx_models(base: BaseModel, folder: Path | None = None) -> tuple[OnnxUNet, OnnxVae, str]:
    """The exported UNet and VAE for ``base`` (from ``folder`` or the cache), and a line saying which they are."""
    require_onnxruntime()
    folder = find_export(base, folder)
    record = read_export(base, folder)
    graphs = {name: OnnxGraph(folder / f"{name}.onnx", base.device) for name in COMPONENTS}
    detail = f"ONNX Runtime {record['precision']} from {folder}"
    factor = 2 ** (len(base.vae.config.block_out_channels) - 1)
    vae = OnnxVae(graphs["vae_encoder"], graphs["vae_decoder"], factor, base.vae.config.latent_channels)
    return OnnxUNet(graphs["unet"]), vae, detail
