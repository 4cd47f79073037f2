"""`report LAST_DIR`: rebuilds report.html from the LAST file in a LAST directory.

It honours the options that shape the page (--graph-renderer, --no-graph) and refuses, by
name, those of a LAST generation that would have nothing to do here (--archive,
--compress, --no-report, ...): a flag is never accepted and ignored.
"""
import sys
from pathlib import Path

from runner.errors import ConfigurationError


DESCRIPTION = """\
Rebuild report.html, the page of a run, from the LAST file of a LAST directory."""
EPILOG = """\
examples:
  python -m runner report output/0190c7e2-...
  python -m runner report output/0190c7e2-... --output /tmp/page.html --no-graph

exit codes:
  0  written
  2  not a LAST directory, unreadable, or an option that cannot apply"""


def main(args) -> int:
    from runner import LastFileError
    from runner.last.reader import load_last_lazy
    from runner.last import options as last_options
    from runner.last.graph_drawing import critical_path_of, draw
    from runner.last.directory import render_html
    from runner.last.atomic_files import write_atomically

    try:
        options = last_options.from_environment().with_overrides(graph_renderer=args.graph_renderer,
                                                                 graph=args.graph)
    except ConfigurationError as error:
        print(f"report: {error}", file=sys.stderr)
        return 2
    try:
        record = load_last_lazy(args.last_dir)     # the page parses only the results it shows
    except LastFileError as error:
        print(f"report: {error}", file=sys.stderr)
        return 2
    drawing = None
    if options.graph:
        drawing = draw(record["execution_graph"], renderer=options.graph_renderer,
                       draw_limit=options.graph_draw_limit, timeout=options.graph_timeout, with_dot=False,
                       critical=critical_path_of(record))
    source = Path(args.last_dir)
    target = Path(args.output) if args.output else (source if source.is_dir() else source.parent) / "report.html"
    try:
        write_atomically(target, render_html(record, options, drawing, graph=options.graph).encode("utf-8"))
    except OSError as error:
        print(f"report: cannot write {target}: {error.strerror or error}", file=sys.stderr)
        return 2
    print(target)
    return 0


# Options of a LAST generation that rebuilding the page cannot honour, with the reason.
NOT_FOR_REPORT = {
    "--compress": "report writes report.html only; last.json.gz is written by run or batch",
    "--no-compress": "report writes report.html only; last.json.gz is written by run or batch",
    "--no-report": "report exists to write report.html",
    "--no-artifacts": "report extracts no artifacts; it links those the LAST directory has",
    "--archive": "report writes report.html only; archives are written by run or batch",
    "--workers": "report writes one file",
}


def _refuse(reason: str):
    import argparse

    class Refused(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            parser.error(f"{option_string} does not apply: {reason}")

    return Refused


def register(subparsers) -> None:
    import argparse

    from runner.last.options import GRAPH_RENDERERS

    parser = subparsers.add_parser("report", help="rebuild report.html of a LAST directory",
                                   description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("last_dir", metavar="LAST_DIR", help="a LAST directory, last.json or last.json.gz")
    parser.add_argument("--output", metavar="FILE", help="where to write (default LAST_DIR/report.html)")
    parser.add_argument("--graph-renderer", choices=GRAPH_RENDERERS,
                        help="who draws the page's graph (default $RUNNER_GRAPH_RENDERER)")
    parser.add_argument("--no-graph", dest="graph", action="store_const", const=False, default=None,
                        help="no graph in the page")
    for flag, reason in NOT_FOR_REPORT.items():
        parser.add_argument(flag, nargs="?", action=_refuse(reason), help=argparse.SUPPRESS)
    parser.set_defaults(func=main)
