"""`python -m runner`: run, validate, report, batch, smoke, and what a C build needs."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2


def _version(args) -> int:
    import ctypes

    from runner import buildinfo

    lib = ctypes.CDLL(str(buildinfo.library_path()))
    lib.runner_get_version.restype = ctypes.c_void_p
    lib.runner_free_string.argtypes = [ctypes.c_void_p]
    pointer = lib.runner_get_version()
    print(ctypes.string_at(pointer).decode())
    lib.runner_free_string(pointer)
    return EXIT_OK


def _config(args) -> int:
    from runner import buildinfo

    if args.pkg_config:
        print(buildinfo.pkg_config(), end="")
        return EXIT_OK
    parts = []
    if args.cflags:
        parts.append(buildinfo.cflags())
    if args.libs:
        parts.append(buildinfo.libs())
    if args.libdir:
        parts.append(str(buildinfo.library_dir()))
    if args.includedir:
        parts.append(str(buildinfo.include_dir()))
    if not parts:
        parts.append(str(buildinfo.library_path()))
    print(" ".join(parts))
    return EXIT_OK


def _validate(args) -> int:
    import orjson

    from runner import AltValidationError, parse_alt_file

    worst = EXIT_OK
    for name in args.files:
        try:
            data = Path(name).read_bytes()
        except OSError as error:
            print(f"{name}: cannot read: {error.strerror or error}", file=sys.stderr)
            worst = EXIT_UNREADABLE
            continue
        try:
            alt = parse_alt_file(data, args.max_errors)
        except AltValidationError as error:
            print(f"{name}: invalid ({error.total} error{'s' if error.total != 1 else ''})")
            for issue in error.issues:
                print(f"  {issue}")
            if error.total > len(error.issues):
                print(f"  ... and {error.total - len(error.issues)} more")
            worst = max(worst, EXIT_INVALID)
            continue
        print(f"{name}: valid ALT file '{alt.id}' ({len(alt.tasks)} tasks, mode {alt.mode})")
    return worst


def _smoke(args) -> int:
    from runner import smoke

    return smoke.run(args.library)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m runner", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("version", help="print the library's version information (JSON)").set_defaults(func=_version)

    config = commands.add_parser("config", help="print what a C build needs: flags and paths")
    for flag, text in (("--cflags", "compiler flags"), ("--libs", "linker flags, with an rpath"),
                       ("--libdir", "the directory of librunner.so"),
                       ("--includedir", "the directory of runner_ffi.h"),
                       ("--pkg-config", "a pkg-config file for librunner")):
        config.add_argument(flag, action="store_true", help=text)
    config.set_defaults(func=_config)

    validate = commands.add_parser("validate", help="check ALT files; exit 0 valid, 1 invalid, 2 unreadable")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument("--max-errors", type=int, default=20, help="errors listed per file (default 20)")
    validate.set_defaults(func=_validate)

    smoke = commands.add_parser("smoke", help="load librunner.so with ctypes in a child process and run the documented flow")
    smoke.add_argument("--library", help="the librunner.so to test (default: the installed one)")
    smoke.set_defaults(func=_smoke)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
