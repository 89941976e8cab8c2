"""The Pure Data template drives the real server headless (Debian's puredata-core): knobs, submit, ping."""

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.bridge_helpers import running_server

PATCH = Path(__file__).resolve().parents[1] / "daw_templates" / "pd" / "restyle.pd"
PD = shutil.which("pd")


@pytest.mark.skipif(PD is None, reason="Pure Data is not installed (.ci/run installs puredata-core)")
def test_pd_patch_sends_messages_the_server_accepts(tiny_base, styles_dir, tmp_path, content_wav):
    with running_server(tiny_base, styles_dir, tmp_path) as server:
        messages = (f"restyle-port {server.udp_port}; restyle-strength 0.25; restyle-scale 0.5; "
                    f"restyle-submit symbol {content_wav}; restyle-ping bang")
        pd = subprocess.Popen([PD, "-nogui", "-noaudio", "-nomidi", "-stderr", "-open", str(PATCH), "-send", messages],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            protocol = server.protocol
            while time.monotonic() < deadline and not any(j.state == "done" for j in protocol.jobs.all()):
                time.sleep(0.1)
            job = next(iter(protocol.jobs.all()), None)
            knobs = protocol.knobs.snapshot()
        finally:
            pd.kill()
            errors = pd.communicate()[1]
    assert knobs["strength"] == pytest.approx(0.01 + 0.25 * 0.99) and knobs["scale"] == pytest.approx(7.5), errors
    assert job is not None and job.state == "done" and job.params["input"] == content_wav, errors
