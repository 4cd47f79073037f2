"""`version`: the library's version information, as runner_get_version reports it."""


DESCRIPTION = """\
Print the library's version information as JSON (runner_get_version): library, Python and
Cython versions."""
EPILOG = """\
example:
  python -m runner version

exit codes:
  0  printed"""


def main(args) -> int:
    from runner import abi, buildinfo

    lib = abi.load(buildinfo.library_path())
    print(abi.take_string(lib, lib.runner_get_version()))
    return 0


def register(subparsers) -> None:
    subparsers.add_parser("version", help="print the library's version information (JSON)",
                          description=DESCRIPTION, epilog=EPILOG).set_defaults(func=main)
