"""A real OSC server on loopback with the tiny model, for the bridge tests."""

from __future__ import annotations

import shutil
import socket
from contextlib import contextmanager
from pathlib import Path

from restyle.bridge.knobs import Knobs
from restyle.bridge.osc_server import OscServer
from restyle.bridge.paths import PathPolicy
from restyle.bridge.protocol import RestyleProtocol
from restyle.engine import Engine, SamplerSettings, StyleLibrary


@contextmanager
def running_server(base, styles_dir: Path, workdir: Path, **protocol_options):
    """Start a server on free ports with a private copy of the style library; stop it afterwards."""
    library = workdir / "server-styles"
    shutil.copytree(styles_dir, library)
    engine = Engine(base, StyleLibrary(library))
    knobs = Knobs(style="bells", settings=SamplerSettings(strength=0.5, scale=4.0, steps=4))
    options = {"learn_steps": 3, **protocol_options}
    protocol = RestyleProtocol(engine, knobs, options.pop("policy", PathPolicy()), **options)
    server = OscServer(protocol, "127.0.0.1", port=0, tcp_port=0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    """A loopback UDP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
