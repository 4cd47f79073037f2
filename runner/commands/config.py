"""`config`: what a C build needs, e.g. cc app.c $(python -m runner config --cflags --libs)."""
from runner import buildinfo


DESCRIPTION = """\
Print what a C build needs to compile and link against librunner.so."""
EPILOG = """\
example:
  cc app.c $(python -m runner config --cflags --libs) -o app

exit codes:
  0  printed"""


def main(args) -> int:
    if args.pkg_config:
        print(buildinfo.pkg_config(), end="")
        return 0
    parts = []
    if args.cflags:
        parts.append(buildinfo.cflags())
    if args.libs:
        parts.append(buildinfo.libs())
    if args.libdir:
        parts.append(str(buildinfo.library_dir()))
    if args.includedir:
        parts.append(str(buildinfo.include_dir()))
    print(" ".join(parts) if parts else buildinfo.library_path())
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("config", help="print what a C build needs: flags and paths",
                                   description=DESCRIPTION, epilog=EPILOG)
    for flag, text in (("--cflags", "compiler flags"), ("--libs", "linker flags, with an rpath"),
                       ("--libdir", "the directory of librunner.so"),
                       ("--includedir", "the directory of runner_ffi.h"),
                       ("--pkg-config", "a pkg-config (.pc) file for librunner")):
        parser.add_argument(flag, action="store_true", help=text)
    parser.set_defaults(func=main)
