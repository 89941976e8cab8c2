"""The OSC bridge over real loopback sockets with the tiny model: round trips, cancel, learn, knobs, abuse."""

import os
import random
import socket
import threading
import time

import numpy as np
import pytest
import soundfile as sf
from pythonosc import slip
from pythonosc.osc_message_builder import build_msg
from pythonosc.osc_packet import OscPacket

from restyle.bridge.client import RestyleClient, ServerError
from restyle.bridge.paths import PathPolicy
from signals import chord
from tests.bridge_helpers import running_server
from tests.conftest import write_wav


@pytest.fixture
def server(tiny_base, styles_dir, tmp_path):
    with running_server(tiny_base, styles_dir, tmp_path) as running:
        yield running


@pytest.fixture
def client(server):
    with RestyleClient("127.0.0.1", server.udp_port, timeout=5.0) as c:
        yield c


@pytest.fixture
def long_wav(tmp_path):
    return write_wav(tmp_path / "long.wav", chord([220.0, 330.0], 12.0, 44100), 44100)


def test_ping_answers_with_the_request_id(client):
    assert client.request("ping") == ["restyle", "1"]


def test_full_round_trip_submit_progress_done(client, content_wav):
    job_id, position = client.request("stylize", str(content_wav), "strength", 0.5, "steps", 6)
    assert job_id.startswith("job-") and position in (0, 1)
    events = []
    final = client.wait_for_job(job_id, events.append, stall=30)
    names = [e.name for e in events]
    assert names[0] == "started" and "progress" in names and final.name == "done"
    _, output, rate, channels, seconds = final.args
    audio, out_rate = sf.read(output)
    assert out_rate == rate == 44100 and channels == 1 and len(audio) == 44100 and seconds == pytest.approx(1.0)
    assert os.path.dirname(output) == str(content_wav.parent)
    progress = [e.args for e in events if e.name == "progress"]
    assert progress[-1][2] == progress[-1][3], "the last progress push reports the whole job"


def test_repeated_request_id_returns_the_same_job(server, content_wav):
    with RestyleClient("127.0.0.1", server.udp_port) as c:
        c.send("stylize", ["same-id", str(content_wav)])
        c.send("stylize", ["same-id", str(content_wav)])
        accepted, deadline = [], time.monotonic() + 10
        while len(accepted) < 2 and time.monotonic() < deadline:
            event = c.receive(1.0)
            if event is not None and event.name == "accepted":
                accepted.append(event)
    assert len(accepted) == 2 and accepted[0].args[1] == accepted[1].args[1]


def test_ints_and_floats_are_accepted_alike(client, content_wav):
    """Pure Data sends every number as a float, request ids included."""
    assert client.request("knob/set", "steps", 12.0) == ["steps", 12, pytest.approx(11 / 199)]
    client.send("ping", [7.0])
    reply = client.receive(5.0)
    assert reply.name == "pong" and reply.args[0] == 7.0


def test_cancel_mid_job_leaves_no_output(client, long_wav):
    out = long_wav.with_name("cancelled.wav")
    job_id, _ = client.request("stylize", str(long_wav), "steps", 40, "strength", 1.0, "output", str(out))
    cancelled = []

    def on_event(event):
        if event.name == "progress" and not cancelled:
            cancelled.append(client.request("cancel", job_id))

    final = client.wait_for_job(job_id, on_event)
    assert final.name == "cancelled" and cancelled[0][0] == job_id
    assert not out.exists() and sorted(p.name for p in long_wav.parent.glob("cancelled*")) == []


def test_ping_answers_quickly_while_a_job_runs(client, server, long_wav):
    job_id, _ = client.request("stylize", str(long_wav), "steps", 40, "strength", 1.0)
    deadline = time.monotonic() + 30
    while server.protocol.jobs.running is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with RestyleClient("127.0.0.1", server.udp_port) as other:
        timings = []
        for _ in range(5):
            started = time.monotonic()
            assert other.request("ping")[0] == "restyle"
            timings.append(time.monotonic() - started)
    client.request("cancel", job_id)
    assert min(timings) < 0.05 and max(timings) < 0.5, timings


def test_two_clients_get_their_own_replies(server, content_wav, tmp_path):
    second = write_wav(tmp_path / "second.wav", chord([330.0], 0.5, 22050), 22050)
    results = {}

    def submit(name, path):
        with RestyleClient("127.0.0.1", server.udp_port, timeout=5.0) as c:
            job_id, _ = c.request("stylize", str(path))
            results[name] = c.wait_for_job(job_id)

    threads = [threading.Thread(target=submit, args=a) for a in (("a", content_wav), ("b", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results["a"].name == results["b"].name == "done"
    assert results["a"].args[2] == 44100 and results["b"].args[2] == 22050


def test_hello_registers_a_reply_port(server):
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(5)
    with RestyleClient("127.0.0.1", server.udp_port) as c:
        c.send("hello", ["h1", listener.getsockname()[1]])
        c.send("ping", ["p1"])
        replies = [OscPacket(listener.recvfrom(65535)[0]).messages[0].message for _ in range(2)]
    listener.close()
    assert [(m.address, m.params[0]) for m in replies] == [("/restyle/hello", "h1"), ("/restyle/pong", "p1")]


def test_a_style_learned_over_osc_can_then_be_used(client, style_clips, content_wav):
    clips = [str(p) for p in sorted(style_clips.iterdir())]
    job_id, _ = client.request("learn", "learned", *clips)
    assert client.wait_for_job(job_id).args == [job_id, "learned"]
    assert "learned" in client.request("styles/list")
    job_id, _ = client.request("stylize", str(content_wav), "style", "learned", "steps", 4)
    assert client.wait_for_job(job_id).name == "done"


def test_styles_can_be_renamed_and_deleted(client):
    assert client.request("styles/rename", "chimes", "gongs") == ["ok", "gongs"]
    assert client.request("styles/list") == ["bells", "gongs"]
    assert client.request("styles/delete", "gongs") == ["ok", "gongs"]
    with pytest.raises(ServerError, match="No style named 'gongs'"):
        client.request("styles/delete", "gongs")


def test_knobs_get_set_normalized_and_push_to_subscribers(server, client):
    assert client.request("knob/get", "scale")[:2] == ["scale", 4.0]
    assert client.request("knob/set_normalized", "strength", 1.0)[:2] == ["strength", 1.0]
    with RestyleClient("127.0.0.1", server.udp_port) as watcher:
        assert watcher.request("subscribe") == ["ok"]
        client.request("knob/set", "scale", 15.0)
        pushed = watcher.receive(5.0)
    assert pushed.name == "knob/changed" and pushed.args == ["scale", 15.0, pytest.approx(0.5)]  # half of 0..30
    flat = client.request("knobs")
    assert dict(zip(flat[::2], flat[1::2]))["scale"] == 15.0


def test_job_status_and_server_status(client, content_wav):
    assert client.request("status")[0] == "server"
    job_id, _ = client.request("stylize", str(content_wav))
    client.wait_for_job(job_id)
    assert client.request("status", job_id)[:2] == [job_id, "done"]


@pytest.mark.parametrize(
    "request_args, code",
    [
        (("nosuch/address",), "unknown_address"),
        (("knob/set", "scale"), "bad_request"),
        (("knob/set", "scale", "loud"), "bad_request"),
        (("knob/set", "volume", 1), "bad_settings"),
        (("stylize", "relative/path.wav"), "path_refused"),
        (("stylize", "/no/such/file.wav"), "bad_audio"),
        (("stylize", "NOT_AUDIO"), "bad_audio"),
        (("stylize", "CONTENT", "strength", 3), "bad_settings"),
        (("stylize", "CONTENT", "style", "owl"), "unknown_style"),
        (("stylize", "CONTENT", "colour", "red"), "bad_request"),
        (("stylize", "CONTENT", "output", "/tmp/../etc/escape.wav"), "path_refused"),
        (("stylize", "CONTENT", "output", "CONTENT"), "path_refused"),
        (("cancel", "job-999"), "bad_request"),
    ],
)
def test_bad_requests_get_an_error_reply_with_the_request_id(client, content_wav, request_args, code):
    not_audio = content_wav.with_name("notes.wav")
    not_audio.write_text("not audio")
    swap = {"CONTENT": str(content_wav), "NOT_AUDIO": str(not_audio)}
    name, *args = [swap.get(a, a) for a in request_args]
    with pytest.raises(ServerError) as caught:
        client.request(name, *args)
    assert caught.value.code == code
    assert client.request("ping")[0] == "restyle"


def test_reads_are_confined_to_allowed_folders(tiny_base, styles_dir, tmp_path, content_wav):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    with running_server(tiny_base, styles_dir, tmp_path, policy=PathPolicy((allowed,))) as server:
        with RestyleClient("127.0.0.1", server.udp_port) as c:
            with pytest.raises(ServerError) as caught:
                c.request("stylize", str(content_wav))
    assert caught.value.code == "path_refused"


def test_full_queue_is_refused(tiny_base, styles_dir, tmp_path, long_wav):
    with running_server(tiny_base, styles_dir, tmp_path, max_queued=1) as server:
        with RestyleClient("127.0.0.1", server.udp_port, timeout=5) as c:
            first, _ = c.request("stylize", str(long_wav), "steps", 40, "strength", 1.0)
            deadline = time.monotonic() + 30
            while server.protocol.jobs.running is None and time.monotonic() < deadline:
                time.sleep(0.01)
            c.request("stylize", str(long_wav))
            with pytest.raises(ServerError) as caught:
                c.request("stylize", str(long_wav))
            c.request("cancel", first)
    assert caught.value.code == "queue_full"


def test_garbage_datagrams_do_not_stop_the_server(server, client):
    rng = random.Random(0)
    valid = build_msg("/restyle/ping", ["x", 1, 2.5]).dgram
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        for i in range(1000):
            if i % 2:
                data = valid[: rng.randrange(1, len(valid))]
            else:
                data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
            raw.sendto(data, ("127.0.0.1", server.udp_port))
        raw.sendto(build_msg("/restyle/stylize", ["big", "x" * 60_000]).dgram, ("127.0.0.1", server.udp_port))
    time.sleep(0.5)
    assert client.request("ping")[0] == "restyle"


def test_tcp_with_slip_framing_round_trip(server, content_wav):
    with socket.create_connection(("127.0.0.1", server.tcp_port), timeout=30) as conn:
        conn.sendall(slip.encode(build_msg("/restyle/ping", ["t1"]).dgram)
                     + slip.encode(build_msg("/restyle/stylize", ["t2", str(content_wav), "steps", 4]).dgram))
        buffer, seen = b"", []
        while not any(m.address == "/restyle/done" for m in seen):
            buffer += conn.recv(65536)
            *frames, buffer = buffer.split(slip.END)
            seen += [OscPacket(slip.decode(slip.END + f + slip.END)).messages[0].message for f in frames if f]
    addresses = [m.address for m in seen]
    assert addresses[:2] == ["/restyle/pong", "/restyle/accepted"] and "/restyle/progress" in addresses
    done = seen[-1].params
    assert sf.info(done[1]).frames == 44100


def test_reply_payloads_are_small_enough_for_udp(client, content_wav):
    assert len(build_msg("/restyle/done", ["job-1", str(content_wav), 44100, 2, 1.0]).dgram) < 8192
    assert np.isfinite(client.request("status")[1])


def test_again_restyles_the_last_clip_with_the_current_knobs(server, client, content_wav):
    with pytest.raises(ServerError, match="Nothing to stylize again"):
        client.request("again")
    first, _ = client.request("stylize", str(content_wav))
    client.wait_for_job(first)
    client.request("knob/set", "seed", 42)
    second, _ = client.request("again")
    done = client.wait_for_job(second)
    assert second != first and done.name == "done"
    assert server.protocol.jobs.get(second).params["settings"].seed == 42


def test_midi_learn_over_osc(server, client):
    import mido

    from restyle.bridge.midi import MidiKnobs, MidiMap

    with pytest.raises(ServerError, match="MIDI is not set up"):
        client.request("midi/learn", "scale")
    server.protocol.midi = MidiKnobs(MidiMap(takeover="none"), server.protocol.knobs)
    assert client.request("midi/learn", "scale") == ["move a control", "scale"]
    server.protocol.midi.handle(mido.Message("control_change", control=5, value=127))
    assert client.request("knob/get", "scale")[1] == 30.0  # the top of the engine's scale range

