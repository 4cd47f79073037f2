"""`serve`: the Runner Service over HTTP (runner.service), until SIGTERM or Ctrl-C.

Prints one line with the URL it listens on. Exit 2 when it cannot start: a bad option
or variable, a non-loopback address without RUNNER_API_TOKEN, another service on the
same --out, or the [server] extra not installed.
"""
import sys

DESCRIPTION = """\
Serve the Runner Service over HTTP until SIGTERM or Ctrl-C: ALT documents posted to
/api/v1/runs (or named in --alt-dir by the ALT_LAS routes /api/v1/process and POST /run) are
accepted durably, queued by priority, run as `run` runs them, and resumed after a restart.
Prints one line with the URL it listens on. Needs pip install 'librunner[server]'."""
EPILOG = """\
examples:
  python -m runner serve --port 8080 --out output --alt-dir examples/alt
  curl -s -d @examples/alt/demo.json http://127.0.0.1:8080/api/v1/runs

exit codes:
  0  stopped by a signal, every run recorded
  2  cannot start: a bad option or variable, a non-loopback address without
     RUNNER_API_TOKEN, another service on the same --out, the [server] extra missing"""


def main(args) -> int:
    try:
        from runner.service import server, settings
    except ImportError as error:
        print(f"serve: needs the server packages ({error}): pip install 'librunner[server]'", file=sys.stderr)
        return 2
    from runner import ConfigurationError
    try:
        service = settings.load(args.host, args.port, args.out, args.alt_dir, args.dask)
        return server.serve(service)
    except (ValueError, ConfigurationError) as error:
        print(f"serve: {error}", file=sys.stderr)
        return 2


def _port(text: str) -> int:
    import argparse

    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, found {text!r}")
    return int(text)


def register(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="the Runner Service over HTTP: accept ALT files as runs, "
                                                 "report their progress and LAST files (pip install 'librunner[server]')",
                                   description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1, or RUNNER_BIND_ADDRESS's host); "
                                       "another than the loopback needs RUNNER_API_TOKEN")
    parser.add_argument("--port", type=_port, help="port (default 8080, or RUNNER_BIND_ADDRESS's port; 0: any free one)")
    parser.add_argument("--out", metavar="DIR", help="where runs and their LAST directories go "
                                                     "(default $RUNNER_OUTPUT_DIR or ./output)")
    parser.add_argument("--alt-dir", metavar="DIR", help="the ALT files /api/v1/process and POST /run may name "
                                                         "(default $RUNNER_ALT_FILES_DIR)")
    parser.add_argument("--dask", metavar="ADDRESS",
                        help="run the heavy tasks of every run on a Dask cluster, as run --dask: tcp://HOST:PORT of a "
                             "scheduler, or local:N (default $RUNNER_DASK_SCHEDULER); needs pip install 'librunner[dask]'")
    parser.set_defaults(func=main)
