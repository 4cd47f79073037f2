"""Values of a LAST record for the report's views: the file may be old or edited, so each
reader takes what it finds and gives back the type it promises (an empty dict, an empty
list, None), never an error.
"""
from __future__ import annotations

from runner.last.reader import task_status


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def dicts_in(value) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def as_number(value):
    """value if it is a number (not a bool), else None: the template formats numbers."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def picked(source: dict, names) -> dict:
    return {name: source.get(name) for name in names}


def shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


# A record made by the core keeps its task results and its graph as the core's typed data
# (runner's TaskResults, ExecutionGraph): the readers below read them from there (rows,
# each_node, each_edge, sources_of) instead of as dicts held at once (a million for a
# large run); a record read from a file is dicts and lists.

class ResultRows:
    """The record's task results, in order, as columns: task_ids, statuses (as task_status
    tells them), durations (duration_ms) and end_times; and dict_of(i), result i's dict.
    For a reader that looks at every result's status or time and at a few whole: a record
    made by the core gives the columns from its typed results (TaskResults.columns: a list
    each, no dict or tuple per result) and makes only the dicts asked for; a file's record
    has its dicts (its non-dicts left out)."""

    def __init__(self, record: dict):
        results = as_dict(record.get("task_results"))
        columns = getattr(results, "columns", None)
        typed = columns() if columns is not None else None
        if typed is not None:
            self.task_ids, self.statuses, self.durations, self.end_times, dicts = typed
            self.dict_of = dicts.__getitem__
            return
        each = getattr(results, "each", None)
        dicts = [result for result in ((value for _, value in each()) if each is not None else results.values())
                 if isinstance(result, dict)]
        self.task_ids = [result.get("task_id") for result in dicts]
        self.statuses = [task_status(result) for result in dicts]
        self.durations = [result.get("duration_ms") for result in dicts]
        self.end_times = [result.get("end_time") for result in dicts]
        self.dict_of = dicts.__getitem__


def graph_nodes(record: dict):
    graph = as_dict(record.get("execution_graph"))
    each = getattr(graph, "each_node", None)
    return each() if each is not None else dicts_in(graph.get("nodes"))


def graph_edges(record: dict):
    graph = as_dict(record.get("execution_graph"))
    each = getattr(graph, "each_edge", None)
    return each() if each is not None else dicts_in(graph.get("edges"))


def task_dependencies(record: dict, wanted: set) -> dict:
    """Task id -> the ids it depends on, from the execution graph's edges, for the tasks in `wanted`."""
    sources_of = getattr(record.get("execution_graph"), "sources_of", None)
    typed = sources_of(wanted) if sources_of is not None else None
    if typed is not None:       # the core's graph: only the wanted targets' edges are read
        return typed
    out: dict = {}
    for edge in graph_edges(record):
        if isinstance(edge.get("target"), str) and isinstance(edge.get("source"), str) and edge["target"] in wanted:
            out.setdefault(edge["target"], []).append(edge["source"])
    return out
