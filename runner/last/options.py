"""What a LAST generation produces besides last.json, from RUNNER_* variables and overrides.

Read anew at each generation (not cached), so a C host can switch products on and off
between calls with setenv. Invalid values raise ConfigurationErrors
that name the variable, the value and what was expected.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace

from runner import settings
from runner.errors import ConfigurationError

ARCHIVE_FORMATS = ("none", "zip", "tar.gz")
ARCHIVE_ALIASES = {"tgz": "tar.gz", "tar_gz": "tar.gz", "targz": "tar.gz",
                   "false": "none", "off": "none", "no": "none", "0": "none"}
GRAPH_RENDERERS = ("auto", "dot", "builtin")

# Above this many tasks graph.svg shows one box per dependency level (with status counts)
# instead of one box per task: a drawing of thousands of boxes is unreadable, and dot's
# layout time grows much faster than linearly.
DEFAULT_GRAPH_DRAW_LIMIT = 300
DEFAULT_GRAPH_TIMEOUT = 10.0
DEFAULT_REPORT_TASK_LIMIT = 1000
DEFAULT_ARTIFACT_MAX_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class LastOptions:
    """The products of one LAST generation and how they are made."""

    compression: bool = False           # last.json.gz beside last.json
    compression_level: int = 1          # zlib level: 1 is ~3.5x faster than 6 for ~19% more bytes
    html_report: bool = True            # report.html
    graph: bool = True                  # graph.dot and graph.svg
    graph_renderer: str = "auto"        # auto: GraphViz dot when installed, else the built-in layout
    graph_draw_limit: int = DEFAULT_GRAPH_DRAW_LIMIT
    graph_timeout: float = DEFAULT_GRAPH_TIMEOUT   # seconds dot may take before the built-in layout is used
    artifacts: bool = True              # artifacts/<task_id>/<name>
    artifact_max_bytes: int = DEFAULT_ARTIFACT_MAX_BYTES
    archive: str = "none"               # none | zip | tar.gz: <out>/<last_id>.zip or .tar.gz
    workers: int = 4                    # threads for independent outputs, artifacts and batches
    report_task_limit: int = DEFAULT_REPORT_TASK_LIMIT  # tasks detailed in report.html

    def with_overrides(self, **overrides) -> "LastOptions":
        """These options with the non-None overrides applied (the CLI's and the API's choices)."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigurationError(f"unknown LAST option(s): {', '.join(sorted(unknown))}")
        chosen = {k: v for k, v in overrides.items() if v is not None}
        options = replace(self, **chosen)
        options.check()
        return options

    def check(self) -> None:
        if self.archive not in ARCHIVE_FORMATS:
            raise ConfigurationError(f"archive {self.archive!r}: expected one of {', '.join(ARCHIVE_FORMATS)}")
        if self.graph_renderer not in GRAPH_RENDERERS:
            raise ConfigurationError(f"graph renderer {self.graph_renderer!r}: expected one of {', '.join(GRAPH_RENDERERS)}")
        if not 0 <= self.compression_level <= 9:
            raise ConfigurationError(f"compression level {self.compression_level}: expected 0 to 9")
        if self.workers < 1:
            raise ConfigurationError(f"workers {self.workers}: expected at least 1")


def from_environment(environ=os.environ) -> LastOptions:
    """The options the RUNNER_* variables choose; defaults for those unset."""
    options = LastOptions(
        compression=settings.flag("RUNNER_ENABLE_COMPRESSION", False, environ),
        compression_level=settings.integer("RUNNER_COMPRESSION_LEVEL", 1, environ, minimum=0, maximum=9),
        html_report=settings.flag("RUNNER_HTML_REPORT", True, environ),
        graph=settings.flag("RUNNER_GRAPH", True, environ),
        graph_renderer=settings.choice("RUNNER_GRAPH_RENDERER", "auto", GRAPH_RENDERERS, environ),
        graph_draw_limit=settings.integer("RUNNER_GRAPH_DRAW_LIMIT", DEFAULT_GRAPH_DRAW_LIMIT, environ, minimum=0),
        graph_timeout=settings.number("RUNNER_GRAPH_TIMEOUT", DEFAULT_GRAPH_TIMEOUT, environ, minimum=0.1),
        artifacts=settings.flag("RUNNER_ARTIFACTS", True, environ),
        artifact_max_bytes=settings.integer("RUNNER_ARTIFACT_MAX_BYTES", DEFAULT_ARTIFACT_MAX_BYTES, environ, minimum=0),
        archive=settings.choice("RUNNER_ARCHIVE", "none", ARCHIVE_FORMATS, environ, ARCHIVE_ALIASES),
        workers=settings.integer("RUNNER_LAST_WORKERS", min(4, os.cpu_count() or 1), environ),
        report_task_limit=settings.integer("RUNNER_REPORT_TASK_LIMIT", DEFAULT_REPORT_TASK_LIMIT, environ, minimum=0),
    )
    options.check()
    return options


def add_arguments(parser) -> None:
    """The CLI switches for the products of a LAST generation (unset ones keep the environment's)."""
    group = parser.add_argument_group("LAST outputs (default: the RUNNER_* variables)")
    switch = {"action": "store_const", "default": None}
    group.add_argument("--compress", dest="compression", const=True, help="also write last.json.gz", **switch)
    group.add_argument("--no-compress", dest="compression", const=False, help="no last.json.gz", **switch)
    group.add_argument("--no-report", dest="html_report", const=False, help="no report.html", **switch)
    group.add_argument("--no-graph", dest="graph", const=False, help="no graph.dot / graph.svg", **switch)
    group.add_argument("--no-artifacts", dest="artifacts", const=False, help="no artifact extraction", **switch)
    group.add_argument("--archive", choices=ARCHIVE_FORMATS, help="also write <out>/<last_id>.zip or .tar.gz")
    group.add_argument("--graph-renderer", choices=GRAPH_RENDERERS, help="who draws graph.svg")
    group.add_argument("--workers", type=int, help="threads for outputs, artifacts and files of a batch")


def from_arguments(args, environ=os.environ) -> LastOptions:
    """The environment's options with the CLI's choices applied; ConfigurationError if one is invalid."""
    return from_environment(environ).with_overrides(
        compression=args.compression, html_report=args.html_report, graph=args.graph, artifacts=args.artifacts,
        archive=args.archive, graph_renderer=args.graph_renderer, workers=args.workers)
