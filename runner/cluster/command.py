"""`run` with several files or with --dask: the command-line side of runner.cluster.

Several files: one JSON object {file: LAST directory or "ERROR: <message>"} on stdout;
exit 0 when every task of every file completed, 1 otherwise, 2 for unusable options
(including a Dask scheduler that cannot be reached), 130 after Ctrl-C and 143 after
SIGTERM. One file with --dask: the ordinary single-file run, its CPU-bound tasks placed
on workers.
"""
from __future__ import annotations

import sys

INTERRUPTED = 130
TERMINATED = 143


def run_several(args) -> int:
    import orjson

    from runner import ConfigurationError
    from runner.cluster.many import Stop, entries, run_files

    def progress(outcome) -> None:
        if not args.quiet:
            said = outcome.summary or outcome.entry
            if said.startswith(f"ERROR: {outcome.path}: "):      # the error names the file already
                said = "ERROR: " + said[len(f"ERROR: {outcome.path}: "):]
            print(f"{outcome.path}: {said}", file=sys.stderr, flush=True)

    for option, given in (("--workspace", args.workspace), ("--stream", args.stream),
                          ("--record", getattr(args, "record", None)), ("--replay", getattr(args, "replay", None))):
        if given:
            print(f"{option} applies to one file; several were given", file=sys.stderr)
            return 2
    if "-" in args.files:
        print("- (the ALT file on standard input) can only be run alone; several files were given",
              file=sys.stderr)
        return 2
    stop = Stop()
    try:
        outcomes = run_files(args.files, args.out, mode=args.mode, max_concurrency=args.max_concurrency,
                             seed=args.seed, jobs=args.jobs, dask=args.dask, handle_signals=True,
                             on_file=progress, stop=stop)
    except ConfigurationError as error:
        print(f"configuration: {error}", file=sys.stderr)
        return 2
    print(orjson.dumps(entries(outcomes), option=orjson.OPT_INDENT_2).decode())
    if stop.signal_name is not None or any(outcome.interrupted for outcome in outcomes):
        return TERMINATED if stop.signal_name == "SIGTERM" else INTERRUPTED
    return 0 if all(outcome.all_completed for outcome in outcomes) else 1


def run_one_placed(args, run_file) -> int:
    """One file, its heavy tasks on the cluster; `run_file(args, **execute_options)` is the
    ordinary single-file command."""
    from runner import ConfigurationError
    from runner.cluster import connection
    from runner.cluster.placement import DaskPlacement

    try:
        address = connection.chosen_address(args.dask)
        with connection.connect(address) as client:
            # Ctrl-C and SIGTERM are the single run's: its cancellations reach the workers.
            return run_file(args, placement=DaskPlacement(client))
    except ConfigurationError as error:
        print(f"configuration: {error}", file=sys.stderr)
        return 2
