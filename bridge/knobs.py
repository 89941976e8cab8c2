"""The live knobs a DAW or MIDI controller turns: their ranges, a 0..1 form for controllers, and subscribers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from restyle.engine import SamplerSettings, SettingsError


MAX_SCALE = 30.0  # SamplerSettings accepts scale 0..30; tests/test_newcomer.py checks both agree


@dataclass(frozen=True)
class KnobRange:
    """A numeric knob's range; ``integer`` knobs round to whole numbers."""

    low: float
    high: float
    integer: bool = False

    def clamp(self, value: float) -> float:
        value = min(self.high, max(self.low, value))
        return float(round(value)) if self.integer else value

    def normalize(self, value: float) -> float:
        return (value - self.low) / (self.high - self.low)

    def denormalize(self, fraction: float) -> float:
        return self.clamp(self.low + min(1.0, max(0.0, fraction)) * (self.high - self.low))


RANGES = {
    "strength": KnobRange(0.01, 1.0),
    "scale": KnobRange(0.0, MAX_SCALE),  # the engine's range (SamplerSettings), so OSC and the CLI agree
    "steps": KnobRange(1, 200, integer=True),
    "seed": KnobRange(0, 2**31 - 1, integer=True),
}
NAMES = ("style", *RANGES)


Listener = Callable[[str, object], None]


class Knobs:
    """Thread-safe current values; every change is announced to the listeners (OSC subscribers, MIDI feedback)."""

    def __init__(self, style: str = "", settings: SamplerSettings = SamplerSettings()):
        self._lock = threading.Lock()
        self._values: dict[str, object] = {
            "style": style, "strength": settings.strength, "scale": settings.scale,
            "steps": settings.steps, "seed": settings.seed,
        }
        self._listeners: list[Listener] = []
        self._sampler = settings.sampler  # not a knob: the server's solver, fixed at start

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def get(self, name: str) -> object:
        self._check(name)
        with self._lock:
            return self._values[name]

    def normalized(self, name: str) -> float:
        if name not in RANGES:
            raise SettingsError(f"Knob '{name}' has no 0..1 form; numeric knobs are {', '.join(RANGES)}.")
        return RANGES[name].normalize(float(self.get(name)))

    def set(self, name: str, value: object) -> object:
        """Set a knob (numbers are clamped into range); returns the value kept."""
        self._check(name)
        if name == "style":
            value = str(value)
        else:
            try:
                value = RANGES[name].clamp(float(value))
            except (TypeError, ValueError):
                raise SettingsError(f"Knob '{name}' takes a number, not '{value}'.") from None
            if RANGES[name].integer:
                value = int(value)
        with self._lock:
            changed = self._values[name] != value
            self._values[name] = value
        if changed:
            for listener in list(self._listeners):
                listener(name, value)
        return value

    def set_normalized(self, name: str, fraction: float) -> object:
        if name not in RANGES:
            raise SettingsError(f"Knob '{name}' has no 0..1 form; numeric knobs are {', '.join(RANGES)}.")
        return self.set(name, RANGES[name].denormalize(float(fraction)))

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return dict(self._values)

    def settings(self, **overrides) -> SamplerSettings:
        """Sampler settings from the current knobs, with a job's own values taking precedence."""
        values = self.snapshot()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return SamplerSettings(strength=float(values["strength"]), scale=float(values["scale"]),
                               steps=int(values["steps"]), seed=int(values["seed"]), sampler=self._sampler)

    @staticmethod
    def _check(name: str) -> None:
        if name not in NAMES:
            raise SettingsError(f"Unknown knob '{name}': use one of {', '.join(NAMES)}.")
