"""`version`: the library's version information, as runner_get_version reports it."""
import ctypes

from runner import buildinfo


def main(args) -> int:
    lib = ctypes.CDLL(str(buildinfo.library_path()))
    lib.runner_get_version.restype = ctypes.c_void_p
    lib.runner_free_string.argtypes = [ctypes.c_void_p]
    pointer = lib.runner_get_version()
    print(ctypes.string_at(pointer).decode())
    lib.runner_free_string(pointer)
    return 0


def register(subparsers) -> None:
    subparsers.add_parser("version", help="print the library's version information (JSON)").set_defaults(func=main)
