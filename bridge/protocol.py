"""The ``/restyle`` OSC protocol: small handlers mapped to addresses, on top of the engine's public API.

Every request's first argument is the client's request id, echoed in every direct reply. Long work (stylize,
learn) becomes a job on one queue; its progress and result are pushed to whoever submitted it. The transports
(UDP, TCP with SLIP framing) live in ``osc_server``; here a client is a :class:`Peer` that can be sent messages.
See docs/osc-protocol.md for every address.
"""

from __future__ import annotations

import hashlib
import inspect
import ipaddress
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Protocol as Interface

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message import OscMessage
from pythonosc.osc_packet import OscPacket, ParseError

from restyle.engine import Engine, RestyleError, TrainSettings
from restyle.engine.audio import probe
from restyle.engine.library import check_name

from .jobs import CANCELLED, DONE, FAILED, RUNNING, Job, JobQueue
from .knobs import Knobs
from .paths import OutputReservations, PathPolicy
from .submissions import BadRequestError, Submissions, as_float, as_int, option_value
from .wire import ROOT

VERSION = "1"
RETRY_WINDOW = 120.0  # seconds in which the same request from the same client is a retry; later a new request
REGISTRATION_SECONDS = 600.0  # a hello registration lapses after this long without a request from its client
MAX_REGISTRATIONS = 256
LOG = logging.getLogger(__name__)
STYLIZE_OPTIONS = {"start", "end", "style", "strength", "scale", "steps", "seed", "output", "stereo", "brs"}


class Peer(Interface):
    """Somewhere replies can go: a UDP address, or an open TCP connection."""

    key: Hashable
    host: str

    def send(self, address: str, args: list) -> None: ...


def summarize_args(args: list, limit: int = 12, width: int = 80) -> str:
    """A request's arguments for the log: long text shortened, binary data (audio) only counted."""
    shown = []
    for value in args[:limit]:
        if isinstance(value, (bytes, bytearray)):
            shown.append(f"<{len(value)} bytes>")
        else:
            text = repr(value)
            shown.append(text if len(text) <= width else text[: width - 3] + "...")
    more = f" (+{len(args) - limit} more)" if len(args) > limit else ""
    return " ".join(shown) + more


def describe_peer(peer: Peer) -> str:
    """A client as the log names it: transport, host and port."""
    key = peer.key
    return f"{key[0]} {key[1]}:{key[2]}" if isinstance(key, tuple) and len(key) == 3 else str(key)


def _key(request_id: object) -> str:
    """Request ids compare by value: 7, 7.0 (Pure Data) and "7" are the same request."""
    if isinstance(request_id, float) and request_id.is_integer():
        return str(int(request_id))
    return str(request_id)


def request_digest(kind: str, args: tuple) -> str:
    """What a request asks for, as a short digest: a retry asks for exactly the same."""
    return hashlib.sha256(repr((kind, [_key(a) for a in args])).encode()).hexdigest()[:16]


def loopback_only(host: str) -> bool:
    return ipaddress.ip_address(host).is_loopback


def reply_host(value: object) -> str:
    """A reply host from ``/restyle/hello``: an IP address ("localhost" is 127.0.0.1), never a name to look up."""
    text = "127.0.0.1" if str(value) == "localhost" else str(value)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise BadRequestError(f"Reply host must be an IP address such as 127.0.0.1, not '{value}'.") from None


def parse_options(args: tuple, allowed: set[str]) -> dict[str, object]:
    """Key/value pairs after the fixed arguments: ``strength 0.6 scale 4.5 ...``."""
    if len(args) % 2:
        raise BadRequestError("Options must come in pairs: name value name value ...")
    options = {}
    for name, value in zip(args[::2], args[1::2]):
        if name not in allowed:
            raise BadRequestError(f"Unknown option '{name}': use {', '.join(sorted(allowed))}.")
        if name in options:
            raise BadRequestError(f"Option '{name}' is given twice; send it once.")
        options[str(name)] = value
    return options


class RestyleProtocol(Submissions):
    """Routes OSC messages to handlers; owns the job queue, the knobs, client registrations and subscribers."""

    def __init__(self, engine: Engine, knobs: Knobs | None = None, policy: PathPolicy = PathPolicy(),
                 max_queued: int = 16, learn_steps: int = 3000, progress_interval: float = 0.1):
        self.engine = engine
        self.knobs = knobs or Knobs()
        self.policy = policy
        self.learn_steps = learn_steps
        self.progress_interval = progress_interval
        self.jobs = JobQueue(self._run, self._job_event, max_queued=max_queued)
        self.outputs = OutputReservations()
        self.reply_allowed = loopback_only  # where hello may send replies; the server sets its --allow list here
        self._lock = threading.Lock()
        self._submitting = threading.Lock()
        # hello registrations by the sender's own key (transport, host, port) -> (reply peer, last request)
        self._routes: OrderedDict[Hashable, tuple[Peer, float]] = OrderedDict()
        self._subscribers: dict[Hashable, Peer] = {}
        # (sender key, request id) -> (request digest, job id, when)
        self._requests: OrderedDict[tuple[Hashable, str], tuple[str, str, float]] = OrderedDict()
        self._last_push: dict[str, float] = {}
        self._last_stylize: tuple[str, dict, Peer] | None = None  # for "stylize the last clip again"
        self.midi = None  # a bridge.midi.MidiKnobs once MIDI is set up
        self.knobs.subscribe(self._knob_changed)
        self.dispatcher = self._routes_table()

    def routes(self) -> dict[str, object]:
        """Every address this protocol answers, with its handler (docs/osc-protocol.md documents each)."""
        handlers = {
            "ping": self.ping, "hello": self.hello, "stylize": self.stylize, "learn": self.learn,
            "cancel": self.cancel, "status": self.status,
            "styles/list": self.styles_list, "styles/delete": self.styles_delete, "styles/rename": self.styles_rename,
            "knob/get": self.knob_get, "knob/set": self.knob_set, "knob/set_normalized": self.knob_set_normalized,
            "knobs": self.knobs_all, "subscribe": self.subscribe, "unsubscribe": self.unsubscribe,
            "again": self.again, "midi/learn": self.midi_learn,
        }
        return {f"{ROOT}/{name}": handler for name, handler in handlers.items()}

    def _routes_table(self) -> Dispatcher:
        d = Dispatcher()
        for address, handler in self.routes().items():
            d.map(address, handler, needs_reply_address=True)
        return d

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.jobs.start()

    def stop(self) -> None:
        self.jobs.stop()

    # -- dispatch -----------------------------------------------------------------------------------------------
    def handle_packet(self, data: bytes, peer: Peer) -> None:
        """Parse one datagram or SLIP frame and handle every message in it; nothing here may raise."""
        try:
            messages = [timed.message for timed in OscPacket(data).messages]
        except (ParseError, Exception):  # python-osc raises several types for truncated input
            self.send(peer, "error", ["", "malformed", "Could not read that OSC packet."])
            return
        for message in messages:
            self.handle_message(message, peer)

    def handle_message(self, message: OscMessage, peer: Peer) -> None:
        args = list(message.params)
        request_id = args[0] if args else ""
        LOG.info("request %s from %s: %s", message.address, describe_peer(peer), summarize_args(args))
        handlers = list(self.dispatcher.handlers_for_address(message.address))
        if not handlers:
            self.reply_error(peer, request_id, "unknown_address", f"No such address: {message.address}.")
            return
        for handler in handlers:
            try:
                inspect.signature(handler.callback).bind(peer, message.address, *args)
            except TypeError:
                self.reply_error(peer, request_id, "bad_request",
                                 f"Wrong number of arguments for {message.address}; see docs/osc-protocol.md.")
                continue
            try:
                handler.invoke(peer, message)
            except RestyleError as exc:
                LOG.info("refused %s from %s: %s", message.address, describe_peer(peer), exc)
                self.reply_error(peer, request_id, exc.code, str(exc))
            except Exception as exc:  # a bug must cost one error reply, never the server
                LOG.exception("internal error handling %s from %s", message.address, describe_peer(peer))
                self.reply_error(peer, request_id, "internal", f"{type(exc).__name__}: {exc}")

    # -- replies ------------------------------------------------------------------------------------------------
    def reply_target(self, peer: Peer) -> Peer:
        """Where this sender's replies go: its registration while that lasts (each request renews it), else itself."""
        now = time.monotonic()
        with self._lock:
            target, when = self._routes.get(peer.key, (peer, now))
            if now - when > REGISTRATION_SECONDS:
                del self._routes[peer.key]
                return peer
            if target is not peer:
                self._routes[peer.key] = (target, now)
            return target

    def send(self, peer: Peer, name: str, args: list) -> None:
        try:
            peer.send(f"{ROOT}/{name}", args)
        except OSError:
            pass  # a client that went away must not disturb the others

    def reply(self, peer: Peer, name: str, args: list) -> None:
        self.send(self.reply_target(peer), name, args)

    def reply_error(self, peer: Peer, request_id: object, code: str, message: str) -> None:
        self.reply(peer, "error", [request_id, code, message])

    # -- handlers -----------------------------------------------------------------------------------------------
    def ping(self, peer: Peer, _address: str, request_id: object) -> None:
        self.reply(peer, "pong", [request_id, "restyle", VERSION])

    def hello(self, peer: Peer, _address: str, request_id: object, port: object = None, host: object = None) -> None:
        """Register where this sender's replies go (its own host and port are the key); it lapses when unused."""
        target = peer
        if port is not None and hasattr(peer, "redirect"):
            number = as_int(port, "reply port")
            if not 1 <= number <= 65535:
                raise BadRequestError(f"Reply port {number} is not a port: use 1 to 65535.")
            address = reply_host(host) if host else peer.host
            if not self.reply_allowed(address):
                raise BadRequestError(f"Replies may only go to this machine or the networks given with --allow, "
                                      f"not {address}.")
            target = peer.redirect(address, number)
        with self._lock:
            self._routes.pop(peer.key, None)
            self._routes[peer.key] = (target, time.monotonic())
            while len(self._routes) > MAX_REGISTRATIONS:
                self._routes.popitem(last=False)
        LOG.info("client %s registered; replies go to %s", describe_peer(peer),
                 f"{target.address[0]}:{target.address[1]}" if hasattr(target, "address") else describe_peer(target))
        self.send(target, "hello", [request_id, "ok", VERSION])

    def stylize(self, peer: Peer, _address: str, request_id: object, input_path: object, *options: object) -> None:
        digest = request_digest("stylize", (input_path, *options))
        with self._submitting:  # a UDP retry arriving on another thread must find the first job
            existing = self._existing_job(peer, request_id, digest)
            if existing is None:
                parsed = parse_options(options, STYLIZE_OPTIONS)
                params = self._stylize_params(str(input_path), parsed)
                again = {k: v for k, v in parsed.items() if k in {"start", "end", "style", "stereo"}}
                self._last_stylize = (str(input_path), again, self.reply_target(peer))
                self._submit(peer, request_id, digest, "stylize", params)
                return
        self._announcer(peer, request_id)(existing)  # a retry: the same job again

    def again(self, peer: Peer, _address: str, request_id: object) -> None:
        """Stylize the last submitted clip again with the knobs as they are now (a MIDI button does the same)."""
        self._submit_again(self._announcer(peer, request_id))

    def restyle_last(self) -> None:
        """The MIDI button: like /restyle/again; its replies go to the client that submitted the clip."""
        if self._last_stylize is None:
            return
        reply_to = self._last_stylize[2]
        try:
            self._submit_again(lambda job: self.send(reply_to, "accepted", ["midi", job.id, self.jobs.position(job)]))
        except RestyleError as exc:
            self.send(reply_to, "error", ["midi", exc.code, str(exc)])

    def _submit_again(self, announce) -> None:
        if self._last_stylize is None:
            raise BadRequestError("Nothing to stylize again yet: submit a clip first.")
        input_path, options, reply_to = self._last_stylize
        self._queue("stylize", self._stylize_params(input_path, options), reply_to, announce)

    def midi_learn(self, peer: Peer, _address: str, request_id: object, knob: object) -> None:
        if self.midi is None:
            raise BadRequestError("MIDI is not set up on this server.")
        self.midi.learn(str(knob))
        self.reply(peer, "midi/learn", [request_id, "move a control", str(knob)])

    def learn(self, peer: Peer, _address: str, request_id: object, name: object, *paths: object) -> None:
        digest = request_digest("learn", (name, *paths))
        with self._submitting:
            existing = self._existing_job(peer, request_id, digest)
            if existing is None:
                if not paths:
                    raise BadRequestError("Send the new style's name, then one or more audio file paths.")
                clips = [str(self.policy.input(str(p))) for p in paths]
                for clip in clips:
                    probe(clip, self.engine.settings.limits)
                params = {"name": check_name(str(name)), "clips": clips, "steps": self.learn_steps}
                self._submit(peer, request_id, digest, "learn", params)
                return
        self._announcer(peer, request_id)(existing)  # a retry: the same job again

    def cancel(self, peer: Peer, _address: str, request_id: object, job_id: object) -> None:
        job = self.jobs.cancel(str(job_id))
        if job is None:
            raise BadRequestError(f"No job {job_id} (finished jobs are forgotten after a while).")
        self.reply(peer, "cancel", [request_id, job.id, job.state])

    def status(self, peer: Peer, _address: str, request_id: object, job_id: object = None) -> None:
        if job_id is None:
            running = self.jobs.running
            self.reply(peer, "status", [request_id, "server", len(self.jobs.queued()), running.id if running else ""])
            return
        job = self.jobs.get(str(job_id))
        if job is None:
            raise BadRequestError(f"No job {job_id} (finished jobs are forgotten after a while).")
        self.reply(peer, "status", [request_id, job.id, job.state, self.jobs.position(job), job.fraction])

    def styles_list(self, peer: Peer, _address: str, request_id: object) -> None:
        self.reply(peer, "styles/list", [request_id, *self.engine.style_names()])

    def styles_delete(self, peer: Peer, _address: str, request_id: object, name: object) -> None:
        self.engine.library.remove(str(name))
        self.reply(peer, "styles/delete", [request_id, "ok", str(name)])

    def styles_rename(self, peer: Peer, _address: str, request_id: object, old: object, new: object) -> None:
        self.engine.library.rename(str(old), str(new))
        if self.knobs.get("style") == str(old):
            self.knobs.set("style", str(new))
        self.reply(peer, "styles/rename", [request_id, "ok", str(new)])

    def knob_get(self, peer: Peer, _address: str, request_id: object, name: object) -> None:
        self.reply(peer, "knob", [request_id, *self._knob_report(str(name))])

    def knob_set(self, peer: Peer, _address: str, request_id: object, name: object, value: object) -> None:
        self.knobs.set(str(name), value if str(name) == "style" else as_float(value, str(name)))
        self._moved_elsewhere(str(name))
        self.reply(peer, "knob", [request_id, *self._knob_report(str(name))])

    def knob_set_normalized(self, peer: Peer, _address: str, request_id: object, name: object, value: object) -> None:
        self.knobs.set_normalized(str(name), as_float(value, f"{name} (0..1)"))
        self._moved_elsewhere(str(name))
        self.reply(peer, "knob", [request_id, *self._knob_report(str(name))])

    def knobs_all(self, peer: Peer, _address: str, request_id: object) -> None:
        flat = [item for name, value in self.knobs.snapshot().items() for item in (name, value)]
        self.reply(peer, "knobs", [request_id, *flat])

    def subscribe(self, peer: Peer, _address: str, request_id: object) -> None:
        target = self.reply_target(peer)
        with self._lock:
            self._subscribers[target.key] = target
        LOG.info("client %s subscribed to knob changes", describe_peer(target))
        self.send(target, "subscribe", [request_id, "ok"])

    def unsubscribe(self, peer: Peer, _address: str, request_id: object) -> None:
        target = self.reply_target(peer)
        with self._lock:
            self._subscribers.pop(target.key, None)
        self.send(target, "unsubscribe", [request_id, "ok"])

    # -- jobs ---------------------------------------------------------------------------------------------------
    def _announcer(self, peer: Peer, request_id: object):
        """What answers "accepted" for a job, before the worker can start it."""
        return lambda job: self.reply(peer, "accepted", [request_id, job.id, self.jobs.position(job)])

    def _existing_job(self, peer: Peer, request_id: object, digest: str) -> Job | None:
        """A retry (the same request, with the same id, from the same sender, within the window) gets its job."""
        with self._lock:
            known, job_id, when = self._requests.get((peer.key, _key(request_id)), ("", None, 0.0))
        if job_id is None or known != digest or time.monotonic() - when > RETRY_WINDOW:
            return None  # a new request, e.g. a restarted script counting its request ids from 1 again
        return self.jobs.get(job_id)

    def _submit(self, peer: Peer, request_id: object, digest: str, kind: str, params: dict) -> Job:
        """Queue a job and answer "accepted" (before the worker can start it, so the order is always right)."""
        job = self._queue(kind, params, self.reply_target(peer), self._announcer(peer, request_id))
        with self._lock:
            self._requests[(peer.key, _key(request_id))] = (digest, job.id, time.monotonic())
            while len(self._requests) > 1024:
                self._requests.popitem(last=False)
        return job

    def _queue(self, kind: str, params: dict, reply_to: Peer, announce) -> Job:
        """Submit to the queue; a job that is not queued gives its reserved output name back."""
        try:
            return self.jobs.submit(kind, params, reply_to=reply_to, announce=announce)
        except Exception:
            self.outputs.release(params.get("output"))
            raise

    def _stylize_params(self, input_path: str, options: dict) -> dict:
        """Check everything that can be checked at once, so mistakes are answered before the job is queued."""
        source = self.policy.input(input_path)
        params = self.checked_stylize(source, options)
        # Last, so that nothing after it can fail: the name is held from now until the job ends.
        asked = option_value(options, "output")
        label = params.pop("label")
        params["output"] = self.outputs.reserve(lambda taken: self.policy.output(asked, source, label, taken))
        return params

    def _run(self, job: Job) -> dict:
        def progress(p) -> None:
            job.done, job.total, job.loss = p.done, p.total, p.loss
            self._push_progress(job, p.stage)

        cancelled = job.cancel_requested.is_set
        if job.kind == "learn":
            p = job.params
            self.engine.train(p["name"], p["clips"], TrainSettings(steps=p["steps"]), resume=p.get("resume", False),
                              progress=progress, should_cancel=cancelled, preset=p.get("preset"))
            return {"style": p["name"]}
        p = job.params
        result = self.engine.stylize(p["input"], p["style"], p["settings"], p["output"], stereo=p["stereo"],
                                     start=p["start"], end=p["end"], progress=progress, should_cancel=cancelled)
        return {"output": str(result.path), "sample_rate": result.sample_rate, "channels": result.channels,
                "seconds": result.seconds}

    def _push_progress(self, job: Job, stage: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if not force and job.done < job.total and now - self._last_push.get(job.id, 0.0) < self.progress_interval:
            return
        self._last_push[job.id] = now
        if job.reply_to is not None:
            self.send(job.reply_to, "progress", [job.id, job.fraction, job.done, job.total, stage or job.kind])

    def heartbeat(self) -> None:
        """Called about once a second: the running job's progress doubles as a sign of life."""
        job = self.jobs.running
        if job is not None and job.state == RUNNING:
            self._push_progress(job, force=True)

    def _job_event(self, job: Job, event: str) -> None:
        if job.finished:
            self._last_push.pop(job.id, None)
            self.outputs.release(job.params.get("output"))
        if job.reply_to is None:
            return
        if event == "started":
            self.send(job.reply_to, "started", [job.id])
        elif event == DONE and job.kind == "learn":
            self.send(job.reply_to, "learned", [job.id, job.result["style"]])
        elif event == DONE:
            r = job.result
            self.send(job.reply_to, "done", [job.id, r["output"], r["sample_rate"], r["channels"], r["seconds"]])
        elif event == FAILED:
            self.send(job.reply_to, "failed", [job.id, *job.error])
        elif event == CANCELLED:
            self.send(job.reply_to, "cancelled", [job.id])

    def _moved_elsewhere(self, knob: str) -> None:
        if self.midi is not None:
            self.midi.knob_moved_elsewhere(knob)

    def _knob_report(self, name: str) -> list:
        value = self.knobs.get(name)
        return [name, value, self.knobs.normalized(name) if name != "style" else 0.0]

    def _knob_changed(self, name: str, _value: object) -> None:
        with self._lock:
            subscribers = list(self._subscribers.values())
        report = self._knob_report(name)
        for peer in subscribers:
            self.send(peer, "knob/changed", report)
