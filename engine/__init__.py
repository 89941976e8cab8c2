"""Restyle's engine: learn a sound's style from a few clips, then re-render any clip in that style.

The public surface is small: :class:`Engine` (load once, then train / stylize many times), the settings
dataclasses, :class:`Progress`, and the exceptions (all :class:`RestyleError`). It knows nothing of OSC, MIDI
or DAWs; the ``bridge`` package builds on it.

Names are imported on first use, so ``from restyle.engine import RestyleError`` (what a DAW's ``restyle send`` needs)
does not load torch, diffusers and transformers.
"""

from importlib import import_module

_MODULES = {
    "adapters": ["LoraSettings", "parse_adapter"],
    "audio": ["AudioLimits", "Clip", "read_audio", "write_audio"],
    "base_model": ["DEFAULT_MODEL", "RIFFUSION", "TINY", "BaseModel", "load_base_model"],
    "engine": ["Engine", "EngineSettings", "StylizeResult"],
    "errors": ["AdapterNotSupportedError", "AudioError", "BaseModelMismatchError", "CancelledError", "CheckpointError", "ModelNotFoundError",
               "RestyleError", "SettingsError", "StyleExistsError", "StyleNotFoundError"],
    "library": ["StyleLibrary"],
    "progress": ["Progress"],
    "sampler": ["SamplerSettings"],
    "spectrogram": ["SpectrogramConverter", "SpectrogramFormat"],
    "style": ["Style", "StyleInfo"],
    "training": ["TrainSettings"],
}
_HOME = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> object:
    """Import the submodule that defines ``name`` the first time it is asked for."""
    if name not in _HOME:
        raise AttributeError(f"module 'engine' has no attribute '{name}'")
    value = getattr(import_module(f".{_HOME[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
