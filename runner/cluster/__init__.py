"""Past one process: many ALT files at once, and work placed on a Dask cluster (`run --dask`).

`run_many` runs ALT files in parallel on this machine, or each on a worker of a Dask
cluster whose results come back here, where the LAST directories are written. With one
big file, `placement` puts its CPU-bound tasks on workers while the executor keeps its
own scheduling. Only the Dask parts import `distributed`, so runs without --dask never
load it.
"""
from __future__ import annotations


def run_many(files, output_dir=None, **options) -> dict:
    """Runs every ALT file in `files`; returns {file: LAST directory or "ERROR: <message>"}.

    Options: mode, max_concurrency, seed (as runner.run), jobs (files at once on this
    machine, default 4), dask (a scheduler address, "local:N", or None for
    $RUNNER_DASK_SCHEDULER / this machine), environ. ConfigurationError for unusable
    options, before anything runs. Ctrl-C stops the files (running ones get their grace
    period, their LAST files are written) and then raises runner.cluster.many.FilesInterrupted
    (a KeyboardInterrupt) whose `entries` is the mapping.
    """
    from runner.cluster.many import entries, run_files

    return entries(run_files(files, output_dir, **options))


__all__ = ["run_many"]
