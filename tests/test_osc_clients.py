"""Several clients at once over real loopback sockets: no result lost or shared, no client answered for another."""

import socket
import threading
import time

import pytest
import soundfile as sf
from pythonosc.osc_packet import OscPacket

import restyle.bridge.protocol
from restyle.bridge.client import RestyleClient, ServerError
from signals import chord
from tests.bridge_helpers import running_server
from tests.conftest import TINY_RATE, write_wav

QUICK = ["steps", 2, "strength", 0.5]


@pytest.fixture
def server(tiny_base, styles_dir, tmp_path):
    with running_server(tiny_base, styles_dir, tmp_path, max_queued=64) as running:
        yield running


@pytest.fixture
def take(tmp_path):
    return write_wav(tmp_path / "take.wav", chord([220.0, 330.0], 1.0, TINY_RATE), TINY_RATE)


def _follow(client: RestyleClient, sent: dict[str, float], timeout: float = 240) -> dict[str, list]:
    """Collect each request's ``done`` (request id -> [job, path, ...]) from pushes and replies in any order."""
    jobs, done, deadline = {}, {}, time.monotonic() + timeout
    while len(done) < len(sent) and time.monotonic() < deadline:
        event = client.backlog.pop(0) if client.backlog else client.receive(1.0)
        if event is None:
            continue
        if event.name == "accepted":
            jobs[event.args[1]] = event.args[0]
        elif event.name == "error":
            raise AssertionError(f"request {event.args[0]} refused: {event.args[2]}")
        elif event.name in ("done", "failed") and event.args[0] in jobs:
            done[jobs[event.args[0]]] = event.args
    return done


def test_a_burst_of_jobs_from_three_clients_in_one_second_gets_distinct_complete_files(server, take):
    ends = {f"c{c}-r{i}": 0.25 + (7 * c + i) / 64 for c in range(3) for i in range(7)}  # 21 jobs, exact in float32
    results: dict[str, list] = {}

    def client(c: int) -> None:
        with RestyleClient("127.0.0.1", server.udp_port, timeout=5.0) as osc:
            mine = {rid: end for rid, end in ends.items() if rid.startswith(f"c{c}-")}
            for rid, end in mine.items():
                osc.send("stylize", [rid, str(take), "end", end, *QUICK])
            results.update(_follow(osc, mine))

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert server.protocol.jobs.all()[-1].created - started < 1.0, "all jobs were accepted within one second"
    assert len(results) == len(ends) and all(args[0] and len(args) == 5 for args in results.values())
    paths = [args[1] for args in results.values()]
    assert len(set(paths)) == len(ends), "every done names its own file"
    for rid, args in results.items():
        assert sf.info(args[1]).frames == round(ends[rid] * TINY_RATE), f"{args[1]} holds {rid}'s audio"


def test_an_existing_output_is_refused_at_once_and_left_alone(server, take):
    existing = take.with_name("mix.wav")
    existing.write_bytes(b"a producer's unrelated file")
    with RestyleClient("127.0.0.1", server.udp_port, timeout=5.0) as osc:
        with pytest.raises(ServerError) as caught:
            osc.request("stylize", str(take), "output", str(existing), *QUICK)
    assert caught.value.code == "output_exists"
    assert existing.read_bytes() == b"a producer's unrelated file"


def test_two_queued_jobs_never_share_an_output(server, take):
    target = take.with_name("result.wav")
    with RestyleClient("127.0.0.1", server.udp_port, timeout=5.0) as osc:
        first, _ = osc.request("stylize", str(take), "output", str(target), *QUICK)
        with pytest.raises(ServerError) as caught:
            osc.request("stylize", str(take), "output", str(target), "seed", 3, *QUICK)
        assert osc.wait_for_job(first).name == "done"
    assert caught.value.code == "output_exists" and sf.info(str(target)).frames == TINY_RATE


def test_two_clients_counting_from_one_each_get_their_own_job(server, take):
    """Two DAWs on one machine, or a reloaded script, reuse request ids: only a real retry returns a job."""
    outputs = {name: take.with_name(f"{name}.wav") for name in ("a", "b", "b-again")}
    with RestyleClient("127.0.0.1", server.udp_port, timeout=5.0) as a, \
            RestyleClient("127.0.0.1", server.udp_port, timeout=5.0) as b:
        a.send("stylize", ["1", str(take), "end", 0.25, "output", str(outputs["a"]), *QUICK])
        b.send("stylize", ["1", str(take), "end", 0.375, "output", str(outputs["b"]), *QUICK])
        done_a = _follow(a, {"1": 0})
        done_b = _follow(b, {"1": 0})
        b.send("stylize", ["1", str(take), "end", 0.5, "output", str(outputs["b-again"]), *QUICK])
        again = _follow(b, {"1": 0})
    assert done_a["1"][1] == str(outputs["a"]) and done_b["1"][1] == str(outputs["b"])
    assert again["1"][1] == str(outputs["b-again"]), "the same id with other arguments is a new job"
    assert [sf.info(str(p)).frames for p in outputs.values()] == [round(s * TINY_RATE) for s in (0.25, 0.375, 0.5)]


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    return sock


def test_hello_redirects_only_its_own_client(server):
    listener = _listener()
    with RestyleClient("127.0.0.1", server.udp_port) as daw, RestyleClient("127.0.0.1", server.udp_port) as other:
        daw.send("hello", ["h1", listener.getsockname()[1]])
        assert OscPacket(listener.recvfrom(65535)[0]).messages[0].message.address == "/restyle/hello"
        daw.send("ping", ["p1"])
        assert OscPacket(listener.recvfrom(65535)[0]).messages[0].message.params[0] == "p1"
        assert other.request("ping") == ["restyle", "1"], "another client on the host still hears its replies"
    listener.close()


@pytest.mark.parametrize("host", ["3.0", "8.8.8.8", "example.com"])
def test_hello_cannot_point_replies_at_another_machine(server, host):
    with RestyleClient("127.0.0.1", server.udp_port) as osc:
        with pytest.raises(ServerError) as caught:
            osc.request("hello", 9999, host)
        assert caught.value.code == "bad_request"
        assert osc.request("ping") == ["restyle", "1"]


def test_a_registration_lapses_when_its_client_goes_quiet(server, monkeypatch):
    monkeypatch.setattr(restyle.bridge.protocol, "REGISTRATION_SECONDS", 0.5)
    listener = _listener()
    with RestyleClient("127.0.0.1", server.udp_port) as daw:
        daw.send("hello", ["h1", listener.getsockname()[1]])
        listener.recvfrom(65535)
        time.sleep(0.8)
        assert daw.request("ping") == ["restyle", "1"], "replies come back to the sender once it lapsed"
    listener.close()


@pytest.mark.parametrize("option", [("style", "bells:nan"), ("style", "bells:inf,chimes:1"), ("strength", "nan"),
                                    ("end", "nan"), ("start", "-inf"), ("seed", "nan"), ("scale", "inf")])
def test_numbers_that_are_not_finite_are_refused(server, take, option):
    with RestyleClient("127.0.0.1", server.udp_port, timeout=5.0) as osc:
        with pytest.raises(ServerError) as caught:
            osc.request("stylize", str(take), *option, "steps", 2)
    assert caught.value.code in ("bad_request", "bad_settings") and "finite" in str(caught.value)
    assert sorted(p.name for p in take.parent.glob("take_*")) == []
