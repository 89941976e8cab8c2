"""Ray Serve scale-out on a local Ray instance: 2 replicas of the tiny model, 3 clients, a replica killed mid-job."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading
import time

import httpx
import numpy as np
import pytest
import soundfile as sf

from restyle.bridge.http_api import HttpSettings
from restyle.engine.audio import AudioLimits
from signals import chord

ray = pytest.importorskip("ray", reason="the cluster extra (pip install 'restyle[cluster]') is not installed")
pytestmark = pytest.mark.slow


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clip(seconds: float, seed: int) -> tuple[bytes, int]:
    """A distinct clip per seed, and its length in samples."""
    audio = chord([220.0 * (1 + seed % 5 / 10), 330.0], seconds, 22050) * 2.0
    audio = audio + 0.01 * np.random.default_rng(seed).standard_normal(len(audio))
    out = io.BytesIO()
    sf.write(out, audio, 22050, format="WAV", subtype="PCM_16")
    return out.getvalue(), len(audio)


@pytest.fixture(scope="module")
def cluster(styles_dir, tmp_path_factory):
    from ray import serve

    from restyle.bridge.cluster import ClusterSettings, application

    home = tmp_path_factory.mktemp("cluster")
    library = home / "styles"
    import shutil

    shutil.copytree(styles_dir, library)
    port = _free_tcp_port()
    ray.init(num_cpus=4, include_dashboard=False, logging_level="error", log_to_driver=False,
             runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1"}})
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    settings = ClusterSettings(model="tiny", replicas=2, device="cpu", dtype="fp32", styles_dir=str(library),
                               limits=AudioLimits(), spool_root=str(home / "spool"), style="bells",
                               http=HttpSettings(per_client=10), learn_steps=2)
    serve.run(application(settings), name=settings.app_name, route_prefix="/")
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        serve.shutdown()
        ray.shutdown()


def _follow(c: httpx.Client, job_id: str) -> dict:
    last = None
    with c.stream("GET", f"/jobs/{job_id}/events", timeout=300) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                last = json.loads(line[6:])
    return last


def _kill_one_replica() -> str:
    names = [a for a in ray.util.list_named_actors(all_namespaces=True) if "StylizeWorker" in a["name"]]
    victim = names[0]
    ray.kill(ray.get_actor(victim["name"], namespace=victim["namespace"]), no_restart=False)
    return victim["name"]


def test_twenty_jobs_from_three_clients_survive_a_replica_killed_mid_job(cluster):
    jobs: dict[str, tuple[int, int]] = {}
    lock = threading.Lock()

    def submit(client_n: int) -> None:
        with httpx.Client(base_url=cluster, transport=httpx.HTTPTransport(local_address=f"127.0.0.{client_n + 2}"),
                          timeout=120) as c:
            for i in range(client_n, 20, 3):
                audio, frames = _clip(0.5 + 0.05 * i, i)
                reply = c.post("/jobs/stylize", files={"audio": (f"take{i}.wav", audio, "audio/wav")},
                               data={"style": "bells", "seed": str(i), "steps": "40", "strength": "0.9"})
                assert reply.status_code == 202, reply.text
                with lock:
                    jobs[reply.json()["id"]] = (i, frames)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert len(jobs) == 20

    with httpx.Client(base_url=cluster, timeout=60) as c:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # wait until a job is well under way, then kill a replica
            views = [c.get(f"/jobs/{j}").json() for j in jobs]
            if any(v["state"] == "running" and v["done"] >= 2 for v in views):
                break
            time.sleep(0.2)
        _kill_one_replica()

        digests, attempts = set(), 0
        for job_id, (i, frames) in jobs.items():
            final = _follow(c, job_id)
            attempts += final["attempts"]
            assert final["state"] == "done", final
            assert final["result"]["filename"] == f"take{i}_bells.wav"
            data, rate = sf.read(io.BytesIO(c.get(c.base_url.join(final["result"]["download"])).content))
            assert (rate, len(data)) == (22050, frames)
            assert np.isfinite(data).all()
            digests.add(hashlib.sha256(data.tobytes()).hexdigest())
        assert len(digests) == 20  # distinct results, none swapped or repeated
        assert attempts > 20  # the job on the killed replica was sent again
        assert "bells" in c.get("/styles").json()
