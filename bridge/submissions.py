"""Checking and queueing jobs for files the server owns: shared by the OSC protocol and the cluster's front.

A class using it has ``engine`` (what can check styles and audio limits), ``knobs``, ``jobs`` (a JobQueue) and
``learn_steps``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from restyle.engine import RestyleError, SettingsError
from restyle.engine.audio import probe
from restyle.engine.library import check_name
from restyle.engine.presets import preset_for

from .jobs import Job


class BadRequestError(RestyleError):
    code = "bad_request"


# -- argument coercion: Pure Data sends every number as a float, some clients send numbers as strings -----------
def as_float(value: object, what: str) -> float:
    """A finite number; NaN and infinities are refused like text that is no number."""
    if isinstance(value, bool):
        raise BadRequestError(f"{what} must be a number, not '{value}'.")
    try:
        number = float(value if isinstance(value, (int, float)) else str(value))
    except ValueError:
        raise BadRequestError(f"{what} must be a number, not '{value}'.") from None
    if not math.isfinite(number):
        raise BadRequestError(f"{what} must be a finite number, not {value}.")
    return number


def as_int(value: object, what: str) -> int:
    number = as_float(value, what)
    if number != int(number):
        raise BadRequestError(f"{what} must be a whole number, not {value}.")
    return int(number)


def as_bool(value: object, what: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "1.0", "t", "true", "yes", "on"}:
        return True
    if text in {"0", "0.0", "f", "false", "no", "off"}:
        return False
    raise BadRequestError(f"{what} must be 0/1 or true/false, not '{value}'.")


class Submissions:
    """Stylize and learn jobs checked in full before they are queued (mistakes are answered at once)."""

    def checked_stylize(self, source: Path, options: dict) -> dict:
        """A stylize job's parameters from its options and the knobs, every mistake refused before queueing."""
        probe(source, self.engine.settings.limits)  # missing, unreadable, empty or too long: refused at once
        style = str(options.get("style") or self.knobs.get("style"))
        if not style:
            raise SettingsError("No style chosen: set the style knob or pass 'style NAME'.")
        settings = self.knobs.settings(
            strength=option_value(options, "strength", as_float), scale=option_value(options, "scale", as_float),
            steps=option_value(options, "steps", as_int), seed=option_value(options, "seed", as_int),
        )
        if "brs" in options:
            settings = replace(settings, brs=as_bool(options["brs"], "brs"))  # checked again when made
        mix = self.engine.style_mix(style)  # unknown styles and other base models are refused here
        return {
            "input": source, "style": style, "settings": settings, "label": mix.label,
            "start": option_value(options, "start", as_float), "end": option_value(options, "end", as_float),
            "stereo": as_bool(options.get("stereo", False), "stereo"),
        }

    def submit_stylize(self, source: Path, options: dict, output_folder: Path, output_stem: str, owner: str,
                       owner_limit: int | None = None) -> Job:
        """Queue a stylize job for an uploaded clip; the result is ``output_folder/STEM_STYLE.ext`` (no path policy)."""
        params = self.checked_stylize(source, options)
        label = params.pop("label")
        params["output"] = output_folder / f"{output_stem}_{label}{source.suffix}"
        return self.jobs.submit("stylize", params, owner=owner, owner_limit=owner_limit)

    def submit_learn(self, name: str, clips: list[Path], owner: str, owner_limit: int | None = None,
                     steps: int | None = None, preset: str | None = None, resume: bool = False) -> Job:
        """Queue a learn job for uploaded clips (checked now, like /restyle/learn's); ``resume`` continues an
        interrupted run of the same name and clips, ``preset`` gives the style its recommended knobs."""
        for clip in clips:
            probe(clip, self.engine.settings.limits)
        if steps is not None and steps < 1:
            raise SettingsError(f"Training needs at least 1 step, not {steps}.")
        params = {"name": check_name(name), "clips": [str(c) for c in clips], "steps": steps or self.learn_steps}
        if preset:
            params["preset"] = preset_for(name, preset).name  # an unknown preset is refused now
        if resume:
            params["resume"] = True
        return self.jobs.submit("learn", params, owner=owner, owner_limit=owner_limit)


def option_value(options: dict, name: str, convert=None) -> object:
    """An option's value converted (``convert(value, name)``), as text without ``convert``, or None if absent."""
    if name not in options:
        return None
    return convert(options[name], name) if convert else str(options[name])
