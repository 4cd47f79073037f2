"""`show LAST_DIR`: the summary and statistics of a LAST file, for a person (or --json).

A directory with a journal but no last.json is a run still going or one interrupted
(killed): its progress so far comes from the journal (journal_summary).
"""
import sys
from pathlib import Path

from runner.errors import JournalError
from runner.terminal import strip_controls

DESCRIPTION = """\
The summary of a run, finished or not: its outcome, its statistics and each task that did
not complete with its status and error. A run still going or interrupted is read from its
journal."""
EPILOG = """\
examples:
  python -m runner show output/0190c7e2-...
  python -m runner show output/0190c7e2-.../last.json --json

exit codes:
  0  shown
  2  not a LAST directory, or unreadable"""


FAILURES_SHOWN = 20


def describe(record: dict) -> str:
    from runner.last.reader import result_count, run_mode, skip_reason, task_status

    # The reader checked the shapes; a part written as null is shown as absent.
    statistics = record.get("statistics") or {}
    counts = statistics.get("status_counts") or {}
    critical = statistics.get("critical_path") or {}
    colour = _palette()
    lines = [
        colour.status(strip_controls(str(record.get("summary", ""))), record.get("status")),
        "",
        f"LAST id        {record['id']}",
        f"ALT file       {record.get('alt_file_id')} ({record.get('title')}), mode {run_mode(record)}",
        f"status         {record.get('status')}, success rate {record.get('success_rate', 0.0):.2%}",
        f"tasks          {statistics.get('total_tasks', result_count(record['task_results']))}: "
        + ", ".join(f"{count} {status}" for status, count in counts.items() if count),
        f"wall time      {record.get('execution_time_ms', 0.0) / 1000:.3f} s "
        f"({record.get('start_time')} to {record.get('end_time')})",
    ]
    if statistics.get("total_task_time_ms") is not None:
        lines.append(f"task time      {statistics['total_task_time_ms'] / 1000:.3f} s, "
                     f"parallelism {statistics.get('parallelism') or 0.0:.2f}")
    if critical.get("task_ids"):
        path = " -> ".join(critical["task_ids"][:20]) + (" -> ..." if len(critical["task_ids"]) > 20 else "")
        lines.append(f"critical path  {(critical.get('duration_ms') or 0) / 1000:.3f} s: {path}")
    retries = statistics.get("retries") or {}
    if retries.get("total"):
        count = len(retries.get("tasks") or [])
        lines.append(f"retries        {retries['total']} in {count} task{'s' if count != 1 else ''}")
    for model, usage in (statistics.get("tokens") or {}).items():
        lines.append(f"tokens         {model}: {usage.get('prompt_tokens')} prompt + "
                     f"{usage.get('completion_tokens')} completion in {usage.get('calls')} "
                     f"call{'' if usage.get('calls') == 1 else 's'}")
    skipped = [(result.get("task_id"), skip_reason(result)) for result in record["task_results"].values()
               if isinstance(result, dict) and task_status(result) == "skipped"]
    if skipped:
        lines.append(f"skipped        " + "; ".join(f"{task_id}: {why}" for task_id, why in skipped[:10])
                     + (f"; ... {len(skipped) - 10} more" if len(skipped) > 10 else ""))
    lines.append(f"artifacts      {len(record.get('artifacts') or [])}")
    lines.extend(describe_not_completed(not_completed(record)))
    return "\n".join(lines)


def not_completed(record: dict) -> list[dict]:
    """The tasks that did not complete, each with its status and error: failed, timed out
    and cancelled ones first, then skipped, then those never reported."""
    from runner.last.reader import ATTENTION_ORDER, skip_reason, task_status

    results = [r for r in (record.get("task_results") or {}).values()
               if isinstance(r, dict) and task_status(r) != "completed"]
    results.sort(key=lambda r: ATTENTION_ORDER.get(task_status(r), 9))
    return [{"task_id": r.get("task_id"), "status": task_status(r), "error": skip_reason(r) or r.get("error")}
            for r in results]


def describe_not_completed(tasks: list[dict]) -> list[str]:
    if not tasks:
        return []
    lines = ["", f"not completed  {len(tasks)} task{'s' if len(tasks) != 1 else ''}:"]
    for task in tasks[:FAILURES_SHOWN]:
        error = f": {strip_controls(str(task['error']))}" if task["error"] else ""
        lines.append(f"  {_palette().status(format(task['status'], '<9'), task['status'])} "
                     f"{task['task_id']}{error}")
    if len(tasks) > FAILURES_SHOWN:
        lines.append(f"  ... and {len(tasks) - FAILURES_SHOWN} more (--json lists them all)")
    return lines


def _palette():
    """Colour for what show prints on standard output (runner.colour decides whether)."""
    from runner.colour import Palette
    return Palette(sys.stdout)


def journal_summary(directory: Path) -> dict:
    """Progress of a run from its journal: state, counts, running tasks, failures so far.
    JournalError/OSError when the directory holds no readable journal."""
    import orjson

    from runner.execution import processes
    from runner.execution.journal import RunState
    from runner.execution.resume import began

    run = RunState(directory)
    try:
        tasks = [t.get("id") for t in orjson.loads(run.alt_source()).get("tasks", [])]
    except (OSError, JournalError, orjson.JSONDecodeError, AttributeError):
        tasks = None
    counts = run.counts()
    done = len(run.results)
    unsuccessful = [{"task_id": r["task_id"], "status": r.get("status"), "error": r.get("error")}
                    for r in run.results.values() if r.get("status") in ("failed", "timeout", "cancelled")]
    return {
        "last_id": run.last_id, "state": run.state, "alt_id": run.start.get("alt_id"),
        "alt_file": run.start.get("alt_file"), "mode": run.start.get("mode"), "seed": run.start.get("seed"),
        "started_at": run.start.get("started_at"), "pid": run.start.get("pid"),
        # A resume records itself before its own journal begins: one that never began did nothing.
        "resumed_from": run.start.get("resumed_from"),
        "resumed_by": [r for r in run.resumed_by if began(r, run.last_id)],
        "total": len(tasks) if tasks is not None else None, "done": done,
        "running": sorted(run.running), "running_attempts": dict(sorted(run.running.items())),
        "directory": str(directory), "pending": (len(tasks) - done - len(run.running)) if tasks is not None else None,
        "counts": counts, "attempts": run.attempts, "failures": unsuccessful,
        # Attempts in flight that were placed on a Dask worker: where each was running.
        "workers": [{"task_id": task_id, "attempt": attempt, "worker": run.workers[task_id][1]}
                    for task_id, attempt in sorted(run.running.items())
                    if run.workers.get(task_id, (None,))[0] == attempt],
        # Commands of a dead run still running (kill -9 could not stop them): resume waits for them.
        "processes": [] if run.live else [
            {"task_id": r.get("task_id"), "attempt": r.get("attempt"), "pgid": r.get("pgid")}
            for r in processes.live(processes.recorded(directory))],
    }


def describe_journal(summary: dict) -> str:
    total = summary["total"] if summary["total"] is not None else "?"
    if summary["state"] == "running":
        state = "no LAST file yet"
    elif summary["started_at"] is None:
        # As resume says: a journal without its first record names no workspace, mode or seed.
        state = "killed before its journal's first record: nothing to resume"
    else:
        state = f"no LAST file; python -m runner resume {summary['directory']} finishes it"
    if summary["resumed_by"]:
        latest = summary["resumed_by"][-1]
        state = f"no LAST file; resumed by {latest['last_id']}: python -m runner show {latest['directory']}"
    lines = [f"LAST id        {summary['last_id']} ({summary['state']}: {state})"]
    if summary["started_at"] is not None:
        lines += [
            f"ALT file       {summary['alt_id']}" + (f" ({summary['alt_file']})" if summary["alt_file"] else "")
            + f", mode {summary['mode']}" + (f", seed {summary['seed']}" if summary["seed"] is not None else ""),
            f"started        {summary['started_at']} (pid {summary['pid']})"]
    lines += [
        f"tasks          {summary['done']} of {total} done"
        + "".join(f", {n} {status}" for status, n in summary["counts"].items())
        + f"; {len(summary['running'])} running, {summary['pending'] if summary['pending'] is not None else '?'} pending",
    ]
    if summary["resumed_from"]:
        lines.append(f"resumed from   {summary['resumed_from']}")
    if summary["running"]:
        if summary["state"] == "running":
            lines.append("running        " + ", ".join(summary["running"][:FAILURES_SHOWN]))
        else:
            from runner.execution.resume import interrupted_attempt
            workers = {w["task_id"]: w["worker"] for w in summary.get("workers") or ()}
            for task_id, attempt in list(summary["running_attempts"].items())[:FAILURES_SHOWN]:
                where = f" (on Dask worker {workers[task_id]})" if task_id in workers else ""
                lines.append(f"  interrupted {task_id}: {interrupted_attempt(attempt).split(': ', 1)[1]}{where}")
    for process in summary.get("processes") or ():
        lines.append(f"still running  task {process['task_id']} (attempt {process['attempt']}, process group "
                     f"{process['pgid']}): the run is dead but its command is not; python -m runner resume waits for it")
    for failure in summary["failures"][:FAILURES_SHOWN]:
        status = f"{failure['status']:<9}"
        lines.append(f"  {_palette().status(status, failure['status'])} {failure['task_id']}: "
                     f"{strip_controls(str(failure['error']))}")
    return "\n".join(lines)


def _show_journal(args) -> int | None:
    """`show` of a run without last.json (running or interrupted); None when there is no journal."""
    import orjson

    directory = Path(args.last_dir)
    if not directory.is_dir() or (directory / "last.json").exists() or (directory / "last.json.gz").exists() \
            or not (directory / "journal.jsonl").is_file():
        return None
    try:
        summary = journal_summary(directory)
    except (OSError, JournalError) as error:
        print(f"show: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    else:
        print(describe_journal(summary))
    return 0


def main(args) -> int:
    import orjson

    from runner import LastFileError
    from runner.last.reader import load_last_summary

    shown = _show_journal(args)
    if shown is not None:
        return shown
    try:
        # Only the results of tasks that did not complete: at 200k tasks, reading them all
        # was most of show's time.
        record = load_last_summary(args.last_dir)
    except LastFileError as error:
        print(f"show: {error}", file=sys.stderr)
        return 2
    if args.json:
        keys = ("id", "alt_file_id", "title", "status", "success_rate", "execution_time_ms", "summary", "statistics")
        shown = {k: record.get(k) for k in keys}
        shown["not_completed"] = not_completed(record)
        print(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
    else:
        print(describe(record) + resumed_by_lines(Path(args.last_dir)))
    return 0


def resumed_by_lines(path: Path) -> str:
    """'resumed by ...' lines for a finished run that a resume took further, from its journal."""
    from runner.execution.journal import JOURNAL_NAME, RunState
    from runner.execution.resume import began

    directory = path if path.is_dir() else path.parent
    if not (directory / JOURNAL_NAME).is_file():
        return ""
    try:
        run = RunState(directory)
    except (OSError, JournalError):
        return ""
    resumes = [r for r in run.resumed_by if began(r, run.last_id)]
    return "".join(f"\nresumed by     {r['last_id']}: python -m runner show {r['directory']}" for r in resumes)


def register(subparsers) -> None:
    parser = subparsers.add_parser("show", help="print the summary of a run: finished, running or interrupted",
                                   description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("last_dir", metavar="LAST_DIR", help="a LAST directory, last.json or last.json.gz")
    parser.add_argument("--json", action="store_true",
                        help="the summary and statistics as JSON, with not_completed: [{task_id, status, error}]")
    parser.set_defaults(func=main)
