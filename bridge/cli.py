"""The installed ``restyle`` command: the engine's commands plus ``serve``, ``send`` and ``status``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from engine import RestyleError
from engine import cli as engine_cli
from engine.atomic import write_json
from engine.base_model import DEFAULT_MODEL

from .client import RestyleClient, ServerError
from .osc_server import DEFAULT_PORT


def add_commands(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="run the engine for DAWs: OSC over UDP and TCP, optional MIDI knobs")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="UDP and TCP port")
    serve.add_argument("--allow", action="append", default=[], metavar="NETWORK",
                       help="client network allowed when --host is not loopback, e.g. 192.168.1.0/24 (repeatable)")
    serve.add_argument("--allow-dir", action="append", default=[], metavar="FOLDER",
                       help="only read inputs under these folders; results may be written there too (repeatable)")
    serve.add_argument("--output-dir", help="where results go when a request names no output (default: "
                                            "next to the input)")
    serve.add_argument("--style", default="", help="the style knob's starting value")
    serve.add_argument("--queue", type=int, default=16, help="jobs that may wait")
    serve.add_argument("--learn-steps", type=int, default=3000, help="training steps for styles learned over OSC")
    serve.add_argument("--midi", metavar="PORT", help="MIDI input port name (or 'virtual' for a virtual port)")
    serve.add_argument("--midi-map", metavar="FILE", help="TOML map of CCs to knobs (default: presets/midi/generic.toml)")
    engine_cli.add_model_options(serve, DEFAULT_MODEL)
    engine_cli.add_backend_options(serve)
    engine_cli.add_library_option(serve)

    send = commands.add_parser("send", help="send an audio file to a running server and wait for the result")
    send.add_argument("input", help="audio file (its path must be readable by the server)")
    _add_server_options(send)
    send.add_argument("--style")
    send.add_argument("--strength", type=float)
    send.add_argument("--scale", type=float)
    send.add_argument("--steps", type=int)
    send.add_argument("--seed", type=int)
    send.add_argument("--start", type=float, help="region start in seconds")
    send.add_argument("--end", type=float, help="region end in seconds")
    send.add_argument("-o", "--output", help="output file (default: chosen by the server, next to the input)")
    send.add_argument("--stereo", action="store_true")
    send.add_argument("--wait", action=argparse.BooleanOptionalAction, default=True,
                      help="wait for the result (default) or return once the job is accepted")
    send.add_argument("--stall", type=float, default=30.0, help="give up when the server is silent this long")
    send.add_argument("--json", action="store_true", help="print the result as JSON")
    send.add_argument("--result-file", metavar="FILE", help="also write the result (or the error) as JSON to FILE, "
                                                           "atomically: for DAW scripts that poll for it")

    status = commands.add_parser("status", help="show a running server's queue and knobs")
    _add_server_options(status)
    status.add_argument("--json", action="store_true")


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds to wait in all (send) / for an answer (status, default 2)")


def cmd_serve(args: argparse.Namespace) -> int:
    from .knobs import Knobs
    from .midi import start_midi
    from .osc_server import ClientFilter, OscServer
    from .paths import PathPolicy
    from .protocol import RestyleProtocol

    ClientFilter(args.host, args.allow)  # --host without --allow is refused before the model loads
    engine = engine_cli.load_engine(args, args.model)
    policy = PathPolicy(tuple(Path(d).expanduser().resolve() for d in args.allow_dir),
                        Path(args.output_dir).expanduser().resolve() if args.output_dir else None)
    knobs = Knobs(style=args.style)
    protocol = RestyleProtocol(engine, knobs, policy, max_queued=args.queue, learn_steps=args.learn_steps)
    server = OscServer(protocol, args.host, args.port, allow=args.allow)
    midi = start_midi(args.midi, args.midi_map, knobs, protocol)
    engine_cli.note(midi.describe())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    print(f"Restyle listening on {args.host}:{server.udp_port} (OSC over UDP and TCP/SLIP). Ctrl-C stops.",
          flush=True)
    stop.wait()
    engine_cli.note("Stopping: cancelling jobs; no half-written files are left.")
    midi.close()
    server.stop()
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    """Submit, follow, print; with --result-file the outcome is also left in a file, success or not."""
    try:
        result = _send(args)
    except RestyleError as exc:
        if args.result_file:
            write_json(args.result_file, {"ok": False, "code": exc.code, "error": str(exc)})
        raise
    if args.result_file:
        write_json(args.result_file, {"ok": True, **result})
    print(json.dumps(result) if args.json else result.get("output", result.get("job")))
    return 0


def _send(args: argparse.Namespace) -> dict:
    options: list[object] = []
    for name in ("style", "strength", "scale", "steps", "seed", "start", "end"):
        value = getattr(args, name)
        if value is not None:
            options += [name, value]
    if args.output:
        options += ["output", str(Path(args.output).expanduser().resolve())]
    if args.stereo:
        options += ["stereo", 1]
    source = str(Path(args.input).expanduser().resolve())
    with RestyleClient(args.host, args.port) as client:
        job_id, position = client.request("stylize", source, *options)
        if not args.wait:
            return {"job": job_id, "position": position}
        bar = engine_cli.ProgressBar("restyle")
        try:
            event = client.wait_for_job(job_id, lambda e: _show(e, bar), stall=args.stall, timeout=args.timeout)
        finally:
            bar.close()
    if event.name != "done":
        reason = "cancelled" if event.name == "cancelled" else f"{event.args[2]} ({event.args[1]})"
        raise ServerError(f"{job_id} {reason}", event.args[1] if event.name == "failed" else "cancelled")
    _, output, rate, channels, seconds = event.args
    return {"job": job_id, "output": output, "sample_rate": rate, "channels": channels, "seconds": seconds}


def _show(event, bar) -> None:
    from engine import Progress

    if event.name == "progress":
        _job, _fraction, done, total, stage = event.args
        if total:
            bar(Progress(str(stage), int(done), int(total)))


def cmd_status(args: argparse.Namespace) -> int:
    with RestyleClient(args.host, args.port, timeout=args.timeout or 2.0, retries=0) as client:
        _name, version = client.request("ping")
        _server, queued, running = client.request("status")
        flat = client.request("knobs")
    knobs = dict(zip(flat[::2], flat[1::2]))
    report = {"server": f"{args.host}:{args.port}", "protocol": version, "queued": queued,
              "running": running or None, "knobs": knobs}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"Restyle server at {report['server']}: {queued} queued, running: {running or 'nothing'}")
        for name, value in knobs.items():
            print(f"  {name:9s} {value}")
    return 0


COMMANDS = {**engine_cli.COMMANDS, "serve": cmd_serve, "send": cmd_send, "status": cmd_status}


def build_parser() -> argparse.ArgumentParser:
    parser, commands = engine_cli.new_parser()
    engine_cli.add_commands(commands)
    add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    return engine_cli.run(build_parser(), COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
