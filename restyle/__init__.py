"""Restyle: learn a sound's style from a few clips, then re-render any clip in that style.

One import package: ``restyle.engine`` (the ML core and its small public API), ``restyle.bridge`` (OSC/MIDI
servers, the job queue, DAW clients), ``restyle.cli`` (the ``restyle`` command). The engine's public names are
also reachable from here (``from restyle import Engine``); they are imported on first use, so ``import restyle``
does not load torch.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("restyle")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"


def __getattr__(name: str) -> object:
    """The engine's public names (``Engine``, ``SamplerSettings``, ``RestyleError``...), imported on first use."""
    engine = import_module(".engine", __name__)
    if name not in engine.__all__:
        raise AttributeError(f"module 'restyle' has no attribute '{name}'")
    return getattr(engine, name)
