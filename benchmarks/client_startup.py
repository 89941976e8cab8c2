"""How fast does a DAW's `restyle` call answer? Start-up of the client commands against baselines from this run.

Every DAW action starts a fresh `restyle` process, so its start-up is what a producer waits for. Each command
runs in a fresh process (median of --runs). Baselines measured in the same run: the bare interpreter, a bare
python-osc client import, and importing the engine's ML stack (what every `restyle` call paid before the client
commands stopped importing it). The server is a real `restyle serve --model mini` on loopback, warmed up by one
request and idle whenever a command is timed.

    python benchmarks/client_startup.py            # about a minute
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
sys.path.insert(0, str(REPO))

from restyle.bridge.client import RestyleClient  # noqa: E402
from restyle.engine.machine import cpu_name  # noqa: E402


def timed(command: list[str], runs: int, port: int) -> float:
    """Median wall-clock seconds of ``command`` run ``runs`` times, each in a fresh process, the server idle."""
    times = []
    for _ in range(runs):
        wait_until_idle(port)
        start = time.perf_counter()
        subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def wait_until_idle(port: int) -> None:
    """Until the server runs no job (so a timed command does not share the CPU with a stylize)."""
    with RestyleClient(port=port) as client:
        while client.request("status")[2]:
            time.sleep(0.2)


def start_server(port: int) -> subprocess.Popen:
    command = [PY, "-m", "restyle", "serve", "--model", "mini", "--port", str(port), "--style", "accordion"]
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              env=dict(os.environ, HF_HUB_OFFLINE="1"))
    if "listening" not in server.stdout.readline():
        server.kill()
        sys.exit("restyle serve did not start")
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--port", type=int, default=9187)
    args = parser.parse_args()
    restyle = [PY, "-m", "restyle"]
    server_options = ["--port", str(args.port)]
    with tempfile.TemporaryDirectory() as out:
        clip = Path(out) / "clip.flac"  # results are written next to it
        shutil.copy(REPO / "engine" / "mini" / "demo-melody.flac", clip)
        rows = [
            ("python -c pass (interpreter)", [PY, "-c", "pass"], args.runs),
            ("import pythonosc client (baseline)", [PY, "-c", "import pythonosc.udp_client"], args.runs),
            ("import the engine's ML stack (what each call paid before)", [PY, "-c", "import restyle.engine.engine"], 3),
            ("restyle send --help", restyle + ["send", "--help"], args.runs),
            ("restyle status (running server)", restyle + ["status"] + server_options, args.runs),
            ("restyle send --no-wait (running server, until accepted)",
             restyle + ["send", str(clip), "--steps", "4", "--end", "1", "--no-wait"]
             + server_options, args.runs),
        ]
        server = start_server(args.port)
        try:
            timed(rows[-1][1], 1, args.port)  # the server's first request reads the style and the audio libraries
            results = [(label, timed(command, runs, args.port)) for label, command, runs in rows]
        finally:
            server.terminate()
            server.wait(30)
    baseline = results[1][1]
    print(f"CPU: {cpu_name()} ({os.cpu_count()} logical cores), Python {platform.python_version()}")
    print("| command | median start-up (s) | vs python-osc import |")
    print("|---|---|---|")
    for label, seconds in results:
        print(f"| {label} | {seconds:.3f} | {seconds / baseline:.2f}x |")


if __name__ == "__main__":
    main()
