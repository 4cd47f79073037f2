"""`python -m runner`: the command line for people.

Each command is a module of runner.commands with a `register(subparsers)` function that
adds its parser and sets `func`; the modules are discovered, so adding a command touches
no other file. Exit codes: 0 success, 1 a negative outcome (invalid file, failed task),
2 unusable input, 141 (128 + SIGPIPE, as a shell reports it) when standard output was
closed by its reader.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from runner import commands

BROKEN_PIPE = 141


def version() -> str:
    """'librunner 0.1.0', from the installed package's metadata (the library is not loaded)."""
    from importlib import metadata

    try:
        return f"librunner {metadata.version('librunner')}"
    except metadata.PackageNotFoundError:
        return "librunner (version unknown: not installed)"


class _Version(argparse.Action):
    """--version, computed only when asked for."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(version())
        parser.exit()


def configure_logging() -> int | None:
    """RUNNER_LOG_LEVEL drives the CLI's logging as it does a C host's (runner_init): None, or
    2 (printed) for a value that is not a level."""
    from runner import logs, settings

    try:
        logs.configure(settings.log_level())
    except ValueError as error:
        print(f"python -m runner: {error}", file=sys.stderr)
        return 2
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; given the name of a command, only that command's part.

    Importing and setting up every command cost each start of the CLI ~10 ms; a run needs
    only its own. Without a known command (none given, a misspelt one, -h) every command is
    registered, so the usage and the error list them all.
    """
    parser = argparse.ArgumentParser(prog="python -m runner", description="The ALT_LAS Runner Service.")
    parser.add_argument("--version", action=_Version)
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
    undecodable = next((argument for argument in argv if not _is_utf8(argument)), None)
    if undecodable is not None:
        # Python keeps such bytes as lone surrogates, which the journal, the LAST file and
        # --json (all UTF-8 JSON) cannot write: refused here, once for every command.
        shown = os.fsencode(undecodable).decode("utf-8", "backslashreplace")
        from runner.terminal import printable
        print(printable(f"{shown}: not valid UTF-8: librunner records file names and ids as UTF-8 text; "
                        f"rename it", escape=True), file=sys.stderr)
        return 2
    args = build_parser(command).parse_args(argv)
    failed = configure_logging()
    if failed is not None:
        return failed
    try:
        code = args.func(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # The reader of the output went away (`show DIR | head -2`): nothing more to say,
        # and Python's own flush at exit must not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE


def _is_utf8(argument: str) -> bool:
    try:
        argument.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
