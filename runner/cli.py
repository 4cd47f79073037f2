"""`python -m runner`: the command line for people.

Each command is a module of runner.commands with a `register(subparsers)` function that
adds its parser and sets `func`; the modules are discovered, so adding a command touches
no other file. Exit codes: 0 success, 1 a negative outcome (invalid file, failed task),
2 unusable input, 141 (128 + SIGPIPE, as a shell reports it) when standard output was
closed by its reader.
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import os
import pkgutil
import re
import sys

from runner import colour, commands
from runner.errors import ConfigurationError

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


def configure_logging(verbose: int = 0) -> int | None:
    """RUNNER_LOG_LEVEL drives the CLI's logging as it does a C host's (runner_init): None, or
    2 (printed) for a value that is not a level. -v is info, -vv debug, unless
    RUNNER_LOG_LEVEL says more."""
    from runner import logs, settings

    try:
        level = settings.log_level()
        if verbose:
            import logging
            wanted = logging.INFO if verbose == 1 else logging.DEBUG
            level = min(level, wanted) if isinstance(level, int) else wanted
        logs.configure(level)
    except ConfigurationError as error:
        print(f"python -m runner: {error}", file=sys.stderr)
        return 2
    return None


class CommandLineParser(argparse.ArgumentParser):
    """argparse, with a suggestion for a misspelt command or choice ("did you mean")."""

    def error(self, message: str):
        found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if found:
            choices = re.findall(r"'([^']*)'", found.group(2))
            close = difflib.get_close_matches(found.group(1), choices, n=1, cutoff=0.5)
            if close:
                message += f"; did you mean '{close[0]}'?"
        super().error(message)


def _command_modules() -> list[str]:
    return sorted(info.name for info in pkgutil.iter_modules(commands.__path__))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; given the name of a command, only that command's part.

    Importing and setting up every command cost each start of the CLI ~10 ms; a run needs
    only its own. Without a known command (none given, a misspelt one, -h) every command is
    registered, so the usage and the error list them all.

    Every command also gets what all of them share: --color, -v/--verbose, -q for its
    --quiet, and its module's docstring as its description when it gives none.
    """
    parser = CommandLineParser(prog="python -m runner", description="The ALT_LAS Runner Service: runs ALT files, "
                               "writes LAST files.", formatter_class=argparse.RawDescriptionHelpFormatter,
                               epilog="Run 'python -m runner COMMAND --help' for a command's options, examples "
                                      "and exit codes.")
    parser.add_argument("--version", action=_Version)
    parser.add_argument("--color", choices=colour.CHOICES, default=None,
                        help="colour on the terminal: auto (default; NO_COLOR and FORCE_COLOR are honoured), "
                             "always or never")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandLineParser)
    names = _command_modules()
    module_name = command.replace("-", "_") if command else None
    for name in [module_name] if module_name in names else names:
        module = importlib.import_module(f"{commands.__name__}.{name}")
        before = set(subparsers.choices)
        module.register(subparsers)
        for added in set(subparsers.choices) - before:
            _share_options(subparsers.choices[added], module)
    return parser


def _share_options(parser: argparse.ArgumentParser, module) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    if parser.description is None and module.__doc__:
        parser.description = module.__doc__.strip()
    options = parser._option_string_actions
    if "--color" not in options:
        parser.add_argument("--color", choices=colour.CHOICES, default=argparse.SUPPRESS,
                            help="colour: auto (default), always or never")
    if "--quiet" in options and "-q" not in options:
        options["-q"] = options["--quiet"]
        options["--quiet"].option_strings.insert(0, "-q")
    if "-v" not in options and "--verbose" not in options:
        parser.add_argument("-v", "--verbose", action="count", default=0,
                            help="log more: -v at level info, -vv at debug (each task's attempts and outcome); "
                             "as RUNNER_LOG_LEVEL")


def print_commands() -> None:
    """What `python -m runner` alone prints: every command, one line each."""
    parser = build_parser()
    subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    helps = {action.dest: action.help or "" for action in subparsers._choices_actions}
    width = max(map(len, subparsers.choices)) + 2
    print(f"usage: python -m runner [--version] [--color WHEN] COMMAND [options]\n")
    print("The ALT_LAS Runner Service: runs ALT files, writes LAST files.\n\ncommands:")
    for name in sorted(subparsers.choices):
        print(f"  {name:<{width}}{helps.get(name, '')}")
    print("\nRun 'python -m runner COMMAND --help' for a command's options, examples and exit codes.")


def _unknown_options(parser: argparse.ArgumentParser, args, extras: list[str]) -> None:
    """Arguments no command takes: an error (exit 2) naming them, with the closest option."""
    target = parser
    if args.command is not None:
        subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
        target = subparsers.choices[args.command]
    known = [option for option in target._option_string_actions if option.startswith("--")]
    hints = []
    for extra in extras:
        if extra.startswith("-"):
            close = difflib.get_close_matches(extra.split("=", 1)[0], known, n=1, cutoff=0.5)
            if close:
                hints.append(f"{extra.split('=', 1)[0]}: did you mean {close[0]}?")
    target.error(f"unrecognized arguments: {' '.join(extras)}" + (f" ({'; '.join(hints)})" if hints else ""))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = _command_of(argv)
    undecodable = next((argument for argument in argv if not _is_utf8(argument)), None)
    if undecodable is not None:
        # Python keeps such bytes as lone surrogates, which the journal, the LAST file and
        # --json (all UTF-8 JSON) cannot write: refused here, once for every command.
        shown = os.fsencode(undecodable).decode("utf-8", "backslashreplace")
        from runner.terminal import escape_controls
        print(escape_controls(f"{shown}: not valid UTF-8: librunner records file names and ids as UTF-8 text; "
                              f"rename it"), file=sys.stderr)
        return 2
    if command is None and not any(argument in ("-h", "--help", "--version") for argument in argv):
        colour_option = _colour_option(argv)
        if colour_option is not None or not argv:
            print_commands()
            return 0
    parser = build_parser(command)
    args, extras = parser.parse_known_args(argv)
    if extras:
        _unknown_options(parser, args, extras)
    if getattr(args, "color", None):
        colour.choice = args.color
    failed = configure_logging(getattr(args, "verbose", 0))
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
    except KeyboardInterrupt:
        # Ctrl-C outside a run's own handlers (a resume waiting for the earlier run's
        # commands, a large file being read): said in a line, not a traceback.
        from runner.commands.run import INTERRUPTED
        print(f"{command or 'runner'}: interrupted", file=sys.stderr)
        return INTERRUPTED


def _command_of(argv: list[str]) -> str | None:
    """The command: the first argument that is not an option, nor the value of the top
    level's one option that takes a value (--color WHEN)."""
    previous = None
    for argument in argv:
        if not argument.startswith("-") and previous != "--color":
            return argument
        previous = argument
    return None


def _colour_option(argv: list[str]) -> str | None:
    """--color WHEN given alone, before any command."""
    if len(argv) == 2 and argv[0] == "--color":
        return argv[1]
    if len(argv) == 1 and argv[0].startswith("--color="):
        return argv[0].split("=", 1)[1]
    return None


def _is_utf8(argument: str) -> bool:
    try:
        argument.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
