"""The part of the Restyle remote script that does the work, free of Live imports so it can be tested.

It reads the selected clip from Live's object model, sends its file and the region Live plays (the loop when
looping is on, else the markers; warped clips' beats turned into file seconds with beat_to_sample_time) to
`restyle serve` over UDP, and on each tick of Live's main thread polls a non-blocking socket: progress and every
failure go to Live's status bar, and the result becomes an audio clip in the next empty slot of the same track
(ClipSlot.create_audio_clip, Live 12.0.5 and later). No threads: Live's embedded Python cannot run them safely.
"""

import binascii
import itertools
import os
import socket
import time

from . import osc

ROOT = "/restyle"
RETRY_AFTER = 2.0  # seconds without an answer before the same request (same id: never a second job) is resent
RETRIES = 2


def clip_region(clip):
    """(start, end) in seconds of the clip's file: the loop when looping is on, else the markers."""
    start, end = (clip.loop_start, clip.loop_end) if clip.looping else (clip.start_marker, clip.end_marker)
    if clip.warping:  # positions are in beats: Live maps them to the file's samples
        rate = float(clip.sample_rate)
        return clip.beat_to_sample_time(start) / rate, clip.beat_to_sample_time(end) / rate
    return float(start), float(end)


class RestyleLink(object):
    def __init__(self, song, show_message, host="127.0.0.1", port=9100):
        self.song = song
        self.show_message = show_message
        self.server = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1" if host in ("127.0.0.1", "localhost") else "", 0))
        self.sock.setblocking(False)
        self._ids = itertools.count(1)
        self._session = binascii.hexlify(os.urandom(4)).decode()  # ids stay unique across script reloads
        self.requests = {}  # request id -> Pending
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
        if any(p.clip == clip for p in self.requests.values()):
            self.show_message("Restyle: already sent; waiting for the server")
            return None
        start, end = clip_region(clip)
        args = [os.path.abspath(clip.file_path), "start", start, "end", end]
        request_id = "live-%s-%d" % (self._session, next(self._ids))
        self.requests[request_id] = Pending(clip, track, slot_index, ["stylize", [request_id] + args])
        self.send(*self.requests[request_id].message)
        self.show_message("Restyle: sent %s" % os.path.basename(clip.file_path))
        return request_id

    def poll(self):
        """Handle everything that arrived since the last tick (called about every 100 ms); never raises."""
        try:
            self._receive()
            self._resend_or_give_up()
        except Exception as exc:  # whatever Live or the network raise must reach the status bar, not the tick
            self.show_message("Restyle: %s" % exc)

    def _receive(self):
        while True:
            try:
                data, _ = self.sock.recvfrom(65536)
            except (BlockingIOError, socket.timeout):
                return
            except OSError:  # e.g. "connection refused" from the last datagram: nothing listens there
                self._server_down()
                return
            try:
                address, args = osc.decode(data)
            except (ValueError, IndexError):
                continue
            self.handle(address[len(ROOT) + 1:], args)

    def _resend_or_give_up(self):
        now = time.monotonic()
        for request_id, pending in list(self.requests.items()):
            if now - pending.sent < RETRY_AFTER:
                continue
            if pending.tries > RETRIES:
                self._server_down()
                return
            pending.tries += 1
            pending.sent = now
            self.send(*pending.message)

    def _server_down(self):
        if self.requests:
            self.requests.clear()
            self.show_message("Restyle: no answer from the server at %s:%d; is `restyle serve` running?" % self.server)

    def handle(self, name, args):
        if name == "accepted" and args and args[0] in self.requests:
            pending = self.requests.pop(args[0])
            self.jobs[args[1]] = (pending.track, pending.slot_index)
            position = int(args[2])  # 0 = running now, 1 = next, ...
            self.show_message("Restyle: running" if position == 0 else "Restyle: queued, %d job(s) ahead" % position)
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
        """The result in the next empty slot below the clip; where Live refuses, the status bar says why."""
        try:
            slot = next((s for s in list(track.clip_slots)[slot_index + 1:] if not s.has_clip), None)
            if slot is None:
                self.show_message("Restyle: no empty slot below the clip; the result is at %s" % path)
                return
            slot.create_audio_clip(path)
        except Exception as exc:  # Live raises for MIDI, group or frozen tracks, and deleted tracks or scenes
            self.show_message("Restyle: Live could not add the clip (%s); the result is at %s" % (exc, path))
            return
        self.show_message("Restyle: done, %s" % os.path.basename(path))


class Pending(object):
    """A request not answered yet: what to resend, and where its result goes."""

    def __init__(self, clip, track, slot_index, message):
        self.clip, self.track, self.slot_index, self.message = clip, track, slot_index, message
        self.sent, self.tries = time.monotonic(), 1
