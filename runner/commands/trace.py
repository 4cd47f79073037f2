"""`trace DIR`: the trace of a run from its LAST file, or from its journal when it has none
(a run still going, or one interrupted), as Chrome Trace Event JSON (Perfetto,
chrome://tracing) or an OTLP/HTTP JSON request body; --send posts it to the OTLP endpoint
the OTEL_* variables configure.

Exit 0 when written (and sent), 1 when it could not be sent, 2 when DIR holds no readable
run or an option or variable is unusable.
"""
import sys
from pathlib import Path

from runner.errors import ConfigurationError, JournalError

DESCRIPTION = """\
The trace of a run: a span for the run, one per task attempt (retries side by side) and one
per AI call, at the times its LAST file records; from the run's journal when it has no LAST
file (still going, or killed). As Chrome Trace Event JSON for Perfetto (ui.perfetto.dev) and
chrome://tracing, or as an OTLP/HTTP JSON request body for an OpenTelemetry collector."""
EPILOG = """\
examples:
  python -m runner trace output/0190c7e2-... -o run.trace.json
  python -m runner trace output/0190c7e2-... --format otlp-json > spans.json
  OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 python -m runner trace output/0190c7e2-... --send

exit codes:
  0  written (and sent)
  1  not sent: the collector could not be reached or refused it
  2  not a run directory, unreadable, or an unusable OTEL_* setting"""


def load_trace(path: str, environ):
    """The RunTrace of the run at `path`; ValueError/OSError/LastFileError/JournalError saying why not."""
    from runner import load_last
    from runner.trace import spans
    from runner.trace.settings import capture_content

    capture = capture_content(environ)
    directory = Path(path)
    if directory.is_dir() and not (directory / "last.json").exists() and not (directory / "last.json.gz").exists() \
            and (directory / "journal.jsonl").exists():
        return spans.trace_of_journal(directory, capture_content=capture)
    return spans.trace_of_record(load_last(path), capture_content=capture)


def main(args) -> int:
    import os

    import orjson

    from runner import LastFileError
    from runner.terminal import escape_controls

    environ = os.environ
    export = None
    if args.send:
        from runner.trace.settings import export_settings
        try:
            export = export_settings(environ)
        except ConfigurationError as error:
            print(escape_controls(f"trace: {error}"), file=sys.stderr)
            return 2
        if export is None:
            print("trace: --send needs OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT "
                  "(and no OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none)", file=sys.stderr)
            return 2
    try:
        trace = load_trace(args.dir, environ)
    except (LastFileError, JournalError, ValueError, OSError) as error:
        text = getattr(error, "strerror", None) and f"{args.dir}: {error.strerror}" or str(error)
        print(escape_controls(f"trace: {text}"), file=sys.stderr)
        return 2
    if args.format == "chrome":
        from runner.trace.chrome import chrome_trace
        document = chrome_trace(trace)
    else:
        from runner.cli import version
        from runner.trace.otlp_json import otlp_json, resource_attributes
        document = otlp_json(trace, resource_attributes(environ), version().rpartition(" ")[2])
    data = orjson.dumps(document)
    if args.output:
        from runner.last.atomic_files import write_atomically
        try:
            write_atomically(Path(args.output), data + b"\n")
        except OSError as error:
            print(escape_controls(f"trace: cannot write {args.output}: {error.strerror or error}"),
                  file=sys.stderr)
            return 2
    elif not args.send:
        sys.stdout.buffer.write(data + b"\n")
    if export is not None:
        from runner.trace.export import send_trace
        sent, problem = send_trace(trace, export, environ)
        if not sent:
            print(escape_controls(f"trace: not sent to {export.shown_endpoint}: {problem}"), file=sys.stderr)
            return 1
        print(f"trace: {len(trace.all_spans())} spans of trace {trace.ids.trace_id} sent to {export.shown_endpoint}",
              file=sys.stderr)
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("trace", help="the trace of a run (its LAST file, or its journal) for Perfetto "
                                                 "or an OpenTelemetry collector",
                                   description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("dir", metavar="DIR", help="a LAST directory (last.json or last.json.gz), or a run directory "
                                                   "with only its journal (a run going on or interrupted)")
    parser.add_argument("--format", choices=("chrome", "otlp-json"), default="chrome",
                        help="chrome: Trace Event JSON for Perfetto and chrome://tracing (default); otlp-json: an "
                             "OTLP/HTTP JSON request body for a collector's /v1/traces")
    parser.add_argument("-o", "--output", metavar="FILE", help="write it to FILE (default: standard output)")
    parser.add_argument("--send", action="store_true",
                        help="send the trace to the OTLP endpoint of OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT (needs "
                             "pip install 'librunner[otel]'); nothing is printed unless -o is given")
    parser.set_defaults(func=main)
