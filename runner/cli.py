"""`python -m runner`: the command line for people.

Each command is a module of runner.commands with a `register(subparsers)` function that
adds its parser and sets `func`; the modules are discovered, so adding a command touches
no other file. Exit codes: 0 success, 1 a negative outcome (invalid file, failed task),
2 unusable input.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from runner import commands


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; given the name of a command, only that command's part.

    Importing and setting up every command cost each start of the CLI ~10 ms; a run needs
    only its own. Without a known command (none given, a misspelt one, -h) every command is
    registered, so the usage and the error list them all.
    """
    parser = argparse.ArgumentParser(prog="python -m runner", description="The ALT_LAS Runner Service.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    names = sorted(info.name for info in pkgutil.iter_modules(commands.__path__))
    for name in [command] if command in names else names:
        importlib.import_module(f"{commands.__name__}.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # The command is the first argument that is not an option: the top level has no option
    # that takes a value.
    command = next((argument for argument in argv if not argument.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    return args.func(args)
