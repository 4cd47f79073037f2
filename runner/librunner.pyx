# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""librunner's compiled core.

The data path, one part per file in core/, read top to bottom:
JSON or YAML bytes -> typed ALT model (alt_model, alt_yaml, alt_dialects, alt_parser) ->
validated dependency graph (dependency_graph) -> ids (ids) -> task results (task_result) ->
LAST record (last_record, from the statistics a run accumulates: run_statistics), and a LAST file's summary read back (last_skim) ->
the run store that keeps them by id (run_store). The core computes and imports nothing
above it: runner.last writes LAST directories, runner.execution runs ALT files.

Then the doors the C shim calls, one per ABI function (doors/): compiled into the same
library, they call those layers, which they import inside their functions or at
runner_init, never while this module loads (the layers import it).

It is one extension module assembled from those parts, the way uvloop builds its loop:
the C shim in csrc/ calls the `core_*` functions directly, and a C host and
`import runner` share one copy of the code and one state.
"""
include "core/errors.pxi"
include "core/host_environment.pxi"
include "core/thread_interrupt.pxi"
include "core/double_text.pxi"
include "core/sha256_nogil.pxi"
include "core/gil_handoff.pxi"
include "core/alt_model.pxi"
include "core/alt_spans.pxi"
include "core/alt_limits.pxi"
include "core/alt_yaml.pxi"
include "core/alt_dialects.pxi"
include "core/alt_parser.pxi"
include "core/unknown_fields.pxi"
include "core/control_flow.pxi"
include "core/task_parameters.pxi"
include "core/dependency_graph.pxi"
include "core/alt_plan.pxi"
include "core/ids.pxi"
include "core/task_result.pxi"
include "core/graph_json.pxi"
include "core/journal_rows.pxi"
include "core/last_record.pxi"
include "core/run_statistics.pxi"
include "core/last_skim.pxi"
include "core/graph_dot.pxi"
include "core/run_store.pxi"
include "core/scheduler.pxi"
include "doors/ffi_execute.pxi"
include "doors/ffi_runs.pxi"
include "doors/ffi.pxi"
include "doors/ffi_task_types.pxi"
