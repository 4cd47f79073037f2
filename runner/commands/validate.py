"""`validate FILE...`: every error of each ALT file; exit 0 valid, 1 invalid, 2 unreadable.

With --plan, a valid file's graph facts follow: order, parallel levels, roots, leaves,
critical paths and the worst-case duration against expected_completion_time.
"""
import os
import sys


def read_limited(name: str, max_bytes: int) -> tuple[bytes, int]:
    """The file's bytes and its size, reading at most one byte past the limit: a huge file
    is refused by the parser's size check without being loaded whole."""
    with open(name, "rb") as stream:
        data = stream.read(max_bytes + 1)
        size = os.fstat(stream.fileno()).st_size if len(data) > max_bytes else len(data)
    return data, size


def seconds(value: float) -> str:
    """1234.0 -> '1234 s (20 min 34 s)': the raw figure, then a readable one."""
    whole = int(round(value))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    readable = f"{hours} h {minutes} min {secs} s" if hours else f"{minutes} min {secs} s" if minutes else ""
    return f"{value:g} s" + (f" ({readable})" if readable else "")


def names(ids, limit: int = 12) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > limit else "")


def print_plan(plan: dict) -> None:
    levels = plan["levels"]
    print(f"  {plan['tasks']} tasks, {plan['dependencies']} dependencies, {len(levels)} levels"
          f" (widest: {max(len(level) for level in levels)} tasks in parallel)")
    print(f"  order: {names(plan['topological_order'])}")
    for number, level in enumerate(levels[:20]):
        print(f"  level {number}: {names(level)}")
    if len(levels) > 20:
        print(f"  ... {len(levels) - 20} more levels")
    print(f"  roots: {names(plan['roots'])}")
    print(f"  leaves: {names(plan['leaves'])}")
    by_count = plan["critical_path_by_count"]
    print(f"  critical path by count ({len(by_count)} tasks): {' -> '.join(by_count[:30])}"
          + (" -> ..." if len(by_count) > 30 else ""))
    by_time = plan["critical_path_by_timeout"]
    print(f"  critical path by timeout ({len(by_time)} tasks): {' -> '.join(by_time[:30])}"
          + (" -> ..." if len(by_time) > 30 else ""))
    print(f"  worst case: {seconds(plan['worst_case_seconds'])}: timeout_seconds x (retry_count + 1) along"
          f" that path; a task without timeout_seconds counts {plan['default_timeout_seconds']:g} s")
    expected = plan["expected_completion_time"]
    if expected is None:
        print("  expected_completion_time: not given")
    else:
        verdict = "is within it" if plan["within_expected"] else \
            f"exceeds it by {seconds(plan['worst_case_seconds'] - expected)}"
        print(f"  expected_completion_time: {seconds(expected)}; the worst case {verdict}")


def main(args) -> int:
    from runner import AltLimits, AltValidationError, ConfigurationError, parse_alt_file, plan_alt_file

    try:
        limits = AltLimits(max_bytes=args.max_bytes, max_tasks=args.max_tasks, max_depth=args.max_depth,
                           max_string_bytes=args.max_string_bytes, max_values=args.max_values)
    except ConfigurationError as error:
        print(f"validate: {error}", file=sys.stderr)
        return 2
    worst = 0
    for name in args.files:
        try:
            data, size = read_limited(name, limits.max_bytes)
        except OSError as error:
            print(f"{name}: cannot read: {error.strerror or error}", file=sys.stderr)
            worst = 2
            continue
        if size > limits.max_bytes:
            print(f"{name}: invalid (1 error)")
            print(f"  /: document is {size} bytes, more than the limit of {limits.max_bytes} (RUNNER_MAX_ALT_BYTES)")
            worst = max(worst, 1)
            continue
        try:
            alt = parse_alt_file(data, args.max_errors, limits)
        except AltValidationError as error:
            print(f"{name}: invalid ({error.total} error{'s' if error.total != 1 else ''})")
            for issue in error.issues:
                print(f"  {issue}")
            if error.total > len(error.issues):
                print(f"  ... and {error.total - len(error.issues)} more")
            worst = max(worst, 1)
            continue
        print(f"{name}: valid ALT file '{alt.id}' ({len(alt.tasks)} tasks, mode {alt.mode})")
        if args.plan:
            print_plan(plan_alt_file(alt) if args.default_timeout is None
                       else plan_alt_file(alt, args.default_timeout))
    return worst


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def register(subparsers) -> None:
    parser = subparsers.add_parser("validate", help="check ALT files; exit 0 valid, 1 invalid, 2 unreadable")
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--max-errors", type=positive_int, default=20, help="errors listed per file (default 20)")
    parser.add_argument("--plan", action="store_true",
                        help="also print the graph: order, levels, roots, leaves, critical paths, worst case")
    parser.add_argument("--default-timeout", type=float, default=None, metavar="SECONDS",
                        help="worst case of a task without timeout_seconds, for --plan (default 300)")
    for flag, variable in (("--max-bytes", "RUNNER_MAX_ALT_BYTES"), ("--max-tasks", "RUNNER_MAX_TASKS"),
                           ("--max-depth", "RUNNER_MAX_ALT_DEPTH"),
                           ("--max-string-bytes", "RUNNER_MAX_STRING_BYTES"),
                           ("--max-values", "RUNNER_MAX_JSON_VALUES")):
        parser.add_argument(flag, type=positive_int, default=None, metavar="N",
                            help=f"limit (default: ${variable} or the built-in default)")
    parser.set_defaults(func=main)
