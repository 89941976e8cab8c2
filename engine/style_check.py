"""Checking a style folder as a whole (both files, every field's type, every tensor's shape) before it is used
or listed, so a damaged style is named as damaged and never costs the others or a traceback."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors import safe_open

from .adapters import ADAPTER_FILE, LoraSettings
from .errors import DamagedStyleError, RestyleError
from .style import INFO_FILE, WEIGHTS_FILE, StyleInfo, TimeVaryingEmbedding

_TEXT = (str,)
_NUMBER = (int, float)
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "name": _TEXT, "base_model": _TEXT, "base_fingerprint": _TEXT, "embed_dim": (int,), "hidden_mult": (int,),
    "init_word": _TEXT, "recommended_scale": _NUMBER, "recommended_strength": _NUMBER, "training": (dict,),
    "loss_history": (list,), "created": _TEXT, "produces_noise": (bool,),
}
REQUIRED = ("name", "base_model", "base_fingerprint", "embed_dim")


def check_style(folder: Path) -> StyleInfo:
    """The style's info after checking both files; DamagedStyleError (saying what is wrong) otherwise."""
    info = _read_info(folder)
    _check_weights(folder, info)
    if info.adapter is not None:
        _check_adapter(folder, info)
    return info


def damaged(folder: Path, what: str) -> DamagedStyleError:
    name = folder.name
    return DamagedStyleError(f"Style '{name}' is damaged: {what}. Remove it with `restyle styles rm {name}` or "
                             f"train it again with --overwrite.")


def _read_info(folder: Path) -> StyleInfo:
    path = folder / INFO_FILE
    if not path.is_file():
        raise damaged(folder, f"{INFO_FILE} is missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise damaged(folder, f"{INFO_FILE} cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise damaged(folder, f"{INFO_FILE} holds no settings")
    for field in REQUIRED:
        if field not in data:
            raise damaged(folder, f"{INFO_FILE} has no '{field}'")
    for field, types in FIELD_TYPES.items():
        value = data.get(field)
        if field in data and (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)):
            raise damaged(folder, f"'{field}' in {INFO_FILE} is {json.dumps(value)[:40]}, not a {types[0].__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise damaged(folder, f"'{field}' in {INFO_FILE} is not a finite number")
    if data["embed_dim"] < 1 or data.get("hidden_mult", 1) < 1:
        raise damaged(folder, f"the sizes in {INFO_FILE} are not positive")
    return StyleInfo.from_dict(data)


def expected_shapes(info: StyleInfo) -> dict[str, tuple[int, ...]]:
    """The tensors a style module of this size holds (built on the meta device: no memory, no time)."""
    with torch.device("meta"):
        module = TimeVaryingEmbedding(info.embed_dim, torch.zeros(info.embed_dim), info.hidden_mult)
    return {name: tuple(tensor.shape) for name, tensor in module.state_dict().items()}


def _check_weights(folder: Path, info: StyleInfo) -> None:
    shapes = _tensor_shapes(folder, WEIGHTS_FILE)
    for key, shape in expected_shapes(info).items():
        if shapes.get(key) != shape:
            found = "missing" if key not in shapes else f"shaped {list(shapes[key])}"
            raise damaged(folder, f"weight '{key}' in {WEIGHTS_FILE} is {found}, not {list(shape)}")


def _check_adapter(folder: Path, info: StyleInfo) -> None:
    """The adapter entry reads as LoRA settings, and its file holds LoRA pairs of that rank."""
    try:
        if not isinstance(info.adapter, dict):
            raise TypeError("not a table of settings")
        lora = LoraSettings.from_info(info.adapter)
        lora.validate()
    except (RestyleError, AttributeError, KeyError, TypeError, ValueError) as exc:
        raise damaged(folder, f"its adapter entry in {INFO_FILE} is unusable ({exc})") from None
    name = info.adapter.get("file", ADAPTER_FILE)
    shapes = _tensor_shapes(folder, name)
    ranks = {shape[0] for key, shape in shapes.items() if "lora_A" in key}
    ranks |= {shape[-1] for key, shape in shapes.items() if "lora_B" in key}
    if not shapes or ranks != {lora.rank}:
        raise damaged(folder, f"{name} holds no LoRA weights of rank {lora.rank}")


def _tensor_shapes(folder: Path, name: str) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape in a safetensors file of the style, read from its header alone."""
    path = folder / name
    if not path.is_file():
        raise damaged(folder, f"{name} is missing")
    try:
        with safe_open(str(path), "pt") as weights:
            return {key: tuple(weights.get_slice(key).get_shape()) for key in weights.keys()}
    except Exception as exc:  # safetensors raises its own error types for truncated or foreign files
        raise damaged(folder, f"{name} cannot be read ({exc})") from None
