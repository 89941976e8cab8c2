"""The Ableton remote script against a fake Live object model, with the real OSC server and the tiny model."""

import sys
import time
from pathlib import Path

import soundfile as sf

from tests.bridge_helpers import running_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "daw_templates" / "ableton"))

import pytest  # noqa: E402
from Restyle import osc  # noqa: E402
from Restyle.restyle_link import RestyleLink, clip_region  # noqa: E402


class FakeClip:
    """The LOM's Clip: markers and loop in seconds when unwarped, in beats when warped (then
    beat_to_sample_time maps beats to the file's samples, and raises for unwarped clips)."""

    is_audio_clip = True

    def __init__(self, path, start, end, looping=False, loop=(0.0, 0.0), warping=False, seconds_per_beat=0.5):
        self.file_path, self.start_marker, self.end_marker = str(path), start, end
        self.looping, (self.loop_start, self.loop_end) = looping, loop
        self.warping, self.sample_rate, self._spb = warping, 44100.0, seconds_per_beat

    def beat_to_sample_time(self, beat):
        if not self.warping:
            raise RuntimeError("Clip is not warped")
        return beat * self._spb * self.sample_rate


class FakeSlot:
    """The LOM's ClipSlot: create_audio_clip raises where Live does (a filled slot, a track that is not a plain
    audio track)."""

    def __init__(self, clip=None, track_kind="audio"):
        self.clip = clip
        self.created = None
        self.track_kind = track_kind

    @property
    def has_clip(self):
        return self.clip is not None

    def create_audio_clip(self, path):
        if self.has_clip:
            raise RuntimeError("Clip slot is not empty")
        if self.track_kind != "audio":
            raise RuntimeError("Cannot create an audio clip on a %s track" % self.track_kind)
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


def test_looped_clip_sends_its_loop_region():
    clip = FakeClip("a.wav", 0.0, 8.0, looping=True, loop=(1.0, 3.0))
    assert clip_region(clip) == (1.0, 3.0)


def test_warped_clip_sends_the_file_seconds_live_plays():
    clip = FakeClip("a.wav", 2.0, 6.0, warping=True, seconds_per_beat=0.25)
    assert clip_region(clip) == pytest.approx((0.5, 1.5))
    looped = FakeClip("a.wav", 0.0, 16.0, looping=True, loop=(4.0, 8.0), warping=True)
    assert clip_region(looped) == pytest.approx((2.0, 4.0))


@pytest.mark.parametrize("kind", ["midi", "group", "frozen"])
def test_live_refusing_the_clip_reaches_the_status_bar(kind):
    messages = []
    link = RestyleLink(FakeSong(None, FakeTrack([])), messages.append)
    track = FakeTrack([FakeSlot(FakeClip("a.wav", 0, 1)), FakeSlot(track_kind=kind)])
    link.place(track, 0, "/out/result.wav")  # must not raise out of Live's update_display
    link.close()
    assert "could not add the clip" in messages[-1] and kind in messages[-1] and "/out/result.wav" in messages[-1]


def test_no_empty_slot_says_where_the_result_is():
    messages = []
    link = RestyleLink(FakeSong(None, FakeTrack([])), messages.append)
    link.place(FakeTrack([FakeSlot(FakeClip("a.wav", 0, 1)), FakeSlot(FakeClip("b.wav", 0, 1))]), 0, "/out/r.wav")
    link.close()
    assert "no empty slot" in messages[-1] and "/out/r.wav" in messages[-1]


def test_server_down_gives_one_message_after_a_few_resends(monkeypatch, tmp_path):
    from Restyle import restyle_link
    from tests.bridge_helpers import free_port

    monkeypatch.setattr(restyle_link, "RETRY_AFTER", 0.05)
    clip = FakeClip(tmp_path / "a.wav", 0.0, 1.0)
    messages, sent = [], []
    link = RestyleLink(FakeSong(clip, FakeTrack([FakeSlot(clip), FakeSlot()])), messages.append, port=free_port())
    real_send = link.send
    link.send = lambda *a: (sent.append(a), real_send(*a))
    link.stylize_selected()
    assert link.stylize_selected() is None and "already sent" in messages[-1]  # no second request for one clip
    deadline = time.monotonic() + 5
    while link.requests and time.monotonic() < deadline:
        link.poll()
        time.sleep(0.02)
    link.close()
    assert "is `restyle serve` running" in messages[-1]
    assert len(sent) <= 3 and len({a[1][0] for a in sent}) == 1  # resent with the same id, a bounded number of times


def test_request_ids_differ_across_script_reloads():
    clip = FakeClip("a.wav", 0.0, 1.0)
    ids = []
    for _ in range(2):  # Live reloads the script: a fresh RestyleLink counting from 1 again
        link = RestyleLink(FakeSong(clip, FakeTrack([FakeSlot(clip), FakeSlot()])), lambda m: None, port=9)
        ids.append(link.stylize_selected())
        link.close()
    assert ids[0] != ids[1]


def test_queue_position_as_the_protocol_defines_it():
    from Restyle.restyle_link import Pending

    messages = []
    link = RestyleLink(FakeSong(None, FakeTrack([])), messages.append)
    link.requests = {"r1": Pending(None, None, 0, []), "r2": Pending(None, None, 0, [])}
    link.handle("accepted", ["r1", "job-1", 0])  # 0 = running now
    link.handle("accepted", ["r2", "job-2", 2])
    link.close()
    assert messages == ["Restyle: running", "Restyle: queued, 2 job(s) ahead"]
