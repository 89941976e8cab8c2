"""The ``restyle`` command: gathers each area's commands under one parser.

The engine's commands (restyle/engine/commands.py), the mini model's (engine/mini/commands.py), the server
(bridge/commands.py) and the DAW client's (bridge/client_commands.py). The client commands are parsed and run
without importing the ML stack, so a DAW that starts ``restyle send`` gets an answer at once.
"""

from __future__ import annotations

import sys

from restyle.bridge import client_commands

from .options import new_parser, run


def build_parser():
    """Every command, with the handlers that run them."""
    from restyle.bridge import commands as bridge_commands
    from restyle.engine import commands as engine_commands
    from restyle.engine.mini import commands as mini_commands

    parser, commands = new_parser()
    handlers = {}
    for area in (engine_commands, mini_commands, bridge_commands, client_commands):
        handlers.update(area.add_commands(commands))
    return parser, handlers


def main(argv: list[str] | None = None) -> int:
    """Run one ``restyle`` command; client commands never load the engine."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if client_commands.handles(argv):
        return client_commands.main(argv)
    parser, handlers = build_parser()
    return run(parser, handlers, argv)


if __name__ == "__main__":
    sys.exit(main())
