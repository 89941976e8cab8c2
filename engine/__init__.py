"""Restyle's engine: learn a sound's style from a few clips, then re-render any clip in that style.

The public surface is small: :class:`Engine` (load once, then train / stylize many times), the settings
dataclasses, :class:`Progress`, and the exceptions (all :class:`RestyleError`). It knows nothing of OSC, MIDI
or DAWs; the ``bridge`` package builds on it.
"""

from .adapters import LoraSettings, parse_adapter
from .audio import AudioLimits, Clip, read_audio, write_audio
from .base_model import DEFAULT_MODEL, RIFFUSION, TINY, BaseModel, load_base_model
from .engine import Engine, EngineSettings, StylizeResult
from .errors import (
    AdapterNotSupportedError,
    AudioError,
    BaseModelMismatchError,
    CancelledError,
    CheckpointError,
    ModelNotFoundError,
    RestyleError,
    SettingsError,
    StyleExistsError,
    StyleNotFoundError,
)
from .library import StyleLibrary
from .progress import Progress
from .sampler import SamplerSettings
from .spectrogram import SpectrogramConverter, SpectrogramFormat
from .style import Style, StyleInfo
from .training import TrainSettings

__all__ = [
    "AdapterNotSupportedError", "LoraSettings", "parse_adapter",
    "AudioError", "AudioLimits", "BaseModel", "BaseModelMismatchError", "CancelledError", "CheckpointError", "Clip",
    "DEFAULT_MODEL", "Engine", "EngineSettings", "ModelNotFoundError", "Progress", "RIFFUSION", "RestyleError",
    "SamplerSettings", "SettingsError", "SpectrogramConverter", "SpectrogramFormat", "Style", "StyleExistsError",
    "StyleInfo", "StyleLibrary", "StyleNotFoundError", "StylizeResult", "TINY", "TrainSettings", "load_base_model",
    "read_audio", "write_audio",
]
