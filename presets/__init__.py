"""Presets shipped with Restyle (data, read through importlib.resources): MIDI controller maps and style presets."""
