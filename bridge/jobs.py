"""The job queue: a bounded FIFO served by one worker thread (the model is one resource), with cancel."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from restyle.engine import CancelledError, RestyleError

LOG = logging.getLogger(__name__)
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"


class QueueFullError(RestyleError):
    code = "queue_full"


class ClientLimitError(RestyleError):
    code = "client_limit"


@dataclass
class Job:
    """One stylize or learn request and everything a client may ask about it."""

    id: str
    kind: str
    params: dict
    reply_to: object = None  # where pushes about this job go (a protocol Peer)
    owner: str = ""  # who submitted it, for per-client limits (the HTTP API's client address)
    attempts: int = 0  # times it was started (more than once when a cluster replica running it was lost)
    state: str = QUEUED
    done: int = 0
    total: int = 0
    loss: float | None = None  # the training loss at the last step (learn jobs)
    result: dict = field(default_factory=dict)
    error: tuple[str, str] | None = None
    created: float = field(default_factory=time.monotonic)
    cancel_requested: threading.Event = field(default_factory=threading.Event)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def finished(self) -> bool:
        return self.state in (DONE, FAILED, CANCELLED)


def summarize_params(params: dict) -> str:
    """A job's parameters for the log, one ``name=value`` each (paths and settings, never audio)."""
    return ", ".join(f"{name}={value}" for name, value in params.items() if value is not None)


Runner = Callable[[Job], dict]
EventHandler = Callable[[Job, str], None]


class JobQueue:
    """Runs jobs in submission order, ``workers`` at a time (one per loaded model); ``events`` hears 'started',
    'done', 'failed', 'cancelled'."""

    def __init__(self, runner: Runner, events: EventHandler, max_queued: int = 16, keep_finished: int = 256,
                 workers: int = 1):
        self.runner = runner
        self.events = events
        self.max_queued = max_queued
        self.keep_finished = keep_finished
        self._pending: queue.Queue[Job | None] = queue.Queue()
        self._jobs: dict[str, Job] = {}
        self._order: list[str] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._workers = [threading.Thread(target=self._work, name=f"restyle-worker-{i + 1}", daemon=True)
                         for i in range(workers)]
        self._running: list[Job] = []

    @property
    def running(self) -> Job | None:
        """The job that started first among those running now (the only one with a single worker)."""
        running = list(self._running)
        return running[0] if running else None

    def running_jobs(self) -> list[Job]:
        """Every job running now."""
        return list(self._running)

    def start(self) -> None:
        for worker in self._workers:
            worker.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel everything (the running job stops at its next step) and wait for the worker."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel_requested.set()
        for _ in self._workers:
            self._pending.put(None)
        for worker in self._workers:
            if worker.is_alive():
                worker.join(timeout)

    def submit(self, kind: str, params: dict, reply_to: object = None,
               announce: Callable[[Job], None] | None = None, owner: str = "", owner_limit: int | None = None) -> Job:
        """Queue a job; ``announce`` runs before the worker can see it (so "accepted" precedes "started").

        ``owner_limit`` caps the unfinished jobs of one ``owner``, so one client cannot fill the queue.
        """
        with self._lock:
            if len(self.queued()) >= self.max_queued:
                raise QueueFullError(f"The queue is full ({self.max_queued} jobs waiting); try again shortly.")
            if owner_limit is not None and len(self.unfinished(owner)) >= owner_limit:
                raise ClientLimitError(f"You already have {owner_limit} jobs waiting or running on this server; "
                                       "wait for one to finish, then send again.")
            job = Job(f"job-{next(self._ids)}", kind, params, reply_to, owner)
            self._jobs[job.id] = job
            self._order.append(job.id)
            self._forget_old()
        if announce is not None:
            announce(job)
        self._pending.put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        """Every job still remembered, oldest first."""
        return [self._jobs[i] for i in list(self._order)]

    def unfinished(self, owner: str) -> list[Job]:
        """The jobs of ``owner`` that are queued or running."""
        return [self._jobs[i] for i in self._order if self._jobs[i].owner == owner and not self._jobs[i].finished]

    def queued(self) -> list[Job]:
        return [self._jobs[i] for i in self._order if self._jobs[i].state == QUEUED]

    def position(self, job: Job) -> int:
        """0 while running or finished, 1 for the next to run, and so on."""
        if job.state != QUEUED:
            return 0
        waiting = self.queued()
        return 1 + waiting.index(job) if job in waiting else 0

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a job: a queued one at once, a running one at its next step (under the lock a worker takes)."""
        job = self._jobs.get(job_id)
        if job is None or job.finished:
            return job
        job.cancel_requested.set()
        with self._lock:
            was_queued = job.state == QUEUED
            if was_queued:
                job.state = CANCELLED
        if was_queued:
            self.events(job, CANCELLED)
        return job

    def _forget_old(self) -> None:
        finished = [i for i in self._order if self._jobs[i].finished]
        for job_id in finished[: max(0, len(finished) - self.keep_finished)]:
            self._order.remove(job_id)
            del self._jobs[job_id]

    def _work(self) -> None:
        while True:
            job = self._pending.get()
            if job is None:
                return
            if job.state != QUEUED:
                continue
            with self._lock:
                if job.state != QUEUED:  # cancelled between the two checks
                    continue
                job.state, job.attempts = RUNNING, 1
                self._running.append(job)
            started = time.monotonic()
            LOG.info("%s %s started: %s", job.kind, job.id, summarize_params(job.params))
            self.events(job, "started")
            try:
                job.result = self.runner(job)
                job.state = DONE
                LOG.info("%s %s done in %.1f s: %s", job.kind, job.id, time.monotonic() - started, job.result)
            except CancelledError:
                job.state = CANCELLED
                LOG.info("%s %s cancelled after %.1f s", job.kind, job.id, time.monotonic() - started)
            except RestyleError as exc:
                job.state, job.error = FAILED, (exc.code, str(exc))
                LOG.warning("%s %s failed (%s): %s", job.kind, job.id, exc.code, exc)
            except Exception as exc:  # an engine bug must not stop the server: report it and go on
                job.state, job.error = FAILED, ("internal", f"Unexpected engine error: {type(exc).__name__}: {exc}")
                LOG.exception("%s %s failed with an internal error", job.kind, job.id)
            finally:
                with self._lock:
                    self._running.remove(job)
            self.events(job, job.state)
