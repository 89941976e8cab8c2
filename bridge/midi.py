"""MIDI knobs: a TOML map assigns controller CCs (7-bit, 14-bit pairs, relative encoders) and buttons to knobs.

The mapping works on ``mido.Message`` objects and needs no MIDI system; ``start_midi`` opens a real input port
(by name, or a virtual one where the OS has them) and says in one line when MIDI is not available.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import mido

from restyle.engine import SettingsError
from restyle.engine.package_data import shipped_path

from .knobs import RANGES, Knobs

MODES = ("absolute", "14bit", "relative-twos", "relative-signed", "relative-offset")
CURVES = {
    "linear": (lambda x: x, lambda y: y),
    "exponential": (lambda x: x * x, lambda y: math.sqrt(y)),  # fine control at the low end
    "logarithmic": (lambda x: math.sqrt(x), lambda y: y * y),  # fine control at the high end
}
TAKEOVERS = ("none", "pickup", "scale")
PICKUP_TOLERANCE = 2 / 127
TOML_KEYS = {"min": "low", "max": "high"}  # the map file's words for a control's range


@dataclass
class KnobControl:
    """One controller on one knob, with its range, curve and (for absolute controls) takeover state."""

    knob: str
    cc: int
    channel: int | None = None
    mode: str = "absolute"
    low: float | None = None
    high: float | None = None
    curve: str = "linear"
    step: float = 1 / 127  # per relative tick, as a fraction of the range
    _engaged: bool = field(default=False, init=False)  # soft takeover: the controller has caught the knob
    _last: float | None = field(default=None, init=False)  # the controller's last position (0..1)
    _msb: int = field(default=0, init=False)  # the coarse half of a 14-bit pair

    def __post_init__(self):
        if self.knob not in RANGES:
            raise SettingsError(f"MIDI map: '{self.knob}' is not a MIDI knob; use {', '.join(RANGES)}.")
        if self.mode not in MODES:
            raise SettingsError(f"MIDI map: mode '{self.mode}' is unknown; use {', '.join(MODES)}.")
        if self.curve not in CURVES:
            raise SettingsError(f"MIDI map: curve '{self.curve}' is unknown; use {', '.join(CURVES)}.")
        if not 0 <= self.cc <= (31 if self.mode == "14bit" else 127):
            raise SettingsError(f"MIDI map: CC {self.cc} is out of range for {self.mode} mode.")
        knob_range = RANGES[self.knob]
        self.low = knob_range.low if self.low is None else float(self.low)
        self.high = knob_range.high if self.high is None else float(self.high)

    def listens_to(self, message: mido.Message) -> bool:
        if message.type != "control_change" or (self.channel is not None and message.channel != self.channel):
            return False
        return message.control == self.cc or (self.mode == "14bit" and message.control == self.cc + 32)

    def value_at(self, position: float) -> float:
        return self.low + CURVES[self.curve][0](min(1.0, max(0.0, position))) * (self.high - self.low)

    def position_of(self, value: float) -> float:
        span = self.high - self.low
        return CURVES[self.curve][1](min(1.0, max(0.0, (value - self.low) / span))) if span else 0.0

    def controller_position(self, message: mido.Message) -> float | None:
        """Where an absolute control now stands (0..1); None while half of a 14-bit pair is missing."""
        if self.mode == "14bit":
            if message.control == self.cc:
                self._msb = message.value
                return (message.value << 7) / 16383
            return ((self._msb << 7) | message.value) / 16383
        return message.value / 127

    def relative_ticks(self, value: int) -> int:
        if self.mode == "relative-twos":
            return value if value < 64 else value - 128
        if self.mode == "relative-signed":
            return value if value < 64 else -(value - 64)
        return value - 64  # relative-offset


@dataclass
class MidiMap:
    """A loaded map: knob controls, buttons that re-run the last clip, and the takeover mode."""

    name: str = "MIDI map"
    takeover: str = "pickup"
    controls: list[KnobControl] = field(default_factory=list)
    restyle_notes: set[int] = field(default_factory=set)
    restyle_ccs: set[int] = field(default_factory=set)

    @classmethod
    def load(cls, path: str | Path) -> "MidiMap":
        """A map from a TOML file, or a shipped one by name (``korg-nanokontrol2``, ``akai-mpk-mini-mk3``, ``generic``)."""
        path = Path(path)
        shipped = shipped_path("restyle.presets", "midi")
        if not path.exists() and (shipped / f"{path.stem}.toml").is_file() and path.parent == Path("."):
            path = shipped / f"{path.stem}.toml"
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"Cannot read MIDI map {path}: {exc}") from None
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: dict, label: str = "MIDI map") -> "MidiMap":
        takeover = data.get("takeover", "pickup")
        if takeover not in TAKEOVERS:
            raise SettingsError(f"{label}: takeover '{takeover}' is unknown; use {', '.join(TAKEOVERS)}.")
        channel = data.get("channel")
        controls = []
        for entry in data.get("knob", []):
            entry = {"channel": channel, **entry}
            try:
                controls.append(KnobControl(**{TOML_KEYS.get(k, k): v for k, v in entry.items()}))
            except TypeError as exc:
                raise SettingsError(f"{label}: a [[knob]] entry has an unknown key ({exc}).") from None
        buttons = data.get("button", [])
        return cls(
            name=data.get("name", label), takeover=takeover, controls=controls,
            restyle_notes={int(b["note"]) for b in buttons if "note" in b},
            restyle_ccs={int(b["cc"]) for b in buttons if "cc" in b},
        )


class MidiKnobs:
    """Turns incoming MIDI messages into knob changes and restyle triggers; also does MIDI learn."""

    def __init__(self, midi_map: MidiMap, knobs: Knobs, restyle: Callable[[], None] | None = None):
        self.map = midi_map
        self.knobs = knobs
        self.restyle = restyle
        self._learning: str | None = None
        self._lock = threading.Lock()

    def learn(self, knob: str) -> None:
        """The next CC that moves is assigned to ``knob`` (7-bit absolute, the knob's full range)."""
        if knob not in RANGES:
            raise SettingsError(f"Cannot learn '{knob}': MIDI knobs are {', '.join(RANGES)}.")
        self._learning = knob

    def handle(self, message: mido.Message) -> None:
        with self._lock:
            if self._handle_button(message):
                return
            if message.type != "control_change":
                return
            if self._learning is not None:
                self._learn_from(message)
            for control in self.map.controls:
                if control.listens_to(message):
                    self._move(control, message)

    def _handle_button(self, message: mido.Message) -> bool:
        pressed = (message.type == "note_on" and message.velocity > 0 and message.note in self.map.restyle_notes) or (
            message.type == "control_change" and message.control in self.map.restyle_ccs and message.value >= 64)
        if pressed and self.restyle is not None:
            self.restyle()
        return pressed or (message.type == "control_change" and message.control in self.map.restyle_ccs)

    def _learn_from(self, message: mido.Message) -> None:
        knob, self._learning = self._learning, None
        self.map.controls = [c for c in self.map.controls if c.knob != knob and c.cc != message.control]
        self.map.controls.append(KnobControl(knob=knob, cc=message.control, channel=message.channel))

    def _move(self, control: KnobControl, message: mido.Message) -> None:
        current = control.position_of(float(self.knobs.get(control.knob)))
        if control.mode.startswith("relative"):
            target = current + control.relative_ticks(message.value) * control.step
        else:
            position = control.controller_position(message)
            target = self._take_over(control, position, current)
            control._last = position
            if target is None:
                return
        self.knobs.set(control.knob, control.value_at(target))

    def _take_over(self, control: KnobControl, position: float, current: float) -> float | None:
        """Soft takeover: where the knob should go now, or None while the controller has not caught it."""
        if self.map.takeover == "none" or control._engaged:
            return position
        previous = control._last
        crossed = previous is not None and (previous - current) * (position - current) <= 0
        if abs(position - current) <= PICKUP_TOLERANCE or crossed:
            control._engaged = True
            return position
        if self.map.takeover == "pickup" or previous is None:
            return None
        # value scaling: move the knob the same share of its remaining travel as the controller moved of its own
        if position > previous:
            return current + (1 - current) * (position - previous) / max(1e-9, 1 - previous)
        return current - current * (previous - position) / max(1e-9, previous)

    def knob_moved_elsewhere(self, knob: str) -> None:
        """A knob set over OSC: controllers on it must catch it again (soft takeover)."""
        for control in self.map.controls:
            if control.knob == knob:
                control._engaged = False


class MidiInput:
    """An open MIDI input feeding a :class:`MidiKnobs`, or a note of why there is none."""

    def __init__(self, handler: MidiKnobs | None, port=None, reason: str = ""):
        self.handler = handler
        self.port = port
        self.reason = reason

    def describe(self) -> str:
        if self.port is None:
            return f"MIDI: off ({self.reason})."
        return f"MIDI: listening on '{self.port.name}' with {self.handler.map.name}."

    def close(self) -> None:
        if self.port is not None:
            self.port.close()


def start_midi(port_name: str | None, map_path: str | None, knobs: Knobs, protocol) -> MidiInput:
    """Open the MIDI input the user asked for; a missing MIDI system gives a one-line note, not an error."""
    midi_map = MidiMap.load(map_path or shipped_path("restyle.presets", "midi", "generic.toml"))
    handler = MidiKnobs(midi_map, knobs, restyle=protocol.restyle_last)
    protocol.midi = handler
    if not port_name:
        return MidiInput(handler, reason="no --midi port given; MIDI learn over OSC still edits the map")
    try:
        if port_name == "virtual":
            port = mido.open_input("Restyle", virtual=True, callback=handler.handle)
        else:
            port = mido.open_input(port_name, callback=handler.handle)
    except ImportError:  # python-rtmidi, mido's backend, is the optional `midi` extra
        return MidiInput(handler, reason="MIDI needs python-rtmidi: pip install 'restyle[midi]'; serving without MIDI")
    except OSError as exc:  # no sound system (containers, CI) or no such port
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return MidiInput(handler, reason=f"cannot open MIDI port '{port_name}' here: {first_line}; serving without MIDI")
    return MidiInput(handler, port)
