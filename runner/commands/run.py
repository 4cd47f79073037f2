"""`run FILE`: execute an ALT file and write its LAST directory, printed as the last line.

Several files, or --dask, go through runner.cluster.command (one JSON object of LAST
directories; files or heavy tasks on a Dask cluster).

Exit 0 when every task completed, 1 when any did not, 2 when the file, an option or the
set-up is unusable (checked before the first task: runner.execution.preflight), 3 when the
LAST file was written but not published to the archive and RUNNER_NATS_REQUIRED=true, 4
when the LAST file could not be written at the end (the run's journal keeps the results),
5 when neither the LAST file nor the journal could be written (the results are lost), 130 after Ctrl-C and 143 after SIGTERM (the LAST file of what finished is still written).
Progress goes to stderr: a bar on a terminal, plain lines otherwise; so does a publication
that failed.
"""
import gc
import os
import sys
from pathlib import Path

from runner.terminal import escape_controls, strip_controls

DESCRIPTION = """\
Execute an ALT file: check it and the set-up first (nothing runs if either is wrong), run its
tasks, write its LAST directory and print that directory as the last line. Progress goes to
standard error: a bar on a terminal, a line per event otherwise."""
EPILOG = """\
examples:
  python -m runner run examples/alt/demo.json --out output
  python -m runner run plan.yaml --replay calls.jsonl --json
  python -m runner run a.json b.json c.json --out output --jobs 2

exit codes:
  0  every task completed
  1  a task did not complete (show DIR names it and why)
  2  the file, an option or the set-up is unusable (checked before the first task)
  3  the LAST file was written but not published (RUNNER_NATS_REQUIRED=true)
  4  the LAST file could not be written at the end (the journal keeps the results)
  5  neither the LAST file nor the journal could be written: the results are not on disk
  130, 143  interrupted by Ctrl-C, SIGTERM (the LAST file of what finished is written)
A run whose journal cannot be written once it began stops (exit 1): resume runs the rest."""

INTERRUPTED = 130
TERMINATED = 143
NOT_DELIVERED = 3
LAST_FILE_NOT_WRITTEN = 4
NOTHING_WRITTEN = 5


def interrupted_code(outcome) -> int:
    """The exit code of a run stopped before its end: 143 by SIGTERM, 130 by Ctrl-C, 1 by its
    journal's disk (its pending tasks did not complete; Journal.when_failed), 0 when that came
    once every task had."""
    from runner.execution.run import JOURNAL_FAILURE

    if outcome.signal_name == JOURNAL_FAILURE:
        return 0 if outcome.all_completed else 1
    return TERMINATED if outcome.signal_name == "SIGTERM" else INTERRUPTED


def say_interrupted(outcome, resumable) -> None:
    """The line a run stopped before its end leaves on stderr: what stopped it, and the
    directory to resume (`resumable`, None when there is none)."""
    if outcome.interrupted and not outcome.all_completed:
        print(f"interrupted{'' if outcome.signal_name is None else f' by {outcome.signal_name}'}: pending tasks "
              "were cancelled" + (f" (python -m runner resume {resumable} runs them)" if resumable else ""),
              file=sys.stderr)


def last_file_failure(error) -> int:
    """4 when the run's journal keeps the results the LAST file could not hold, 5 when it
    could not be written either (runner.execution marks that error journal_kept=False)."""
    return LAST_FILE_NOT_WRITTEN if getattr(error, "journal_kept", True) else NOTHING_WRITTEN


def main(args) -> int:
    if len(args.files) > 1:
        from runner.cluster.command import run_several
        return run_several(args)
    if args.dask is not None or os.environ.get("RUNNER_DASK_SCHEDULER", "").strip():
        from runner.cluster.command import run_one_placed
        return run_one_placed(args, run_file)
    return run_file(args)


class ModelFreeze:
    """The ALT model, built by the core with the collector paused (a million tasks: millions
    of objects, no reference cycles), is frozen once it is built (gc.freeze: out of the
    collector's sight, freed by reference counting as ever), so that the collections that
    follow do not walk it again and again (about a second per million objects each).

    Only that moment's objects are frozen: what the run makes later, task handlers' cyclic
    garbage included, is collected as ever. Nothing is done when something else in the
    process froze objects (the service does): thaw() would thaw those too."""

    def __init__(self):
        self.frozen = False

    def freeze(self) -> None:
        if gc.isenabled() and not gc.get_freeze_count():
            gc.freeze()
            self.frozen = True

    def thaw(self) -> None:
        if self.frozen:
            self.frozen = False
            gc.unfreeze()


def run_file(args, **execute_options) -> int:
    model = ModelFreeze()
    try:
        return _run_file(args, model, **execute_options)
    finally:
        model.thaw()


def _run_file(args, model: ModelFreeze, **execute_options) -> int:
    from runner import AltValidationError, ConfigurationError, DeliveryError, LastFileError, RunnerError, \
        parse_alt_file
    from runner.alt_input import AltInputError, read_alt_input
    from runner.execution.run import RunRequest, execute_request
    from runner.execution.progress import ProgressDisplay

    path = args.files[0]
    try:
        data = read_alt_input(path)
    except AltInputError as error:
        print(escape_controls(f"{path}: {error}"), file=sys.stderr)
        return 2
    except ConfigurationError as error:
        print(f"configuration: {error}", file=sys.stderr)
        return 2
    try:
        alt = parse_alt_file(data, strict=True if args.strict else None)
    except (AltValidationError, ConfigurationError) as error:
        report_invalid(path, error)
        return 2
    del data        # alt.source is the same bytes, let go of once the run has written alt.json
    model.freeze()
    report_warnings(path, alt)
    environ = _cassette_environment(args)
    # Tasks placed on a Dask cluster run with the workers' set-up, not this machine's.
    if execute_options.get("placement") is None and not preflight_passes(path, alt, args.out, environ):
        return 2
    from runner.execution.progress import task_labels
    display = None if args.quiet else ProgressDisplay(sys.stderr, labels=task_labels(alt))
    import logging
    logging.getLogger("runner").addFilter(_said_by_the_command)
    try:
        outcome = execute_request(RunRequest(
            alt, args.out, environ=environ, mode=args.mode, max_concurrency=args.max_concurrency, seed=args.seed,
            workspace=args.workspace, on_event=display, stream=args.stream, handle_sigint=True,
            alt_file=None if path == "-" else Path(path).resolve(), release_source=True, **execute_options))
    except ConfigurationError as error:
        print(escape_controls(f"configuration: {error}"), file=sys.stderr)
        return 2
    except DeliveryError as error:
        print(escape_controls(f"delivery: {error}"), file=sys.stderr)
        print(error.written.directory)
        return NOT_DELIVERED
    except LastFileError as error:
        print(f"run failed: {error}", file=sys.stderr)
        return last_file_failure(error)
    except RunnerError as error:
        print(escape_controls(f"run failed: {error}"), file=sys.stderr)
        return 1
    finally:
        if display is not None:
            display.close()
    from runner.colour import Palette
    print(Palette(sys.stderr).status(strip_controls(outcome.lean_record.get("summary", "")), outcome.lean_record.get("status")),
          file=sys.stderr)
    from runner.execution.journal import JOURNAL_NAME
    say_interrupted(outcome, outcome.directory if (outcome.directory / JOURNAL_NAME).is_file() else None)
    if outcome.delivery is not None and not outcome.delivery["published"]:
        from runner.last.delivery import RECORD_NAME, failure_text
        print(f"delivery: {failure_text(outcome.delivery)} (recorded in {outcome.directory / RECORD_NAME})",
              file=sys.stderr)
    if args.json:
        import orjson
        print(orjson.dumps(outcome_summary(outcome), option=orjson.OPT_INDENT_2).decode())
    else:
        print(outcome.directory)
    if outcome.interrupted:
        return interrupted_code(outcome)
    return 0 if outcome.all_completed else 1


def _said_by_the_command(record) -> bool:
    """A logging filter: a failed publication is printed by `run` itself (once, with where it
    is recorded), not also by the library's log."""
    return not getattr(record, "delivery_failure", False)


def _cassette_environment(args):
    """The environment of the run: --record/--replay are RUNNER_AI_RECORD/RUNNER_AI_REPLAY."""
    import os

    environ = os.environ
    if args.record or args.replay:
        environ = dict(os.environ)
        environ.pop("RUNNER_AI_RECORD" if args.replay else "RUNNER_AI_REPLAY", None)
        if args.record:
            environ["RUNNER_AI_RECORD"] = str(Path(args.record).resolve())
        if args.replay:
            environ["RUNNER_AI_REPLAY"] = str(Path(args.replay).resolve())
            environ["RUNNER_AI_REPLAY_SPEED"] = args.replay_speed
    return environ


def preflight_passes(path: str, alt, out, environ) -> bool:
    """runner.execution.preflight before the first task: False (printed) when the run cannot start."""
    from runner import ConfigurationError
    from runner.execution import preflight

    try:
        preflight.check(alt, out, environ)
    except ConfigurationError as error:
        found = getattr(error, "problems", None)
        if found and len(found) > 1:
            print(escape_controls(f"{path}: cannot start the run ({len(found)} problems):"), file=sys.stderr)
            for problem in found:
                print(escape_controls(f"  - {problem}"), file=sys.stderr)
        else:
            print(escape_controls(f"{path}: {error}"), file=sys.stderr)
        return False
    return True


def outcome_summary(outcome) -> dict:
    """What --json prints: where the LAST file is, and which tasks did not complete and why."""
    counts: dict = {}
    for result in outcome.results.values():
        counts[result.status] = counts.get(result.status, 0) + 1
    return {
        "last_id": outcome.last_id, "directory": str(outcome.directory),
        "status": outcome.lean_record.get("status"), "success_rate": outcome.lean_record.get("success_rate"),
        "all_completed": outcome.all_completed, "interrupted": outcome.interrupted, "status_counts": counts,
        "not_completed": [{"task_id": task_id, "status": r.status, "error": r.error}
                          for task_id, r in outcome.results.items() if r.status != "completed"],
    }


def report_invalid(name: str, error) -> None:
    issues = getattr(error, "issues", None)
    if issues is None:     # RUNNER_STRICT with an unusable value
        print(escape_controls(f"configuration: {error}"), file=sys.stderr)
        return
    print(escape_controls(f"{name}: invalid ({error.total} error{'s' if error.total != 1 else ''})"),
          file=sys.stderr)
    for issue in issues:
        print(escape_controls(f"  {issue.described()}"), file=sys.stderr)
    for issue in error.warnings:
        print(escape_controls(f"  warning: {issue.described()}"), file=sys.stderr)


def report_warnings(name: str, alt) -> None:
    """Unknown fields and unused parameters, before anything runs (--strict refuses them)."""
    for issue in alt.warnings:
        print(escape_controls(f"{name}: warning: {issue.described()}"), file=sys.stderr)
    if alt.warning_total > len(alt.warnings):
        print(f"{name}: ... and {alt.warning_total - len(alt.warnings)} more warnings", file=sys.stderr)


def _positive(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, found {text!r}")
    return value


def _seed(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, found {text!r}")
    return value


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="execute ALT files; print the LAST directory last",
                                   description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="an ALT file (JSON or YAML); - reads one from standard input; several files run in "
                             "parallel and print one JSON object {file: LAST directory}")
    parser.add_argument("--strict", action="store_true",
                        help="refuse unknown fields and parameters instead of warning (also RUNNER_STRICT=true)")
    parser.add_argument("--out", metavar="DIR", help="where the LAST directory goes (default $RUNNER_OUTPUT_DIR or ./output)")
    parser.add_argument("--mode", choices=("normal", "dream", "explore", "chaos"), help="override the file's mode")
    parser.add_argument("--max-concurrency", type=_positive, metavar="N",
                        help="tasks running at once (default $RUNNER_MAX_CONCURRENT_TASKS or 8)")
    parser.add_argument("--seed", type=_seed, metavar="S", help="chaos mode's seed (default: random, recorded)")
    parser.add_argument("--workspace", metavar="DIR", help="the directory file and command tasks work in "
                                                           "(default: a new temporary directory)")
    parser.add_argument("--stream", action="store_true", help="stream AI answers to stderr as they arrive")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    cassette = parser.add_mutually_exclusive_group()
    cassette.add_argument("--record", metavar="FILE", help="record every AI call in FILE (a JSON Lines cassette)")
    cassette.add_argument("--replay", metavar="FILE", help="answer every AI call from FILE; no connection is made")
    parser.add_argument("--replay-speed", choices=("instant", "realtime"), default="instant",
                        help="replayed streams: at once (default) or at their recorded pace")
    parser.add_argument("--jobs", type=_positive, metavar="N",
                        help="ALT files running at once on this machine (several files; default 4)")
    parser.add_argument("--dask", metavar="ADDRESS",
                        help="run on a Dask cluster: tcp://HOST:PORT of a scheduler, or local:N to start N worker "
                             "processes here (default $RUNNER_DASK_SCHEDULER); needs pip install 'librunner[dask]'")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON summary instead of the directory: last_id, directory, status, "
                             "success_rate, status_counts, not_completed [{task_id, status, error}]")
    parser.set_defaults(func=main)
