"""Style presets: the published settings load through the engine's loader and become a style's defaults."""

import pytest

from restyle.engine import SettingsError, TrainSettings
from restyle.engine.package_data import shipped_path
from restyle.engine.presets import load_style_presets, preset_for


def test_published_settings_are_shipped():
    presets = load_style_presets()
    assert {name: (p.scale, p.strength) for name, p in presets.items()} == {
        "default": (5.0, 0.7), "accordion": (4.5, 0.6), "bird": (3.5, 0.45), "chime": (3.5, 0.45),
    }
    assert len(list(shipped_path("restyle.presets", "styles").glob("*.toml"))) == 4


def test_style_named_like_a_preset_gets_its_settings(engine, style_clips):
    style = engine.train("bird", [style_clips], TrainSettings(steps=1))
    assert (style.info.recommended_scale, style.info.recommended_strength) == (3.5, 0.45)
    other = engine.train("my chimes", [style_clips], TrainSettings(steps=1), preset="chime")
    assert engine.library.info("my chimes").recommended_strength == 0.45 and other.info.recommended_scale == 3.5
    assert preset_for("anything else").scale == 5.0


def test_bad_presets_are_explained(tmp_path):
    (tmp_path / "x.toml").write_text('name = "x"\nscale = 99\nstrength = 0.5\n')
    with pytest.raises(SettingsError, match="scale"):
        load_style_presets(tmp_path)
    with pytest.raises(SettingsError, match="known"):
        preset_for("x", "nope")
