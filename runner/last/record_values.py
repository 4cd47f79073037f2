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


def task_dependencies(record: dict) -> dict:
    """Task id -> the ids it depends on, from the execution graph's edges."""
    out: dict = {}
    for edge in dicts_in(as_dict(record.get("execution_graph")).get("edges")):
        if isinstance(edge.get("target"), str) and isinstance(edge.get("source"), str):
            out.setdefault(edge["target"], []).append(edge["source"])
    return out
