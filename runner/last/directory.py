"""One LAST directory from a LAST record: last.json and the products the options ask for.

    <out>/<last_id>/last.json          always
                    last.json.gz       compression (gzip stream, zlib level 1 by default)
                    report.html        html_report
                    graph.dot, .svg    graph
                    artifacts/<task>/  artifacts
    <out>/<last_id>.zip | .tar.gz      archive

Independent outputs run concurrently on one bounded thread pool: the graph drawing
(dot runs in a child process), artifact copies and the report, whose template is loaded
while dot draws. last.json is streamed: the core makes its JSON in chunks from the typed
results (runner.librunner.write_last_json), each written to last.json's temporary file
and handed to a thread compressing last.json.gz (zlib releases the GIL): one pass, two
outputs, the whole text never in memory; its disk writes start as it grows
(EarlyWriteback), so its final fsync is short. Every file is written atomically and last.json
last: its presence means the directory is complete (the products' renames are made
durable by one directory fsync before it). If anything fails,
what was written is removed: the whole directory, or, for a run's journal directory
(which exists from the run's start, holding journal.jsonl), the products only, so the
journal stays for `show` and `resume`.
"""
from __future__ import annotations

import contextlib
import queue
import shutil
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from runner.last.atomic_files import EarlyWriteback, atomic_file, fsync_directory, write_atomically
from runner.last.options import LastOptions
from runner.librunner import write_last_json     # last.json's chunks, made by the core


def full_record(record: dict) -> dict:
    """`record` with its task results made as dicts, if the core kept them typed (runner's
    TaskResults): any JSON writer, orjson's own included, then sees all of it."""
    fill = getattr(record.get("task_results"), "fill", None)
    if fill is not None:
        fill()
    return record


class WrittenLast:
    """The record and the bytes of a LAST directory already on disk, for a class with
    `directory`, `lean_record` and `json_data` (LastWriteResult, RunOutcome)."""

    @property
    def record(self) -> dict:
        """The LAST record, its task results made as dicts when first read."""
        return full_record(self.lean_record)

    @property
    def json(self) -> bytes:
        """last.json's bytes (it was streamed to disk: read back from the file)."""
        if self.json_data is not None:
            return self.json_data
        return (Path(self.directory) / "last.json").read_bytes()


@dataclass
class LastWriteResult(WrittenLast):
    """What write_last_file produced: the id, the directory, the record and its JSON.

    record: the LAST record, its task results made as dicts when it is first read;
    lean_record: the same record as the core made it, for callers that read its summary
    fields only (its task_results stays typed until used as a dict); json: last.json's
    bytes, read from the file when asked for (it was streamed to disk)."""

    last_id: str
    directory: Path
    lean_record: dict
    json_data: bytes | None = None
    files: list[str] = field(default_factory=list)   # paths relative to the directory
    archive: Path | None = None
    delivery: dict | None = None    # the publication to the archive, with RUNNER_NATS_URL (delivery.json)


def _write_graph(record: dict, directory: Path, options: LastOptions):
    """graph.svg; the drawing is what the report shows."""
    from runner.last import graph_drawing

    drawing = graph_drawing.draw(record["execution_graph"], renderer=options.graph_renderer,
                                draw_limit=options.graph_draw_limit, timeout=options.graph_timeout,
                                title=record.get("alt_file_id") or "execution", with_dot=False,
                                critical=graph_drawing.critical_path_of(record))
    _write_text(directory / "graph.svg", drawing.svg)
    return drawing


def _write_dot(record: dict, directory: Path) -> None:
    """graph.dot, every task and dependency: streamed to its file as it is made (a task of its
    own beside the drawing, which the report waits for)."""
    from runner.last import graph_drawing

    with atomic_file(directory / "graph.dot", sync_directory=False) as handle:
        graph_drawing.write_dot(record["execution_graph"], record.get("alt_file_id") or "execution", handle.write)


def _write_text(path: Path, text: str, piece: int = 1 << 20) -> None:
    """Text as UTF-8, written atomically a piece at a time (graph.dot of a large run holds
    every task: its bytes are not made whole besides the text)."""
    with atomic_file(path, sync_directory=False) as handle:
        for start in range(0, len(text), piece):
            handle.write(text[start:start + piece].encode("utf-8"))


def _write_compressed(directory: Path, chunks, level: int) -> None:
    """last.json.gz: the gzip stream (wbits=31, readable by gzip/zcat) of `chunks`, the
    pieces of last.json as they are made, written atomically."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    with atomic_file(directory / "last.json.gz", sync_directory=False) as handle:
        for chunk in chunks:
            handle.write(compressor.compress(chunk))
        handle.write(compressor.flush())


class _Abandoned(Exception):
    """The stream the gzip copy was made from failed: the copy is not kept."""


class _Compressing:
    """last.json.gz made from the chunks of last.json as they are written, on a thread of
    its own (zlib releases the GIL): at most a few chunks wait in between."""

    def __init__(self, directory: Path, level: int):
        self.directory, self.level = directory, level
        self.chunks: queue.Queue = queue.Queue(maxsize=4)
        self.error: BaseException | None = None
        self.ended = False      # the None that ends the stream was taken
        self.thread = threading.Thread(target=self._run, name="last-writer-gzip", daemon=True)
        self.thread.start()

    def _stream(self):
        while (chunk := self.chunks.get()) is not None:
            yield chunk
        self.ended = True
        if self.error is not None:
            raise _Abandoned()      # last.json failed: the copy's temporary file goes

    def _run(self) -> None:
        try:
            _write_compressed(self.directory, self._stream(), self.level)
        except BaseException as error:      # handed to the writer, which raises it
            if self.error is None:
                self.error = error
            while not self.ended:           # the writer may still be feeding chunks
                self.ended = self.chunks.get() is None

    def write(self, chunk: bytes) -> None:
        if self.error is None:
            self.chunks.put(chunk)

    def close(self, failed: BaseException | None = None) -> None:
        """Ends the stream: the file is renamed into place, unless the stream failed."""
        if failed is not None and self.error is None:
            self.error = failed
        self.chunks.put(None)
        self.thread.join()
        if self.error is not None and failed is None:
            raise self.error


def _stream_last_json(record: dict, handle, compressing: _Compressing | None) -> None:
    """last.json's bytes into `handle` (and the gzip copy) as the core makes them."""
    if compressing is None:
        write_last_json(record, handle.write)
        return

    def both(chunk: bytes) -> None:
        handle.write(chunk)
        compressing.write(chunk)

    try:
        write_last_json(record, both)
    except BaseException as error:
        compressing.close(failed=error)
        raise
    compressing.close()


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
            futures = [pool.submit(_write_dot, record, directory)] if options.graph else []
            if options.artifacts:
                from runner.last.artifacts import extract_artifacts

                artifacts, errors = extract_artifacts(record["task_results"], directory, workspace, pool=pool,
                                                      limit=options.artifact_max_bytes)
                record["artifacts"] = artifacts
                if errors:
                    record["metadata"]["artifact_errors"] = errors
            if options.html_report:
                futures.append(pool.submit(_write_report, record, directory, options, graph_future))
            # last.json is renamed into place when this block ends: after every other
            # product is in place and their renames are durable.
            with atomic_file(directory / "last.json") as handle:
                compressing = _Compressing(directory, options.compression_level) if options.compression else None
                syncing = EarlyWriteback(handle)
                try:
                    _stream_last_json(record, syncing, compressing)
                except BaseException:
                    syncing.stop()
                    raise
                syncing.finish()
                for future in futures + ([graph_future] if graph_future is not None else []):
                    future.result()
                fsync_directory(directory)
        archive = write_archive(directory, options.archive, options.compression_level) \
            if options.archive != "none" else None
    except BaseException:
        if into_existing:
            _remove_products(directory, files)
        else:
            shutil.rmtree(directory, ignore_errors=True)
        raise
    files = files + [artifact["path"] for artifact in record.get("artifacts") or ()]
    return LastWriteResult(record["id"], directory, record, None, files, archive)
