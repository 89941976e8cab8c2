"""The HTTP API (``restyle serve --http PORT``): audio over the network, next to OSC, on the same job queue.

Clients upload audio and settings, follow a job's progress as server-sent events, download the result, and list or
delete styles. They never name a path on the server: uploads go into the server's spool (bridge/spool.py) under
names it makes, and no reply or error message shows a server path. Loopback needs no token unless one is set; any
other interface needs one (bridge/tokens.py), and only clients from the ``--allow`` networks are let in. OpenAPI
documentation is served at ``/docs``; every route is under ``/v1``.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from restyle import __version__
from restyle.engine import RestyleError, SettingsError

from .jobs import DONE, Job
from .osc_server import ClientFilter
from .protocol import RestyleProtocol
from .spool import Spool, display_name, upload_suffix
from .tokens import TokenGate

API = "/v1"
STATUS = {"bad_request": 400, "bad_settings": 400, "bad_audio": 400, "unauthorized": 401, "forbidden": 403,
          "not_found": 404, "unknown_style": 404, "style_exists": 409, "model_mismatch": 409, "busy": 409,
          "not_ready": 409, "gone": 410, "too_large": 413, "client_limit": 429, "queue_full": 503}


class ForbiddenError(RestyleError):
    code = "forbidden"


class NotFoundError(RestyleError):
    code = "not_found"


class NotReadyError(RestyleError):
    code = "not_ready"


@dataclass(frozen=True)
class HttpSettings:
    """Limits of the HTTP API."""

    per_client: int = 4  # unfinished jobs one client address may have at once
    poll_seconds: float = 0.1  # how often a progress stream looks at its job
    keepalive_seconds: float = 15.0  # a comment line on quiet progress streams, so proxies keep them open


@dataclass
class HttpJob:
    """What the API remembers about a job it queued: its spool folder and the names the client knows."""

    job: Job
    folder: Path
    names: dict[str, str] = field(default_factory=dict)  # server path -> the client's file name
    released: bool = False

    @property
    def download_name(self) -> str:
        """The result's file name: the client's own name with the style added, as a local run would name it."""
        return Path(self.job.params["output"]).name if self.job.kind == "stylize" else ""


class HttpService:
    """The API's state: the protocol (engine, knobs, queue) it shares with OSC, the spool, the jobs it queued."""

    def __init__(self, protocol: RestyleProtocol, spool: Spool, gate: TokenGate, clients: ClientFilter,
                 settings: HttpSettings = HttpSettings()):
        self.protocol = protocol
        self.spool = spool
        self.gate = gate
        self.clients = clients
        self.settings = settings
        self.jobs: dict[str, HttpJob] = {}
        self._lock = threading.Lock()

    def tidy(self) -> None:
        """Release the spool folders of finished jobs (inputs deleted at once) and delete expired ones."""
        with self._lock:
            finished = [j for j in self.jobs.values() if j.job.finished and not j.released]
            for entry in finished:
                entry.released = True
        for entry in finished:
            keep = Path(entry.job.result["output"]) if entry.job.state == DONE and entry.job.kind == "stylize" else None
            for path in entry.folder.iterdir():
                if path != keep:
                    path.unlink(missing_ok=True)  # the uploads: no longer needed
            self.spool.release(entry.folder)
        self.spool.sweep()
        with self._lock:
            for job_id in [i for i, j in self.jobs.items() if j.released and not j.folder.exists()]:
                del self.jobs[job_id]

    def find(self, job_id: str) -> HttpJob:
        """A job this API queued, or NotFoundError."""
        entry = self.jobs.get(job_id)
        if entry is None:
            raise NotFoundError(f"No job {job_id} on this server (results are kept for a while, then deleted).")
        return entry

    def public(self, entry: HttpJob, message: str) -> str:
        """``message`` with every server path replaced by the name the client knows."""
        for path, name in entry.names.items():
            message = message.replace(path, name)
        return re.sub(re.escape(str(self.spool.root)) + r"[^\s:;,)]*", "<upload>", message)

    def view(self, entry: HttpJob) -> dict:
        """A job as the API shows it: no server paths."""
        job = entry.job
        view = {"id": job.id, "kind": job.kind, "state": job.state, "position": self.protocol.jobs.position(job),
                "progress": round(job.fraction, 4), "done": job.done, "total": job.total,
                "attempts": job.attempts}
        if job.loss is not None:
            view["loss"] = round(job.loss, 6)
        if job.state == DONE and job.kind == "stylize":
            r = job.result
            view["result"] = {"download": f"{API}/jobs/{job.id}/result", "filename": entry.download_name,
                              "sample_rate": r["sample_rate"], "channels": r["channels"], "seconds": r["seconds"]}
        elif job.state == DONE:
            view["result"] = {"style": job.result["style"]}
        if job.error is not None:
            view["error"] = {"code": job.error[0], "message": self.public(entry, job.error[1])}
        return view


def create_app(service: HttpService) -> FastAPI:
    """The FastAPI application: every route under /v1, errors as ``{"error": {"code", "message"}}``."""
    app = FastAPI(title="Restyle", version=__version__,
                  description="Music style transfer: upload a clip, get it back in a learned style.")

    async def allowed(request: Request) -> None:
        host = request.client.host if request.client else ""
        if not service.clients.allows(host):
            raise ForbiddenError("This server does not accept requests from your network; ask for --allow.")
        service.gate.check(request.headers.get("authorization"))

    @app.exception_handler(RestyleError)
    async def restyle_error(_request: Request, exc: RestyleError) -> JSONResponse:
        return _error(exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return _error("bad_request", f"{where}: {first.get('msg', 'invalid')}.")

    secured = [Depends(allowed)]

    @app.get(f"{API}/health", dependencies=secured)
    def health() -> dict:
        """Whether the engine is up, its version and model, and the queue."""
        jobs = service.protocol.jobs
        return {"status": "ok", "version": __version__, "model": service.protocol.engine.base.model_id,
                "queued": len(jobs.queued()), "running": jobs.running.id if jobs.running else None}

    @app.get(f"{API}/knobs", dependencies=secured)
    def knobs() -> dict:
        """The server's knobs: what a job gets for the settings it does not send."""
        return {name: (round(v, 4) if isinstance(v, float) else v) for name, v in service.protocol.knobs.snapshot().items()}

    @app.post(f"{API}/jobs/stylize", status_code=202, dependencies=secured)
    async def stylize(request: Request, audio: UploadFile = File(...), style: str | None = Form(None),
                      strength: float | None = Form(None), scale: float | None = Form(None),
                      steps: int | None = Form(None), seed: int | None = Form(None), start: float | None = Form(None),
                      end: float | None = Form(None), stereo: bool = Form(False)) -> dict:
        """Upload a clip and its settings (unset ones follow the server's knobs); the job is queued at once."""
        options = {k: v for k, v in dict(style=style, strength=strength, scale=scale, steps=steps, seed=seed,
                                         start=start, end=end).items() if v is not None}
        options["stereo"] = stereo
        return await run_in_threadpool(_queue_stylize, service, _owner(request), audio, options)

    @app.post(f"{API}/jobs/learn", status_code=202, dependencies=secured)
    async def learn(request: Request, name: str = Form(...), clips: list[UploadFile] = File(...),
                    steps: int | None = Form(None)) -> dict:
        """Upload style clips; the server learns a new style from them (its model, its queue)."""
        return await run_in_threadpool(_queue_learn, service, _owner(request), name, clips, steps)

    @app.get(f"{API}/jobs/{{job_id}}", dependencies=secured)
    def job_status(job_id: str) -> dict:
        """A job's state, queue position and progress; its result once done."""
        return service.view(service.find(job_id))

    @app.delete(f"{API}/jobs/{{job_id}}", dependencies=secured)
    def cancel(job_id: str) -> dict:
        """Cancel a queued or running job (a running one stops at its next step)."""
        entry = service.find(job_id)
        service.protocol.jobs.cancel(job_id)
        return service.view(entry)

    @app.get(f"{API}/jobs/{{job_id}}/events", dependencies=secured)
    async def events(job_id: str) -> StreamingResponse:
        """Server-sent events: ``progress`` while the job waits or runs, then one ``done``, ``failed`` or ``cancelled``."""
        entry = service.find(job_id)
        return StreamingResponse(_event_stream(service, entry), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get(f"{API}/jobs/{{job_id}}/result", dependencies=secured)
    def result(job_id: str) -> FileResponse:
        """The stylized audio, in the uploaded clip's format, rate, channels and length."""
        entry = service.find(job_id)
        if entry.job.state != DONE or entry.job.kind != "stylize":
            raise NotReadyError(f"Job {job_id} has no result ({entry.job.state}).")
        path = Path(entry.job.result["output"])
        if not path.exists():
            raise NotFoundError(f"The result of {job_id} was deleted after its retention time; send the clip again.")
        return FileResponse(path, filename=entry.download_name, media_type="application/octet-stream")

    @app.get(f"{API}/styles", dependencies=secured)
    def styles() -> list[str]:
        """The styles this server's base model can use."""
        return service.protocol.engine.style_names()

    @app.get(f"{API}/styles/{{name}}", dependencies=secured)
    def style(name: str) -> dict:
        """One style's details: its base model, recommended knobs, training."""
        info = service.protocol.engine.library.info(name)
        return {"name": info.name, "base_model": info.base_model,
                "recommended": {"strength": info.recommended_strength, "scale": info.recommended_scale},
                "steps": len(info.loss_history)}

    @app.delete(f"{API}/styles/{{name}}", dependencies=secured)
    def delete_style(name: str) -> dict:
        """Delete a style from the library (shipped styles cannot be deleted)."""
        service.protocol.engine.library.remove(name)
        return {"deleted": name}

    return app


def _error(code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=STATUS.get(code, 500))


def _owner(request: Request) -> str:
    return request.client.host if request.client else ""


def _queue_stylize(service: HttpService, owner: str, audio: UploadFile, options: dict) -> dict:
    client_name = display_name(audio.filename)

    def fill(folder: Path, names: dict[str, str]) -> Job:
        source = service.spool.receive(audio.file, folder, "input" + upload_suffix(audio.filename))
        names[str(source)] = client_name
        stem = Path(client_name).stem[:100] or "upload"
        return service.protocol.submit_stylize(source, options, folder, stem, owner, service.settings.per_client)

    return _queue_in_spool(service, fill)


def _queue_learn(service: HttpService, owner: str, name: str, clips: list[UploadFile], steps: int | None) -> dict:
    if not clips:
        raise SettingsError("Upload one or more audio clips of the sound to learn.")

    def fill(folder: Path, names: dict[str, str]) -> Job:
        paths = []
        for i, clip in enumerate(clips, 1):
            path = service.spool.receive(clip.file, folder, f"clip-{i}{upload_suffix(clip.filename)}")
            paths.append(path)
            names[str(path)] = display_name(clip.filename)
        return service.protocol.submit_learn(name, paths, owner, service.settings.per_client, steps)

    return _queue_in_spool(service, fill)


def _queue_in_spool(service: HttpService, fill) -> dict:
    """Run ``fill(folder, names)`` (store the uploads, queue the job) in a fresh spool folder; on any failure the
    folder is deleted and the error names the client's files, never server paths."""
    folder = service.spool.new_folder()
    names = {str(folder): "<upload>"}
    try:
        job = fill(folder, names)
    except RestyleError as exc:
        service.spool.remove(folder)
        raise type(exc)(_replace(str(exc), names)) from None
    except BaseException:
        service.spool.remove(folder)
        raise
    entry = HttpJob(job, folder, names)
    with service._lock:
        service.jobs[job.id] = entry
    return service.view(entry)


def _replace(message: str, names: dict[str, str]) -> str:
    for path in sorted(names, key=len, reverse=True):
        message = message.replace(path, names[path])
    return message


async def _event_stream(service: HttpService, entry: HttpJob):
    """Progress events until the job ends; a comment now and then keeps quiet connections open."""
    last, quiet_since = None, time.monotonic()
    while True:
        view = service.view(entry)
        event = entry.job.state if entry.job.finished else "progress"
        if view != last:
            yield f"event: {event}\ndata: {json.dumps(view)}\n\n"
            last, quiet_since = view, time.monotonic()
        elif time.monotonic() - quiet_since > service.settings.keepalive_seconds:
            yield ": still working\n\n"
            quiet_since = time.monotonic()
        if entry.job.finished:
            return
        await asyncio.sleep(service.settings.poll_seconds)


class HttpServer:
    """Uvicorn serving the API in a background thread, plus the spool's janitor."""

    def __init__(self, service: HttpService, host: str, port: int, app: FastAPI | None = None):
        """``app``: an application built on ``create_app(service)`` with more mounted on it (the studio), whose
        start-up events then run; by default the plain API."""
        import uvicorn

        self.service = service
        self.socket = _bind(host, port)
        self.port = self.socket.getsockname()[1]
        lifespan = "off" if app is None else "on"  # Gradio starts its queue on the app's start-up
        config = uvicorn.Config(app or create_app(service), log_level="warning", lifespan=lifespan, access_log=False)
        self.server = uvicorn.Server(config)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                          name="restyle-http", daemon=True),
                         threading.Thread(target=self._janitor, name="restyle-spool", daemon=True)]

    def start(self) -> None:
        """Serve until stop(); returns once requests are being accepted."""
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline and self._threads[0].is_alive():
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop accepting requests, finish open ones briefly, delete the spool."""
        self._stop.set()
        self.server.should_exit = True
        for thread in self._threads:
            thread.join(5)
        self.socket.close()
        self.service.spool.close()

    def _janitor(self) -> None:
        while not self._stop.wait(1.0):
            self.service.tidy()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SettingsError(f"Cannot listen for HTTP on {host}:{port} ({exc.strerror}); choose another --http port.") from None
    sock.listen(128)
    return sock


def default_home(kind: str) -> Path:
    """Where the server keeps its token (``config``) and spool (``cache``): $RESTYLE_HOME, else the user's folders."""
    import os

    import platformdirs

    if os.environ.get("RESTYLE_HOME"):
        return Path(os.environ["RESTYLE_HOME"]).expanduser()
    folder = platformdirs.user_config_dir if kind == "config" else platformdirs.user_cache_dir
    return Path(folder("restyle", appauthor=False))


def access_for(host: str, port: int, token_file: str | None) -> tuple[str | None, str, Path]:
    """The token clients need (None on loopback unless a token file is given), a line saying so, the spool folder."""
    from .osc_server import _is_loopback
    from .tokens import token_from_file

    token_path = Path(token_file).expanduser() if token_file else default_home("config") / "http-token"
    token = token_from_file(token_path, create=not token_file) if (token_file or not _is_loopback(host)) else None
    access = f"Token in {token_path} (clients: --token-file)." if token else "No token needed on loopback."
    return token, access, default_home("cache") / "spool" / f"http-{port}"


def open_http(protocol: RestyleProtocol, host: str, port: int, allow: list[str], token_file: str | None = None,
              spool_settings=None, settings: HttpSettings = HttpSettings()) -> tuple[HttpServer, str]:
    """Start the HTTP API next to OSC; returns the server and a line saying how clients get in."""
    from .spool import SpoolSettings

    clients = ClientFilter(host, allow)
    token, access, spool_root = access_for(host, port, token_file)
    spool = Spool(spool_root, spool_settings or SpoolSettings())
    server = HttpServer(HttpService(protocol, spool, TokenGate(token), clients, settings), host, port)
    server.start()
    return server, f"HTTP API on http://{host}:{server.port}{API} (docs at /docs). {access}"
