"""Style adapters: a small LoRA on the UNet's attention, learned together with a style's time-varying embedding.

A TVE-only style can only steer the frozen UNet through one input word; for timbres the base model never produced
(issue 11) a style may also carry a LoRA (peft) on the UNet's attention projections. The base weights stay
frozen and bitwise unchanged: the LoRA is a separate low-rank delta, W x + (alpha / rank) * B A x.

Choices, and why:
- Target modules ``to_q``, ``to_k``, ``to_v``, ``to_out.0`` of every attention block of the UNet, self-attention
  (attn1: how time-frequency patches of the spectrogram relate: envelope, texture) and cross-attention (attn2: how
  the prompt's ``*`` steers them). This is the set diffusers' and the original LoRA-for-Stable-Diffusion recipes
  train; SD 1.5 (Riffusion) and mini are both diffusers ``UNet2DConditionModel``s, so the names match on both.
- Rank 4, alpha = rank (the delta's scale is 1): a few hundred kilobytes of weights on mini, a few megabytes on
  Riffusion; enough for a timbre learned from a handful of clips, little room to memorise them.
- Learning rate 1e-4 for the LoRA (its own AdamW parameter group), the rate diffusers' LoRA training examples use
  for SD 1.5's UNet; the TVE keeps the method's 5e-3. B starts at zero, so at step 0 the model is the TVE-only one.
- Stylizing runs the UNet with the style's adapter only for the style's predictions (BRS and the style half of
  guidance); the unconditional prediction is the base model's, with every adapter switched off. diffusers'
  UNet has no per-sample LoRA scale, so a CFG step of an adapter style is two UNet calls of B (uncond, then style)
  instead of one of 2B: the same arithmetic, a little less batching.
- Blends: diffusers' multi-adapter weights, i.e. a weighted sum of the LoRA deltas with the blend's weights (a
  TVE-only part of a blend contributes no delta), next to the weighted sum of the e(t)s the TVE blend already uses.

Every adapter of one UNet is held by one :class:`UNetAdapters` (shared by the sampler and the trainer); adapters
are off except inside :meth:`UNetAdapters.applied` and while training, and loaded only during a stylize call
(:meth:`UNetAdapters.kept`): outside one the UNet has its plain layers.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .errors import SettingsError

ADAPTER_FILE = "adapter.safetensors"
TARGET_MODULES = ("to_q", "to_k", "to_v", "to_out.0")
DEFAULT_RANK = 4
MAX_RANK = 256
DEFAULT_LEARNING_RATE = 1e-4
TRAINING_ADAPTER = "restyle_training"


@dataclass(frozen=True)
class LoraSettings:
    """A LoRA on the UNet's attention projections (see the module docstring for the defaults' reasons)."""

    rank: int = DEFAULT_RANK
    alpha: float = float(DEFAULT_RANK)
    learning_rate: float = DEFAULT_LEARNING_RATE
    target_modules: tuple[str, ...] = TARGET_MODULES

    def validate(self) -> "LoraSettings":
        if not 1 <= self.rank <= MAX_RANK:
            raise SettingsError(f"LoRA rank {self.rank} is out of range: use 1 to {MAX_RANK} (4 is typical).")
        if self.alpha <= 0:
            raise SettingsError(f"LoRA alpha {self.alpha} must be above 0 (the rank is typical).")
        if not 0 < self.learning_rate <= 1:
            raise SettingsError(f"adapter learning rate {self.learning_rate} is out of range: use a value in (0, 1].")
        return self

    @property
    def spec(self) -> str:
        """How the command line writes it: 'lora:4'."""
        return f"lora:{self.rank}"

    def to_info(self) -> dict:
        """The adapter's entry in style.json."""
        return {"type": "lora", "file": ADAPTER_FILE, "rank": self.rank, "alpha": self.alpha,
                "target_modules": list(self.target_modules), "learning_rate": self.learning_rate}

    @classmethod
    def from_info(cls, data: dict) -> "LoraSettings":
        """Read style.json's ``adapter`` entry."""
        if data.get("type") != "lora":
            raise SettingsError(f"Unknown adapter type '{data.get('type')}' in the style; update Restyle.")
        return cls(rank=int(data["rank"]), alpha=float(data["alpha"]),
                   learning_rate=float(data.get("learning_rate", DEFAULT_LEARNING_RATE)),
                   target_modules=tuple(data["target_modules"]))

    def peft_config(self):
        from peft import LoraConfig

        return LoraConfig(r=self.rank, lora_alpha=self.alpha, lora_dropout=0.0, init_lora_weights=True,
                          target_modules=list(self.target_modules))


def parse_adapter(spec: str) -> LoraSettings | None:
    """'none' -> None (TVE-only); 'lora' -> rank 4; 'lora:8' -> rank 8 (alpha = rank)."""
    kind, sep, rank_text = spec.strip().lower().partition(":")
    if kind == "none" and not sep:
        return None
    if kind != "lora":
        raise SettingsError(f"Unknown adapter '{spec}': use none, lora or lora:RANK (e.g. lora:4).")
    if not sep:
        return LoraSettings()
    try:
        rank = int(rank_text)
    except ValueError:
        raise SettingsError(f"LoRA rank '{rank_text}' in '{spec}' is not a whole number (write lora:4).") from None
    return LoraSettings(rank=rank, alpha=float(rank)).validate()


def adapter_name(key: str) -> str:
    """A peft adapter name for a style (names become module keys: no dots)."""
    return "style_" + hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class AdapterUse:
    """One adapter in a stylize call: which (``key`` identifies the trained weights), its weights and blend weight."""

    key: str
    settings: LoraSettings
    state: dict[str, torch.Tensor]
    weight: float


_MANAGERS: weakref.WeakKeyDictionary[nn.Module, "UNetAdapters"] = weakref.WeakKeyDictionary()


class UNetAdapters:
    """The LoRA adapters loaded into one UNet."""

    def __init__(self, unet: nn.Module):
        self.unet = unet
        self._loaded: set[str] = set()
        self._depth = 0

    @classmethod
    def of(cls, base) -> "UNetAdapters":
        """The one manager of ``base``'s UNet (its weights fingerprint is taken first, from the plain layers)."""
        _ = base.fingerprint
        if base.unet not in _MANAGERS:
            _MANAGERS[base.unet] = cls(base.unet)
        return _MANAGERS[base.unet]

    def active(self) -> list[str]:
        """The adapters the UNet's next forward pass applies ([] when all are off or none is loaded)."""
        from peft.tuners.tuners_utils import BaseTunerLayer

        for module in self.unet.modules():
            if isinstance(module, BaseTunerLayer):
                return [] if module.disable_adapters else list(module.active_adapters)
        return []

    @contextlib.contextmanager
    def kept(self) -> Iterator[None]:
        """Inside: adapters stay loaded between calls; leaving the outermost, the UNet gets its plain layers back.

        So outside a stylize call the UNet is the loaded model as is (its state dict, an ONNX export, a save).
        """
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.clear()

    @contextlib.contextmanager
    def applied(self, uses: Sequence[AdapterUse]) -> Iterator[None]:
        """Inside: the UNet applies the weighted sum of these adapters' deltas; outside: the base model."""
        with self.kept():
            names = [self._load(use) for use in uses]
            self.unet.set_adapters(names, [use.weight for use in uses])
            self.unet.enable_adapters()
            try:
                yield
            finally:
                self.unet.disable_adapters()

    @contextlib.contextmanager
    def training(self, settings: LoraSettings | None, seed: int) -> Iterator[list[nn.Parameter]]:
        """A fresh, trainable adapter (none for ``settings=None``) applied inside; removed on the way out."""
        if settings is None:
            yield []
            return
        with torch.random.fork_rng(devices=[]):  # LoRA A's initialisation is drawn from the global generator
            torch.manual_seed(seed)
            self._add(settings.validate(), TRAINING_ADAPTER)
        self.unet.set_adapters([TRAINING_ADAPTER], [1.0])
        self.unet.enable_adapters()
        try:
            yield [p for n, p in self.unet.named_parameters() if f".{TRAINING_ADAPTER}." in n]
        finally:
            self._remove(TRAINING_ADAPTER)

    def training_state(self) -> dict[str, torch.Tensor]:
        """The training adapter's weights as stored in a style (peft's keys, without the adapter name), on CPU."""
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(self.unet, adapter_name=TRAINING_ADAPTER)
        return {k: v.detach().float().cpu().contiguous().clone() for k, v in state.items()}

    def clear(self) -> None:
        """Remove every loaded style adapter (they load again when next used)."""
        for name in list(self._loaded):
            self._remove(name)

    def _load(self, use: AdapterUse) -> str:
        from peft import set_peft_model_state_dict

        name = adapter_name(use.key)
        if name not in self._loaded:
            self._add(use.settings, name)
            result = set_peft_model_state_dict(self.unet, use.state, adapter_name=name)
            unexpected = getattr(result, "unexpected_keys", [])
            if unexpected or not use.state:
                self._remove(name)
                raise SettingsError(f"The style's adapter does not fit this UNet ({len(unexpected)} unknown "
                                    "tensors); retrain the style on the loaded base model.")
            self._loaded.add(name)
        return name

    def _add(self, settings: LoraSettings, name: str) -> None:
        with warnings.catch_warnings():  # peft warns when a model holds several adapters: here that is the point
            warnings.simplefilter("ignore", UserWarning)
            self.unet.add_adapter(settings.peft_config(), name)

    def _remove(self, name: str) -> None:
        self.unet.delete_adapters(name)
        self._loaded.discard(name)
        if getattr(self.unet, "peft_config", None):
            self.unet.disable_adapters()
        else:  # the last one: plain Linear layers again, so the UNet's state dict is the loaded model's
            self.unet.unload_lora()
