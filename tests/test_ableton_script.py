"""The Ableton remote script against a fake Live object model, with the real OSC server and the tiny model."""

import sys
import time
from pathlib import Path

import soundfile as sf

from tests.bridge_helpers import running_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daw_templates" / "ableton"))

from Restyle import osc  # noqa: E402
from Restyle.restyle_link import RestyleLink  # noqa: E402


class FakeClip:
    is_audio_clip = True
    warping = False

    def __init__(self, path, start, end):
        self.file_path, self.start_marker, self.end_marker = str(path), start, end


class FakeSlot:
    def __init__(self, clip=None):
        self.clip = clip
        self.created = None

    @property
    def has_clip(self):
        return self.clip is not None

    def create_audio_clip(self, path):
        self.created = path
        self.clip = FakeClip(path, 0.0, 0.0)


class FakeView:
    def __init__(self, clip, track):
        self.detail_clip, self.selected_track = clip, track


class FakeTrack:
    def __init__(self, slots):
        self.clip_slots = slots


class FakeSong:
    def __init__(self, clip, track):
        self.view = FakeView(clip, track)


def test_selected_clip_is_stylized_into_the_next_empty_slot(tiny_base, styles_dir, tmp_path, content_wav):
    clip = FakeClip(content_wav, 0.25, 0.75)
    slots = [FakeSlot(clip), FakeSlot(FakeClip(content_wav, 0, 1)), FakeSlot(), FakeSlot()]
    messages = []
    with running_server(tiny_base, styles_dir, tmp_path) as server:
        link = RestyleLink(FakeSong(clip, FakeTrack(slots)), messages.append, port=server.udp_port)
        assert link.stylize_selected()
        deadline = time.monotonic() + 60
        while slots[2].created is None and time.monotonic() < deadline:
            link.poll()  # what Live's tick does
            time.sleep(0.05)
        link.close()
    assert slots[2].created and slots[3].created is None, messages
    assert sf.info(slots[2].created).frames == 22050  # the region between the markers: 0.5 s at 44.1 kHz
    assert any("%" in m for m in messages) and messages[-1].startswith("Restyle: done")


def test_errors_reach_the_status_bar(tiny_base, styles_dir, tmp_path):
    missing = FakeClip(tmp_path / "gone.wav", 0.0, 1.0)
    messages = []
    with running_server(tiny_base, styles_dir, tmp_path) as server:
        link = RestyleLink(FakeSong(missing, FakeTrack([FakeSlot(missing), FakeSlot()])), messages.append,
                           port=server.udp_port)
        link.stylize_selected()
        deadline = time.monotonic() + 10
        while not any("not found" in m for m in messages) and time.monotonic() < deadline:
            link.poll()
            time.sleep(0.05)
        link.close()
    assert any("Audio file not found" in m for m in messages)


def test_nothing_selected_says_so():
    messages = []
    link = RestyleLink(FakeSong(None, FakeTrack([])), messages.append)
    assert link.stylize_selected() is None and "select an audio clip" in messages[0]
    link.close()


def test_osc_codec_round_trip():
    data = osc.encode("/restyle/stylize", ["id-1", "/a b/é.wav", "start", 0.5, 3])
    address, args = osc.decode(data)
    assert address == "/restyle/stylize" and args[:3] == ["id-1", "/a b/é.wav", "start"] and args[4] == 3
    assert abs(args[3] - 0.5) < 1e-7
