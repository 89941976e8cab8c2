"""Restyle for Ableton Live 12.0.5+ (Session View): a MIDI Remote Script that talks to `restyle serve`.

Install: copy this folder into Live's "Remote Scripts" folder, pick "Restyle" as a Control Surface in Live's
preferences (Link, Tempo & MIDI), with your controller as its input. Press the trigger note (C-1 on channel 16 by
default: see TRIGGER_NOTE) to stylize the selected clip. docs/ableton.md has the details.
"""

from .restyle_link import RestyleLink

__all__ = ["RestyleLink", "create_instance"]

TRIGGER_NOTE = 0  # C-1
TRIGGER_CHANNEL = 15  # MIDI channel 16
HOST, PORT = "127.0.0.1", 9100


def create_instance(c_instance):
    from .surface import RestyleSurface

    return RestyleSurface(c_instance)
