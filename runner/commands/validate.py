"""`validate FILE...`: every error of each ALT file; exit 0 valid, 1 invalid, 2 unreadable.

With --plan, a valid file's graph facts follow: order, parallel levels, roots, leaves,
critical paths and the worst-case duration against expected_completion_time.
"""
import sys

from runner.terminal import escape_controls

DESCRIPTION = """\
Check ALT files without running them: every error of every kind (structure, fields, task
parameters, prompt templates, ids, dependencies, cycles) in the order of the file, each with
its place, its task and what was expected; then the warnings (unknown fields, unused
parameters)."""
EPILOG = """\
examples:
  python -m runner validate plan.json
  python -m runner validate plans/*.yaml --strict --json
  python -m runner validate plan.json --plan

exit codes:
  0  every file is valid
  1  a file is invalid
  2  a file cannot be read, or an option is unusable"""


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
    print(f"  {plural(plan['tasks'], 'task')}, {plural(plan['dependencies'], 'dependency').replace('dependencys', 'dependencies')},"
          f" {plural(len(levels), 'level')} (widest: {plural(max(len(level) for level in levels), 'task')} in parallel)")
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


def plural(count: int, word: str) -> str:
    """'1 task', '2 tasks'."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def issue_lines(kind: str, issues, total: int) -> list[str]:
    lines = [f"  {kind}{issue}" for issue in issues]
    if total > len(issues):
        lines.append(f"  ... and {total - len(issues)} more")
    return lines


def issue_data(issues) -> list[dict]:
    return [{"path": issue.path or "/", "message": issue.message,
             **({"task_id": issue.task_id} if getattr(issue, "task_id", None) is not None else {})}
            for issue in issues]


def issue_text(issue: dict) -> str:
    """`/tasks/4/parameters/prompt (task 'fetch'): ...`: where, in which task, what."""
    task = f" (task '{issue['task_id']}')" if issue.get("task_id") is not None else ""
    return f"{issue['path']}{task}: {issue['message']}"


def check_file(name: str, limits, args, strict) -> dict:
    """One file's verdict as data: what `validate` prints, or gives as JSON with --json."""
    from runner import AltValidationError, parse_alt_file, plan_alt_file
    from runner.alt_input import AltInputError, read_alt_input

    verdict = {"file": name, "valid": False, "readable": True, "errors": [], "error_total": 0,
               "warnings": [], "warning_total": 0}
    try:
        data = read_alt_input(name, limits.max_bytes)
    except AltInputError as error:
        verdict.update(readable=error.too_large, errors=[{"path": "/", "message": str(error)}], error_total=1)
        return verdict
    try:
        alt = parse_alt_file(data, args.max_errors, limits, strict=strict)
    except AltValidationError as error:
        verdict.update(errors=issue_data(error.issues), error_total=error.total,
                       warnings=issue_data(error.warnings), warning_total=len(error.warnings))
        return verdict
    verdict.update(valid=True, alt_id=alt.id, tasks=len(alt.tasks), mode=alt.mode,
                   warnings=issue_data(alt.warnings), warning_total=alt.warning_total)
    if args.plan:
        verdict["plan"] = (plan_alt_file(alt) if args.default_timeout is None
                           else plan_alt_file(alt, args.default_timeout))
    return verdict


def say(line: str, **options) -> None:
    """print, escaped for the terminal: keys and messages come from the file."""
    print(escape_controls(line), **options)


def print_verdict(verdict: dict) -> None:
    name = verdict["file"]
    if not verdict["readable"]:
        say(f"{name}: {verdict['errors'][0]['message']}", file=sys.stderr)
        return
    warnings = [f"  warning: {issue_text(w)}" for w in verdict["warnings"]]
    if verdict["warning_total"] > len(verdict["warnings"]):
        warnings.append(f"  ... and {verdict['warning_total'] - len(verdict['warnings'])} more warnings")
    from runner.colour import Palette

    colour = Palette(sys.stdout)
    if not verdict["valid"]:
        print(f"{escape_controls(name)}: {colour.red('invalid')} ({plural(verdict['error_total'], 'error')})")
        for line in [f"  {issue_text(e)}" for e in verdict["errors"]]:
            say(line)
        if verdict["error_total"] > len(verdict["errors"]):
            say(f"  ... and {verdict['error_total'] - len(verdict['errors'])} more")
    else:
        print(f"{escape_controls(name)}: {colour.green('valid')} ALT file "
              f"'{escape_controls(verdict['alt_id'])}' ({plural(verdict['tasks'], 'task')}, "
              f"mode {verdict['mode']})")
    for line in warnings:
        say(line)
    if "plan" in verdict:
        print_plan(verdict["plan"])


def strict_option(args) -> bool | None:
    """--strict, else RUNNER_STRICT (read by the parser)."""
    return True if getattr(args, "strict", False) else None


def main(args) -> int:
    from runner import AltLimits, ConfigurationError, settings

    try:
        limits = AltLimits(max_bytes=args.max_bytes, max_tasks=args.max_tasks, max_depth=args.max_depth,
                           max_string_bytes=args.max_string_bytes, max_values=args.max_values)
        strict = strict_option(args) or settings.flag("RUNNER_STRICT")
    except (ConfigurationError, ValueError) as error:
        print(f"validate: {error}", file=sys.stderr)
        return 2
    verdicts = [check_file(name, limits, args, strict) for name in args.files]
    if args.json:
        import orjson
        print(orjson.dumps({"strict": strict, "files": verdicts}, option=orjson.OPT_INDENT_2).decode())
    else:
        for verdict in verdicts:
            print_verdict(verdict)
    return max((0 if v["valid"] else 1 if v["readable"] else 2) for v in verdicts)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def register(subparsers) -> None:
    parser = subparsers.add_parser("validate", help="check ALT files: every error and warning, nothing runs",
                                   description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("files", nargs="+", metavar="FILE", help="ALT files (JSON or YAML); - reads standard input")
    parser.add_argument("--max-errors", type=positive_int, default=20, help="errors listed per file (default 20)")
    parser.add_argument("--strict", action="store_true",
                        help="unknown fields and parameters are errors, not warnings (also RUNNER_STRICT=true)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object: {strict, files: [{file, valid, errors, warnings, ...}]}")
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
