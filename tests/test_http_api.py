"""The HTTP API over real sockets on loopback: upload -> progress -> download, learn, cancel, limits, access."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from restyle.bridge.http_api import HttpServer, HttpService, HttpSettings
from restyle.bridge.osc_server import ClientFilter
from restyle.bridge.spool import Spool, SpoolSettings
from restyle.bridge.tokens import TokenGate, token_from_file
from signals import chord
from tests.bridge_helpers import running_server

TOKEN = "a-test-token-of-enough-length"


@contextmanager
def http_server(tiny_base, styles_dir, tmp_path, token=None, spool=SpoolSettings(), settings=HttpSettings(),
                **protocol_options):
    """An OSC server (the tiny model) and the HTTP API on its queue, both on free loopback ports."""
    with running_server(tiny_base, styles_dir, tmp_path, **protocol_options) as osc:
        service = HttpService(osc.protocol, Spool(tmp_path / "spool", spool), TokenGate(token),
                              ClientFilter("127.0.0.1", []), settings)
        http = HttpServer(service, "127.0.0.1", 0)
        http.start()
        try:
            yield http
        finally:
            http.stop()


def client(http: HttpServer, source: str = "127.0.0.1", token: str | None = None) -> httpx.Client:
    """A client on its own loopback address (127.0.0.x), so that per-client limits see several clients."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=f"http://127.0.0.1:{http.port}/v1", headers=headers, transport=transport,
                        timeout=60)


def wav_bytes(seconds: float, rate: int, channels: int, subtype: str = "PCM_16") -> bytes:
    mono = chord([220.0, 277.2, 329.6], seconds, rate) * 2.0
    data = np.stack([mono * (0.5 + 0.5 * c) for c in range(channels)], axis=1) if channels > 1 else mono
    out = io.BytesIO()
    sf.write(out, data, rate, subtype=subtype, format="WAV")
    return out.getvalue()


def submit(c: httpx.Client, audio: bytes, name: str = "take.wav", **fields) -> dict:
    reply = c.post("/jobs/stylize", files={"audio": (name, audio, "audio/wav")},
                   data={k: str(v) for k, v in fields.items()})
    assert reply.status_code == 202, reply.text
    return reply.json()


def follow(c: httpx.Client, job_id: str) -> list[tuple[str, dict]]:
    """Every server-sent event of a job until its last."""
    events, name = [], None
    with c.stream("GET", f"/jobs/{job_id}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    return events


@pytest.mark.parametrize("rate,channels,seconds", [(22050, 1, 0.3), (44100, 2, 1.7), (48000, 2, 1.0),
                                                   (96000, 1, 0.8)])
def test_upload_progress_download_keeps_rate_channels_and_length(tiny_base, styles_dir, tmp_path, rate, channels,
                                                                 seconds):
    audio = wav_bytes(seconds, rate, channels)
    with http_server(tiny_base, styles_dir, tmp_path) as http, client(http) as c:
        job = submit(c, audio, "my take.wav", style="bells")
        events = follow(c, job["id"])
        assert events[-1][0] == "done" and all(name == "progress" for name, _ in events[:-1])
        result = events[-1][1]["result"]
        assert result["filename"] == "my take_bells.wav"
        download = c.get(c.base_url.join(result["download"]))
        assert download.status_code == 200
        assert "my%20take_bells.wav" in download.headers["content-disposition"]
        data, got_rate = sf.read(io.BytesIO(download.content), always_2d=True)
        original, _ = sf.read(io.BytesIO(audio), always_2d=True)
        assert (got_rate, data.shape) == (rate, original.shape)
        assert np.isfinite(data).all() and np.abs(data).max() <= 1.0


def test_a_long_clip_comes_back_exact(tiny_base, styles_dir, tmp_path):
    audio = wav_bytes(60.0, 44100, 2, "FLOAT")
    with http_server(tiny_base, styles_dir, tmp_path) as http, client(http) as c:
        job = submit(c, audio, "song.wav", style="bells", steps=2)
        assert follow(c, job["id"])[-1][0] == "done"
        data, rate = sf.read(io.BytesIO(c.get(f"/jobs/{job['id']}/result").content), always_2d=True)
        assert (rate, data.shape) == (44100, (44100 * 60, 2))


def test_learn_from_uploads_then_use_the_style(tiny_base, styles_dir, tmp_path):
    clips = [("a.wav", wav_bytes(1.0, 22050, 1), "audio/wav"), ("b.flac", wav_bytes(1.2, 44100, 2), "audio/flac")]
    with http_server(tiny_base, styles_dir, tmp_path) as http, client(http) as c:
        reply = c.post("/jobs/learn", data={"name": "uploaded", "steps": "2"},
                       files=[("clips", clip) for clip in clips])
        assert reply.status_code == 202, reply.text
        events = follow(c, reply.json()["id"])
        assert events[-1][0] == "done" and events[-1][1]["result"] == {"style": "uploaded"}
        assert "uploaded" in c.get("/styles").json()
        assert c.get("/styles/uploaded").json()["name"] == "uploaded"
        job = submit(c, wav_bytes(0.5, 22050, 1), style="uploaded")
        assert follow(c, job["id"])[-1][0] == "done"
        assert c.delete("/styles/uploaded").json() == {"deleted": "uploaded"}
        assert "uploaded" not in c.get("/styles").json()


def test_cancel_a_running_job(tiny_base, styles_dir, tmp_path):
    with http_server(tiny_base, styles_dir, tmp_path) as http, client(http) as c:
        job = submit(c, wav_bytes(60.0, 22050, 1), style="bells", steps=50, strength=0.9)
        while c.get(f"/jobs/{job['id']}").json()["state"] == "queued":
            time.sleep(0.05)
        assert c.delete(f"/jobs/{job['id']}").status_code == 200
        events = follow(c, job["id"])
        assert events[-1][0] == "cancelled"
        assert c.get(f"/jobs/{job['id']}/result").json()["error"]["code"] == "not_ready"


def test_a_token_is_required_when_set_and_compared_exactly(tiny_base, styles_dir, tmp_path):
    with http_server(tiny_base, styles_dir, tmp_path, token=TOKEN) as http:
        with client(http) as anonymous:
            reply = anonymous.get("/health")
            assert reply.status_code == 401 and "token" in reply.json()["error"]["message"]
        with client(http, token=TOKEN + "x") as wrong:
            assert wrong.get("/health").status_code == 401
        with client(http, token=TOKEN) as right:
            assert right.get("/health").json()["status"] == "ok"


def test_a_server_on_the_network_generates_a_private_token(tmp_path):
    path = tmp_path / "config" / "http-token"
    token = token_from_file(path, create=True)
    assert len(token) >= 32 and path.stat().st_mode & 0o777 == 0o600
    assert token_from_file(path, create=True) == token  # kept across restarts


def test_serve_on_a_network_interface_needs_allow_and_gets_a_token(tmp_path, monkeypatch):
    from restyle.bridge.http_api import open_http
    from restyle.engine import SettingsError

    monkeypatch.setenv("RESTYLE_HOME", str(tmp_path))
    with pytest.raises(SettingsError, match="--allow"):
        open_http(None, "0.0.0.0", 0, [])


def test_oversized_and_non_audio_uploads_are_refused_in_one_line(tiny_base, styles_dir, tmp_path):
    with http_server(tiny_base, styles_dir, tmp_path, spool=SpoolSettings(max_upload_bytes=50_000)) as http, \
            client(http) as c:
        big = c.post("/jobs/stylize", files={"audio": ("big.wav", wav_bytes(3.0, 44100, 2), "audio/wav")},
                     data={"style": "bells"})
        assert big.status_code == 413 and "\n" not in big.json()["error"]["message"]
        junk = c.post("/jobs/stylize", files={"audio": ("notes.wav", b"this is not audio" * 100, "audio/wav")},
                      data={"style": "bells"})
        assert junk.status_code == 400 and junk.json()["error"]["code"] == "bad_audio"
        message = junk.json()["error"]["message"]
        assert "notes.wav" in message and str(tmp_path) not in message
        bad = c.post("/jobs/stylize", files={"audio": ("a.wav", wav_bytes(0.3, 22050, 1), "audio/wav")},
                     data={"style": "bells", "strength": "1.5"})
        assert bad.status_code == 400 and "strength" in bad.json()["error"]["message"]
        unknown = c.post("/jobs/stylize", files={"audio": ("a.wav", wav_bytes(0.3, 22050, 1), "audio/wav")},
                         data={"style": "nope"})
        assert unknown.status_code == 404
        assert list((tmp_path / "spool").iterdir()) == []  # nothing refused is kept


def test_path_like_upload_names_never_reach_the_file_system(tiny_base, styles_dir, tmp_path):
    with http_server(tiny_base, styles_dir, tmp_path) as http, client(http) as c:
        job = submit(c, wav_bytes(0.3, 22050, 1), "../../../etc/evil.wav", style="bells")
        assert follow(c, job["id"])[-1][0] == "done"
        assert c.get(f"/jobs/{job['id']}").json()["result"]["filename"] == "evil_bells.wav"
        windows = submit(c, wav_bytes(0.3, 22050, 1), "C:\\Users\\x\\..\\take.wav", style="bells")
        assert follow(c, windows["id"])[-1][1]["result"]["filename"] == "take_bells.wav"
        assert not (tmp_path.parent / "etc").exists()
        for reply in (c.get(f"/jobs/{job['id']}").text, c.get("/health").text):
            assert str(tmp_path) not in reply


def test_a_truncated_upload_leaves_nothing_behind(tiny_base, styles_dir, tmp_path):
    with http_server(tiny_base, styles_dir, tmp_path) as http:
        body = (b"--x\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"a.wav\"\r\n"
                b"Content-Type: audio/wav\r\n\r\n" + wav_bytes(1.0, 22050, 1)[:5000])
        with socket.create_connection(("127.0.0.1", http.port)) as raw:
            raw.sendall(b"POST /v1/jobs/stylize HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                        b"boundary=x\r\nContent-Length: 200000\r\n\r\n" + body)
        time.sleep(0.5)
        with client(http) as c:
            assert c.get("/health").json()["queued"] == 0
        assert list((tmp_path / "spool").iterdir()) == []


def test_three_clients_at_once_each_within_their_limit(tiny_base, styles_dir, tmp_path):
    settings = HttpSettings(per_client=2)
    with http_server(tiny_base, styles_dir, tmp_path, settings=settings) as http:
        results, errors = {}, []

        def producer(n: int) -> None:
            with client(http, source=f"127.0.0.{n + 2}") as c:
                jobs = []
                for i in range(3):
                    reply = c.post("/jobs/stylize", data={"style": "bells", "seed": str(10 * n + i)},
                                   files={"audio": (f"c{n}-{i}.wav", wav_bytes(0.4 + 0.1 * i, 22050, 1), "audio/wav")})
                    if i < 2:
                        assert reply.status_code == 202, reply.text
                        jobs.append(reply.json()["id"])
                    else:  # a third unfinished job from the same client is one too many
                        assert reply.status_code == 429 and reply.json()["error"]["code"] == "client_limit"
                for job_id in jobs:
                    final = follow(c, job_id)[-1]
                    data, _ = sf.read(io.BytesIO(c.get(c.base_url.join(final[1]["result"]["download"])).content))
                    results[job_id] = (final[1]["result"]["filename"], len(data))

        threads = [threading.Thread(target=lambda n=n: _collect(errors, producer, n)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        assert len(results) == 6
        assert sorted(results.values()) == sorted(
            (f"c{n}-{i}_bells.wav", int(22050 * (0.4 + 0.1 * i))) for n in range(3) for i in range(2))


def _collect(errors: list, work, *args) -> None:
    try:
        work(*args)
    except Exception as exc:  # reported by the test thread
        errors.append(repr(exc))


def test_the_spool_is_cleaned_after_the_retention_time(tiny_base, styles_dir, tmp_path):
    with http_server(tiny_base, styles_dir, tmp_path, spool=SpoolSettings(keep_seconds=0.5)) as http, \
            client(http) as c:
        job = submit(c, wav_bytes(0.3, 22050, 1), style="bells")
        assert follow(c, job["id"])[-1][0] == "done"
        deadline = time.monotonic() + 10
        while any((tmp_path / "spool").iterdir()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list((tmp_path / "spool").iterdir()) == []
        assert c.get(f"/jobs/{job['id']}").status_code == 404


def test_openapi_docs_are_served_and_versioned(tiny_base, styles_dir, tmp_path):
    with http_server(tiny_base, styles_dir, tmp_path) as http:
        with httpx.Client(base_url=f"http://127.0.0.1:{http.port}") as c:
            assert c.get("/docs").status_code == 200
            paths = c.get("/openapi.json").json()["paths"]
            assert paths and all(p.startswith("/v1/") for p in paths)


def test_http_and_osc_share_one_queue(tiny_base, styles_dir, tmp_path):
    with http_server(tiny_base, styles_dir, tmp_path) as http, client(http) as c:
        job = submit(c, wav_bytes(0.3, 22050, 1), style="bells")
        assert http.service.protocol.jobs.get(job["id"]) is not None
        follow(c, job["id"])


def test_restyle_send_to_a_server_downloads_next_to_the_input(tiny_base, styles_dir, tmp_path, capsys):
    from restyle.cli import main

    take = tmp_path / "takes" / "loop.wav"
    take.parent.mkdir()
    take.write_bytes(wav_bytes(0.6, 48000, 2))
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with http_server(tiny_base, styles_dir, tmp_path, token=TOKEN) as http:
        url = f"http://127.0.0.1:{http.port}"
        outputs = []
        for _ in range(2):
            assert main(["send", str(take), "--server", url, "--token-file", str(token_file), "--style", "bells",
                         "--json"]) == 0
            outputs.append(json.loads(capsys.readouterr().out))
        assert [Path(o["output"]).name for o in outputs] == ["loop_bells.wav", "loop_bells-2.wav"]
        for o in outputs:
            data, rate = sf.read(o["output"], always_2d=True)
            assert (rate, data.shape, o["channels"]) == (48000, (int(0.6 * 48000), 2), 2)
        assert main(["send", str(take), "--server", url, "--style", "bells"]) == 1  # no token
        assert "token" in capsys.readouterr().err
        assert main(["send", str(take), "--server", "http://127.0.0.1:9", "--style", "bells"]) == 1
        assert "No answer" in capsys.readouterr().err
