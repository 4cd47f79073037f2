"""Property tests of the task types' rules: confinement to the workspace, data operations."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings, strategies as st

from runner.execution import data_processing, file_operation
from runner.execution.attempt import Cancellation, TaskFailure


def context(parameters, workspace=None):
    return SimpleNamespace(parameters=parameters, workspace=workspace, metadata={}, dependencies={},
                           cancellation=Cancellation(), cancel=Cancellation().event)


@pytest.fixture(scope="module")
def tree():
    """A workspace with symlinks leading out of it, next to a directory that must stay empty;
    removed after the module's tests."""
    root = Path(tempfile.mkdtemp(prefix="props-"))
    workspace, outside = root / "ws", root / "outside"
    workspace.mkdir()
    outside.mkdir()
    (workspace / "link").symlink_to(outside)
    (workspace / "sub").mkdir()
    (workspace / "sub" / "up").symlink_to(root)
    yield SimpleNamespace(root=root, workspace=workspace, outside=outside)
    shutil.rmtree(root)


parts = st.sampled_from(["a", "b", "..", ".", "", "link", "sub", "up", "x.txt", "/"])


@settings(max_examples=300, deadline=None)
@given(st.lists(parts, min_size=1, max_size=6).map("/".join), st.sampled_from(["write", "append", "read", "delete", "list"]))
def test_no_path_reaches_outside_the_workspace(tree, path, operation):
    ctx = context({"operation": operation, "path": path, "content": "data"}, tree.workspace)
    try:
        file_operation.run(ctx)
    except TaskFailure:
        pass
    assert list(tree.outside.iterdir()) == []
    assert sorted(p.name for p in tree.root.iterdir()) == ["outside", "ws"]
    for written in ctx.metadata.get("files_written", []):
        real = os.path.realpath(tree.workspace / written)
        assert real.startswith(str(tree.workspace.resolve()) + os.sep)


records = st.lists(st.fixed_dictionaries({"k": st.integers(-5, 5), "v": st.integers(-1000, 1000)}), max_size=40)


def process(data, *operations):
    return data_processing.run(context({"input": data, "operations": list(operations)}))["result"]


@settings(max_examples=200, deadline=None)
@given(records, st.booleans())
def test_sort_orders_and_keeps_every_record(data, descending):
    result = process(data, {"op": "sort", "by": "v", "descending": descending})
    assert sorted(map(repr, result)) == sorted(map(repr, data))
    values = [r["v"] for r in result]
    assert values == sorted(values, reverse=descending)


@settings(max_examples=200, deadline=None)
@given(records, st.integers(-5, 5))
def test_filter_keeps_exactly_the_matching_records_in_order(data, threshold):
    assert process(data, {"op": "filter", "field": "k", "cmp": "ge", "value": threshold}) == \
        [r for r in data if r["k"] >= threshold]


@settings(max_examples=200, deadline=None)
@given(records)
def test_group_sums_add_up_to_the_total(data):
    groups = process(data, {"op": "group_by", "by": "k", "aggregate": {"function": "sum", "field": "v"}})
    assert sum(g["value"] for g in groups) == process(data, {"op": "reduce", "function": "sum", "field": "v"})
    assert [g["key"] for g in groups] == list(dict.fromkeys(r["k"] for r in data))
