"""The Live-facing shell: Live's _Framework ControlSurface, a trigger button, and a tick that polls the link."""

from _Framework.ButtonElement import ButtonElement
from _Framework.ControlSurface import ControlSurface
from _Framework.InputControlElement import MIDI_NOTE_TYPE

from . import HOST, PORT, TRIGGER_CHANNEL, TRIGGER_NOTE
from .restyle_link import RestyleLink


class RestyleSurface(ControlSurface):
    def __init__(self, c_instance):
        ControlSurface.__init__(self, c_instance)
        with self.component_guard():
            self.link = RestyleLink(self.song(), self.show_message, HOST, PORT)
            self.trigger = ButtonElement(True, MIDI_NOTE_TYPE, TRIGGER_CHANNEL, TRIGGER_NOTE)
            self.trigger.add_value_listener(self._on_trigger)
        self.show_message("Restyle: ready (server %s:%d)" % (HOST, PORT))

    def _on_trigger(self, value):
        if value:
            self.link.stylize_selected()

    def update_display(self):
        ControlSurface.update_display(self)
        self.link.poll()  # Live calls this about every 100 ms from its main thread

    def disconnect(self):
        self.trigger.remove_value_listener(self._on_trigger)
        self.link.close()
        ControlSurface.disconnect(self)
