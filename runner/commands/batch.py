"""`batch FILE... --out DIR`: a LAST directory for each ALT file, in parallel; prints id -> LAST id.

Files are not executed: every task is recorded as pending. One bad file does not stop
the others; its entry is "ERROR: <message>". Exit 0 if all succeeded, 1 otherwise, 2 for
unusable options.
"""
import sys

from runner.errors import ConfigurationError


DESCRIPTION = """\
Write a LAST directory for each ALT file, in parallel, without running any task (every
task is recorded as pending); prints a JSON object {file: LAST id or "ERROR: ..."}."""
EPILOG = """\
example:
  python -m runner batch plans/*.json --out output

exit codes:
  0  every file got its LAST directory
  1  a file did not
  2  an option is unusable"""


def generate(path: str, out, options):
    """(ALT id or the file name when it has none, LAST id or "ERROR: ...")."""
    from runner import RunnerError, parse_alt_file, write_last_file

    from runner.alt_input import AltInputError, read_alt_input

    try:
        data = read_alt_input(path)
    except (AltInputError, RunnerError) as error:   # RunnerError: a bad RUNNER_MAX_ALT_BYTES
        return path, f"ERROR: {path}: {error}"
    try:
        alt = parse_alt_file(data)
    except RunnerError as error:
        return path, f"ERROR: {path}: {error}"
    try:
        return alt.id, write_last_file(alt, {}, out, options=options).last_id
    except RunnerError as error:
        return alt.id, f"ERROR: {error}"


def unique_key(key: str, path: str, mapping: dict) -> str:
    """key (the ALT id), unless an earlier file took it: then the file's path, numbered
    " (2)", " (3)"... if that is taken too (the same file given twice)."""
    if key not in mapping:
        return key
    candidate, number = path, 2
    while candidate in mapping:
        candidate, number = f"{path} ({number})", number + 1
    return candidate


def main(args) -> int:
    from concurrent.futures import ThreadPoolExecutor

    import orjson

    from runner.last import options as last_options

    try:
        options = last_options.from_arguments(args)
    except ConfigurationError as error:
        print(f"batch: {error}", file=sys.stderr)
        return 2
    # Each file's own writer gets one thread: the batch's parallelism is across files.
    per_file = options.with_overrides(workers=1)
    with ThreadPoolExecutor(min(options.workers, len(args.files))) as pool:
        outcome = list(pool.map(lambda path: generate(path, args.out, per_file), args.files))
    mapping = {}
    for path, (key, value) in zip(args.files, outcome):
        mapping[unique_key(key, path, mapping)] = value
    print(orjson.dumps(mapping, option=orjson.OPT_INDENT_2).decode())
    return 1 if any(value.startswith("ERROR: ") for value in mapping.values()) else 0


def register(subparsers) -> None:
    from runner.last import options as last_options

    parser = subparsers.add_parser("batch", help="write a LAST directory for each ALT file, without running it",
                                   description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("files", nargs="+", metavar="FILE", help="ALT files (JSON or YAML)")
    parser.add_argument("--out", required=True, metavar="DIR", help="directory the LAST directories go to")
    last_options.add_arguments(parser)
    parser.set_defaults(func=main)
