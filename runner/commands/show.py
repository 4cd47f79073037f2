"""`show LAST_DIR`: the summary and statistics of a LAST file, for a person (or --json)."""
import sys


def describe(record: dict) -> str:
    from runner.last.reader import run_mode

    statistics = record.get("statistics", {})
    counts = statistics.get("status_counts", {})
    critical = statistics.get("critical_path") or {}
    lines = [
        record.get("summary", ""),
        "",
        f"LAST id        {record['id']}",
        f"ALT file       {record.get('alt_file_id')} ({record.get('title')}), mode {run_mode(record)}",
        f"status         {record.get('status')}, success rate {record.get('success_rate', 0.0):.2%}",
        f"tasks          {statistics.get('total_tasks', len(record['task_results']))}: "
        + ", ".join(f"{count} {status}" for status, count in counts.items() if count),
        f"wall time      {record.get('execution_time_ms', 0.0) / 1000:.3f} s "
        f"({record.get('start_time')} to {record.get('end_time')})",
    ]
    if "total_task_time_ms" in statistics:
        lines.append(f"task time      {statistics['total_task_time_ms'] / 1000:.3f} s, "
                     f"parallelism {statistics.get('parallelism', 0.0):.2f}")
    if critical.get("task_ids"):
        path = " -> ".join(critical["task_ids"][:20]) + (" -> ..." if len(critical["task_ids"]) > 20 else "")
        lines.append(f"critical path  {critical['duration_ms'] / 1000:.3f} s: {path}")
    retries = statistics.get("retries") or {}
    if retries.get("total"):
        lines.append(f"retries        {retries['total']} in {len(retries.get('tasks', []))} tasks")
    for model, usage in (statistics.get("tokens") or {}).items():
        lines.append(f"tokens         {model}: {usage.get('prompt_tokens')} prompt + "
                     f"{usage.get('completion_tokens')} completion in {usage.get('calls')} calls")
    lines.append(f"artifacts      {len(record.get('artifacts') or [])}")
    return "\n".join(lines)


def main(args) -> int:
    import orjson

    from runner import LastFileError, load_last

    try:
        record = load_last(args.last_dir)
    except LastFileError as error:
        print(f"show: {error}", file=sys.stderr)
        return 2
    if args.json:
        keys = ("id", "alt_file_id", "title", "status", "success_rate", "execution_time_ms", "summary", "statistics")
        print(orjson.dumps({k: record.get(k) for k in keys}, option=orjson.OPT_INDENT_2).decode())
    else:
        print(describe(record))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("show", help="print the summary of a LAST directory")
    parser.add_argument("last_dir", metavar="LAST_DIR", help="a LAST directory, last.json or last.json.gz")
    parser.add_argument("--json", action="store_true", help="the summary and statistics as JSON")
    parser.set_defaults(func=main)
