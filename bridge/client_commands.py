"""The DAW client commands, ``restyle send``, ``learn``, ``cancel`` and ``status``, talking to a running server.

A DAW starts one of these for every action, so this module and everything it imports stay free of the engine's
ML stack (torch, diffusers, transformers): tests/test_client_startup.py checks that, benchmarks/client_startup.py
times it. DAW scripts cannot read a background process's output, so the outcome can also be left in files:
``--result-file`` (the result or the error, always written), ``--progress-file`` (written at once, then on every
step) and ``--log`` (one line per event, appended).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from restyle.engine.atomic import write_json
from restyle.engine.errors import RestyleError
from restyle.engine.progress import Progress
from restyle.options import ProgressBar, new_parser, run

from .client import Event, RestyleClient, ServerError
from .wire import DEFAULT_PORT, display_value


def add_commands(commands: argparse._SubParsersAction) -> dict:
    """Add send, learn, cancel and status to a ``restyle`` parser."""
    send = commands.add_parser("send", help="send an audio file to a running server and wait for the result")
    send.add_argument("input", help="audio file (its path must be readable by the server)")
    _add_server_options(send)
    send.add_argument("--style", help="style name or blend (default: the server's style knob)")
    send.add_argument("--strength", type=float, help="above 0 up to 1 (default: the server's strength knob)")
    send.add_argument("--scale", type=float, help="0..30 (default: the server's scale knob)")
    send.add_argument("--steps", type=int, help="sampler steps (default: the server's)")
    send.add_argument("--seed", type=int, help="random seed (default: the server's, 0)")
    send.add_argument("--start", type=float, help="region start in seconds")
    send.add_argument("--end", type=float, help="region end in seconds")
    send.add_argument("-o", "--output", help="output file, which must not exist yet (default: a fresh name chosen "
                                            "by the server, next to the input)")
    send.add_argument("--stereo", action="store_true", help="stylize each channel (default: a mono mix)")
    _add_job_options(send)

    learn = commands.add_parser("learn", help="learn a new style on a running server (its model, its queue)")
    learn.add_argument("name", help="the new style's name")
    learn.add_argument("clips", nargs="+", help="audio files (their paths must be readable by the server)")
    _add_server_options(learn)
    _add_job_options(learn)

    cancel = commands.add_parser("cancel", help="cancel jobs on a running server")
    cancel.add_argument("jobs", nargs="+", metavar="JOB", help="job ids, as send/learn print them")
    _add_server_options(cancel)

    status = commands.add_parser("status", help="show a running server's queue, knobs and styles")
    _add_server_options(status)
    status.add_argument("--json", action="store_true", help="print the report as JSON")
    status.add_argument("--result-file", metavar="FILE", help="also write the report (or the error) as JSON to FILE")
    return COMMANDS


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="the OSC server's address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the OSC server's port (default {DEFAULT_PORT})")
    parser.add_argument("--server", metavar="URL", help="use a server's HTTP API instead of OSC, e.g. "
                        "http://studio-pc:9200: audio is uploaded and the result downloaded (docs/remote.md)")
    parser.add_argument("--token-file", metavar="FILE", help="the HTTP server's access token (needed off loopback)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds to wait in all (send, learn) / for an answer (status, cancel: default 2)")


def _add_job_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True,
                        help="wait for the result (default) or return once the job is accepted")
    parser.add_argument("--stall", type=float, default=30.0, help="give up when the server is silent this many seconds (default 30)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--result-file", metavar="FILE", help="also write the result (or the error) as JSON to "
                                                             "FILE, atomically: for DAW scripts that poll for it")
    parser.add_argument("--progress-file", metavar="FILE", help="keep the job's state in FILE (JSON), written as "
                                                               "soon as the command starts")
    parser.add_argument("--log", metavar="FILE", help="append one line per event of the job to FILE")


# -- reporting to files -------------------------------------------------------------------------------------------
class JobReport:
    """A job's news for the terminal and for the files a DAW script reads."""

    def __init__(self, args: argparse.Namespace, label: str):
        self.progress_file = getattr(args, "progress_file", None)
        self.log_file = getattr(args, "log", None)
        self.bar = ProgressBar(label)
        self.state: dict = {"state": "starting"}
        self._write()

    def accepted(self, job_id: str, position: int) -> None:
        self.update(f"{job_id} accepted, position {position}", state="queued" if position else "running",
                    job=job_id, position=position)

    def __call__(self, event: Event) -> None:
        """Feed one push about the job (started, progress...)."""
        if event.name == "progress":
            self.progress(*event.args)
        elif event.name == "started":
            self.update(f"{event.args[0]} started", state="running", position=0)

    def progress(self, job: str, fraction: float, done: int, total: int, stage: str) -> None:
        """The running job's progress."""
        if total:
            self.bar(Progress(str(stage), int(done), int(total)))
        self.update(f"{job} {stage} {round(100 * float(fraction))} %", state="running", position=0,
                    fraction=float(fraction), stage=str(stage))

    def remote(self, view: dict) -> None:
        """A progress view from the HTTP API (queued or running)."""
        if view["state"] == "queued":
            if self.state.get("position") != view["position"]:
                self.update(f"{view['id']} queued, position {view['position']}", state="queued",
                            position=view["position"])
        elif view["state"] == "running":
            self.progress(view["id"], view["progress"], view["done"], view["total"], view["kind"])

    def update(self, line: str, **state: object) -> None:
        self.state.update(state)
        self._write()
        if self.log_file:
            with open(self.log_file, "a", encoding="utf-8") as log:
                log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")

    def close(self) -> None:
        self.bar.close()

    def _write(self) -> None:
        if self.progress_file:
            write_json(self.progress_file, self.state)


def with_result_file(args: argparse.Namespace, work: Callable[[], dict]) -> dict:
    """Run ``work``; with --result-file its result, or any failure at all, is left in that file as JSON."""
    path = getattr(args, "result_file", None)
    try:
        result = work()
    except RestyleError as exc:
        _write_failure(path, getattr(exc, "code", "error"), str(exc))
        raise
    except KeyboardInterrupt:
        _write_failure(path, "interrupted", "Interrupted before the job finished.")
        raise
    except Exception as exc:  # a bug or an OS error must still reach the DAW as one readable line
        _write_failure(path, "internal", f"{type(exc).__name__}: {exc}")
        raise ServerError(f"{type(exc).__name__}: {exc}", "internal") from exc
    if path:
        write_json(path, {"ok": True, **result})
    return result


def _write_failure(path: str | None, code: str, message: str) -> None:
    if path:
        write_json(path, {"ok": False, "code": code, "error": message})


# -- commands -----------------------------------------------------------------------------------------------------
def _reported(args: argparse.Namespace, label: str, work: Callable[[argparse.Namespace, JobReport], dict]) -> dict:
    """Run ``work`` with a JobReport (created here, so a progress file that cannot be written is a result too)."""
    report = JobReport(args, label)
    try:
        return work(args, report)
    finally:
        report.close()


def cmd_send(args: argparse.Namespace) -> int:
    """Submit a clip, follow the job, print the output path (or JSON)."""
    result = with_result_file(args, lambda: _reported(args, "restyle", _send))
    print(json.dumps(result) if args.json else result.get("output", result.get("job")))
    return 0


def _send(args: argparse.Namespace, report: JobReport) -> dict:
    if args.server:
        return _send_http(args, report)
    options: list[object] = []
    for name in ("style", "strength", "scale", "steps", "seed", "start", "end"):
        value = getattr(args, name)
        if value is not None:
            options += [name, value]
    if args.output:
        options += ["output", _absolute(args.output)]
    if args.stereo:
        options += ["stereo", 1]
    with RestyleClient(args.host, args.port) as client:
        used = _knobs_used(client, args)
        job_id, event = _submit_and_follow(client, args, report, "stylize", _absolute(args.input), *options)
    if event is None:
        return {"job": job_id, "position": report.state["position"], **used}
    _, output, rate, channels, seconds = event.args
    report.update(f"{event.args[0]} done: {output}", state="done", fraction=1.0, output=output)
    return {"job": event.args[0], "output": output, "sample_rate": rate, "channels": channels, "seconds": seconds,
            **used}


def _remote(args: argparse.Namespace):
    """A client of the HTTP API named by --server (and --token-file)."""
    from .http_client import RemoteClient, read_token_file

    return RemoteClient(args.server, read_token_file(args.token_file))


def _learn_http(args: argparse.Namespace, report: JobReport) -> dict:
    """Upload the style clips to a server's HTTP API and follow the learning."""
    clips = [Path(c).expanduser() for c in args.clips]
    missing = [str(c) for c in clips if not c.is_file()]
    if missing:
        raise ServerError(f"{missing[0]} does not exist or is not a file.", "bad_request")
    with _remote(args) as remote:
        job = remote.learn(args.name, clips)
        report.accepted(job["id"], job["position"])
        if not args.wait:
            return {"job": job["id"], "position": job["position"]}
        final = remote.follow(job["id"], report.remote, stall=args.stall)
    report.update(f"{final['id']} learned style {args.name}", state="done", fraction=1.0)
    return {"job": final["id"], "style": final["result"]["style"]}


def _send_http(args: argparse.Namespace, report: JobReport) -> dict:
    """Upload the clip to a server's HTTP API, follow it, download the result next to the input."""
    source = Path(args.input).expanduser()
    if not source.is_file():
        raise ServerError(f"{source} does not exist or is not a file.", "bad_request")
    output = Path(args.output).expanduser() if args.output else None
    if output is not None and output.exists():
        raise ServerError(f"{output} already exists and is never replaced; choose another output name.",
                          "output_exists")
    options = {name: getattr(args, name) for name in ("style", "strength", "scale", "steps", "seed", "start", "end")}
    options["stereo"] = "true" if args.stereo else None
    with _remote(args) as remote:
        sent = {k: v for k, v in options.items() if k in ("style", "strength", "scale") and v is not None}
        used = {**remote.knobs(), **sent}  # what the job gets: the knobs sent, the server's for the rest
        job = remote.stylize(source, options)
        report.accepted(job["id"], job["position"])
        if not args.wait:
            return {"job": job["id"], "position": job["position"]}
        final = remote.follow(job["id"], report.remote, stall=args.stall)
        saved = remote.download(final, source, output)
    result = final["result"]
    report.update(f"{final['id']} done: {saved}", state="done", fraction=1.0, output=str(saved))
    return {"job": final["id"], "output": str(saved), "sample_rate": result["sample_rate"],
            "channels": result["channels"], "seconds": result["seconds"],
            **{k: used.get(k) for k in ("style", "strength", "scale")}}


def _knobs_used(client: RestyleClient, args: argparse.Namespace) -> dict:
    """The style, strength and scale the job gets: those sent, the server's knobs for the rest (asked just before
    submitting: the server's replies about a job do not carry them)."""
    used = {name: getattr(args, name) for name in ("style", "strength", "scale")}
    if None in used.values():
        flat = client.request("knobs")
        server = dict(zip(flat[::2], flat[1::2]))
        server = {name: value if name == "style" else round(float(value), 4) for name, value in server.items()}
        used = {name: server.get(name) if value is None else value for name, value in used.items()}
    return used


def cmd_learn(args: argparse.Namespace) -> int:
    """Submit a style to learn, follow the job, print the style's name (or JSON)."""
    result = with_result_file(args, lambda: _reported(args, f"learning {args.name}", _learn))
    print(json.dumps(result) if args.json else result.get("style", result.get("job")))
    return 0


def _learn(args: argparse.Namespace, report: JobReport) -> dict:
    if args.server:
        return _learn_http(args, report)
    with RestyleClient(args.host, args.port) as client:
        job_id, event = _submit_and_follow(client, args, report, "learn", args.name,
                                           *(_absolute(c) for c in args.clips))
    if event is None:
        return {"job": job_id, "position": report.state["position"]}
    report.update(f"{event.args[0]} learned style {event.args[1]}", state="done", fraction=1.0)
    return {"job": event.args[0], "style": event.args[1]}


def _submit_and_follow(client: RestyleClient, args: argparse.Namespace, report: JobReport, request: str,
                       *request_args: object) -> tuple[str, Event | None]:
    """The job's id and final push (done or learned; None with --no-wait); failures raise ServerError."""
    job_id, position = client.request(request, *request_args)
    report.accepted(job_id, position)
    if not args.wait:
        return job_id, None
    event = client.wait_for_job(job_id, report, stall=args.stall, timeout=args.timeout)
    if event.name == "cancelled":
        report.update(f"{job_id} cancelled", state="cancelled")
        raise ServerError(f"{job_id} cancelled", "cancelled")
    if event.name == "failed":
        report.update(f"{job_id} failed: {event.args[2]}", state="failed")
        raise ServerError(f"{job_id} {event.args[2]} ({event.args[1]})", str(event.args[1]))
    return job_id, event


def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel each job named; print its state afterwards."""
    if args.server:
        with _remote(args) as remote:
            for job in args.jobs:
                print(f"{job} {remote.cancel(job)['state']}")
        return 0
    with RestyleClient(args.host, args.port, timeout=args.timeout or 2.0) as client:
        for job in args.jobs:
            job_id, state = client.request("cancel", job)
            print(f"{job_id} {state}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """The server's queue, knobs and the styles its model can use."""
    report = with_result_file(args, lambda: _status(args))
    if args.json:
        print(json.dumps(report))
    else:
        print(f"Restyle server at {report['server']}: {report['queued']} queued, running: "
              f"{report['running'] or 'nothing'}")
        for name, value in report["knobs"].items():
            print(f"  {name:9s} {value}")
        print(f"  styles    {', '.join(report['styles']) or 'none'}")
    return 0


def _status(args: argparse.Namespace) -> dict:
    if args.server:
        with _remote(args) as remote:
            health, knobs, styles = remote.health(), remote.knobs(), remote.styles()
        return {"server": args.server, "protocol": health["version"], "queued": health["queued"],
                "running": health["running"], "knobs": knobs, "styles": styles}
    with RestyleClient(args.host, args.port, timeout=args.timeout or 2.0, retries=0) as client:
        _name, version = client.request("ping")
        _server, queued, running = client.request("status")
        flat = client.request("knobs")
        styles = client.request("styles/list")
    return {"server": f"{args.host}:{args.port}", "protocol": version, "queued": queued, "running": running or None,
            "knobs": {name: display_value(value) for name, value in zip(flat[::2], flat[1::2])}, "styles": [str(s) for s in styles]}


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().resolve())


COMMANDS = {"send": cmd_send, "learn": cmd_learn, "cancel": cmd_cancel, "status": cmd_status}


def handles(argv: list[str]) -> bool:
    """Whether the command line names a client command (so the engine need not be loaded at all)."""
    command = next((a for a in argv if not a.startswith("-")), None)
    return command in COMMANDS


def main(argv: list[str] | None = None) -> int:
    """``restyle`` restricted to the client commands."""
    parser, commands = new_parser()
    add_commands(commands)
    argv = sys.argv[1:] if argv is None else list(argv)
    result_file = _option_value(argv, "--result-file")
    if result_file:
        for each in (parser, *commands.choices.values()):
            _leave_usage_errors_in(each, result_file)
    return run(parser, COMMANDS, argv)


def _option_value(argv: list[str], option: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == option and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(option + "="):
            return arg[len(option) + 1:]
    return None


def _leave_usage_errors_in(parser: argparse.ArgumentParser, path: str) -> None:
    """A mistake on the command line also reaches --result-file: a DAW script cannot read stderr."""
    exit_with_usage = parser.error

    def error(message: str):
        _write_failure(path, "usage", f"{parser.prog}: {message}")
        exit_with_usage(message)

    parser.error = error


if __name__ == "__main__":
    sys.exit(main())
