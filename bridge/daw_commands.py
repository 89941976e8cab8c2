"""``restyle daw install | path``: put the DAW scripts where each host looks for them.

Parsed and run without the ML stack (restyle/cli.py), like the client commands: it only copies files.
"""

from __future__ import annotations

import argparse

from .daw_install import HOSTS, Platform, describe_targets, install, plan, templates_folder

COMMANDS = ("daw",)


def add_commands(commands: argparse._SubParsersAction) -> dict:
    """``daw install`` and ``daw path``, added to a ``restyle`` parser; returns their handler."""
    daw = commands.add_parser("daw", help="install the DAW scripts (REAPER, Ableton Live, Pure Data) where the host "
                                          "looks for them")
    actions = daw.add_subparsers(dest="action", required=True, metavar="ACTION")
    installing = actions.add_parser("install", help="copy a host's scripts into its folders; a file you changed is kept")
    installing.add_argument("host", choices=HOSTS, help="reaper, ableton or pd")
    installing.add_argument("--dry-run", action="store_true", help="only say what would be copied (default: copy)")
    installing.add_argument("--force", action="store_true",
                         help="also replace files you changed (default: keep them and say so)")
    installing.add_argument("--to", metavar="FOLDER",
                         help="REAPER's resource folder, Live's User Library or the folder for the Pd patch "
                              "(default: the host's usual folder on this system; required for Live on Linux)")
    where = actions.add_parser("path", help="where the shipped scripts are and where each host's copies go")
    where.add_argument("host", nargs="?", choices=HOSTS, help="one host (default: all three)")
    return {"daw": cmd_daw}


def cmd_daw(args: argparse.Namespace) -> int:
    """``daw install HOST`` or ``daw path [HOST]``."""
    platform = Platform.current()
    if args.action == "path":
        print(f"shipped scripts: {templates_folder()}")
        for host in [args.host] if args.host else HOSTS:
            for line in describe_targets(host, platform):
                print(line)
        return 0
    for status, target in install(plan(args.host, platform, args.to), args.dry_run, args.force):
        print(f"{status}: {target}")
    return 0
