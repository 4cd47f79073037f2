"""LAST files on disk: the step after the core's LAST record.

- write: write_last_file, the one function every door calls to write a LAST file: the
  core's record, then the directory, then the delivery to NATS (delivery)
- options: which products a LAST directory gets (RUNNER_* variables, CLI flags)
- directory: writes <out>/<last_id>/ with every product, all or nothing
- atomic_files: temporary file, fsync, rename, so no file is ever half-written
- artifacts: files extracted from task outputs and the workspace
- graph_drawing: graph.dot and graph.svg (GraphViz or a built-in layout)
- report: report.html, a sandboxed Jinja2 template in templates/, rendered from the views of
  report_view (timeline: the Gantt chart; template_cache: the compiled page between processes)
- reader: load_last, reading last.json or last.json.gz back
- record_values: values of a record that may be old or edited, for the report's views

The record itself (statistics, graph, critical path) is built in the Cython core
(runner/core/last_record.pxi); this package only turns it into files. The core imports
nothing of it: librunner loads without runner.last (tests/test_import_direction.py).
"""
