"""The published JSON Schemas (Draft 2020-12) of the documents the runner reads and writes.

They ship as package data in runner/schemas/ so that other ALT_LAS components, and
`python -m runner schema NAME`, see exactly what this version accepts and produces.
"""
from __future__ import annotations

from functools import cache

NAMES = ("alt", "task-parameters", "task-result", "last")


@cache
def source(name: str) -> str:
    """The schema's file as written (JSON text); it may refer to the others by file name."""
    if name not in NAMES:
        raise ValueError(f"unknown schema {name!r}: expected one of {', '.join(NAMES)}")
    from importlib import resources

    return resources.files("runner").joinpath("schemas", f"{name}.schema.json").read_text(encoding="utf-8")


def load(name: str) -> dict:
    """The schema as published, a fresh dict that stands alone: each schema it refers to by
    file name is embedded under $defs with its own $id (a Draft 2020-12 bundle), so any
    validator resolves every $ref without other files or a registry."""
    import json

    schema = json.loads(source(name))
    embedded = schema.setdefault("$defs", {})
    for other in sorted(_referenced(schema)):
        bundled = load(other)
        bundled.pop("$schema", None)
        embedded[other] = bundled
    if not embedded:
        del schema["$defs"]
    return schema


@cache
def text(name: str) -> str:
    """The schema as published (JSON text of load(name)): what `runner schema NAME` prints."""
    import json

    return json.dumps(load(name), indent=2, ensure_ascii=False) + "\n"


def _referenced(node) -> set:
    """Names of the other schemas a schema refers to ("$ref": "task-parameters.schema.json")."""
    found = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            name = ref.split("#", 1)[0].removesuffix(".schema.json")
            if name not in NAMES:
                raise ValueError(f"a schema refers to {ref!r}, which is not one of {', '.join(NAMES)}")
            found.add(name)
        for value in node.values():
            found |= _referenced(value)
    elif isinstance(node, list):
        for value in node:
            found |= _referenced(value)
    return found


def validator(name: str):
    """A jsonschema Draft202012Validator for one of the schemas (jsonschema is the reference).

    Each schema stands alone (load embeds what it refers to), so no registry is needed."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load(name))
