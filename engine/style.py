"""A style: the time-varying textual embedding (TVE) of the placeholder word ``*``, and its metadata.

The module maps a diffusion timestep t to the input token embedding e(t) of ``*`` (docs/method.md):
sinusoidal(t) -> MLP (d -> 4d -> 4d -> d) -> + frozen embedding of an init word -> output linear maps.
The official code follows the sum with an attention block over a single token; with one key its softmax is
always 1, so it is exactly a chain of linear maps (value, output projection, final linear), written as such.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from diffusers.models.embeddings import get_timestep_embedding
from safetensors.torch import load_file, save_file
from torch import nn

from .adapters import ADAPTER_FILE, AdapterUse, LoraSettings
from .errors import SettingsError, StyleNotFoundError
from .numbers import finite_number

WEIGHTS_FILE = "style.safetensors"
INFO_FILE = "style.json"
DEFAULT_SCALE = 5.0  # the method's published example settings
DEFAULT_STRENGTH = 0.7


class TimeVaryingEmbedding(nn.Module):
    """e(t): one embedding of width ``embed_dim`` per diffusion timestep."""

    def __init__(self, embed_dim: int, init_embedding: torch.Tensor, hidden_mult: int = 4):
        super().__init__()
        hidden = embed_dim * hidden_mult
        self.embed_dim = embed_dim
        self.mlp = nn.Sequential(
            nn.Linear(embed_dim, hidden), nn.SiLU(),
            nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, embed_dim),
        )
        self.register_buffer("init_embedding", init_embedding.detach().clone().reshape(embed_dim).float())
        self.output = nn.Sequential(
            nn.Linear(embed_dim, embed_dim),  # attention value projection
            nn.Linear(embed_dim, embed_dim),  # attention output projection
            nn.Linear(embed_dim, embed_dim),  # final linear
        )

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        """(B,) timesteps -> (B, embed_dim) embeddings."""
        t = timesteps.reshape(-1).to(self.init_embedding.device)
        sinusoid = get_timestep_embedding(t, self.embed_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        return self.output(self.mlp(sinusoid) + self.init_embedding)


@dataclass
class StyleInfo:
    """Everything a style remembers besides its weights (stored as JSON next to them)."""

    name: str
    base_model: str
    base_fingerprint: str
    embed_dim: int
    hidden_mult: int = 4
    init_word: str = "music"
    recommended_scale: float = DEFAULT_SCALE
    recommended_strength: float = DEFAULT_STRENGTH
    training: dict = field(default_factory=dict)  # settings, clip fingerprints, seconds taken
    loss_history: list[float] = field(default_factory=list)
    created: str = ""
    produces_noise: bool = False
    adapter: dict | None = None  # LoraSettings.to_info() for a style with a LoRA; None: TVE only

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "StyleInfo":
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Style:
    """A trained style: the TVE module (in eval mode), its info, and its LoRA adapter's weights if it has one."""

    info: StyleInfo
    module: TimeVaryingEmbedding
    adapter: dict[str, torch.Tensor] | None = None

    @property
    def name(self) -> str:
        return self.info.name

    @functools.cached_property
    def adapter_key(self) -> str:
        """Identifies the adapter's weights (a retrained style of the same name gets a new key)."""
        digest = hashlib.sha256(self.name.encode())
        for key, tensor in sorted((self.adapter or {}).items()):
            digest.update(key.encode())
            digest.update(tensor.detach().float().cpu().numpy().tobytes())
        return digest.hexdigest()[:16]

    @property
    def adapter_settings(self) -> LoraSettings | None:
        return None if self.info.adapter is None else LoraSettings.from_info(self.info.adapter)

    def save(self, folder: str | os.PathLike) -> None:
        """Write weights and info into ``folder`` (the library makes this atomic)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE), metadata={"name": self.info.name})
        if self.adapter is not None:
            adapter = {k: v.detach().cpu().contiguous() for k, v in self.adapter.items()}
            save_file(adapter, str(folder / ADAPTER_FILE), metadata={"name": self.info.name, "format": "peft-lora"})
        (folder / INFO_FILE).write_text(json.dumps(self.info.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: str | os.PathLike, device: torch.device | str = "cpu") -> "Style":
        folder = Path(folder)
        info = read_info(folder)
        state = load_file(str(folder / WEIGHTS_FILE), device=str(device))
        module = TimeVaryingEmbedding(info.embed_dim, state["init_embedding"], info.hidden_mult)
        module.load_state_dict(state)
        module.to(device).eval().requires_grad_(False)  # eval: no dropout at inference
        return cls(info, module, load_adapter(folder, info, device))


def read_info(folder: str | os.PathLike) -> StyleInfo:
    folder = Path(folder)
    try:
        return StyleInfo.from_dict(json.loads((folder / INFO_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise StyleNotFoundError(f"Style folder {folder} is damaged or incomplete ({exc}).") from None


def load_adapter(folder: Path, info: StyleInfo, device: torch.device | str) -> dict[str, torch.Tensor] | None:
    """The LoRA weights named in style.json's ``adapter`` entry; None for a TVE-only style."""
    if info.adapter is None:
        return None
    try:
        LoraSettings.from_info(info.adapter)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise StyleNotFoundError(f"Style folder {folder} has a damaged adapter entry in {INFO_FILE} ({exc}).") from None
    try:
        return load_file(str(folder / info.adapter.get("file", ADAPTER_FILE)), device=str(device))
    except Exception as exc:  # a missing file, or safetensors' own error type for a damaged one
        raise StyleNotFoundError(f"Style folder {folder} has a missing or damaged adapter file ({exc}).") from None


def parse_style_mix(spec: str) -> list[tuple[str, float]]:
    """'bird' -> [('bird', 1.0)]; 'a:0.7,b:0.3' -> weights normalised to sum to 1."""
    parts = []
    for item in spec.split(","):
        name, _, weight = item.strip().rpartition(":") if ":" in item else (item.strip(), "", "1")
        if not name:
            raise SettingsError(f"Cannot read style mix '{spec}': write a name, or name:weight pairs like a:0.7,b:0.3.")
        value = finite_number(weight, f"Style weight for '{name}' in '{spec}'")
        if value < 0:
            raise SettingsError(f"Style weight {weight} for '{name}' is negative: use weights of 0 or more, like "
                                "a:0.7,b:0.3.")
        parts.append((name, value))
    total = sum(w for _, w in parts)
    if total <= 0:
        raise SettingsError(f"The weights in style mix '{spec}' add up to zero.")
    return [(name, w / total) for name, w in parts]


@dataclass(frozen=True)
class StyleMix:
    """One style, or several blended: e(t) = sum of weight_i * e_i(t) (weights sum to 1)."""

    parts: tuple[tuple[Style, float], ...]

    @property
    def key(self) -> tuple:
        """Identifies the mix for caching (a retrained style of the same name gets a new ``created`` stamp)."""
        return tuple((style.name, style.info.created, round(weight, 6)) for style, weight in self.parts)

    @property
    def label(self) -> str:
        """For file names: 'bird', or 'bird70+chime30' for a blend."""
        return mix_label([(style.name, weight) for style, weight in self.parts])

    def embedding(self, timesteps: torch.Tensor) -> torch.Tensor:
        return sum(weight * style.module(timesteps) for style, weight in self.parts)

    @property
    def adapters(self) -> tuple[AdapterUse, ...]:
        """The LoRA adapters of the mix's styles, each with its blend weight (TVE-only parts add none)."""
        return tuple(
            AdapterUse(style.adapter_key, style.adapter_settings, style.adapter, weight)
            for style, weight in self.parts if style.adapter is not None
        )


def mix_label(parts: list[tuple[str, float]]) -> str:
    """A blend's name in file names: 'bird', or 'bird70+chime30'."""
    if len(parts) == 1:
        return parts[0][0]
    return "+".join(f"{name}{round(100 * weight)}" for name, weight in parts)
