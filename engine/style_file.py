"""Styles as files to share: one ``.restyle`` file holding a style's weights, its adapter and its style.json.

The file is a safetensors file: the style module's tensors under ``tve/``, a LoRA adapter's under ``adapter/``,
and in its metadata ``format`` (``restyle-style``), ``format_version``, the whole ``style.json`` text and a
SHA-256 over that text and every tensor (so a file cut short or altered is refused, not half imported).
Importing checks that the style was trained on the very base-model weights it will be used with (the
fingerprint recorded in style.json against the loaded model's), then installs it atomically in the library.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .adapters import ADAPTER_FILE
from .atomic import atomic_folder, atomic_path
from .errors import (BaseModelMismatchError, DamagedStyleError, OutputExistsError, SettingsError, StyleExistsError)
from .library import StyleLibrary, check_name
from .style import INFO_FILE, WEIGHTS_FILE, StyleInfo
from .style_check import check_style

SUFFIX = ".restyle"
FORMAT = "restyle-style"
FORMAT_VERSION = "1"
TVE_PREFIX = "tve/"
ADAPTER_PREFIX = "adapter/"


@dataclass(frozen=True)
class StyleFile:
    """A style read from a ``.restyle`` file: its info and tensors, checked against the file's digest."""

    path: Path
    info: StyleInfo
    info_text: str
    tve: dict[str, torch.Tensor]
    adapter: dict[str, torch.Tensor] | None


def _digest(info_text: str, tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256(info_text.encode("utf-8"))
    for key in sorted(tensors):
        tensor = tensors[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def export_style(library: StyleLibrary, name: str, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write style ``name`` (the user's or a shipped one) into one ``.restyle`` file at ``path``, atomically."""
    path = Path(path)
    if path.is_dir():
        raise SettingsError(f"{path} is a folder; give a file name such as {path / (name + SUFFIX)}.")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists and is never replaced; choose another name (--overwrite "
                                "replaces it).")
    folder = library.locate(name)
    info = check_style(folder)  # a damaged style is named as such, never exported
    tensors = {TVE_PREFIX + k: v for k, v in load_file(str(folder / WEIGHTS_FILE)).items()}
    if info.adapter is not None:
        adapter = load_file(str(folder / info.adapter.get("file", ADAPTER_FILE)))
        tensors.update({ADAPTER_PREFIX + k: v for k, v in adapter.items()})
    info_text = (folder / INFO_FILE).read_text(encoding="utf-8")
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "style.json": info_text,
                "sha256": _digest(info_text, tensors)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    return path


def _not_a_style(path: Path, why: str) -> DamagedStyleError:
    return DamagedStyleError(f"{path.name} is not a usable Restyle style file: {why}. Export it again with "
                             "`restyle styles export`.")


def read_style_file(path: str | os.PathLike) -> StyleFile:
    """Read and check a ``.restyle`` file; DamagedStyleError (one line) for a damaged or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise SettingsError(f"No style file at {path}.")
    try:
        with safe_open(str(path), "pt") as opened:
            metadata = opened.metadata() or {}
        tensors = load_file(str(path))
    except Exception:  # safetensors raises its own error types for truncated or foreign files
        raise _not_a_style(path, "it is damaged (cut short?) or not a safetensors file") from None
    if metadata.get("format") != FORMAT:
        raise _not_a_style(path, "it holds no Restyle style (it was not made by `restyle styles export`)")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise _not_a_style(path, f"it is format version {metadata.get('format_version')}, this Restyle reads "
                                 f"version {FORMAT_VERSION}: update Restyle")
    info_text = metadata.get("style.json", "")
    if metadata.get("sha256") != _digest(info_text, tensors):
        raise _not_a_style(path, "its contents do not match its checksum (altered or damaged)")
    try:
        info = StyleInfo.from_dict(json.loads(info_text))
    except (ValueError, TypeError) as exc:
        raise _not_a_style(path, f"its style.json cannot be read ({exc})") from None
    tve = {k[len(TVE_PREFIX):]: v for k, v in tensors.items() if k.startswith(TVE_PREFIX)}
    adapter = {k[len(ADAPTER_PREFIX):]: v for k, v in tensors.items() if k.startswith(ADAPTER_PREFIX)}
    return StyleFile(path, info, info_text, tve, adapter or None)


def check_base(style_file: StyleFile, fingerprint: str, model: str) -> None:
    """Refuse a style trained on other base-model weights than ``model``'s (fingerprint ``fingerprint``)."""
    info = style_file.info
    if info.base_fingerprint != fingerprint:
        raise BaseModelMismatchError(
            f"{style_file.path.name} holds style '{info.name}', trained on base model '{info.base_model}' "
            f"(fingerprint {info.base_fingerprint}), not on '{model}' (fingerprint {fingerprint}); a style works only "
            f"with the weights it was trained on: import it where '{info.base_model}' is installed.")


def free_folder(library: StyleLibrary, style_file: StyleFile, name: str | None = None,
                overwrite: bool = False) -> Path:
    """The library folder the style will be installed in; StyleExistsError if taken and not ``overwrite``."""
    name = check_name(name or style_file.info.name)
    final = library.folder(name)
    if final.exists() and not overwrite:
        raise StyleExistsError(f"A style named '{name}' already exists; import under another name (--name NEW) "
                               "or replace it (--force).")
    return final


def import_style(library: StyleLibrary, style_file: StyleFile, fingerprint: str, model: str,
                 name: str | None = None, overwrite: bool = False) -> Path:
    """Install ``style_file`` into ``library`` as ``name`` (default: its own name), atomically; an existing style
    of that name is replaced only with ``overwrite``."""
    check_base(style_file, fingerprint, model)
    final = free_folder(library, style_file, name, overwrite)
    name = final.name
    info = json.loads(style_file.info_text)
    info["name"] = name
    library.root.mkdir(parents=True, exist_ok=True)
    with atomic_folder(final) as staging:
        save_file(style_file.tve, str(staging / WEIGHTS_FILE), metadata={"name": name})
        if style_file.adapter is not None:
            adapter_name = (style_file.info.adapter or {}).get("file", ADAPTER_FILE)
            if Path(adapter_name).name != adapter_name:
                raise _not_a_style(style_file.path, f"its adapter file name '{adapter_name}' is not a plain name")
            save_file(style_file.adapter, str(staging / adapter_name), metadata={"name": name, "format": "peft-lora"})
        (staging / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        try:
            check_style(staging)
        except DamagedStyleError as exc:
            why = str(exc).split(": ", 1)[-1].split(". Remove it", 1)[0]
            raise _not_a_style(style_file.path, f"the style inside is damaged ({why})") from None
    return final
