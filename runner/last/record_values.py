"""Values of a LAST record for the report's views: the file may be old or edited, so each
reader takes what it finds and gives back the type it promises (an empty dict, an empty
list, None), never an error.
"""
from __future__ import annotations


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
# (runner's TaskResults, ExecutionGraph): the readers below make them one at a time
# (each, each_node, each_edge) instead of as dicts held at once (a million for a large
# run); a record read from a file is dicts and lists.

def each_result(record: dict):
    """The record's task results one at a time; the non-dicts of a malformed file left out."""
    results = as_dict(record.get("task_results"))
    each = getattr(results, "each", None)
    for result in (value for _, value in each()) if each is not None else results.values():
        if isinstance(result, dict):
            yield result


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
    out: dict = {}
    for edge in graph_edges(record):
        if isinstance(edge.get("target"), str) and isinstance(edge.get("source"), str) and edge["target"] in wanted:
            out.setdefault(edge["target"], []).append(edge["source"])
    return out
