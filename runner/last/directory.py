"""One LAST directory from a LAST record: last.json and the products the options ask for.

    <out>/<last_id>/last.json          always
                    last.json.gz       compression (gzip stream, zlib level 1 by default)
                    report.html        html_report
                    graph.dot, .svg    graph
                    artifacts/<task>/  artifacts
    <out>/<last_id>.zip | .tar.gz      archive

Independent outputs run concurrently on one bounded thread pool: the graph drawing
(dot runs in a child process), artifact copies, the compressed copy (zlib releases the
GIL) and the report, whose template is loaded while dot draws. Every file is written
atomically and last.json last: its presence means the directory is complete (the
products' renames are made durable by one directory fsync before it). If anything fails,
what was written is removed: the whole directory, or, for a run's journal directory
(which exists from the run's start, holding journal.jsonl), the products only, so the
journal stays for `show` and `resume`.
"""
from __future__ import annotations

import contextlib
import shutil
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from runner.last.atomic_files import atomic_file, fsync_directory, write_atomically
from runner.last.options import LastOptions
from runner.librunner import last_json     # the graph goes in as the JSON the core wrote


@dataclass
class LastWriteResult:
    """What write_last_file produced: the id, the directory, the record and its JSON."""

    last_id: str
    directory: Path
    record: dict
    json: bytes
    files: list[str] = field(default_factory=list)   # paths relative to the directory
    archive: Path | None = None
    delivery: dict | None = None    # the publication to the archive, with RUNNER_NATS_URL (delivery.json)


def _write_graph(record: dict, directory: Path, options: LastOptions):
    from runner.last import graph_drawing

    drawing = graph_drawing.draw(record["execution_graph"], renderer=options.graph_renderer,
                                draw_limit=options.graph_draw_limit, timeout=options.graph_timeout,
                                title=record.get("alt_file_id") or "execution",
                                critical=graph_drawing.critical_path_of(record))
    write_atomically(directory / "graph.dot", drawing.dot.encode("utf-8"), sync_directory=False)
    write_atomically(directory / "graph.svg", drawing.svg.encode("utf-8"), sync_directory=False)
    return drawing


def _write_compressed(directory: Path, data: bytes, level: int) -> None:
    # wbits=31: a gzip stream, readable by gzip/zcat, made in one zlib call.
    write_atomically(directory / "last.json.gz", zlib.compress(data, level, wbits=31), sync_directory=False)


def render_html(record: dict, options: LastOptions, drawing=None, graph: bool = True) -> str:
    """report.html for a record; draws the graph (built-in layout) when no drawing is given,
    or none at all with graph=False."""
    from runner.last import graph_drawing
    from runner.last.report import render_report

    if not graph:
        return render_report(record, None, task_limit=options.report_task_limit)
    if drawing is None:
        drawing = graph_drawing.draw(record["execution_graph"], renderer="builtin",
                                    draw_limit=options.graph_draw_limit, with_dot=False,
                                    critical=graph_drawing.critical_path_of(record))
    note = "Summarised: one box per dependency level." if drawing.summarised else None
    return render_report(record, drawing.svg, task_limit=options.report_task_limit, graph_note=note)


def _write_report(record: dict, directory: Path, options: LastOptions, graph_future) -> None:
    from runner.last.report import report_template

    report_template()   # Jinja2 loaded and the page compiled while dot, a child process, draws
    drawing = graph_future.result() if graph_future is not None else None
    write_atomically(directory / "report.html", render_html(record, options, drawing).encode("utf-8"),
                     sync_directory=False)


def write_archive(directory: Path, kind: str, level: int = 1) -> Path:
    """<parent>/<name>.zip or .tar.gz holding the directory (under its own name)."""
    import tarfile
    import zipfile

    suffix = ".zip" if kind == "zip" else ".tar.gz"
    target = directory.parent / (directory.name + suffix)
    files = sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith("."))
    with atomic_file(target) as handle:
        if kind == "zip":
            method = zipfile.ZIP_DEFLATED if level else zipfile.ZIP_STORED
            with zipfile.ZipFile(handle, "w", method, compresslevel=level or None) as archive:
                for path in files:
                    archive.write(path, f"{directory.name}/{path.relative_to(directory).as_posix()}")
        else:
            with tarfile.open(fileobj=handle, mode="w:gz", compresslevel=max(level, 1)) as archive:
                for path in files:
                    archive.add(path, f"{directory.name}/{path.relative_to(directory).as_posix()}", recursive=False)
    return target


def planned_files(options: LastOptions) -> list[str]:
    files = ["last.json"]
    if options.compression:
        files.append("last.json.gz")
    if options.html_report:
        files.append("report.html")
    if options.graph:
        files += ["graph.dot", "graph.svg"]
    return files


def _remove_products(directory: Path, files: list[str]) -> None:
    """Undoes a failed write into a journal directory: its products go, the journal stays."""
    for name in files:
        with contextlib.suppress(OSError):
            (directory / name).unlink()
    shutil.rmtree(directory / "artifacts", ignore_errors=True)
    for stray in directory.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            stray.unlink()


def write_directory(record: dict, output_dir, options: LastOptions, workspace=None, *,
                    into_existing: bool = False) -> LastWriteResult:
    """Writes <output_dir>/<record id>/ with everything `options` asks for; returns what it wrote.

    into_existing: the directory is a run's journal directory and exists already.
    OSError when the directory or a file cannot be written (what was written is then removed).
    """
    directory = Path(output_dir) / record["id"]
    if into_existing:
        if not directory.is_dir():
            raise FileNotFoundError(2, "the run's directory has gone", str(directory))
    else:
        directory.mkdir(parents=True, exist_ok=False)
    files = planned_files(options)
    record.setdefault("metadata", {})["files"] = files
    # The writers import their modules on the pool's threads. dataclasses reads `typing`
    # from sys.modules without waiting for its import: a writer defining a dataclass
    # (graph_drawing) while another is importing typing (jinja2, for the report) failed
    # with "partially initialized module 'typing'" (seen in tests/c/init_race.c). typing
    # is imported here, on one thread, before they start.
    import typing  # noqa: F401
    try:
        with ThreadPoolExecutor(options.workers, thread_name_prefix="last-writer") as pool:
            graph_future = pool.submit(_write_graph, record, directory, options) if options.graph else None
            if options.artifacts:
                from runner.last.artifacts import extract_artifacts

                artifacts, errors = extract_artifacts(record["task_results"], directory, workspace, pool=pool,
                                                      limit=options.artifact_max_bytes)
                record["artifacts"] = artifacts
                if errors:
                    record["metadata"]["artifact_errors"] = errors
            data = last_json(record)
            futures = []
            if options.compression:
                futures.append(pool.submit(_write_compressed, directory, data, options.compression_level))
            if options.html_report:
                futures.append(pool.submit(_write_report, record, directory, options, graph_future))
            for future in futures + ([graph_future] if graph_future is not None else []):
                future.result()
            fsync_directory(directory)
            write_atomically(directory / "last.json", data)
        archive = write_archive(directory, options.archive, options.compression_level) \
            if options.archive != "none" else None
    except BaseException:
        if into_existing:
            _remove_products(directory, files)
        else:
            shutil.rmtree(directory, ignore_errors=True)
        raise
    files = files + [artifact["path"] for artifact in record.get("artifacts") or ()]
    return LastWriteResult(record["id"], directory, record, data, files, archive)
