"""`schema alt|task-result|last`: prints a published JSON Schema (Draft 2020-12)."""
from runner import schemas


def main(args) -> int:
    print(schemas.text(args.name), end="")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("schema", help="print the JSON Schema of an ALT file, task result or LAST file")
    parser.add_argument("name", choices=schemas.NAMES)
    parser.set_defaults(func=main)
