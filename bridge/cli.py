"""The installed ``restyle`` command: the engine's commands, ``serve``, and the DAW client commands.

The client commands (send, learn, cancel, status: bridge/client_cli.py) are parsed and run without loading the
engine's ML stack, so a DAW that starts ``restyle send`` gets an answer at once; every other command loads it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from engine.console import note, run

from . import client_cli
from .wire import DEFAULT_PORT


def add_serve_command(commands: argparse._SubParsersAction) -> None:
    """The ``serve`` command and its options."""
    from engine import cli as engine_cli
    from engine.base_model import DEFAULT_MODEL

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


def cmd_serve(args: argparse.Namespace) -> int:
    """Load the engine, listen for OSC (and MIDI) until SIGINT/SIGTERM."""
    from engine import cli as engine_cli

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
    note(midi.describe())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    print(f"Restyle listening on {args.host}:{server.udp_port} (OSC over UDP and TCP/SLIP). Ctrl-C stops.",
          flush=True)
    stop.wait()
    note("Stopping: cancelling jobs; no half-written files are left.")
    midi.close()
    server.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Every command: the engine's, ``serve`` and the client's."""
    from engine import cli as engine_cli

    parser, commands = engine_cli.new_parser()
    engine_cli.add_commands(commands)
    add_serve_command(commands)
    client_cli.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``restyle`` command; client commands never load the engine."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if client_cli.handles(argv):
        return client_cli.main(argv)
    from engine import cli as engine_cli

    return run(build_parser(), {**engine_cli.COMMANDS, "serve": cmd_serve, **client_cli.COMMANDS}, argv)


if __name__ == "__main__":
    sys.exit(main())
