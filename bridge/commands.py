"""The bridge's commands: ``restyle serve`` (gathered by restyle/cli.py with the others)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from restyle import logs
from restyle.options import add_backend_options, add_library_option, add_model_options, load_engine, note

from restyle.engine.errors import SettingsError

from .wire import DEFAULT_PORT

LOG = logging.getLogger(__name__)


def add_commands(commands: argparse._SubParsersAction) -> dict:
    """``serve`` and its options, added to the ``restyle`` parser; returns its handler."""
    from restyle.engine.base_model import DEFAULT_MODEL

    serve = commands.add_parser("serve", help="run the engine for DAWs: OSC over UDP and TCP, optional MIDI knobs")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"UDP and TCP port (default: {DEFAULT_PORT})")
    serve.add_argument("--allow", action="append", default=[], metavar="NETWORK",
                       help="client network allowed when --host is not loopback, e.g. 192.168.1.0/24 "
                            "(repeatable; default: loopback clients only)")
    serve.add_argument("--allow-dir", action="append", default=[], metavar="FOLDER",
                       help="only read inputs under these folders; results may be written there "
                            "too (repeatable; default: anywhere)")
    serve.add_argument("--output-dir", help="where results go when a request names no output (default: "
                                            "next to the input)")
    serve.add_argument("--style", default="", help="the style knob's starting value; the strength and scale knobs "
                                                   "start at its recommended values (default: none)")
    serve.add_argument("--strength", type=float, help="the strength knob's starting value, above 0 up to 1 "
                                                      "(default: the style's recommended strength, else 0.7)")
    serve.add_argument("--scale", type=float, help="the scale knob's starting value, 0..30 (default: the style's "
                                                   "recommended scale, else 5.0)")
    serve.add_argument("--queue", type=int, default=16, help="jobs that may wait (default: 16)")
    serve.add_argument("--learn-steps", type=int, default=3000,
                       help="training steps for styles learned over OSC (default: 3000)")
    serve.add_argument("--midi", metavar="PORT", help="MIDI input port name, or 'virtual' for a virtual port "
                                                      "(default: no MIDI)")
    serve.add_argument("--midi-map", metavar="FILE", help="TOML map of CCs to knobs (default: presets/midi/generic.toml)")
    add_model_options(serve, None, f"the style's own base model with --style, else {DEFAULT_MODEL}")
    add_backend_options(serve)
    add_library_option(serve)
    logs.add_log_options(serve)
    return {"serve": cmd_serve}


def cmd_serve(args: argparse.Namespace) -> int:
    """Check the options, load the engine, listen for OSC (and MIDI) until SIGINT/SIGTERM."""
    handlers = logs.configure(logs.settings_from(args))
    try:
        return _serve(args, handlers[-1])
    finally:
        logs.unconfigure(handlers)


def _serve(args: argparse.Namespace, log_handler) -> int:
    from .knobs import Knobs
    from .midi import start_midi
    from .osc_server import ClientFilter, OscServer
    from .paths import PathPolicy
    from .protocol import RestyleProtocol

    model = check_serve_options(args)  # every mistake is reported before the model loads
    note(f"log: {getattr(log_handler, 'baseFilename', 'console only')}")
    LOG.info("restyle serve starting: model %s, %s:%s", model, args.host, args.port)
    engine = load_engine(args, model)
    policy = PathPolicy(tuple(Path(d).expanduser().resolve() for d in args.allow_dir),
                        Path(args.output_dir).expanduser().resolve() if args.output_dir else None)
    knobs = Knobs(style=args.style, settings=starting_settings(args, engine))
    protocol = RestyleProtocol(engine, knobs, policy, max_queued=args.queue, learn_steps=args.learn_steps)
    server = OscServer(protocol, args.host, args.port, allow=args.allow)
    midi = start_midi(args.midi, args.midi_map, knobs, protocol)
    note(midi.describe())
    LOG.info("knobs: %s; %s", knobs.snapshot(), midi.describe())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    print(f"Restyle listening on {args.host}:{server.udp_port} (OSC over UDP and TCP/SLIP). Ctrl-C stops.",
          flush=True)
    stop.wait()
    note("Stopping: cancelling jobs; no half-written files are left.")
    LOG.info("restyle serve stopping")
    midi.close()
    server.stop()
    return 0


def check_serve_options(args: argparse.Namespace) -> str:
    """Refuse bad options before anything heavy loads; returns the base model to load."""
    from restyle.engine import SamplerSettings
    from restyle.engine.base_model import DEFAULT_MODEL
    from restyle.engine.library import StyleLibrary

    from .midi import MidiMap
    from .osc_server import ClientFilter

    ClientFilter(args.host, args.allow)  # --host without --allow is refused before the model loads
    SamplerSettings(strength=0.7 if args.strength is None else args.strength,
                    scale=5.0 if args.scale is None else args.scale).validate()
    if args.midi_map:
        MidiMap.load(args.midi_map)
    for folder in args.allow_dir:
        if not Path(folder).expanduser().is_dir():
            raise SettingsError(f"--allow-dir {folder} is not a folder.")
    if args.style:
        info = StyleLibrary(args.styles_dir).info(args.style)  # an unknown or damaged style: one line now
        return args.model or info.base_model
    return args.model or DEFAULT_MODEL


def starting_settings(args: argparse.Namespace, engine):
    """The knobs' first values: --strength/--scale where given, else the style's recommended ones."""
    from dataclasses import replace

    from restyle.engine import SamplerSettings

    settings = engine.recommended_settings(engine.style_mix(args.style)) if args.style else SamplerSettings()
    if args.strength is not None:
        settings = replace(settings, strength=args.strength)
    if args.scale is not None:
        settings = replace(settings, scale=args.scale)
    return settings.validate()
