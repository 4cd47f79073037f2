"""`smoke`: a self-test of librunner.so through ctypes, in a child process (runner.smoke)."""


def main(args) -> int:
    from runner import smoke

    return smoke.run(args.library)


def register(subparsers) -> None:
    parser = subparsers.add_parser("smoke", help="load librunner.so with ctypes in a child process and run the documented flow")
    parser.add_argument("--library", help="the librunner.so to test (default: the installed one)")
    parser.set_defaults(func=main)
