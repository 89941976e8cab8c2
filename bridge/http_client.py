"""A client of the HTTP API (bridge/http_api.py): upload, follow progress, download. No torch: DAWs start it.

``restyle send --server http://HOST:PORT`` uses it; so can any script (see docs/remote.md for the API itself).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from restyle.engine.atomic import atomic_path
from restyle.engine.outputs import fresh_path

from .client import ServerError

API = "/v1"


class RemoteClient:
    """Talks to one server's HTTP API; every failure becomes a ServerError with one readable line."""

    def __init__(self, server: str, token: str | None = None, timeout: float = 30.0):
        self.server = server.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout)

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *_exc) -> None:
        self.http.close()

    def health(self) -> dict:
        """The server's version, model and queue."""
        return self._json("GET", f"{API}/health")

    def knobs(self) -> dict:
        """The server's knobs (style, strength, scale...)."""
        return self._json("GET", f"{API}/knobs")

    def styles(self) -> list[str]:
        """The styles the server's model can use."""
        return self._json("GET", f"{API}/styles")

    def stylize(self, path: Path, options: dict) -> dict:
        """Upload a clip with its settings; returns the queued job."""
        fields = {k: str(v) for k, v in options.items() if v is not None}
        with open(path, "rb") as audio:
            return self._json("POST", f"{API}/jobs/stylize", files={"audio": (path.name, audio)}, data=fields)

    def learn(self, name: str, clips: list[Path], steps: int | None = None) -> dict:
        """Upload style clips; returns the queued learn job."""
        handles = [open(c, "rb") for c in clips]
        try:
            files = [("clips", (c.name, h)) for c, h in zip(clips, handles)]
            data = {"name": name, **({"steps": str(steps)} if steps else {})}
            return self._json("POST", f"{API}/jobs/learn", files=files, data=data)
        finally:
            for handle in handles:
                handle.close()

    def cancel(self, job_id: str) -> dict:
        """Cancel a job; returns its state."""
        return self._json("DELETE", f"{API}/jobs/{job_id}")

    def events(self, job_id: str, stall: float | None = None) -> Iterator[tuple[str, dict]]:
        """The job's server-sent events until its last (done, failed or cancelled)."""
        name = "progress"
        try:
            with self.http.stream("GET", f"{API}/jobs/{job_id}/events", timeout=httpx.Timeout(30.0, read=stall)) as r:
                self._check(r, read=True)
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        yield name, json.loads(line[6:])
        except httpx.ReadTimeout:
            raise ServerError(f"The server at {self.server} went silent for {stall:g} s during {job_id}.", "stalled") from None
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    def follow(self, job_id: str, on_progress: Callable[[dict], None], stall: float | None = None) -> dict:
        """Wait for the job's end, feeding each progress view to ``on_progress``; failures raise ServerError."""
        for name, view in self.events(job_id, stall):
            if name == "progress":
                on_progress(view)
                continue
            if name == "failed":
                error = view.get("error", {})
                raise ServerError(f"{job_id} {error.get('message', 'failed')} ({error.get('code', 'error')})",
                                  error.get("code", "error"))
            if name == "cancelled":
                raise ServerError(f"{job_id} cancelled", "cancelled")
            return view
        raise ServerError(f"The server at {self.server} closed the progress stream of {job_id} early.", "stalled")

    def download(self, view: dict, next_to: Path, output: Path | None = None) -> Path:
        """Save a finished job's result: to ``output`` (which must not exist) or a fresh name next to the input."""
        result = view["result"]
        target = output if output is not None else fresh_path(next_to.parent / result["filename"])
        try:
            with self.http.stream("GET", result["download"]) as r:
                self._check(r, read=True)
                with atomic_path(target, replace=False) as partial:
                    with open(partial, "wb") as out:
                        for chunk in r.iter_bytes():
                            out.write(chunk)
        except FileExistsError:
            raise ServerError(f"{target} already exists and is never replaced; choose another output name.",
                              "output_exists") from None
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        return target

    def _json(self, method: str, url: str, **kwargs) -> dict | list:
        try:
            reply = self.http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        self._check(reply)
        return reply.json()

    def _check(self, reply: httpx.Response, read: bool = False) -> None:
        if reply.status_code < 400:
            return
        if read:
            reply.read()
        try:
            error = reply.json()["error"]
        except (ValueError, KeyError, TypeError):
            error = {"code": "http", "message": f"HTTP {reply.status_code} from {self.server}"}
        raise ServerError(error["message"], error["code"])

    def _unreachable(self, exc: Exception) -> ServerError:
        return ServerError(f"No answer from a Restyle server at {self.server} ({type(exc).__name__}); is "
                           "`restyle serve --http PORT` running there?", "no_server")


def read_token_file(path: str | None) -> str | None:
    """The token in ``path`` (first line), None without a path."""
    if not path:
        return None
    try:
        return Path(os.path.expanduser(path)).read_text(encoding="utf-8").split()[0]
    except (OSError, IndexError):
        raise ServerError(f"Cannot read a token from {path}: copy the server's token file here.", "bad_token") from None
