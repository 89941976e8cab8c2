"""A small OSC client for a running ``restyle serve``: what ``restyle send`` and ``restyle status`` use.

It talks UDP from one socket, so replies come back to it without registering; requests are retried with the
same request id (the server answers a repeat with the same job, never a second one).
"""

from __future__ import annotations

import itertools
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from pythonosc.osc_message_builder import build_msg
from pythonosc.osc_packet import OscPacket

from restyle.engine.errors import RestyleError

from .wire import DEFAULT_PORT, ROOT


class ServerError(RestyleError):
    """The server answered with an error, or did not answer."""

    def __init__(self, message: str, code: str = "error"):
        super().__init__(message)
        self.code = code


@dataclass
class Event:
    name: str  # the address below /restyle, e.g. "progress"
    args: list


class RestyleClient:
    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, timeout: float = 2.0, retries: int = 2):
        self.server = (host, port)
        self.timeout = timeout
        self.retries = retries
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1" if host in ("127.0.0.1", "localhost") else "", 0))
        self._ids = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:10]  # request ids must not collide between clients on one machine
        self.backlog: list[Event] = []

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RestyleClient":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def send(self, name: str, args: list) -> None:
        self.sock.sendto(build_msg(f"{ROOT}/{name}", args).dgram, self.server)

    def receive(self, timeout: float) -> Event | None:
        self.sock.settimeout(max(0.001, timeout))
        try:
            data, _ = self.sock.recvfrom(65535)
        except (TimeoutError, socket.timeout):
            return None
        messages = OscPacket(data).messages
        for timed in messages[1:]:
            self.backlog.append(_event(timed.message))
        return _event(messages[0].message) if messages else None

    def request(self, name: str, *args: object) -> list:
        """Send a request with a fresh id, wait for its direct reply (retrying), return the reply's arguments."""
        request_id = f"{self._prefix}-{next(self._ids)}"
        for _attempt in range(self.retries + 1):
            self.send(name, [request_id, *args])
            deadline = time.monotonic() + self.timeout
            while (left := deadline - time.monotonic()) > 0:
                event = self.receive(left)
                if event is None:
                    break
                if event.args[:1] != [request_id]:
                    self.backlog.append(event)
                    continue
                if event.name == "error":
                    raise ServerError(str(event.args[2]), str(event.args[1]))
                return event.args[1:]
        raise ServerError(f"No answer from a Restyle server at {self.server[0]}:{self.server[1]}; is "
                          "`restyle serve` running there?", "no_server")

    def wait_for_job(self, job_id: str, on_event: Callable[[Event], None] | None = None,
                     stall: float = 30.0, timeout: float | None = None) -> Event:
        """Follow a job's pushes until it ends. ``timeout`` counts from when the job starts running, not while it
        waits in the queue; a job silent for ``stall`` seconds is asked about (a queued job is silent)."""
        last_heard, started = time.monotonic(), None
        while True:
            event = self.backlog.pop(0) if self.backlog else self.receive(1.0)
            now = time.monotonic()
            if event is not None and event.args[:1] == [job_id]:
                last_heard = now
                if started is None and event.name in ("started", "progress"):
                    started = now
                if on_event is not None:
                    on_event(event)
                if event.name in ("done", "learned", "failed", "cancelled"):
                    return event
            if now - last_heard > stall:
                self._still_waiting(job_id, stall)
                last_heard = now
            if timeout is not None and started is not None and now - started > timeout:
                raise ServerError(f"{job_id} did not finish within {timeout:.0f} s of starting.", "timeout")

    def _still_waiting(self, job_id: str, stall: float) -> None:
        """A silent job is fine while the server says it is queued or running; a server that does not answer, or
        a job that ended without its last push reaching us, raises."""
        try:
            _job, state, *_ = self.request("status", job_id)
        except ServerError as exc:
            if exc.code != "no_server":
                raise
            raise ServerError(f"The server stopped reporting on {job_id} for {stall:.0f} s.", "stalled") from exc
        if state not in ("queued", "running"):
            raise ServerError(f"{job_id} ended ({state}) but its last message was lost; send it again.", "lost")


def _event(message) -> Event:
    address = message.address
    name = address[len(ROOT) + 1 :] if address.startswith(ROOT + "/") else address
    return Event(name, list(message.params))
