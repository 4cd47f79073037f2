"""`resume DIR`: finish or redo a run from its LAST directory, without paying twice.

Keeps each completed result whose task is unchanged and runs the rest; prints the new
LAST directory last, like `run`, with the same exit codes. --dry-run prints the plan,
task by task, and runs nothing.
"""
import sys
from pathlib import Path


DESCRIPTION = """\
Finish or redo a run from its LAST directory: completed results whose task is unchanged are
kept (a completed command or file operation is never repeated unless --force), the rest runs
into a new LAST directory, printed last. A finished run with nothing to redo is left as it is."""
EPILOG = """\
examples:
  python -m runner resume output/0190c7e2-...
  python -m runner resume output/0190c7e2-... --alt edited.json --dry-run
  python -m runner resume output/0190c7e2-... --from summary

exit codes:
  0  every task completed, or there was nothing to do
  1  a task did not complete
  2  DIR is not a run's LAST directory, is being resumed, or an option is unusable
  130, 143  interrupted by Ctrl-C, SIGTERM"""


def main(args) -> int:
    from runner import AltValidationError, ConfigurationError, DeliveryError, LastFileError, RunnerError
    from runner.commands.run import NOT_DELIVERED, interrupted_code, last_file_failure, say_interrupted
    from runner.execution.progress import ProgressDisplay
    from runner.execution.resume import ResumeError, plan, resume

    alt_source = None
    if args.alt is not None:
        from runner.alt_input import AltInputError, read_alt_input
        try:
            alt_source = read_alt_input(args.alt)
        except AltInputError as error:
            print(f"{args.alt}: {error}", file=sys.stderr)
            return 2
        except ConfigurationError as error:
            print(f"configuration: {error}", file=sys.stderr)
            return 2
    options = dict(only_failed=args.only_failed, from_task=args.from_task, force=tuple(args.force or ()))
    try:
        chosen = plan(args.dir, alt_source, **options)
        if args.dry_run:
            print(chosen.describe())
            return 0
        if chosen.carried_on:
            print(f"resume: {args.dir} was resumed by {chosen.source.directory}: carrying that run on",
                  file=sys.stderr)
        if chosen.nothing_to_do:
            print(f"resume: nothing to do: every task of {chosen.source.directory} completed and is unchanged; "
                  f"nothing was written (--force TASK runs a task again)", file=sys.stderr)
            return 0
        display = None if args.quiet else ProgressDisplay(sys.stderr)
        try:
            outcome = resume(args.dir, alt_source, args.out, workspace=args.workspace, handle_sigint=True,
                             on_event=display, alt_file=Path(args.alt).resolve() if args.alt else None,
                             **options)
        finally:
            if display is not None:
                display.close()
    except ResumeError as error:
        print(f"resume: {error}", file=sys.stderr)
        return 2
    except AltValidationError as error:
        print(f"{args.alt or args.dir}: invalid ALT file ({error.total} error{'s' if error.total != 1 else ''})",
              file=sys.stderr)
        for issue in error.issues:
            print(f"  {issue.described()}", file=sys.stderr)
        return 2
    except ConfigurationError as error:
        print(f"configuration: {error}", file=sys.stderr)
        return 2
    except DeliveryError as error:
        print(f"delivery: {error}", file=sys.stderr)
        print(error.written.directory)
        return NOT_DELIVERED
    except LastFileError as error:
        print(f"resume failed: {error}", file=sys.stderr)
        return last_file_failure(error)
    except RunnerError as error:
        print(f"resume failed: {error}", file=sys.stderr)
        return 1
    from runner.colour import Palette
    print(Palette(sys.stderr).status(outcome.lean_record.get("summary", ""), outcome.lean_record.get("status")),
          file=sys.stderr)
    say_interrupted(outcome, args.dir)      # the chain's latest resume is carried on from it (latest_resume)
    print(outcome.directory)
    if outcome.interrupted:
        return interrupted_code(outcome)
    return 0 if outcome.all_completed else 1


def register(subparsers) -> None:
    parser = subparsers.add_parser("resume", help="finish or redo a run from its LAST directory, without paying twice",
                                   description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("dir", metavar="DIR", help="a run's LAST directory, finished or interrupted")
    parser.add_argument("--alt", metavar="FILE", help="an edited ALT file: changed tasks and their dependents re-run")
    parser.add_argument("--out", metavar="OUT", help="where the new LAST directory goes (default: beside DIR)")
    parser.add_argument("--only-failed", action="store_true",
                        help="keep every completed result, edited or not; run only what did not complete")
    parser.add_argument("--from", dest="from_task", metavar="TASK", help="re-run TASK and everything after it")
    parser.add_argument("--force", action="append", metavar="TASK",
                        help="re-run TASK even if it completed (also a system_command or file_operation)")
    parser.add_argument("--workspace", metavar="DIR", help="work here instead of the earlier run's workspace")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, task by task; run nothing")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    parser.set_defaults(func=main)
