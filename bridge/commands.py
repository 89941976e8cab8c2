"""The bridge's commands: ``restyle serve`` (gathered by restyle/cli.py with the others)."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from restyle.options import add_backend_options, add_library_option, add_model_options, load_engine, note

from .wire import DEFAULT_PORT


def add_commands(commands: argparse._SubParsersAction) -> dict:
    """``serve`` and its options, added to the ``restyle`` parser; returns its handler."""
    from restyle.engine.base_model import DEFAULT_MODEL

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
    serve.add_argument("--sampler", help="diffusion solver for every job, as stylize --sampler (default: the "
                                         "engine's default, docs/performance.md)")
    serve.add_argument("--queue", type=int, default=16, help="jobs that may wait")
    serve.add_argument("--learn-steps", type=int, default=3000, help="training steps for styles learned over OSC")
    serve.add_argument("--midi", metavar="PORT", help="MIDI input port name (or 'virtual' for a virtual port)")
    serve.add_argument("--midi-map", metavar="FILE", help="TOML map of CCs to knobs (default: presets/midi/generic.toml)")
    add_model_options(serve, DEFAULT_MODEL)
    add_backend_options(serve)
    add_library_option(serve)
    return {"serve": cmd_serve}


def cmd_serve(args: argparse.Namespace) -> int:
    """Load the engine, listen for OSC (and MIDI) until SIGINT/SIGTERM."""
    from .knobs import Knobs
    from .midi import start_midi
    from .osc_server import ClientFilter, OscServer
    from .paths import PathPolicy
    from .protocol import RestyleProtocol

    from restyle.engine.sampler import SamplerSettings

    ClientFilter(args.host, args.allow)  # --host without --allow is refused before the model loads
    defaults = SamplerSettings(sampler=args.sampler) if args.sampler else SamplerSettings()  # checked at once
    engine = load_engine(args, args.model)
    policy = PathPolicy(tuple(Path(d).expanduser().resolve() for d in args.allow_dir),
                        Path(args.output_dir).expanduser().resolve() if args.output_dir else None)
    knobs = Knobs(style=args.style, settings=defaults)
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
