"""The Pure Data template drives the real OSC server headless (Debian's puredata-core): knobs, submit, ping, and
the server's replies reaching the patch (it prints them; pd's stderr is read here)."""

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from restyle.bridge.knobs import MAX_SCALE
from tests.bridge_helpers import running_server

PATCH = Path(__file__).resolve().parents[1] / "daw_templates" / "pd" / "restyle.pd"
PD = shutil.which("pd")


@pytest.mark.skipif(PD is None, reason="Pure Data is not installed (.ci/run installs puredata-core)")
def test_pd_patch_sends_messages_and_shows_every_kind_of_reply(tiny_base, styles_dir, tmp_path, content_wav):
    missing = tmp_path / "missing.wav"
    with running_server(tiny_base, styles_dir, tmp_path) as server:
        messages = (f"restyle-port {server.udp_port}; restyle-ping bang; restyle-strength 0.25; restyle-scale 0.5; "
                    f"restyle-submit {content_wav}; restyle-submit {missing}")  # bare paths, no "symbol"
        pd = subprocess.Popen([PD, "-nogui", "-noaudio", "-nomidi", "-stderr", "-open", str(PATCH), "-send", messages],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            protocol = server.protocol
            while time.monotonic() < deadline and not any(j.state == "done" for j in protocol.jobs.all()):
                time.sleep(0.1)
            time.sleep(0.5)  # the "done" push on its way to the patch
            jobs = list(protocol.jobs.all())
            knobs = protocol.knobs.snapshot()
        finally:
            pd.kill()
            printed = pd.communicate()[1]
    assert knobs["strength"] == pytest.approx(0.01 + 0.25 * 0.99) and knobs["scale"] == pytest.approx(0.5 * MAX_SCALE), printed
    assert len(jobs) == 1 and jobs[0].state == "done" and jobs[0].params["input"] == content_wav, printed
    replies = [line for line in printed.splitlines() if line.startswith("restyle: ")]
    for kind in ("pong", "knob", "accepted", "progress", "done"):
        assert any(line.startswith(f"restyle: {kind} ") for line in replies), (kind, printed)
    assert any(line.startswith("restyle: error ") and "missing.wav" in line for line in replies), printed
