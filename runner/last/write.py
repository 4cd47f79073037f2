"""write_last_file: a LAST record from the core, written as a LAST directory, then delivered.

The one function every door calls to write a LAST file: the runs (runner.execution.run),
the C ABI (runner_generate_last_file, runner_batch_process), `python -m runner batch` and
runner.cluster. The core (runner.librunner) checks the results and builds the record and
its JSON bytes; this module does the I/O: the directory (runner.last.directory) and, with
RUNNER_NATS_URL, the publication to the archive (runner.last.delivery).
"""
from __future__ import annotations

import logging

from runner import librunner, settings
from runner.errors import DeliveryError, LastFileError
from runner.last import delivery, directory as last_directory, options as last_options
from runner.last.directory import LastWriteResult

log = logging.getLogger("runner")


def write_last_file(alt, results: dict, output_dir=None, *, execution=None, workspace=None,
                    options=None, last_id=None, statistics=None, **overrides) -> LastWriteResult:
    """Builds the LAST record of `alt` and writes its whole directory; returns a LastWriteResult.

    `results` maps task ids to TaskResult (dicts are checked with task_result_from_dict).
    `execution` holds the run's own facts (mode, seed, faults, max_concurrency, started_at,
    ended_at, wall_time_ms, interrupted); `workspace` is where file_operation tasks wrote.
    The products come from the RUNNER_* variables (runner.last.options), then `options`
    (a LastOptions) replaces them, then keyword overrides (compression=True, archive="zip",
    ...) replace single choices. output_dir None means RUNNER_OUTPUT_DIR, else ./output.
    last_id: the id of a run's journal directory, <output_dir>/<last_id>/, which exists
    already; the products are written into it, last.json last.
    With RUNNER_NATS_URL the written file is then published to the archive
    (runner.last.delivery); the outcome is in the result's `delivery`.
    statistics: the run's RunStatistics (runner.librunner), which accumulated the record's
    figures as the results arrived: taken instead of reading every result again.
    """
    # A bad RUNNER_* setting is a ConfigurationError naming the variable, before any result is read.
    chosen = options if options is not None else last_options.from_environment()
    if overrides:
        chosen = chosen.with_overrides(**overrides)
    publication = delivery.settings_from_environment()
    journaled = last_id is not None
    record = librunner.checked_last_record(alt, results, execution, last_id, statistics)
    directory = settings.output_dir(output_dir)
    try:
        written = last_directory.write_directory(record, directory, chosen, workspace, into_existing=journaled)
    except OSError as error:
        raise LastFileError(f"cannot write the LAST file of '{alt.id}' under '{directory}': "
                            f"{error.strerror or error}") from error
    log.info("wrote %s (%s)", written.directory, record["status"], extra={"alt_id": alt.id, "last_id": record["id"]})
    if publication is not None:
        # Only once the directory is complete: publication can add to a LAST file, never lose it.
        written.delivery = delivery.deliver(written.lean_record, written.directory, publication)
        if publication.required and not written.delivery["published"]:
            raise DeliveryError(f"{delivery.failure_text(written.delivery)}; the LAST file is written in "
                                f"{written.directory} (RUNNER_NATS_REQUIRED=true)", written)
    return written
