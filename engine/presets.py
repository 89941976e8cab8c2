"""Style presets: the recommended scale and strength for a kind of sound (``presets/styles/*.toml``).

A new style takes its recommended knob values from the preset named with ``--preset``, else from the preset
whose name is the style's own name, else from ``default`` (the method's published 5.0 / 0.7).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from .errors import SettingsError
from .package_data import shipped_path
from .sampler import SamplerSettings
from .style import DEFAULT_SCALE, DEFAULT_STRENGTH



@dataclass(frozen=True)
class StylePreset:
    name: str
    scale: float = DEFAULT_SCALE
    strength: float = DEFAULT_STRENGTH


def load_style_presets(folder: Path | None = None) -> dict[str, StylePreset]:
    """Every preset in ``folder`` (default: the shipped ones), checked like knob values."""
    folder = shipped_path("restyle.presets", "styles") if folder is None else folder
    presets = {"default": StylePreset("default")}
    for path in sorted(folder.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            preset = StylePreset(str(data.get("name", path.stem)), float(data["scale"]), float(data["strength"]))
        except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"Style preset {path.name} is unreadable ({exc}); it needs name, scale, strength.")
        SamplerSettings(strength=preset.strength, scale=preset.scale)  # checked when made
        presets[preset.name] = preset
    return presets


def preset_for(style_name: str, preset: str | None = None, folder: Path | None = None) -> StylePreset:
    """The preset named ``preset``, else the one named like the style, else the default."""
    presets = load_style_presets(folder)
    if preset is not None:
        if preset not in presets:
            raise SettingsError(f"No style preset '{preset}'; known: {', '.join(sorted(presets))}.")
        return presets[preset]
    return presets.get(style_name, presets["default"])
