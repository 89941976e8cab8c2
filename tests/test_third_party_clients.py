"""The bridge driven by tools that are not ours: liblo's oscsend/oscdump (Debian's liblo-tools)."""

import shutil
import subprocess
import threading
import time

import pytest
import soundfile as sf

from tests.bridge_helpers import free_port, running_server

pytestmark = pytest.mark.skipif(
    shutil.which("oscsendfile") is None or shutil.which("oscdump") is None,
    reason="liblo-tools is not installed (.ci/run installs it)",
)


def oscsendfile(port: int, folder, *messages: str) -> None:
    """Send messages from one socket (a hello registers that socket's own replies), as ``oscsendfile`` does."""
    script = folder / "messages.txt"
    script.write_text("".join(f"{m}\n" for m in messages))
    subprocess.run(["oscsendfile", "127.0.0.1", str(port), str(script)], check=True, timeout=10)


def test_liblo_round_trip_hello_submit_progress_done(tiny_base, styles_dir, tmp_path, content_wav):
    reply_port = free_port()
    dump = subprocess.Popen(["oscdump", "-L", str(reply_port)], stdout=subprocess.PIPE, text=True)
    try:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(dump.stdout.readline, "")), daemon=True)
        reader.start()
        with running_server(tiny_base, styles_dir, tmp_path) as server:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not lines:  # until oscdump is up and hears our hello
                oscsendfile(server.udp_port, tmp_path, f"/restyle/hello si h1 {reply_port}")
                time.sleep(0.3)
            oscsendfile(server.udp_port, tmp_path, f"/restyle/hello si h2 {reply_port}",
                        f"/restyle/stylize sssi r1 {content_wav} steps 4")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not any(" /restyle/done " in line for line in lines):
                time.sleep(0.1)
    finally:
        dump.kill()
        dump.wait()
    # oscdump -L prints "TIMESTAMP /address types values..."
    messages = [line.split(" ", 1)[1].strip() for line in lines if " /restyle/" in line]
    addresses = [m.split(" ")[0] for m in messages]
    addresses = [a for a in addresses if a != "/restyle/hello"]
    assert addresses[0] == "/restyle/accepted"
    assert "/restyle/progress" in addresses and addresses[-1] == "/restyle/done"
    output = messages[-1].split('"')[3]
    assert sf.info(output).frames == 44100
