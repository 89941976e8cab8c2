"""Choosing where the model runs and at which precision ("auto" picks the fastest safe choice)."""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import SettingsError

DTYPES = {
    "fp32": torch.float32, "float32": torch.float32,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
    "fp16": torch.float16, "float16": torch.float16,
}


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` prefers CUDA, then Apple's MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SettingsError(f"Unknown device '{name}': use auto, cpu, cuda or mps.")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SettingsError("--device cuda was asked for, but this machine has no usable CUDA GPU.")
    return device


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with bf16 matrix instructions (AMX or AVX-512 BF16), where bf16 is 2-3x faster than fp32."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return False
    flags = cpuinfo.read_text(errors="ignore")
    return "amx_bf16" in flags or "avx512_bf16" in flags


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto``: fp16 on CUDA and MPS, bf16 on CPUs with fast bf16, else fp32."""
    if name == "auto":
        if device.type in ("cuda", "mps"):
            return torch.float16
        return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
    if name not in DTYPES:
        raise SettingsError(f"Unknown precision '{name}': use auto, fp32, bf16 or fp16.")
    return DTYPES[name]


def default_window_batch(device: torch.device) -> int:
    """Windows of a long clip per UNet batch: 4 on CUDA (fills the GPU better; not yet measured), 1 elsewhere
    (a CPU gains nothing from larger batches, and progress ticks stay fine-grained)."""
    return 4 if device.type == "cuda" else 1


def dtype_name(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
