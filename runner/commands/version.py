"""`version`: the library's version information, as runner_get_version reports it."""


def main(args) -> int:
    from runner import abi, buildinfo

    lib = abi.load(buildinfo.library_path())
    print(abi.take_string(lib, lib.runner_get_version()))
    return 0


def register(subparsers) -> None:
    subparsers.add_parser("version", help="print the library's version information (JSON)").set_defaults(func=main)
