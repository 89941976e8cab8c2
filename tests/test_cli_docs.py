"""Every command and option of `restyle` is documented: its --help says what it does and its default, and
docs/cli.md names it."""

import argparse
from pathlib import Path

import pytest

from restyle.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
CLI_MD = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")


def _commands(parser: argparse.ArgumentParser, prefix: str = ""):
    """(command path, parser) for every command and sub-command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                path = f"{prefix} {name}".strip()
                yield path, sub
                yield from _commands(sub, path)


def _options(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if action.option_strings and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield action


COMMANDS = list(_commands(build_parser()[0]))


@pytest.mark.parametrize("path,parser", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_option_says_what_it_does_and_its_default(path, parser):
    unexplained = []
    for action in _options(parser):
        text = (action.help or "").lower()
        flag = max(action.option_strings, key=len)
        if not text:
            unexplained.append(f"{flag}: no help")
        elif action.default not in (None, False, [], argparse.SUPPRESS) and "default" not in text:
            unexplained.append(f"{flag}: default {action.default!r} not stated")
    assert not unexplained, f"restyle {path}: " + "; ".join(unexplained)


@pytest.mark.parametrize("path,parser", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_docs_cli_md_names_every_command_and_option(path, parser):
    assert f"restyle {path}" in CLI_MD, f"docs/cli.md does not show `restyle {path}`"
    missing = [max(a.option_strings, key=len) for a in _options(parser)
               if not any(flag in CLI_MD for flag in a.option_strings)]
    assert not missing, f"docs/cli.md does not mention {missing} of `restyle {path}`"
