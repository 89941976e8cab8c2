"""Scale-out on Ray Serve (``restyle serve --ray``): the same HTTP API, jobs spread over replicas of the model.

Two deployments. ``StylizeWorker`` has N replicas; each loads the base model once (on its own GPU where there are
GPUs) and runs one job at a time. ``Front`` has one replica and no model: it serves the HTTP API of
bridge/http_api.py (spool, token, limits, progress streams) and queues jobs exactly as the local server does,
running up to N at once, each as a streaming call to a worker (Ray Serve routes it to a live replica). A job whose
replica dies is sent again to another replica, up to ``retries`` times, then fails with a clear error: never lost
silently. Styles live in one folder that every replica reads and learn jobs write (``--styles-dir``; a shared file
system when replicas run on several machines); audio travels with each call.
"""

from __future__ import annotations

import queue
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from restyle.engine import (BaseModelMismatchError, CancelledError, RestyleError, SamplerSettings, StyleLibrary,
                            TrainSettings)
from restyle.engine.audio import AudioLimits
from restyle.engine.style import mix_label, parse_style_mix

from .http_api import HttpService, HttpSettings, create_app
from .jobs import Job, JobQueue
from .knobs import Knobs
from .osc_server import ClientFilter
from .spool import Spool, SpoolSettings
from .submissions import Submissions
from .tokens import TokenGate

WORKER = "StylizeWorker"


class ReplicaLostError(RestyleError):
    code = "replica_lost"


@dataclass(frozen=True)
class ClusterSettings:
    """One Ray Serve application: the model its replicas load, how many, and the front's limits."""

    model: str
    replicas: int = 2
    gpus_per_replica: float = 0.0
    cpus_per_replica: float = 1.0
    device: str = "auto"
    dtype: str = "auto"
    styles_dir: str | None = None  # one folder every replica can read and write
    limits: AudioLimits = AudioLimits()
    phase: str = "input"  # where the stylized audio's phase comes from (EngineSettings.phase)
    retries: int = 2  # a job whose replica dies is sent again this many times
    max_queued: int = 64
    learn_steps: int = 3000
    style: str = ""  # the style knob's starting value
    sampler: SamplerSettings = SamplerSettings()  # the defaults jobs start from (solver, steps...)
    allow: tuple[str, ...] = ()
    token: str | None = None
    spool_root: str = ""
    spool: SpoolSettings = SpoolSettings()
    http: HttpSettings = field(default_factory=HttpSettings)
    app_name: str = "restyle"


class StylizeWorker:
    """One replica: the base model loaded once, running the jobs the front sends, reporting progress as it goes."""

    def __init__(self, settings: ClusterSettings):
        from restyle.engine import Engine, EngineSettings

        self.engine = Engine.load(settings.model, settings.device, settings.dtype, settings.styles_dir,
                                  EngineSettings(limits=settings.limits, phase=settings.phase))
        self.scratch = Path(tempfile.mkdtemp(prefix="restyle-replica-"))

    def describe(self) -> dict:
        """The loaded base model: its id and the fingerprint styles are matched against."""
        return {"model_id": self.engine.base.model_id, "fingerprint": self.engine.base.fingerprint}

    def run(self, spec: dict):
        """Run one job; yields ``{"done", "total", "stage", "loss"}`` while it runs, then ``{"result"}`` or ``{"error"}``."""
        messages: queue.Queue = queue.Queue()
        stop = threading.Event()
        work = threading.Thread(target=self._run, args=(spec, messages, stop), daemon=True)
        work.start()
        try:
            while True:
                message = messages.get()
                yield message
                if "result" in message or "error" in message:
                    return
        finally:  # the front cancelled (the generator is closed): stop at the next step
            stop.set()
            work.join()

    def _run(self, spec: dict, messages: queue.Queue, stop: threading.Event) -> None:
        folder = Path(tempfile.mkdtemp(dir=self.scratch))
        progress = lambda p: messages.put({"done": p.done, "total": p.total, "stage": p.stage,  # noqa: E731
                                           "loss": p.loss})
        try:
            if spec["kind"] == "learn":
                clips = [_write(folder / f"clip-{i}{suffix}", data) for i, (suffix, data) in enumerate(spec["clips"])]
                self.engine.train(spec["name"], clips, TrainSettings(steps=spec["steps"]), resume=spec["resume"],
                                  progress=progress, should_cancel=stop.is_set, preset=spec["preset"])
                messages.put({"result": {"style": spec["name"]}})
                return
            source = _write(folder / f"input{spec['suffix']}", spec["audio"])
            result = self.engine.stylize(source, spec["style"], spec["settings"], folder / f"out{spec['suffix']}",
                                         stereo=spec["stereo"], start=spec["start"], end=spec["end"],
                                         progress=progress, should_cancel=stop.is_set)
            messages.put({"result": {"audio": result.path.read_bytes(), "sample_rate": result.sample_rate,
                                     "channels": result.channels, "seconds": result.seconds}})
        except RestyleError as exc:
            messages.put({"error": (exc.code, str(exc))})
        except Exception as exc:  # a bug must reach the front as a failed job, not a hung one
            messages.put({"error": ("internal", f"Unexpected engine error: {type(exc).__name__}: {exc}")})
        finally:
            for path in folder.iterdir():
                path.unlink(missing_ok=True)
            folder.rmdir()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


class Catalog:
    """What the front knows of the engine without loading a model: the style library and the workers' base model."""

    def __init__(self, library: StyleLibrary, limits: AudioLimits, describe):
        self.library = library
        self.settings = SimpleNamespace(limits=limits)
        self._describe = describe
        self._base: SimpleNamespace | None = None

    @property
    def base(self) -> SimpleNamespace:
        """The replicas' base model (asked of one replica the first time)."""
        if self._base is None:
            self._base = SimpleNamespace(**self._describe())
        return self._base

    def style_names(self) -> list[str]:
        """The styles the replicas' model can use."""
        return [n for n in self.library.names() if self._usable(n)]

    def _usable(self, name: str) -> bool:
        try:
            return self.library.info(name).base_fingerprint == self.base.fingerprint
        except RestyleError:
            return False

    def style_mix(self, spec: str) -> SimpleNamespace:
        """Checks a style or blend as the engine would (known, trained on this model); gives its file-name label."""
        parts = parse_style_mix(spec)
        for name, _weight in parts:
            info = self.library.info(name)
            if info.base_fingerprint != self.base.fingerprint:
                raise BaseModelMismatchError(f"Style '{name}' was trained on base model '{info.base_model}', not on "
                                             f"the cluster's '{self.base.model_id}'; retrain it there.")
        return SimpleNamespace(label=mix_label(parts))


class ClusterProtocol(Submissions):
    """The front's job desk: the local server's checks and queue, with jobs run on worker replicas."""

    def __init__(self, settings: ClusterSettings, worker):
        self.settings = settings
        self.worker = worker
        self.engine = Catalog(StyleLibrary(settings.styles_dir), settings.limits,
                              lambda: worker.describe.remote().result())
        self.knobs = Knobs(style=settings.style, settings=settings.sampler)
        self.learn_steps = settings.learn_steps
        self.jobs = JobQueue(self._run, lambda job, event: None, max_queued=settings.max_queued,
                             workers=settings.replicas)
        self.jobs.start()

    def _run(self, job: Job) -> dict:
        spec = _spec(job)
        for attempt in range(self.settings.retries + 1):
            job.attempts = attempt + 1
            try:
                return self._attempt(job, spec)
            except RestyleError:
                raise
            except Exception as exc:  # the replica died or became unreachable: try another one
                if not _replica_lost(exc) or attempt == self.settings.retries:
                    raise ReplicaLostError(f"The engine replica running {job.id} was lost "
                                           f"{attempt + 1} time(s) ({type(exc).__name__}); send the clip again.") from exc
                job.done = 0
        raise AssertionError("unreachable")

    def _attempt(self, job: Job, spec: dict) -> dict:
        stream = self.worker.run.options(stream=True).remote(spec)
        for message in stream:
            if job.cancel_requested.is_set():
                stream.cancel()
                raise CancelledError(f"{job.id} cancelled")
            if "error" in message:
                raise _error(*message["error"])
            if "result" in message:
                return _finish(job, message["result"])
            job.done, job.total, job.loss = message["done"], message["total"], message.get("loss")
        raise ReplicaLostError(f"The replica running {job.id} stopped without a result.")


def _spec(job: Job) -> dict:
    """What a worker needs for ``job``: settings and the audio itself (replicas may be on other machines)."""
    p = job.params
    if job.kind == "learn":
        return {"kind": "learn", "name": p["name"], "steps": p["steps"], "preset": p.get("preset"),
                "resume": p.get("resume", False), "clips": [(Path(c).suffix, Path(c).read_bytes()) for c in p["clips"]]}
    source = Path(p["input"])
    return {"kind": "stylize", "audio": source.read_bytes(), "suffix": source.suffix, "style": p["style"],
            "settings": p["settings"], "start": p["start"], "end": p["end"], "stereo": p["stereo"]}


def _finish(job: Job, result: dict) -> dict:
    if job.kind == "learn":
        return result
    output = Path(job.params["output"])
    output.write_bytes(result.pop("audio"))
    return {"output": str(output), **result}


def _error(code: str, message: str) -> RestyleError:
    error = RestyleError(message)
    error.code = code
    return error


def _replica_lost(exc: Exception) -> bool:
    import ray.exceptions

    return isinstance(exc, (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError,
                            ray.exceptions.ActorDiedError))


class Front:
    """The ingress replica: the HTTP API, no model; jobs go to the workers through ``worker``."""

    def __init__(self, worker, settings: ClusterSettings):
        self.worker = worker
        self.settings = settings

    def __serve_build_asgi_app__(self):
        """Called by Ray Serve on the replica after __init__: the FastAPI app it serves."""
        settings = self.settings
        service = HttpService(ClusterProtocol(settings, self.worker), Spool(Path(settings.spool_root), settings.spool),
                              TokenGate(settings.token), ClientFilter("127.0.0.1", list(settings.allow)),
                              settings.http)
        threading.Thread(target=_tidy_forever, args=(service,), name="restyle-spool", daemon=True).start()
        return create_app(service)


def _tidy_forever(service: HttpService) -> None:
    stop = threading.Event()
    while not stop.wait(1.0):
        service.tidy()


def application(settings: ClusterSettings):
    """The Ray Serve application: N worker replicas and the front that serves HTTP."""
    from ray import serve

    worker = serve.deployment(StylizeWorker, name=WORKER, num_replicas=settings.replicas, max_ongoing_requests=1,
                              ray_actor_options={"num_cpus": settings.cpus_per_replica,
                                                 "num_gpus": settings.gpus_per_replica})
    front = serve.deployment(serve.ingress()(Front), name="Front", num_replicas=1, max_ongoing_requests=1000,
                             ray_actor_options={"num_cpus": 0})
    return front.bind(worker.bind(settings), settings)


def run_cluster(settings: ClusterSettings, address: str | None, host: str, port: int) -> str:
    """Connect to (or start) Ray, serve the application's HTTP API on host:port; returns a line for the user."""
    import ray
    from ray import serve

    ray.init(address=address or None, include_dashboard=False, logging_level="warning", log_to_driver=False)
    serve.start(http_options={"host": host, "port": port})
    serve.run(application(settings), name=settings.app_name, route_prefix="/")
    where = f"Ray cluster at {address}" if address else "a local Ray instance"
    return (f"HTTP API on http://{host}:{port}/v1 (docs at /docs), {settings.replicas} replica(s) of "
            f"{settings.model} on {where}.")


def stop_cluster(settings: ClusterSettings) -> None:
    """Remove the application and disconnect from Ray (a cluster started elsewhere keeps running)."""
    import ray
    from ray import serve

    serve.delete(settings.app_name)
    serve.shutdown()
    ray.shutdown()
