"""last.json streamed from the typed results: the chunks the core makes are the bytes of
the whole document (and of orjson writing the record's dicts), the record's task results
are made as dicts only when read as a dict, and the report and the graph drawn from the
typed record are those drawn from the record read back from last.json."""
from __future__ import annotations

import gzip
import json

import orjson
import pytest

import runner
from runner.last import graph_drawing
from runner.last.directory import render_html
from runner.last.options import LastOptions
from runner.librunner import write_last_json

from tests.test_last_golden import EXECUTION, fixture_results

IDS = ("0190a0b0-0000-7000-8000-00000000000a", "0190a0b0-0000-7000-8000-00000000000b", "2026-03-01T10:06:00.000Z")


def fixture_alt(tasks: int = 40):
    """Tasks with dependencies, descriptions needing escapes, and a non-topological order."""
    docs = []
    for n in range(tasks):
        deps = [f"t{m}" for m in (n - 1, n - 3) if m >= 0]
        docs.append({"id": f"t{n}", "description": f"step \"{n}\" \u00fc\n", "dependencies": deps,
                     "parameters": {"task_type": "generic"}})
    docs.append({"id": "first", "description": None, "dependencies": []})
    docs[0]["dependencies"] = ["first"]          # "first" comes last in the file but runs first
    return runner.parse_alt_file(orjson.dumps({"id": "s", "title": "stream", "tasks": docs}))


def record_of(alt):
    return runner.build_last_record(alt, fixture_results(alt), *IDS, dict(EXECUTION))


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_the_chunks_are_the_whole_document(chunk):
    alt = fixture_alt()
    chunks = []
    write_last_json(record_of(alt), chunks.append, chunk)
    whole = runner.last_json(record_of(alt))
    assert b"".join(chunks) == whole
    if chunk < 64:
        assert len(chunks) > len(alt.tasks)     # handed on as it was made, not at the end
    full = record_of(alt)
    plain = {**full, "task_results": dict(full["task_results"]),
             "execution_graph": {"nodes": list(full["execution_graph"]["nodes"]),
                                 "edges": list(full["execution_graph"]["edges"])}}
    assert whole == orjson.dumps(plain)


def test_task_results_are_made_when_read_and_changes_are_written():
    alt = fixture_alt()
    record = record_of(alt)
    results = record["task_results"]
    assert len(results) == len(alt.tasks)
    assert not results.filled                   # len() made no dict
    pairs = list(results.each())
    assert not results.filled                   # nor did going through them one at a time
    assert [task_id for task_id, _ in pairs] == [task.id for task in alt.tasks]
    assert dict(pairs) == results               # == reads it as a dict
    assert results.filled
    results["t0"]["status"] = "failed"
    assert orjson.loads(runner.last_json(record))["task_results"]["t0"]["status"] == "failed"
    chunks = []
    write_last_json(record, chunks.append, 16)
    assert b"".join(chunks) == runner.last_json(record)
    assert json.loads(json.dumps(record))["task_results"]["t0"]["status"] == "failed"


def test_written_record_and_files_match(tmp_path):
    alt = fixture_alt()
    written = runner.write_last_file(alt, fixture_results(alt), tmp_path, execution=dict(EXECUTION),
                                     compression=True, graph_renderer="builtin")
    data = (written.directory / "last.json").read_bytes()
    assert gzip.decompress((written.directory / "last.json.gz").read_bytes()) == data
    assert written.json == data
    assert not written.lean_record["task_results"].filled       # writing made no dict per result
    assert orjson.dumps(written.record) == data                 # .record: all of it, as dicts
    assert runner.load_last(written.directory) == written.record


def test_report_and_graph_from_the_typed_record_are_those_from_the_file():
    alt = fixture_alt()
    typed = record_of(alt)
    loaded = orjson.loads(runner.last_json(typed))
    options = LastOptions(graph_renderer="builtin", report_task_limit=10, graph_draw_limit=5)
    assert render_html(typed, options) == render_html(loaded, options)
    assert not typed["task_results"].filled and not typed["execution_graph"].filled
    for limit in (5, 1000):
        ours = graph_drawing.draw(typed["execution_graph"], renderer="builtin", draw_limit=limit,
                                  critical=graph_drawing.critical_path_of(typed))
        theirs = graph_drawing.draw(loaded["execution_graph"], renderer="builtin", draw_limit=limit,
                                    critical=graph_drawing.critical_path_of(loaded))
        assert (ours.dot, ours.svg, ours.summarised) == (theirs.dot, theirs.svg, theirs.summarised)
    assert list(typed["execution_graph"].each_node()) == loaded["execution_graph"]["nodes"]
    assert list(typed["execution_graph"].each_edge()) == loaded["execution_graph"]["edges"]


def test_timeline_rows_chosen_from_the_typed_record_are_those_from_the_file():
    from runner.last.timeline import timeline

    alt = fixture_alt()
    typed = record_of(alt)
    loaded = orjson.loads(runner.last_json(typed))
    critical = graph_drawing.critical_path_of(loaded)
    for limit in (3, 10, 500):
        assert timeline(typed, limit=limit, critical_ids=critical) == timeline(loaded, limit=limit, critical_ids=critical)
    assert not typed["task_results"].filled


class Named(str):
    pass


class Ordered(dict):
    pass


def test_values_of_every_kind_are_written_as_orjson_writes_them():
    import enum

    class Level(enum.IntEnum):
        HIGH = 3

    deep: list = ["bottom", 1.25]
    for _ in range(60):          # deeper than the writer goes itself: orjson writes the rest
        deep = [deep, {"k": deep[-1] if isinstance(deep[-1], float) else None}]
    outputs = [
        {"floats": [0.1, 1e16, -0.0, 1.5e-7, 123456789.125, 2.0], "ints": [-1, 0, -9007199254740991, 2 ** 53 - 1]},
        Ordered(b=1, a=[Named("named"), Level.HIGH, True, False, None]),
        {"escapes": "quote\" back\\ nl\n tab\t ctl\x01 \u2028 \U0001f600", "k\"ey": {"\u00fc": []}},
        [[], {}, [{}], {"": ""}],
        deep,
        Named("a str subclass"),
        -5,
        7.75,
    ]
    alt = fixture_alt(len(outputs) + 2)
    results = {}
    for i, output in enumerate(outputs):
        task_id = f"t{i}"
        results[task_id] = runner.task_result_from_dict(
            {"task_id": task_id, "status": "completed", "output": output, "duration_ms": 3,
             "metadata": {"task_type": "generic", "nested": Ordered(x=[Named("y")])},
             "reporter_extra": {"list": [1, 2.5, "three"]}}, alt)
    record = runner.build_last_record(alt, results, *IDS, dict(EXECUTION))
    whole = runner.last_json(record)
    chunks = []
    write_last_json(record, chunks.append, 5)
    assert b"".join(chunks) == whole
    plain = {**record, "task_results": dict(record["task_results"]),
             "execution_graph": {"nodes": list(record["execution_graph"]["nodes"]),
                                 "edges": list(record["execution_graph"]["edges"])}}
    assert whole == orjson.dumps(plain, default=runner.librunner.last_json_value,
                                 option=orjson.OPT_PASSTHROUGH_SUBCLASS)


def test_an_output_list_emptied_while_it_is_written_is_not_read_past_its_end(tmp_path):
    """A list subclass inside an output runs its own __iter__ when orjson writes it; one that
    empties the list around it while the LAST file is written must not make the writer read
    freed slots (it was a segmentation fault)."""
    outer: list = []

    class Emptying(list):
        calls = 0

        def __iter__(self):
            Emptying.calls += 1
            if Emptying.calls >= 3:
                outer.clear()
            return super().__iter__()

    outer.extend([Emptying([1]), "a" * 10, 3, {"x": 1}, *range(1000)])
    doc = {"id": "emptying", "title": "t", "tasks": [{"id": "a", "parameters": {"task_type": "odd"}}]}
    record = runner.run(doc, tmp_path / "out", handlers={"odd": lambda task: outer})
    (directory,) = (tmp_path / "out").iterdir()
    written = json.loads((directory / "last.json").read_bytes())
    assert written["task_results"]["a"]["status"] == record["task_results"]["a"]["status"] == "completed"


@pytest.mark.parametrize("output, named", [
    (lambda: [float.__new__(type("Float64", (float,), {}), 1.5)], "Float64 (a subclass of float)"),
    (lambda: {__import__("enum").StrEnum("Key", ["A"]).A: 1}, "Key (a subclass of str)"),
])
def test_float_subclasses_and_str_subclass_keys_fail_their_task_not_the_run(tmp_path, output, named):
    """numpy.float64 or a StrEnum key in an output: orjson (the journal, the LAST file) writes
    neither, so the result check refuses them and the task fails with what to convert; the
    run and its LAST file are whole (the run died with a raw TypeError and no last.json)."""
    doc = {"id": "subclassed", "title": "t", "tasks": [{"id": "a", "parameters": {"task_type": "odd"}},
                                                       {"id": "b", "dependencies": []}]}
    value = output()
    record = runner.run(doc, tmp_path / "out", handlers={"odd": lambda task: value})
    results = record["task_results"]
    assert results["a"]["status"] == "failed" and named in results["a"]["error"], results["a"]["error"]
    assert results["b"]["status"] == "completed"
    (directory,) = (tmp_path / "out").iterdir()
    assert json.loads((directory / "last.json").read_bytes())["task_results"]["a"]["status"] == "failed"
