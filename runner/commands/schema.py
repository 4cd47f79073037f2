"""`schema alt|task-result|last`: prints a published JSON Schema (Draft 2020-12)."""
from runner import schemas


DESCRIPTION = """\
Print one of the published JSON Schemas (Draft 2020-12)."""
EPILOG = """\
example:
  python -m runner schema alt > alt.schema.json

exit codes:
  0  printed"""


def main(args) -> int:
    print(schemas.text(args.name), end="")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("schema", help="print a published JSON Schema (ALT file, task result, LAST file)",
                                   description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("name", choices=schemas.NAMES, metavar="NAME", help=f"which schema: {', '.join(schemas.NAMES)}")
    parser.set_defaults(func=main)
