"""Exporting a base model's UNet and VAE to ONNX, so sampling can run on ONNX Runtime without torch models.

Three graphs with dynamic batch and spatial axes, weights as external data (the fp32 Riffusion UNet is 3.4 GB,
over protobuf's 2 GB limit): ``unet.onnx`` (latents, timestep, context -> noise), ``vae_encoder.onnx``
(image -> posterior mean) and ``vae_decoder.onnx`` (latents -> image). ``export.json`` records the base model's
fingerprint and the settings; the backend refuses an export made from other weights.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_folder
from .base_model import BaseModel, quiet_logger
from .errors import SettingsError
from .onnx_backend import EXPORT_FILE, create_session, default_export_dir

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_OPSET = 18


@dataclass(frozen=True)
class ExportSettings:
    precision: str = "fp32"  # fp16 is for GPUs; int8 (dynamic quantisation of matmuls) for CPUs
    opset: int = DEFAULT_OPSET

    def validate(self) -> "ExportSettings":
        if self.precision == "bf16":
            raise SettingsError("ONNX export in bf16 is not supported; on CPUs use --backend torch with --dtype bf16, "
                                "or --precision int8.")
        if self.precision not in PRECISIONS:
            raise SettingsError(f"Unknown ONNX precision '{self.precision}': use {', '.join(PRECISIONS)}.")
        if not 17 <= self.opset <= 23:
            raise SettingsError(f"opset {self.opset} is out of range: use 17 to 23 (default {DEFAULT_OPSET}).")
        return self


@dataclass
class ExportReport:
    folder: Path
    settings: ExportSettings
    relative_errors: dict[str, float] = field(default_factory=dict)  # ORT vs torch on random inputs


class _UNet(torch.nn.Module):
    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, context):
        return self.unet(sample, timestep, encoder_hidden_states=context, return_dict=False)[0]


class _Encoder(torch.nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, image):
        return self.vae.encode(image).latent_dist.mean


class _Decoder(torch.nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, latents):
        return self.vae.decode(latents, return_dict=False)[0]


def example_inputs(base: BaseModel, batch: int = 1) -> dict[str, dict[str, torch.Tensor]]:
    """Random inputs of one window's shapes for each component (also used to check an export)."""
    fmt, device = base.spectrogram, base.device
    factor = 2 ** (len(base.vae.config.block_out_channels) - 1)
    h, w = fmt.n_mels // factor, fmt.width // factor
    length = base.text_encoder.config.max_position_embeddings
    generator = torch.Generator().manual_seed(0)

    def randn(*shape):
        return torch.randn(*shape, generator=generator).to(device)

    return {
        "unet": {"sample": randn(batch, base.unet.config.in_channels, h, w),
                 "timestep": torch.full((batch,), 500, dtype=torch.int64, device=device),
                 "context": randn(batch, length, base.embed_dim)},
        "vae_encoder": {"image": randn(batch, 3, fmt.n_mels, fmt.width).clamp(-1, 1)},
        "vae_decoder": {"latents": randn(batch, base.vae.config.latent_channels, h, w)},
    }


def _modules(base: BaseModel) -> dict[str, torch.nn.Module]:
    return {"unet": _UNet(base.unet), "vae_encoder": _Encoder(base.vae), "vae_decoder": _Decoder(base.vae)}


def export_onnx(base: BaseModel, folder: str | os.PathLike | None = None,
                settings: ExportSettings = ExportSettings(), check: bool = True) -> ExportReport:
    """Export the three graphs into ``folder`` (default: the engine's cache), atomically, then check them."""
    settings.validate()
    folder = Path(folder) if folder else default_export_dir(base, settings.precision)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(folder) as staging:  # also removes what killed exports into this folder left behind
        inputs = example_inputs(base)
        for name, module in _modules(base).items():
            _export_graph(module.eval(), inputs[name], staging / f"{name}.onnx", settings.opset)
            _convert_precision(staging / f"{name}.onnx", settings.precision, name)
        record = {"model_id": base.model_id, "fingerprint": base.fingerprint, **asdict(settings),
                  "spectrogram": base.spectrogram.to_dict(), "torch": torch.__version__}
        (staging / EXPORT_FILE).write_text(json.dumps(record, indent=2) + "\n")
    report = ExportReport(folder, settings)
    if check:
        report.relative_errors = check_export(base, folder)
    return report


def _export_graph(module: torch.nn.Module, inputs: dict[str, torch.Tensor], path: Path, opset: int) -> None:
    dynamic = torch.export.Dim.DYNAMIC  # batch always; height and width of images and latents too
    shapes = [{0: dynamic, 2: dynamic, 3: dynamic} if t.ndim == 4 else {0: dynamic} for t in inputs.values()]
    with quiet_logger("torch.onnx"), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, tuple(inputs.values()), str(path), input_names=list(inputs), output_names=["output"],
                          dynamic_shapes=tuple(shapes), opset_version=opset, dynamo=True,
                          external_data=True, verbose=False)


def _convert_precision(path: Path, precision: str, name: str) -> None:
    """Rewrite an fp32 graph in place as fp16 (float32 inputs and outputs kept) or int8 (UNet matmuls only)."""
    if precision == "fp32" or (precision == "int8" and name != "unet"):
        return
    import onnx

    if precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        converted = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
    else:
        converted = _quantize_int8(path)
    _remove_graph(path)
    onnx.save(converted, str(path), save_as_external_data=True, location=path.name + ".data")


def _quantize_int8(path: Path):
    """Dynamic int8 quantisation: weights stored in int8, activations quantised on the fly."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    plain = onnx.load(str(path))
    del plain.graph.value_info[:]  # the exporter's shape hints trip the quantiser's own shape inference
    onnx.save(plain, str(path), save_as_external_data=True, location=path.name + ".data")
    quantized = path.with_name(path.stem + ".int8.onnx")
    quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                     use_external_data_format=True)
    model = onnx.load(str(quantized))  # loads the external weights into memory
    _remove_graph(quantized)
    return model


def _remove_graph(path: Path) -> None:
    for file in path.parent.glob(path.name + "*"):  # the graph and its external data
        file.unlink()


def check_export(base: BaseModel, folder: Path) -> dict[str, float]:
    """Max absolute difference between ONNX Runtime and torch, relative to the torch output's range."""
    errors = {}
    inputs = example_inputs(base, batch=2)
    for name, module in _modules(base).items():
        session = create_session(folder / f"{name}.onnx", base.device)
        feed = {k: v.cpu().numpy() for k, v in inputs[name].items()}
        got = session.run(None, feed)[0]
        with torch.no_grad():
            want = module.eval()(*inputs[name].values()).float().cpu().numpy()
        errors[name] = float(np.abs(got - want).max() / max(1e-12, float(np.abs(want).max())))
    return errors
