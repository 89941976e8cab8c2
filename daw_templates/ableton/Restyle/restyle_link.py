"""The part of the Restyle remote script that does the work, free of Live imports so it can be tested.

It reads the selected clip from Live's object model, sends its file (and, for unwarped clips, the region between
the markers) to `restyle serve` over UDP, and on each tick of Live's main thread polls a non-blocking socket:
progress goes to Live's status bar, and the result becomes an audio clip in the next empty slot of the same track
(ClipSlot.create_audio_clip, Live 12.0.5 and later). No threads: Live's embedded Python cannot run them safely.
"""

import itertools
import os
import socket

from . import osc

ROOT = "/restyle"


class RestyleLink(object):
    def __init__(self, song, show_message, host="127.0.0.1", port=9100):
        self.song = song
        self.show_message = show_message
        self.server = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1" if host in ("127.0.0.1", "localhost") else "", 0))
        self.sock.setblocking(False)
        self._ids = itertools.count(1)
        self.requests = {}  # request id -> (track, slot index)
        self.jobs = {}  # job id -> (track, slot index)

    def close(self):
        self.sock.close()

    def send(self, address, args):
        self.sock.sendto(osc.encode(ROOT + "/" + address, args), self.server)

    def stylize_selected(self):
        """Send the selected audio clip; the result lands next to it."""
        view = self.song.view
        clip, track = view.detail_clip, view.selected_track
        if clip is None or not getattr(clip, "is_audio_clip", False):
            self.show_message("Restyle: select an audio clip first")
            return None
        slot_index = next((i for i, slot in enumerate(track.clip_slots) if slot.has_clip and slot.clip == clip), None)
        if slot_index is None:
            self.show_message("Restyle: only Session View clips are supported")
            return None
        args = [os.path.abspath(clip.file_path)]
        if not clip.warping:  # unwarped clips have their markers in seconds of the file
            args += ["start", float(clip.start_marker), "end", float(clip.end_marker)]
        request_id = "live-%d" % next(self._ids)
        self.requests[request_id] = (track, slot_index)
        self.send("stylize", [request_id] + args)
        self.show_message("Restyle: sent %s" % os.path.basename(clip.file_path))
        return request_id

    def poll(self):
        """Handle everything that arrived since the last tick (called about every 100 ms)."""
        while True:
            try:
                data, _ = self.sock.recvfrom(65536)
            except (BlockingIOError, socket.error):
                return
            try:
                address, args = osc.decode(data)
            except (ValueError, IndexError):
                continue
            self.handle(address[len(ROOT) + 1:], args)

    def handle(self, name, args):
        if name == "accepted" and args and args[0] in self.requests:
            self.jobs[args[1]] = self.requests.pop(args[0])
            self.show_message("Restyle: queued (%d ahead)" % max(0, args[2] - 1))
        elif name == "error" and args and args[0] in self.requests:
            self.requests.pop(args[0])
            self.show_message("Restyle: %s" % args[2])
        elif name == "progress" and args and args[0] in self.jobs:
            self.show_message("Restyle: %d %%" % round(100 * args[1]))
        elif name == "done" and args and args[0] in self.jobs:
            track, slot_index = self.jobs.pop(args[0])
            self.place(track, slot_index, args[1])
        elif name in ("failed", "cancelled") and args and args[0] in self.jobs:
            self.jobs.pop(args[0])
            self.show_message("Restyle: %s" % (args[2] if name == "failed" else "cancelled"))

    def place(self, track, slot_index, path):
        for slot in list(track.clip_slots)[slot_index + 1:]:
            if not slot.has_clip:
                slot.create_audio_clip(path)
                self.show_message("Restyle: done, %s" % os.path.basename(path))
                return
        self.show_message("Restyle: no empty slot below the clip; the result is at %s" % path)
