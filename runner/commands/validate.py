"""`validate FILE...`: every error of each ALT file; exit 0 valid, 1 invalid, 2 unreadable."""
import sys
from pathlib import Path


def main(args) -> int:
    from runner import AltValidationError, parse_alt_file

    worst = 0
    for name in args.files:
        try:
            data = Path(name).read_bytes()
        except OSError as error:
            print(f"{name}: cannot read: {error.strerror or error}", file=sys.stderr)
            worst = 2
            continue
        try:
            alt = parse_alt_file(data, args.max_errors)
        except AltValidationError as error:
            print(f"{name}: invalid ({error.total} error{'s' if error.total != 1 else ''})")
            for issue in error.issues:
                print(f"  {issue}")
            if error.total > len(error.issues):
                print(f"  ... and {error.total - len(error.issues)} more")
            worst = max(worst, 1)
            continue
        print(f"{name}: valid ALT file '{alt.id}' ({len(alt.tasks)} tasks, mode {alt.mode})")
    return worst


def register(subparsers) -> None:
    parser = subparsers.add_parser("validate", help="check ALT files; exit 0 valid, 1 invalid, 2 unreadable")
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--max-errors", type=int, default=20, help="errors listed per file (default 20)")
    parser.set_defaults(func=main)
