"""The published JSON Schemas (Draft 2020-12) of the documents the runner reads and writes.

They ship as package data in runner/schemas/ so that other ALT_LAS components, and
`python -m runner schema NAME`, see exactly what this version accepts and produces.
"""
from __future__ import annotations

from functools import cache

NAMES = ("alt", "task-parameters", "task-result", "last")


@cache
def text(name: str) -> str:
    """The schema as published (JSON text)."""
    if name not in NAMES:
        raise ValueError(f"unknown schema {name!r}: expected one of {', '.join(NAMES)}")
    from importlib import resources

    return resources.files("runner").joinpath("schemas", f"{name}.schema.json").read_text(encoding="utf-8")


def load(name: str) -> dict:
    """The schema as a dict (a fresh copy: callers may change it)."""
    import json

    return json.loads(text(name))


def registry():
    """A referencing.Registry holding them all, so the LAST schema's references to
    task-result.schema.json resolve offline."""
    from referencing import Registry, Resource

    return Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in (load(name) for name in NAMES))


def validator(name: str):
    """A jsonschema Draft202012Validator for one of the schemas (jsonschema is the reference)."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load(name), registry=registry())
