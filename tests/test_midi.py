"""MIDI knobs from mido.Message objects: 7-bit, 14-bit, relative encoders, soft takeover, learn, buttons."""

from pathlib import Path

import mido
import pytest

from restyle.bridge.knobs import Knobs
from restyle.bridge.midi import MidiInput, MidiKnobs, MidiMap, start_midi
from restyle.engine import SamplerSettings, SettingsError

PRESETS = Path(__file__).resolve().parents[1] / "presets" / "midi"


def cc(control, value, channel=0):
    return mido.Message("control_change", control=control, value=value, channel=channel)


def make(knobs_map: dict, takeover="none", restyle=None, **knob_values):
    knobs = Knobs(settings=SamplerSettings(**knob_values))
    midi_map = MidiMap.from_dict({"takeover": takeover, **knobs_map})
    return MidiKnobs(midi_map, knobs, restyle), knobs


def test_seven_bit_cc_sets_a_knob_across_its_range():
    midi, knobs = make({"knob": [{"knob": "scale", "cc": 22, "min": 1.0, "max": 10.0}]})
    midi.handle(cc(22, 0))
    assert knobs.get("scale") == 1.0
    midi.handle(cc(22, 127))
    assert knobs.get("scale") == 10.0
    midi.handle(cc(23, 64))
    assert knobs.get("scale") == 10.0, "other CCs are ignored"


def test_curves_shape_the_response():
    midi, knobs = make({"knob": [{"knob": "strength", "cc": 1, "min": 0.0, "max": 1.0, "curve": "exponential"}]})
    midi.handle(cc(1, 64))
    assert knobs.get("strength") == pytest.approx((64 / 127) ** 2)


def test_fourteen_bit_pairs_give_fine_steps():
    midi, knobs = make({"knob": [{"knob": "scale", "cc": 7, "mode": "14bit", "min": 0.0, "max": 15.0}]})
    midi.handle(cc(7, 64))  # MSB
    midi.handle(cc(39, 1))  # LSB on CC 7 + 32
    assert knobs.get("scale") == pytest.approx(15.0 * ((64 << 7) | 1) / 16383)


@pytest.mark.parametrize(
    "mode, up, down",
    [("relative-twos", 1, 127), ("relative-signed", 1, 65), ("relative-offset", 65, 63)],
)
def test_relative_encoders_step_up_and_down(mode, up, down):
    spec = {"knob": [{"knob": "scale", "cc": 10, "mode": mode, "min": 0.0, "max": 10.0, "step": 0.1}]}
    midi, knobs = make(spec, scale=5.0)
    midi.handle(cc(10, up))
    assert knobs.get("scale") == pytest.approx(6.0)
    midi.handle(cc(10, down))
    midi.handle(cc(10, down))
    assert knobs.get("scale") == pytest.approx(4.0)


def test_pickup_takeover_waits_until_the_control_reaches_the_knob():
    midi, knobs = make({"knob": [{"knob": "scale", "cc": 22, "min": 0.0, "max": 10.0}]}, takeover="pickup", scale=5.0)
    midi.handle(cc(22, 10))
    midi.handle(cc(22, 30))
    assert knobs.get("scale") == 5.0, "the knob must not jump"
    midi.handle(cc(22, 70))  # crosses 5.0 (position 63.5)
    assert knobs.get("scale") == pytest.approx(70 / 127 * 10)
    midi.handle(cc(22, 20))
    assert knobs.get("scale") == pytest.approx(20 / 127 * 10), "once caught it follows"


def test_pickup_is_needed_again_after_the_knob_moved_over_osc():
    midi, knobs = make({"knob": [{"knob": "scale", "cc": 22, "min": 0.0, "max": 10.0}]}, takeover="pickup", scale=5.0)
    midi.handle(cc(22, 64))
    knobs.set("scale", 9.0)
    midi.knob_moved_elsewhere("scale")
    midi.handle(cc(22, 60))
    assert knobs.get("scale") == 9.0


def test_value_scaling_takeover_converges_without_jumps():
    midi, knobs = make({"knob": [{"knob": "scale", "cc": 22, "min": 0.0, "max": 10.0}]}, takeover="scale", scale=8.0)
    midi.handle(cc(22, 0))
    midi.handle(cc(22, 64))  # controller moves half way up: the knob moves half of its remaining travel
    assert knobs.get("scale") == pytest.approx(8.0 + 2.0 * (64 / 127), abs=1e-6)
    midi.handle(cc(22, 127))
    assert knobs.get("scale") == pytest.approx(10.0)


def test_midi_learn_assigns_the_next_moved_control():
    midi, knobs = make({"knob": []})
    midi.learn("strength")
    midi.handle(cc(40, 127))
    midi.handle(cc(40, 0))
    assert [c.cc for c in midi.map.controls if c.knob == "strength"] == [40]
    assert knobs.get("strength") == pytest.approx(0.01)
    with pytest.raises(SettingsError):
        midi.learn("volume")


def test_buttons_and_notes_trigger_stylize_again():
    pressed = []
    midi, _ = make({"button": [{"note": 36}, {"cc": 64}]}, restyle=lambda: pressed.append(1))
    midi.handle(mido.Message("note_on", note=36, velocity=100))
    midi.handle(mido.Message("note_on", note=36, velocity=0))  # a note-off in disguise
    midi.handle(cc(64, 127))
    midi.handle(cc(64, 0))
    assert len(pressed) == 2


def test_channel_filter():
    midi, knobs = make({"channel": 2, "knob": [{"knob": "scale", "cc": 22}]}, scale=5.0)
    midi.handle(cc(22, 127, channel=0))
    assert knobs.get("scale") == 5.0
    midi.handle(cc(22, 127, channel=2))
    assert knobs.get("scale") == 30.0  # the whole engine range unless the map narrows it


@pytest.mark.parametrize("path", sorted(PRESETS.glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_midi_map_loads(path):
    midi_map = MidiMap.load(path)
    assert midi_map.controls and {c.knob for c in midi_map.controls} >= {"strength", "scale"}


@pytest.mark.parametrize(
    "spec, message",
    [({"takeover": "grab"}, "takeover"), ({"knob": [{"knob": "volume", "cc": 1}]}, "not a MIDI knob"),
     ({"knob": [{"knob": "scale", "cc": 200}]}, "out of range"), ({"knob": [{"knob": "scale", "cc": 1, "x": 1}]},
                                                                  "unknown key")],
)
def test_bad_maps_are_explained(spec, message):
    with pytest.raises(SettingsError, match=message):
        MidiMap.from_dict(spec)


class FakeProtocol:
    midi = None

    def restyle_last(self):
        return None


def test_without_a_port_midi_is_off_with_one_line():
    midi = start_midi(None, None, Knobs(), FakeProtocol())
    assert isinstance(midi, MidiInput) and midi.describe().startswith("MIDI: off")


def test_a_real_virtual_port_where_the_os_allows_it():
    protocol = FakeProtocol()
    midi = start_midi("virtual", str(PRESETS / "generic.toml"), Knobs(), protocol)
    if midi.port is None:
        pytest.skip(f"no MIDI system here: {midi.describe()}")
    try:
        with mido.open_output("Restyle") as out:
            out.send(cc(21, 127))
    finally:
        midi.close()
    assert protocol.midi is not None


def test_a_missing_midi_system_is_one_line_not_a_crash():
    midi = start_midi("No Such Controller", None, Knobs(), FakeProtocol())
    assert midi.port is None and "\n" not in midi.describe()
