"""`report LAST_DIR`: rebuilds report.html from the LAST file in a LAST directory."""
import sys
from pathlib import Path


def main(args) -> int:
    from runner import LastFileError, load_last
    from runner.last import options as last_options
    from runner.last.graph_drawing import draw
    from runner.last.directory import render_html
    from runner.last.atomic_files import write_atomically

    try:
        options = last_options.from_arguments(args)
    except ValueError as error:
        print(f"report: {error}", file=sys.stderr)
        return 2
    try:
        record = load_last(args.last_dir)
    except LastFileError as error:
        print(f"report: {error}", file=sys.stderr)
        return 2
    drawing = draw(record["execution_graph"], renderer=options.graph_renderer,
                   draw_limit=options.graph_draw_limit, timeout=options.graph_timeout, with_dot=False)
    source = Path(args.last_dir)
    target = Path(args.output) if args.output else (source if source.is_dir() else source.parent) / "report.html"
    try:
        write_atomically(target, render_html(record, options, drawing).encode("utf-8"))
    except OSError as error:
        print(f"report: cannot write {target}: {error.strerror or error}", file=sys.stderr)
        return 2
    print(target)
    return 0


def register(subparsers) -> None:
    from runner.last import options as last_options

    parser = subparsers.add_parser("report", help="rebuild report.html of a LAST directory")
    parser.add_argument("last_dir", metavar="LAST_DIR", help="a LAST directory, last.json or last.json.gz")
    parser.add_argument("--output", metavar="FILE", help="where to write (default LAST_DIR/report.html)")
    last_options.add_arguments(parser)
    parser.set_defaults(func=main)
