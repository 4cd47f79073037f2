"""report.html: a self-contained page for a person to see what a run did.

Rendered by Jinja2 in a sandbox with autoescaping: task outputs, errors and ids are
untrusted text. The page has no scripts and no external assets (inline CSS, inline SVG,
the graph as a data: image, where SVG scripts never run), and a Content-Security-Policy
that forbids scripts anyway. At most `task_limit` tasks are detailed (unsuccessful ones
first) and long outputs are cut, so the file stays bounded at 100k tasks; last.json
holds everything. Links go only to artifact paths of the form artifacts are stored under;
any other path is shown as text.

The parts: report_view (what the page shows, from a record that may be old or edited),
timeline (the Gantt chart's geometry), template_cache (the compiled page kept between
processes), templates/report.html.j2 (the page).
"""
from __future__ import annotations

from jinja2 import PackageLoader
from jinja2.sandbox import SandboxedEnvironment

from runner.last.report_view import page_view
from runner.last.template_cache import PAGE_OPTIONS, compiled_page_cache

_environment = SandboxedEnvironment(loader=PackageLoader("runner.last", "templates"),
                                    bytecode_cache=compiled_page_cache(), **PAGE_OPTIONS)


def report_template():
    """The compiled page (Jinja2 keeps it after the first call)."""
    return _environment.get_template("report.html.j2")


def render_report(record: dict, graph_svg: str | None = None, *, task_limit: int = 1000,
                  graph_note: str | None = None) -> str:
    """The HTML page of a LAST record; graph_svg is drawn inline as an image when given."""
    return report_template().render(**page_view(record, graph_svg, task_limit, graph_note))
