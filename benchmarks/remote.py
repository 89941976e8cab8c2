"""The remote engine measured: jobs per minute and latency over HTTP, one process vs Ray Serve replicas, and what
a 10 s stereo 48 kHz clip costs to move over a network of 50 ms round trip.

Each set-up is a real `restyle serve --http` (or `--ray --replicas N`) on loopback with the shipped mini styles
(the tiny model gets a style learned first). Three clients submit --jobs 5 s clips at once; a job's latency runs
from its upload to the end of its download. Ratios are against the one-process server of the same model, measured
in the same run. The network part sends the 10 s clip through a proxy that holds every chunk 25 ms in each
direction (this kernel has no netem), so it shows latency per exchange, not TCP slow start; the result is compared
with the same transfer on plain loopback.

    python benchmarks/remote.py                      # tiny and mini, 1 process, Ray 1 and 2 replicas
    python benchmarks/remote.py --models mini --setups http,ray2 --jobs 12
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from restyle.engine.machine import cpu_name  # noqa: E402

STYLE = {"mini": "accordion", "tiny": "bench"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clip(seconds: float, rate: int, channels: int, seed: int) -> bytes:
    """A melody-like test clip (partials with a little noise), as 16-bit WAV bytes."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    notes = 220.0 * 2 ** (rng.integers(0, 12, size=int(seconds * 4)) / 12)
    f = np.repeat(notes, len(t) // len(notes) + 1)[: len(t)]
    mono = 0.3 * np.sin(2 * np.pi * np.cumsum(f) / rate) + 0.01 * rng.standard_normal(len(t))
    data = np.stack([mono] * channels, axis=1)
    out = io.BytesIO()
    sf.write(out, data, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()


def start(setup: str, model: str, port: int, home: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "restyle", "serve", "--model", model, "--http", str(port),
               "--port", str(free_port()), "--queue", "64", "--per-client", "64"]
    if setup.startswith("ray"):
        command += ["--ray", "--replicas", setup[3:], "--cpus-per-replica", "1"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", RESTYLE_HOME=str(home))
    server = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.5)
    server.kill()
    sys.exit(f"{setup} on {model} did not start")


def stop(server: subprocess.Popen) -> None:
    server.send_signal(2)
    try:
        server.wait(60)
    except subprocess.TimeoutExpired:
        server.kill()


def one_job(c: httpx.Client, audio: bytes, seed: int, style: str) -> float:
    """Upload, wait, download; seconds from the first byte sent to the last byte received."""
    start = time.perf_counter()
    job = c.post("/v1/jobs/stylize", files={"audio": ("take.wav", audio, "audio/wav")},
                 data={"style": style, "seed": str(seed)}).json()
    final = None
    with c.stream("GET", f"/v1/jobs/{job['id']}/events", timeout=600) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                final = json.loads(line[6:])
    assert final and final["state"] == "done", final
    assert c.get(final["result"]["download"]).status_code == 200
    return time.perf_counter() - start


def load(port: int, jobs: int, style: str) -> dict:
    """--jobs 5 s clips from three clients at once: jobs per minute and latency percentiles."""
    audio = clip(5.0, 44100, 2, 0)
    latencies, lock = [], threading.Lock()

    def client(n: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as c:
            for i in range(n, jobs, 3):
                seconds = one_job(c, audio, i, style)
                with lock:
                    latencies.append(seconds)

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ordered = sorted(latencies)
    return {"jobs": jobs, "wall_s": round(wall, 2), "jobs_per_min": round(60 * jobs / wall, 2),
            "p50_s": round(statistics.median(ordered), 2),
            "p99_s": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2)}


def learn_tiny_style(port: int) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as c:
        job = c.post("/v1/jobs/learn", data={"name": "bench", "steps": "2"},
                     files=[("clips", ("a.wav", clip(2.0, 22050, 1, 1), "audio/wav"))]).json()
        with c.stream("GET", f"/v1/jobs/{job['id']}/events") as stream:
            for _ in stream.iter_lines():
                pass


class DelayProxy:
    """A TCP proxy holding every chunk ``delay`` seconds in each direction (a link of 2 x delay round trip)."""

    def __init__(self, target_port: int, delay: float):
        self.target_port, self.delay = target_port, delay
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result()

    async def _serve(self) -> None:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)

    async def _connection(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader, writer) -> None:
        queue: asyncio.Queue = asyncio.Queue()

        async def deliver() -> None:
            while (item := await queue.get()) is not None:
                due, data = item
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(data)
                await writer.drain()
            writer.close()

        sender = asyncio.create_task(deliver())
        while data := await reader.read(65536):
            queue.put_nowait((time.monotonic() + self.delay, data))
        queue.put_nowait(None)
        await sender


def transfer(port: int, audio: bytes, runs: int) -> dict:
    """Median seconds to upload the clip (until the job is accepted) and to download a result of the same size."""
    ups, downs, size = [], [], 0
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as c:
        for i in range(runs):
            start = time.perf_counter()
            job = c.post("/v1/jobs/stylize", files={"audio": ("take.wav", audio, "audio/wav")},
                         data={"style": STYLE["tiny"], "seed": str(i)}).json()
            ups.append(time.perf_counter() - start)
            while c.get(f"/v1/jobs/{job['id']}").json()["state"] != "done":
                time.sleep(0.05)
            start = time.perf_counter()
            size = len(c.get(f"/v1/jobs/{job['id']}/result").content)
            downs.append(time.perf_counter() - start)
    return {"upload_s": round(statistics.median(ups), 3), "download_s": round(statistics.median(downs), 3),
            "result_bytes": size}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="tiny,mini")
    parser.add_argument("--setups", default="http,ray1,ray2", help="http (one process), rayN (N replicas)")
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--runs", type=int, default=5, help="transfers timed for the network figure")
    parser.add_argument("--out", default="benchmarks/results-remote.json")
    args = parser.parse_args()
    results = {"machine": f"{cpu_name()}, {os.cpu_count()} cores, {platform.system()}", "load": {}, "network": {}}
    with tempfile.TemporaryDirectory() as home:
        for model in args.models.split(","):
            for setup in args.setups.split(","):
                port = free_port()
                server = start(setup, model, port, Path(home))
                try:
                    if model == "tiny":
                        learn_tiny_style(port)
                    load(port, 3, STYLE[model])  # warm-up: every replica has run a job
                    results["load"][f"{model}/{setup}"] = figures = load(port, args.jobs, STYLE[model])
                    print(model, setup, figures, flush=True)
                finally:
                    stop(server)
            base = results["load"].get(f"{model}/http")
            for key, figures in results["load"].items():
                if base and key.startswith(model + "/"):
                    figures["throughput_vs_http"] = round(figures["jobs_per_min"] / base["jobs_per_min"], 2)
        port = free_port()
        server = start("http", "tiny", port, Path(home))
        try:
            learn_tiny_style(port)
            audio = clip(10.0, 48000, 2, 3)
            direct = transfer(port, audio, args.runs)
            proxy = DelayProxy(port, 0.025)
            delayed = transfer(proxy.port, audio, args.runs)
            results["network"] = {"clip": "10 s, stereo, 48 kHz, 16-bit WAV", "bytes": len(audio),
                                  "loopback": direct, "50ms_rtt": delayed,
                                  "overhead_s": round(delayed["upload_s"] + delayed["download_s"], 3)}
            print("network", results["network"], flush=True)
        finally:
            stop(server)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
