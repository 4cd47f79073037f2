"""Reading a LAST file back: last.json or last.json.gz, or the directory holding them."""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import orjson

from runner.errors import LastFileError

GZIP_MAGIC = b"\x1f\x8b"
# Largest LAST document read, after decompression: a few KiB of gzip can expand to
# gigabytes, so last.json.gz is decompressed as a stream and stopped at this size.
MAX_LAST_BYTES = 1 << 30


def load_last(path: str | os.PathLike) -> dict:
    """The LAST record at `path`: a last.json, a last.json.gz, or a LAST directory.

    Raises LastFileError naming the path and what is wrong with it.
    """
    path = _last_path(path)
    return _parsed(path, _read_capped(path, MAX_LAST_BYTES))


def load_last_lazy(path: str | os.PathLike) -> dict:
    """load_last's record, its task_results read from the file only when first used as a
    dict (FileResults): for readers of every result's status and times and of a few results
    whole (the report, through ResultRows), who then parse those few and no others.

    The same files are refused, with the same errors, and the same record is given as by
    load_last: the core's skim checks the whole file in one pass, and any file it is not
    sure of is read in full (then task_results is an ordinary dict).
    """
    from runner.librunner import skim_last_columns

    path = _last_path(path)
    raw = _read_capped(path, MAX_LAST_BYTES)
    skimmed = skim_last_columns(raw)
    if skimmed is None:
        return _parsed(path, raw)
    header, (start, end), graph, columns = skimmed
    record = _parsed(path, header)      # its task_results and execution_graph are {}: checked by the skim
    record["task_results"] = FileResults(raw, start, end, columns)
    if graph is not None:
        record["execution_graph"] = orjson.loads(raw[graph[0]:graph[1]])
    return record


class FileResults(dict):
    """A record's task_results as load_last_lazy reads them: the file's bytes, until used as
    a dict; then (all at once) the dict load_last gives, an ordinary dict from then on.
    len() and columns() (ResultRows' columns, made by the core from the bytes) need none of
    the dicts. Until then it holds a placeholder orjson refuses to write, so a record
    dumped before it is read fails loudly instead of writing {}."""

    def __init__(self, raw: bytes, start: int, end: int, columns):
        dict.__init__(self, {"": _NOT_READ_YET})
        self._source = (raw, start, end, columns)

    def fill(self):
        source = self._source
        if source is not None:
            raw, start, end, _ = source
            made = orjson.loads(raw[start:end])
            if self._source is not None:
                dict.clear(self)
                dict.update(self, made)
                self._source = None
        return self

    def columns(self):
        """(task ids, statuses, durations, end times, results by position), as
        TaskResults.columns gives them; None once the dicts are made (read those)."""
        source = self._source
        if source is None:
            return None
        results = source[3]
        return (*results.columns(), results)

    def __len__(self):
        source = self._source
        return len(source[3]) if source is not None else dict.__len__(self)

    def __getitem__(self, key):
        return dict.__getitem__(self.fill(), key)

    def get(self, key, default=None):
        return dict.get(self.fill(), key, default)

    def __contains__(self, key):
        return dict.__contains__(self.fill(), key)

    def __iter__(self):
        return dict.__iter__(self.fill())

    def __reversed__(self):
        return dict.__reversed__(self.fill())

    def keys(self):
        return dict.keys(self.fill())

    def values(self):
        return dict.values(self.fill())

    def items(self):
        return dict.items(self.fill())

    def copy(self):
        return dict(self.fill())

    def __setitem__(self, key, value):
        dict.__setitem__(self.fill(), key, value)

    def __delitem__(self, key):
        dict.__delitem__(self.fill(), key)

    def pop(self, *args):
        return dict.pop(self.fill(), *args)

    def popitem(self):
        return dict.popitem(self.fill())

    def setdefault(self, key, default=None):
        return dict.setdefault(self.fill(), key, default)

    def update(self, *args, **kwargs):
        dict.update(self.fill(), *args, **kwargs)

    def clear(self):
        self.fill()
        dict.clear(self)

    def __or__(self, other):
        return dict(self.fill()) | other

    def __ror__(self, other):
        return other | dict(self.fill())

    def __ior__(self, other):
        dict.update(self.fill(), other)
        return self

    def __eq__(self, other):
        if isinstance(other, FileResults):
            other.fill()
        return dict.__eq__(self.fill(), other)

    def __ne__(self, other):
        if isinstance(other, FileResults):
            other.fill()
        return dict.__ne__(self.fill(), other)

    def __repr__(self):
        return dict.__repr__(self.fill())

    def __reduce__(self):
        return (dict, (dict(self.fill()),))

    __hash__ = None


class _NotReadYet:
    """FileResults' placeholder: orjson cannot write it, and neither can it be written as its
    text (orjson's default=str), which would write it in place of the results."""

    def __str__(self):
        raise TypeError("a record of load_last_lazy whose task_results were not read yet: "
                        "read them (record['task_results'].fill()) before writing the record")


_NOT_READ_YET = _NotReadYet()


def load_last_summary(path: str | os.PathLike) -> dict:
    """The LAST record at `path` for readers of its summary (show, a service adopting a
    run): all of it but the results of completed tasks and the execution graph.

    task_results holds only the results whose task did not complete (task_status other
    than completed: failed, skipped, pending...), in the file's order, as UnfinishedResults
    (its `total` is the number of results in the file); execution_graph is left out. The
    same files are refused, with the same errors, as by load_last: the core's skim checks
    the whole file in one pass without building the completed results, and any file it
    is not sure of is read in full.
    """
    from runner.librunner import skim_last

    path = _last_path(path)
    raw = _read_capped(path, MAX_LAST_BYTES)
    skimmed = skim_last(raw)
    if skimmed is None:
        record = _parsed(path, raw)
        results = record["task_results"]
        unfinished = UnfinishedResults((k, v) for k, v in results.items() if task_status(v) != "completed")
        unfinished.total = len(results)
    else:
        header, count, spans = skimmed
        record = _parsed(path, header)      # its task_results and execution_graph are {}: checked by the skim
        unfinished = UnfinishedResults()
        for key_start, key_end, value_start, value_end in spans:
            value = orjson.loads(raw[value_start:value_end])
            if task_status(value) != "completed":
                unfinished[orjson.loads(raw[key_start:key_end])] = value
        unfinished.total = count
    record["task_results"] = unfinished
    record.pop("execution_graph", None)
    return record


def loads_header(raw: bytes):
    """orjson.loads(raw) of a last.json's bytes, for readers of the record's header alone:
    when the core's skim vouches for the file, task_results and an object execution_graph
    come back empty instead of parsed; otherwise orjson.loads(raw) itself, errors included."""
    from runner.librunner import skim_last

    skimmed = skim_last(raw)
    return orjson.loads(skimmed[0] if skimmed is not None else raw)


class UnfinishedResults(dict):
    """The results of the tasks that did not complete (task id -> result), as
    load_last_summary reads them; `total` is how many results the file holds."""
    total = 0


def result_count(results: dict) -> int:
    """How many task results a record holds: all of load_last's, or the file's total
    behind load_last_summary's UnfinishedResults."""
    return results.total if isinstance(results, UnfinishedResults) else len(results)


def _last_path(path) -> Path:
    path = Path(path)
    if path.is_dir():
        candidates = [path / "last.json", path / "last.json.gz"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise LastFileError(f"{path}: no last.json or last.json.gz in this directory")
        path = found
    return path


def _parsed(path: Path, raw: bytes) -> dict:
    """The record in `raw`, checked: LastFileError if it is not JSON or not a LAST record."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise LastFileError(f"{path}: not JSON: {error}") from None
    if not isinstance(record, dict) or not isinstance(record.get("task_results"), dict) \
            or not isinstance(record.get("id"), str):
        raise LastFileError(f"{path}: not a LAST file (expected an object with 'id' and 'task_results')")
    problem = _shape_problem(record)
    if problem is not None:
        raise LastFileError(f"malformed LAST file: {path}: {problem}")
    return record


def _shape_problem(record: dict) -> str | None:
    """What in the record does not have the shape the commands read (show, report), or None.

    Checked once here, so the readers of a loaded record can rely on the types of what
    they use instead of guarding each use; values' contents are theirs to judge.
    """
    for name, value in record["task_results"].items():
        if not isinstance(value, dict):
            return f"task_results.{name}: expected an object, found {_kind(value)}"
        for field in ("task_id", "status", "error", "start_time", "end_time"):
            if value.get(field) is not None and not isinstance(value[field], str):
                return f"task_results.{name}.{field}: expected a string, found {_kind(value[field])}"
        if value.get("metadata") is not None and not isinstance(value["metadata"], dict):
            return f"task_results.{name}.metadata: expected an object, found {_kind(value['metadata'])}"
    for field in ("status", "title", "summary", "alt_file_id", "mode", "start_time", "end_time", "created_at"):
        if record.get(field) is not None and not isinstance(record[field], str):
            return f"{field}: expected a string, found {_kind(record[field])}"
    for field in ("success_rate", "execution_time_ms"):
        if field in record and type(record[field]) not in (int, float):
            return f"{field}: expected a number, found {_kind(record[field])}"
    for field in ("statistics", "execution", "metadata", "execution_graph"):
        if record.get(field) is not None and not isinstance(record[field], dict):
            return f"{field}: expected an object, found {_kind(record[field])}"
    if record.get("artifacts") is not None and not _objects(record["artifacts"]):
        return "artifacts: expected a list of objects"
    statistics = record.get("statistics") or {}
    for field in ("status_counts", "critical_path", "retries", "tokens"):
        if statistics.get(field) is not None and not isinstance(statistics[field], dict):
            return f"statistics.{field}: expected an object, found {_kind(statistics[field])}"
    for field, value in (("statistics.total_task_time_ms", statistics.get("total_task_time_ms")),
                         ("statistics.parallelism", statistics.get("parallelism")),
                         ("statistics.critical_path.duration_ms", (statistics.get("critical_path") or {}).get("duration_ms")),
                         ("statistics.retries.total", (statistics.get("retries") or {}).get("total"))):
        if value is not None and type(value) not in (int, float):
            return f"{field}: expected a number, found {_kind(value)}"
    retried = (statistics.get("retries") or {}).get("tasks")
    if retried is not None and not isinstance(retried, list):
        return f"statistics.retries.tasks: expected a list, found {_kind(retried)}"
    for model, usage in (statistics.get("tokens") or {}).items():
        if not isinstance(usage, dict):
            return f"statistics.tokens.{model}: expected an object, found {_kind(usage)}"
    task_ids = (statistics.get("critical_path") or {}).get("task_ids")
    if task_ids is not None and not (isinstance(task_ids, list) and all(isinstance(i, str) for i in task_ids)):
        return "statistics.critical_path.task_ids: expected a list of strings"
    graph = record.get("execution_graph") or {}
    for field in ("nodes", "edges"):
        if graph.get(field) is not None and not _objects(graph[field]):
            return f"execution_graph.{field}: expected a list of objects"
    for index, node in enumerate(graph.get("nodes") or ()):
        if not isinstance(node.get("id"), str):
            return f"execution_graph.nodes[{index}].id: expected a string, found {_kind(node.get('id'))}"
    return None


def _objects(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _read_capped(path: Path, limit: int) -> bytes:
    """The file's bytes, gunzipped when it is gzip; LastFileError past `limit` bytes."""
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise LastFileError(f"{path}: cannot read: {error.strerror or error}") from None
    with handle:
        try:
            compressed = handle.read(2) == GZIP_MAGIC
            handle.seek(0)
            if not compressed:
                data = handle.read(limit + 1)
        except OSError as error:
            raise LastFileError(f"{path}: cannot read: {error.strerror or error}") from None
        if compressed:
            try:
                data = gzip.GzipFile(fileobj=handle).read(limit + 1)
            except (OSError, EOFError, zlib.error) as error:
                raise LastFileError(f"{path}: not a valid gzip file: {error}") from None
    if len(data) > limit:
        what = "decompresses to" if compressed else "is"
        raise LastFileError(f"{path}: {what} more than {limit} bytes, the largest LAST file read")
    return data


def run_mode(record: dict):
    """The mode the run used. execution.mode first: records written before the top-level
    mode followed it carry the ALT file's mode there."""
    execution = record.get("execution")
    mode = execution.get("mode") if isinstance(execution, dict) else None
    return mode if isinstance(mode, str) else record.get("mode")


# Statuses in the order a person should look at them: what went wrong first, completed last
# (show's list of tasks not completed, the report's task details and timeline rows).
ATTENTION_ORDER = {"failed": 0, "timeout": 1, "cancelled": 2, "pending": 3, "running": 4, "skipped": 5, "completed": 6}


def task_status(entry: dict):
    """librunner's status of a task result or graph node. The file holds the original
    runner's status (a skipped task is "cancelled" there) and marks skips with "skipped"."""
    return "skipped" if entry.get("skipped") is True else entry.get("status")


def skip_reason(entry: dict):
    """Why a skipped task was skipped (the executor's reason, else its error), or None."""
    if entry.get("skipped") is not True:
        return None
    metadata = entry.get("metadata")
    reason = metadata.get("skipped_reason") if isinstance(metadata, dict) else None
    return reason if isinstance(reason, str) else entry.get("error")
