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

from runner import commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m runner", description="The ALT_LAS Runner Service.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{info.name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
