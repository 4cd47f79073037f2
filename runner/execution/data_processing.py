"""data_processing: a pipeline of operations over a list of records.

parameters:
  input        the data (any JSON), or
  input_from   a dependency's id: its output (with input_path, a dotted path inside it;
               without, the output's "result" when it has one, as data_processing gives)
  operations   [{"op": ...}, ...], applied in order (or one "operation": {...})

operations:
  filter    field, cmp (eq ne lt le gt ge in not_in contains exists), value
  map       fields: [...] to keep (projection) and/or rename: {old: new}
  reduce    function (count sum min max mean concat), field (not for count), separator
  sort      by: field or [fields], descending: bool; records missing the field sort last
  group_by  by: field; aggregate: {function, field} gives {"key", "value"} per group,
            otherwise {"key", "items"}; groups in order of first appearance

Output: {"result": value}, with "count" when the result is a list. Every error names the
operation and is permanent (the same data fails the same way again). No operation may
produce more than MAX_RESULT_CHARS characters of JSON: a long separator or a value copied
under many names would otherwise multiply a small ALT file into gigabytes.
"""
from __future__ import annotations

from runner.execution.attempt import TaskFailure

_MISSING = object()
MAX_RESULT_CHARS = 16 << 20
COMPARISONS = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
    "in": lambda a, b: a in b, "not_in": lambda a, b: a not in b,
    "contains": lambda a, b: b in a,
}


class _Bad(Exception):
    pass


def _too_large(what: str) -> _Bad:
    return _Bad(f"{what} would be more than {MAX_RESULT_CHARS} characters")


def _check_size(data, what: str) -> None:
    """_Bad if `data` written as JSON would exceed MAX_RESULT_CHARS. A shared value counts
    each time it appears, as it would in the output; the walk stops as soon as the limit
    is passed, so it costs no more than the limit."""
    size, pending = 0, [data]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            size += len(value) + 2
        elif isinstance(value, dict):
            size += 2 + len(value)
            for key, item in value.items():
                size += len(str(key)) + 3
                pending.append(item)
        elif isinstance(value, list):
            size += 2 + len(value)
            pending.extend(value)
        else:
            size += 8
        if size > MAX_RESULT_CHARS:
            raise _too_large(what)


def _concat(values: list, separator: str) -> str:
    """The values joined, refused before joining when the result would be too long."""
    if not isinstance(separator, str):
        raise _Bad("'separator' must be a string")
    texts = [str(v) for v in values]
    if len(separator) * max(0, len(texts) - 1) + sum(map(len, texts)) > MAX_RESULT_CHARS:
        raise _too_large("the concatenation")
    return separator.join(texts)


def lookup(record, path: str):
    """record's value at a dotted path, or _MISSING."""
    value = record
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _field(step: dict, key: str = "field") -> str:
    value = step.get(key)
    if not isinstance(value, str) or not value:
        raise _Bad(f"'{key}' must be a non-empty string, found {value!r}")
    return value


def _records(data, what: str) -> list:
    if not isinstance(data, list):
        raise _Bad(f"{what} needs a list, found {type(data).__name__}")
    return data


def _filter(data, step):
    field = _field(step)
    cmp = step.get("cmp", "eq")
    if cmp == "exists":
        return [r for r in _records(data, "filter") if lookup(r, field) is not _MISSING]
    test = COMPARISONS.get(cmp)
    if test is None:
        raise _Bad(f"unknown cmp {cmp!r} (expected one of {', '.join([*COMPARISONS, 'exists'])})")
    expected = step.get("value")
    out = []
    for record in _records(data, "filter"):
        value = lookup(record, field)
        if value is _MISSING:
            continue
        try:
            if test(value, expected):
                out.append(record)
        except TypeError:
            raise _Bad(f"cannot compare {value!r} {cmp} {expected!r}") from None
    return out


def _map(data, step):
    fields, rename = step.get("fields"), step.get("rename") or {}
    if fields is not None and (not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)):
        raise _Bad(f"'fields' must be a list of strings, found {fields!r}")
    if not isinstance(rename, dict) or not all(isinstance(v, str) for v in rename.values()):
        raise _Bad(f"'rename' must map field names to new names, found {rename!r}")
    if fields is None and not rename:
        raise _Bad("map needs 'fields' or 'rename'")
    out = []
    for record in _records(data, "map"):
        if not isinstance(record, dict):
            raise _Bad(f"map works on objects, found {type(record).__name__}")
        if fields is not None:
            record = {f: v for f in fields if (v := lookup(record, f)) is not _MISSING}
        out.append({rename.get(k, k): v for k, v in record.items()})
    return out


def _reduce_values(values: list, function: str, separator: str = ""):
    if function == "count":
        return len(values)
    if function == "concat":
        return _concat(values, separator)
    if function in ("sum", "mean"):
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise _Bad(f"{function} needs numbers")
        if function == "sum":
            return sum(values)
        return sum(values) / len(values) if values else None
    if function in ("min", "max"):
        if not values:
            return None
        try:
            return min(values) if function == "min" else max(values)
        except TypeError:
            raise _Bad(f"{function} over values that cannot be compared") from None
    raise _Bad(f"unknown function {function!r} (expected count, sum, min, max, mean or concat)")


def _column(data, step, function: str) -> list:
    records = _records(data, function)
    if function == "count" and "field" not in step:
        return records
    if "field" not in step:
        return records                        # a list of plain values
    field = _field(step)
    return [v for r in records if (v := lookup(r, field)) is not _MISSING]


def _reduce(data, step):
    function = step.get("function")
    separator = step.get("separator", "")
    if not isinstance(separator, str):
        raise _Bad("'separator' must be a string")
    return _reduce_values(_column(data, step, function), function, separator)


def _sort(data, step):
    by = step.get("by")
    keys = [by] if isinstance(by, str) else by
    if not keys or not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        raise _Bad(f"'by' must be a field name or a list of them, found {by!r}")
    descending = bool(step.get("descending", False))
    records = list(_records(data, "sort"))
    present = [r for r in records if all(lookup(r, k) is not _MISSING for k in keys)]
    missing = [r for r in records if any(lookup(r, k) is _MISSING for k in keys)]
    try:
        present.sort(key=lambda r: [lookup(r, k) for k in keys], reverse=descending)
    except TypeError:
        raise _Bad(f"values of {keys} cannot be compared with each other") from None
    return present + missing


def _group_by(data, step):
    field = _field(step, "by")
    groups: dict = {}
    for record in _records(data, "group_by"):
        key = lookup(record, field)
        key = None if key is _MISSING else key
        try:
            groups.setdefault(key, []).append(record)
        except TypeError:
            raise _Bad(f"group key {key!r} is not a scalar") from None
    aggregate = step.get("aggregate")
    if aggregate is None:
        return [{"key": key, "items": items} for key, items in groups.items()]
    if not isinstance(aggregate, dict):
        raise _Bad("'aggregate' must be an object {function, field}")
    function = aggregate.get("function")
    return [{"key": key, "value": _reduce_values(_column(items, aggregate, function), function,
                                                 aggregate.get("separator", ""))}
            for key, items in groups.items()]


OPERATIONS = {"filter": _filter, "map": _map, "reduce": _reduce, "sort": _sort, "group_by": _group_by}


def input_data(ctx):
    parameters = ctx.parameters
    if "input" in parameters:
        return parameters["input"]
    source = parameters.get("input_from")
    if source is None:
        if len(ctx.dependencies) != 1:
            raise TaskFailure("data_processing needs parameters.input or parameters.input_from "
                              "(or exactly one dependency)", permanent=True)
        source = next(iter(ctx.dependencies))
    if source not in ctx.dependencies:
        raise TaskFailure(f"parameters.input_from: {source!r} is not a dependency of this task", permanent=True)
    output = ctx.dependencies[source]["output"]
    path = parameters.get("input_path")
    if path is not None:
        value = lookup(output, str(path))
        if value is _MISSING:
            raise TaskFailure(f"parameters.input_path: {path!r} not found in the output of {source!r}",
                              permanent=True)
        return value
    if isinstance(output, dict) and "result" in output:
        return output["result"]
    return output


def run(ctx) -> dict:
    steps = ctx.parameters.get("operations")
    if steps is None and "operation" in ctx.parameters:
        steps = [ctx.parameters["operation"]]
    if not isinstance(steps, list) or not steps:
        raise TaskFailure("data_processing needs parameters.operations, a non-empty list", permanent=True)
    data = input_data(ctx)
    for number, step in enumerate(steps):
        name = step.get("op") if isinstance(step, dict) else None
        operation = OPERATIONS.get(name)
        if operation is None:
            raise TaskFailure(f"operations[{number}]: unknown op {name!r} (expected one of {', '.join(OPERATIONS)})",
                              permanent=True)
        if ctx.cancel.is_set():
            raise TaskFailure("cancelled")
        try:
            data = operation(data, step)
            _check_size(data, "the result")
        except _Bad as error:
            raise TaskFailure(f"operations[{number}] ({name}): {error}", permanent=True) from None
    out = {"result": data}
    if isinstance(data, list):
        out["count"] = len(data)
    return out
