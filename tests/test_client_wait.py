"""RestyleClient.wait_for_job against a scripted server and a fake clock: queue time is not running time."""

import types

import pytest

from restyle.bridge import client as client_module
from restyle.bridge.client import Event, RestyleClient, ServerError


class ScriptedClient(RestyleClient):
    """Pushes arrive from `script` as (seconds later, event or None); `status JOB` answers with `state`."""

    def __init__(self, script, state="queued"):
        super().__init__(retries=0)
        self.script, self.state, self.now, self.asked = list(script), state, 0.0, 0

    def receive(self, timeout):
        if not self.script:
            self.now += timeout
            return None
        later, event = self.script.pop(0)
        self.now += later
        return event

    def request(self, name, *args):
        assert name == "status"
        self.asked += 1
        return [args[0], self.state, 1, 0.0]


@pytest.fixture
def clock(monkeypatch):
    holder = {}
    monkeypatch.setattr(client_module, "time", types.SimpleNamespace(monotonic=lambda: holder["client"].now))
    return holder


def run(clock, script, state="queued", **options):
    client = clock["client"] = ScriptedClient(script, state)
    try:
        return client.wait_for_job("job-1", **options), client
    finally:
        client.close()


def test_timeout_counts_from_when_the_job_starts(clock):
    script = [(50.0, Event("progress", ["job-2", 0.5, 1, 2, "x"]))] * 4 + [
        (1.0, Event("started", ["job-1"])), (50.0, Event("progress", ["job-1", 0.5, 1, 2, "x"])),
        (1.0, Event("done", ["job-1", "out.wav", 44100, 2, 1.0]))]
    event, _ = run(clock, script, timeout=60, stall=300)
    assert event.name == "done"


def test_timeout_still_applies_once_running(clock):
    script = [(1.0, Event("started", ["job-1"]))] + [(20.0, Event("progress", ["job-1", 0.1, 1, 9, "x"]))] * 5
    with pytest.raises(ServerError, match="within 60 s"):
        run(clock, script, timeout=60, stall=300)


def test_a_queued_job_is_not_a_stalled_server(clock):
    script = [(40.0, None)] * 3 + [(1.0, Event("started", ["job-1"])),
                                   (1.0, Event("done", ["job-1", "out.wav", 44100, 2, 1.0]))]
    event, client = run(clock, script, stall=30)
    assert event.name == "done" and client.asked >= 1


def test_a_silent_server_still_stalls(clock, monkeypatch):
    def gone(*_args):
        raise ServerError("No answer", "no_server")

    monkeypatch.setattr(ScriptedClient, "request", gone)
    with pytest.raises(ServerError, match="stopped reporting"):
        run(clock, [(40.0, None)], stall=30)


def test_a_job_that_ended_unheard_is_reported(clock):
    with pytest.raises(ServerError, match="lost"):
        run(clock, [(40.0, None)], state="done", stall=30)
