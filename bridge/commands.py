"""The bridge's commands: ``restyle serve`` and ``studio`` (gathered by restyle/cli.py with the others)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path

from restyle import logs
from restyle.engine.errors import SettingsError
from restyle.options import add_backend_options, add_library_option, add_model_options, load_engine, note

from .wire import DEFAULT_PORT

LOG = logging.getLogger(__name__)


def add_commands(commands: argparse._SubParsersAction) -> dict:
    """``serve`` and ``studio`` with their options, added to the ``restyle`` parser; returns their handlers."""
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
    serve.add_argument("--sampler", help="diffusion solver for every job, as stylize --sampler (default: the "
                                         "engine's default, docs/performance.md)")
    serve.add_argument("--queue", type=int, default=16, help="jobs that may wait (default: 16)")
    serve.add_argument("--learn-steps", type=int, default=3000,
                       help="training steps for styles learned over OSC (default: 3000)")
    http = serve.add_argument_group("HTTP API (audio over the network: docs/remote.md)")
    http.add_argument("--http", type=int, metavar="PORT", help="also serve the HTTP API on this TCP port (default: off)")
    http.add_argument("--token-file", metavar="FILE",
                      help="the access token clients must send (default: none on loopback; on other interfaces one is "
                           "generated at first start in the user config folder, mode 0600)")
    http.add_argument("--max-upload-mb", type=float, default=512.0, help="largest upload accepted (default 512 MiB)")
    http.add_argument("--keep-results", type=float, default=60.0, metavar="MINUTES",
                      help="how long results stay downloadable after their job ends (default 60 minutes)")
    http.add_argument("--per-client", type=int, default=4,
                      help="unfinished jobs one client address may have at once (default 4)")
    ray = serve.add_argument_group("scale-out on Ray Serve (pip install 'restyle[cluster]'; docs/remote.md)")
    ray.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                     help="serve the HTTP API (--http, default 9200) from Ray Serve replicas instead of this process: "
                          "a local Ray instance, or the cluster at ADDRESS (e.g. ray://head:10001 or auto); no OSC")
    ray.add_argument("--replicas", type=int, default=1, help="replicas, each holding one loaded model (default 1)")
    ray.add_argument("--gpus-per-replica", type=float, default=None,
                     help="GPUs each replica reserves (default: 1 when this machine has a GPU, else 0)")
    ray.add_argument("--cpus-per-replica", type=float, default=1.0, help="CPUs each replica reserves (default 1)")
    serve.add_argument("--midi", metavar="PORT", help="MIDI input port name, or 'virtual' for a virtual port "
                                                      "(default: no MIDI)")
    serve.add_argument("--midi-map", metavar="FILE", help="TOML map of CCs to knobs, or a shipped map's name: generic, korg-nanokontrol2, akai-mpk-mini-mk3 "
                            "(default: generic)")
    add_model_options(serve, None, f"the style's own base model with --style, else {DEFAULT_MODEL}")
    add_backend_options(serve)
    add_library_option(serve)
    logs.add_log_options(serve)

    return {"serve": cmd_serve, **add_studio_command(commands)}


def add_studio_command(commands: argparse._SubParsersAction) -> dict:
    """``studio``: the browser page for learning and auditioning styles (bridge/studio.py)."""
    from restyle.engine.mini import MINI

    studio = commands.add_parser("studio", help="open the studio in your browser: learn styles, audition them, "
                                                "keep the best takes (pip install 'restyle[studio]')")
    studio.add_argument("--port", type=int, default=9300, help="TCP port of the page (default 9300; 0: any free one)")
    studio.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    studio.add_argument("--allow", action="append", default=[], metavar="NETWORK",
                        help="client network allowed when --host is not loopback, e.g. 192.168.1.0/24; such "
                             "clients log in with the access token, docs/studio.md (repeatable; default: loopback "
                             "clients only)")
    studio.add_argument("--token-file", metavar="FILE",
                        help="the access token (default: none on loopback; on other interfaces the HTTP API's token)")
    studio.add_argument("--no-browser", action="store_true",
                        help="do not open the page in a browser (default: open it)")
    studio.add_argument("--learn-steps", type=int, default=3000,
                        help="training steps the Learn view starts with (default: 3000)")
    add_model_options(studio, MINI)
    add_backend_options(studio)
    add_library_option(studio)
    logs.add_log_options(studio)
    return {"studio": cmd_studio}


def cmd_studio(args: argparse.Namespace) -> int:
    """Log as ``serve`` does (requests, jobs, errors), then run the studio until SIGINT/SIGTERM."""
    with logs.logging_for(args) as log_handler:
        return _studio(args, log_handler)


def _studio(args: argparse.Namespace, log_handler) -> int:
    """Load the engine, serve the studio (and the HTTP API), open the browser."""
    from .knobs import Knobs
    from .protocol import RestyleProtocol
    from .studio import StudioSettings, open_studio

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # the page phones nobody
    check_studio_options(args)  # every mistake is reported before the model loads
    note(f"log: {getattr(log_handler, 'baseFilename', 'console only')}")
    LOG.info("restyle studio starting: model %s, %s:%s", args.model, args.host, args.port)
    engine = load_engine(args, args.model)
    protocol = RestyleProtocol(engine, Knobs(), learn_steps=args.learn_steps)
    protocol.start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server, url, access = open_studio(protocol, args.host, args.port, args.allow, args.token_file,
                                      settings=StudioSettings(examples=_examples(args.model)))
    print(f"Restyle studio on {url} (HTTP API at /v1). {access} Ctrl-C stops.", flush=True)
    if not args.no_browser:
        import webbrowser

        webbrowser.open(url)
    stop.wait()
    note("Stopping: cancelling jobs; no half-written files are left.")
    server.stop()
    protocol.stop()
    return 0


def check_studio_options(args: argparse.Namespace) -> None:
    """Refuse bad ``studio`` options, or a missing ``studio`` extra, before anything heavy loads."""
    from .osc_server import ClientFilter
    from .studio import import_gradio

    ClientFilter(args.host, args.allow)  # --host without --allow is refused
    if args.learn_steps < 1:
        raise SettingsError(f"--learn-steps must be at least 1, not {args.learn_steps}.")
    import_gradio()  # a missing extra is one line


def _examples(model: str) -> tuple[Path, ...]:
    """Content clips shipped with the model, offered by the studio instead of an upload."""
    from restyle.engine.mini import DEMO_CONTENT, MINI

    return (DEMO_CONTENT,) if model == MINI and DEMO_CONTENT.exists() else ()


def _start_http(args: argparse.Namespace, protocol):
    """The HTTP API next to OSC, on the same queue (bridge/http_api.py)."""
    try:
        from .http_api import HttpSettings, open_http
    except ImportError as exc:
        raise SettingsError(f"The HTTP API needs its extra packages ({exc.name} is missing): "
                            "pip install 'restyle[http]'.") from None
    from .spool import SpoolSettings

    spool = SpoolSettings(max_upload_bytes=int(args.max_upload_mb * 2**20), keep_seconds=args.keep_results * 60)
    http, line = open_http(protocol, args.host, args.http, args.allow, args.token_file, spool,
                           HttpSettings(per_client=args.per_client))
    note(line)
    return http


def _serve_cluster(args: argparse.Namespace, model: str) -> int:
    """``serve --ray``: the HTTP API from Ray Serve replicas until SIGINT/SIGTERM (bridge/cluster.py)."""
    try:
        from .cluster import ClusterSettings, run_cluster, stop_cluster
        from .http_api import HttpSettings, access_for
    except ImportError as exc:
        raise SettingsError(f"Scale-out needs its extra packages ({exc.name} is missing): "
                            "pip install 'restyle[cluster]'.") from None
    from restyle.engine.audio import AudioLimits
    from restyle.engine.library import default_styles_dir

    from .spool import SpoolSettings

    port = 9200 if args.http is None else args.http
    token, access, spool_root = access_for(args.host, port, args.token_file)
    gpus = args.gpus_per_replica
    if gpus is None:
        import torch

        gpus = 1.0 if torch.cuda.is_available() else 0.0
    settings = ClusterSettings(
        model=model, replicas=args.replicas, gpus_per_replica=gpus, cpus_per_replica=args.cpus_per_replica,
        device=args.device, dtype=args.dtype, styles_dir=str(default_styles_dir(args.styles_dir)),
        limits=AudioLimits(max_seconds=args.max_seconds), phase=args.phase, max_queued=args.queue,
        learn_steps=args.learn_steps,
        style=args.style, sampler=starting_settings(args), allow=tuple(args.allow), token=token, spool_root=str(spool_root),
        spool=SpoolSettings(max_upload_bytes=int(args.max_upload_mb * 2**20), keep_seconds=args.keep_results * 60),
        http=HttpSettings(per_client=args.per_client))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(run_cluster(settings, args.ray or None, args.host, port) + f" {access} Ctrl-C stops.", flush=True)
    stop.wait()
    note("Stopping: removing the application from Ray.")
    stop_cluster(settings)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Check the options, load the engine, listen for OSC (and MIDI) until SIGINT/SIGTERM."""
    with logs.logging_for(args) as log_handler:
        return _serve(args, log_handler)


def _serve(args: argparse.Namespace, log_handler) -> int:
    from .knobs import Knobs
    from .midi import start_midi
    from .osc_server import OscServer
    from .paths import PathPolicy
    from .protocol import RestyleProtocol

    model = check_serve_options(args)  # every mistake is reported before the model loads
    if args.ray is not None:
        return _serve_cluster(args, model)
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
    http = _start_http(args, protocol) if args.http is not None else None
    print(f"Restyle listening on {args.host}:{server.udp_port} (OSC over UDP and TCP/SLIP). Ctrl-C stops.",
          flush=True)
    stop.wait()
    note("Stopping: cancelling jobs; no half-written files are left.")
    LOG.info("restyle serve stopping")
    midi.close()
    if http is not None:
        http.stop()
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
    SamplerSettings(strength=0.7 if args.strength is None else args.strength,  # checked when made
                    scale=5.0 if args.scale is None else args.scale, **_sampler(args))
    if args.midi_map:
        MidiMap.load(args.midi_map)
    for folder in args.allow_dir:
        if not Path(folder).expanduser().is_dir():
            raise SettingsError(f"--allow-dir {folder} is not a folder.")
    if args.style:
        info = StyleLibrary(args.styles_dir).info(args.style)  # an unknown or damaged style: one line now
        return args.model or info.base_model
    return args.model or DEFAULT_MODEL


def starting_settings(args: argparse.Namespace, engine=None):
    """The knobs' first values: --strength/--scale/--sampler where given, else the style's recommended ones
    (with no engine, as on the Ray front: the published defaults)."""
    from dataclasses import replace

    from restyle.engine import SamplerSettings

    use_style = args.style and engine is not None
    settings = engine.recommended_settings(engine.style_mix(args.style)) if use_style else SamplerSettings()
    given = {"strength": args.strength, "scale": args.scale, **_sampler(args)}
    return replace(settings, **{k: v for k, v in given.items() if v is not None})


def _sampler(args: argparse.Namespace) -> dict:
    sampler = getattr(args, "sampler", None)
    return {"sampler": sampler} if sampler else {}
