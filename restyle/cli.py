"""The ``restyle`` command: gathers each area's commands under one parser.

The engine's commands (restyle/engine/commands.py), the mini model's (engine/mini/commands.py), the server
(bridge/commands.py), the DAW client's (bridge/client_commands.py) and the DAW scripts' installer
(bridge/daw_commands.py). The last two are parsed and run without importing the ML stack, so a DAW that starts
``restyle send`` gets an answer at once, and ``restyle daw install`` takes no longer than the copy.
"""

from __future__ import annotations

import sys

from restyle.bridge import client_commands, daw_commands

from .options import new_parser, run


def build_parser():
    """Every command, with the handlers that run them."""
    from restyle.bridge import commands as bridge_commands
    from restyle.engine import commands as engine_commands
    from restyle.engine.mini import commands as mini_commands

    parser, commands = new_parser()
    handlers = {}
    for area in (engine_commands, mini_commands, bridge_commands, daw_commands, client_commands):
        handlers.update(area.add_commands(commands))
    return parser, handlers


def main(argv: list[str] | None = None) -> int:
    """Run one ``restyle`` command; the client and ``daw`` commands never load the engine."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if client_commands.handles(argv):
        return client_commands.main(argv)
    if next((a for a in argv if not a.startswith("-")), None) in daw_commands.COMMANDS:
        parser, commands = new_parser()
        return run(parser, daw_commands.add_commands(commands), argv)
    parser, handlers = build_parser()
    return run(parser, handlers, argv)


if __name__ == "__main__":
    sys.exit(main())
