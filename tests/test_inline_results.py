"""Inline (generic) results kept typed: what each reader sees is what the dict form gave.

Before, the scheduler made every generic task's result with its output (a copy of the
task's parameters), its metadata (one attempt) and an empty extra as dicts. Now the result
keeps the task and its times, and the dicts are made when read as attributes. These tests
hold the old dict form (OLD_FORM, written as the scheduler wrote it) against every reader:
the attributes, to_dict, pickling, the journal's rows and what resume reads back from
them, last.json's bytes, the record's dicts, and the artifacts found in the parameters."""
from __future__ import annotations

import heapq
import math
import pickle

import orjson
import pytest

import runner
from runner import librunner
from runner.execution import execute
from runner.execution.journal import RunState, _results_of
from runner.last.artifacts import collect_candidates
from runner.last.directory import full_record
from runner.librunner import last_json_value

IDS = ("0190a0b0-0000-7000-8000-00000000000a", "0190a0b0-0000-7000-8000-00000000000b", "2026-03-01T10:06:00.000Z")
FENCE = "```"

# Parameters of every shape a task may have, hostile ones included.
PARAMETERS = [
    {},
    {"note": "plain"},
    {"text": f"intro\n{FENCE}python\nprint('hi')\n{FENCE}\n"},          # a code block: an artifact
    {"content": f"{FENCE}json\n{{}}\n{FENCE}", "text": 5},                # the first *string* field
    {"response": f"no fence here {FENCE[:2]}"},
    {"files": {"a.txt": "A", "../up.txt": "B"}},                          # explicit entries
    {"artifacts": [{"name": "x.md", "text": "# x"}, {"nope": 1}, "bad"]},
    {"artifacts": "not a list"},
    {"unicode": "\u00fc\u4e2d\U0001f600", "control": "\x01\x1f\x7f\"\\\n\t", "escape": "</script>"},
    {"huge": "x" * 300_000, "deep": [[[[{"a": [None, True, False, 0, -1, 2 ** 53 - 1]}]]]]},
    {"numbers": [0.1, 1e16, 1e-7, -0.0, 123456789.125, 1.5e300, -(2 ** 53 - 1), 2 ** 53 - 1]},
    {"nested": {"text": f"{FENCE}\nnot the top level\n{FENCE}"}, "task_type": "generic"},
]


def alt_of(parameters_list, dependencies=True):
    tasks = []
    for n, parameters in enumerate(parameters_list):
        tasks.append({"id": f"t{n}", "description": f"task {n}",
                      "dependencies": [f"t{n - 1}"] if dependencies and n else [],
                      "parameters": {"task_type": "generic", **parameters}})
    return runner.parse_alt_file(orjson.dumps({"id": "inline", "title": "inline", "tasks": tasks}))


def run_inline(alt, clock_origin=0.0):
    """The scheduler runs alt's generic tasks itself, as the executor has it do."""
    scheduler = librunner.Scheduler(alt, None, None, frozenset({"generic"}))
    scheduler.clock_origin = clock_origin
    results = {}
    scheduler.run_inline(results)
    assert len(results) == len(alt.tasks)
    return results


def old_form(result, task):
    """(output, metadata, extra) as the scheduler made them as dicts for an inline result."""
    attempt = {"number": 1, "started_at": result.started_at, "duration_ms": result.duration_ms,
               "outcome": "completed", "error": None, "fault": None}
    if "offset_ms" in result.transient_metadata()["attempts"][0]:
        attempt["offset_ms"] = result.transient_metadata()["attempts"][0]["offset_ms"]
    metadata = {"task_type": "generic", "attempts": [attempt]}
    if task.control is not None:
        metadata["control"] = task.control
    return dict(task.parameters), metadata, {}


def old_to_dict(result, task):
    output, metadata, _ = old_form(result, task)
    return {"task_id": task.id, "status": "completed", "output": output, "error": None,
            "started_at": result.started_at, "completed_at": result.completed_at,
            "duration_ms": result.duration_ms, "metadata": metadata}


def old_row(result, task):
    output, metadata, _ = old_form(result, task)
    return (task.id, "completed", output, None, result.started_at, result.completed_at, result.duration_ms,
            metadata, None, None)


def materialised(results):
    """The results with every output, metadata and extra read as dicts (the old form)."""
    for result in results.values():
        result.output, result.metadata, result.extra
    return results


@pytest.mark.parametrize("clock_origin", [0.0, 1.0])
def test_attributes_and_to_dict_are_the_dict_form(clock_origin):
    alt = alt_of(PARAMETERS)
    results = run_inline(alt, clock_origin)
    for task in alt.tasks:
        result = results[task.id]
        attempt = result.transient_metadata()["attempts"][0]
        assert ("offset_ms" in attempt) == (clock_origin > 0)     # offset only on the run's clock
        if clock_origin:
            assert isinstance(attempt["offset_ms"], float) and not math.isnan(attempt["offset_ms"])
        assert type(result.duration_ms) is float and result.duration_ms >= 0
        assert result.to_dict() == old_to_dict(result, task)
        output, metadata, extra = old_form(result, task)
        assert result.output == output and result.metadata == metadata and result.extra == extra
        assert result.output is not task.parameters             # a copy, as before
        assert result.error is None and result.execution_id is None and result.status == "completed"


def test_attributes_are_made_once_and_kept():
    alt = alt_of([{"a": [1]}])
    result = run_inline(alt)["t0"]
    assert result.transient_output() is not result.transient_output()   # not kept: made per call
    output = result.output
    assert result.output is output and result.metadata is result.metadata and result.extra is result.extra
    output["added"] = 1                                     # a change stays, as in a stored dict
    result.metadata["attempts"][0]["note"] = "x"
    assert result.output["added"] == 1 and result.transient_output() is output
    assert result.to_dict()["output"]["added"] == 1
    row = orjson.loads(librunner.journal_results_line([result]))["rows"][0]
    assert row[2]["added"] == 1 and row[7]["attempts"][0]["note"] == "x"
    assert "added" not in alt.tasks[0].parameters


def test_pickled_result_has_the_same_values():
    alt = alt_of(PARAMETERS[:4])
    for task_id, result in run_inline(alt, 1.0).items():
        again = pickle.loads(pickle.dumps(result))
        assert again.to_dict() == result.to_dict() and again.extra == {}


def test_results_of_reported_dicts_keep_their_extra_and_none_is_empty():
    alt = alt_of([{}])
    plain = runner.task_result_from_dict({"task_id": "t0", "status": "completed", "output": 1}, alt)
    assert plain.extra == {} and plain.to_dict() == {
        "task_id": "t0", "status": "completed", "output": 1, "error": None, "started_at": None,
        "completed_at": None, "duration_ms": None, "metadata": {}}
    rich = runner.task_result_from_dict({"task_id": "t0", "status": "completed", "custom": [1]}, alt)
    assert rich.extra == {"custom": [1]} and rich.to_dict()["custom"] == [1]
    rows = orjson.loads(librunner.journal_results_line([plain, rich]))["rows"]
    assert rows[0][9] is None and rows[1][9] == {"custom": [1]}


def old_line(rows):
    """The journal's task_results line as the journal wrote it with orjson."""
    return orjson.dumps({"type": "task_results", "fields": librunner.JOURNAL_ROW_FIELDS, "rows": rows},
                        option=orjson.OPT_APPEND_NEWLINE, default=str)


def test_journal_rows_are_the_bytes_of_the_old_rows_and_read_back_as_to_dict():
    alt = alt_of(PARAMETERS)
    results = run_inline(alt, 1.0)
    reported = runner.task_result_from_dict({"task_id": "t1", "status": "failed", "error": "e", "x": [1]}, alt)
    typed = list(results.values()) + [reported]
    documents = [("t2", "completed", {"a": 1}, None, None, None, 1.5, {}, None, {"y": 2})]
    line = librunner.journal_results_line(typed, documents)
    old = old_line([old_row(results[t.id], t) for t in alt.tasks] + [
        ("t1", "failed", None, "e", None, None, None, {}, None, {"x": [1]})] + documents)
    assert line == old and line.endswith(b"]}\n")
    back = _results_of(None, 1, orjson.loads(line))
    assert back[:len(alt.tasks)] == [results[t.id].to_dict() for t in alt.tasks]
    assert back[len(alt.tasks)] == reported.to_dict()
    assert librunner.journal_results_line([]) == old_line([])


def hostile_alt():
    """Tasks whose parameters hold values a parsed file never has: a tuple, subclasses, an
    integer beyond 64 bits, a float subclass, a non-string key, a lone surrogate, NaN."""
    base = alt_of([{}])
    template = base.tasks[0]

    class Text(str):
        pass

    class Number(float):
        pass

    odd = [
        {"task_type": "generic", "tuple": (1, "two")},
        {"task_type": "generic", "sub": Text("abc")},
        {"task_type": "generic", "nan": float("nan"), "inf": float("inf")},
        {"task_type": "generic", "big": 2 ** 70},
        {"task_type": "generic", "wide": [-(2 ** 63), 2 ** 64 - 1, -(2 ** 63) - 1]},
        {"task_type": "generic", "u64": 2 ** 64 - 1, "i64": -(2 ** 63)},
        {"task_type": "generic", "float_sub": Number(1.5)},
        {"task_type": "generic", 3: "int key"},
        {"task_type": "generic", "lone": "\ud800"},
        {"task_type": "generic", "deep": nest(300)},
    ]
    tasks = [librunner.task_instance(template, f"h{n}", [], "hostile", parameters, None, n)
             for n, parameters in enumerate(odd)]
    return librunner.run_alt_file(base, tasks)


def nest(levels):
    value = []
    for _ in range(levels):
        value = [value]
    return value


def hostile_results(write):
    """(task, its inline result, the line orjson wrote for its old row) of each task of
    hostile_alt() that orjson could write; for the others, `write([result])` must refuse
    it with orjson's own error, checked here."""
    alt = hostile_alt()
    results = run_inline(alt, 1.0)
    for task in alt.tasks:
        result = results[task.id]
        try:
            expected = old_line([old_row(result, task)])
        except orjson.JSONEncodeError as error:
            with pytest.raises(orjson.JSONEncodeError) as raised:
                write([result])
            assert str(raised.value) == str(error)
            continue
        yield task, result, expected


def test_journal_rows_of_hostile_parameters_are_what_orjson_wrote():
    for task, result, expected in hostile_results(librunner.journal_results_line):
        assert librunner.journal_results_line([result]) == expected
        assert result.to_dict() == old_to_dict(result, task) or task.id == "h2"   # NaN != NaN


def last_bytes(alt, results):
    record = runner.build_last_record(alt, results, *IDS, {"wall_time_ms": 5.0})
    return runner.last_json(record), record


@pytest.mark.parametrize("clock_origin", [0.0, 1.0])
def test_last_json_bytes_and_record_dicts_are_the_dict_forms(clock_origin):
    alt = alt_of(PARAMETERS)
    results = run_inline(alt, clock_origin)
    typed, record = last_bytes(alt, results)
    chunks = []
    librunner.write_last_json(record, chunks.append, 64)
    assert b"".join(chunks) == typed
    assert all(result.transient_output() is not result.transient_output() for result in results.values())
    old, _ = last_bytes(alt, materialised(results))        # every result as the dict form
    assert typed == old
    assert typed == orjson.dumps(full_record(record), default=last_json_value,
                                 option=orjson.OPT_PASSTHROUGH_SUBCLASS)
    assert dict(record["task_results"]) == orjson.loads(typed)["task_results"]


def test_last_json_of_hostile_parameters_is_the_dict_forms():
    alt = hostile_alt()
    results = run_inline(alt, 1.0)
    for task in alt.tasks:
        one = {task.id: results[task.id]}
        try:
            typed = last_bytes(alt, one)[0]
        except (TypeError, ValueError, RecursionError) as error:
            fresh = run_inline(alt, 1.0)
            with pytest.raises(type(error)):
                last_bytes(alt, materialised({task.id: fresh[task.id]}))
            continue
        assert typed == last_bytes(alt, materialised(one))[0]


def test_control_flow_instances_carry_control_in_metadata_journal_and_last_json(tmp_path):
    doc = {"id": "loop", "title": "loop", "variables": {"items": [1, "\u00fc", {"k": [2.5]}]}, "tasks": [
        {"id": "a", "parameters": {"task_type": "generic"}},
        {"id": "b", "dependencies": ["a"], "for_each": {"variable": "x", "iterable": "items"},
         "parameters": {"task_type": "generic", "n": "$x", "text": f"{FENCE}\nitem $x\n{FENCE}"}},
    ]}
    outcome = execute(orjson.dumps(doc), tmp_path, journal=True)
    controlled = [r for r in outcome.results.values() if "control" in r.transient_metadata()]
    assert len(controlled) == 4 and all(r.status == "completed" for r in outcome.results.values())
    typed = [r for r in controlled if r.transient_output() is not r.transient_output()]   # made per read
    assert [r.task_id for r in typed] == ["b[0]", "b[1]", "b[2]"]
    journal = RunState(outcome.directory)
    for result in outcome.results.values():
        assert journal.results[result.task_id] == result.to_dict()
    record = orjson.loads(outcome.json)
    for result in controlled:
        assert record["task_results"][result.task_id]["metadata"] == result.metadata
        assert record["task_results"][result.task_id]["output"] == result.output
    assert outcome.results["b[1]"].metadata["control"] == {"loop": "b", "iteration": 1, "value": "\u00fc", "of": "b"}
    assert len(outcome.record["artifacts"]) == 3


def reference_sources(task_results):
    """(task id, output, metadata) of the results the Python filter of collect_candidates
    kept before the core took it over (its code, as it was)."""
    found = []
    for task_id, result in task_results.items():
        output, metadata = result.get("output"), result.get("metadata")
        if not (metadata and "files_written" in metadata):
            if output is None:
                continue
            if type(output) is dict:
                if "artifacts" not in output and "files" not in output:
                    text = None
                    for key in ("text", "content", "response"):
                        if isinstance(output.get(key), str):
                            text = output[key]
                            break
                    if text is None or FENCE not in text:
                        continue
            elif type(output) is not str or FENCE not in output:
                continue
        found.append((task_id, output, metadata))
    return found


def summary(candidates):
    return [(c.task_id, c.name, c.source, c.data, c.workspace_path, c.safe_name, c.language) for c in candidates[0]], \
        candidates[1]


def test_artifacts_in_parameters_are_found_as_before():
    alt = alt_of(PARAMETERS * 2, dependencies=False)
    results = run_inline(alt)
    # Reported results besides: files written, an output string with a fence, odd outputs.
    for n, doc in enumerate([{"output": f"{FENCE}sh\nls\n{FENCE}"}, {"output": 7},
                             {"output": {"text": None}}, {"metadata": {"files_written": ["a.txt", 3]}},
                             {"metadata": {"files_written": "a.txt"}}, {"output": [FENCE]}]):
        task_id = alt.tasks[n].id
        results[task_id] = runner.task_result_from_dict({"task_id": task_id, "status": "completed", **doc}, alt)
    record = runner.build_last_record(alt, results, *IDS, None)
    typed = record["task_results"]
    sources = typed.artifact_sources()
    assert not typed.filled
    plain = orjson.loads(runner.last_json(record))["task_results"]
    assert sources == reference_sources(plain)
    assert len(sources) >= 8
    candidates = collect_candidates(typed)
    assert not typed.filled
    assert summary(candidates) == summary(collect_candidates(plain))
    assert {c.source for c in candidates[0]} == {"explicit", "code_block", "files_written"}
    assert candidates[1]                                    # the refused entries, named as before
    typed.fill()
    assert summary(collect_candidates(typed)) == summary(candidates)


def test_report_rows_and_timeline_from_typed_results_are_those_from_the_file():
    from runner.last.directory import render_html
    from runner.last.graph_drawing import critical_path_of
    from runner.last.options import LastOptions
    from runner.last.reader import ATTENTION_ORDER, task_status
    from runner.last.record_values import ResultRows, task_dependencies
    from runner.last.report_view import page_view
    from runner.last.timeline import timeline

    alt = alt_of(PARAMETERS * 3)
    results = run_inline(alt, 1.0)
    stamps = {"started_at": "2026-03-01T10:06:00.000Z", "completed_at": "2026-03-01T10:06:01.250Z"}
    for n, doc in enumerate([{"status": "failed", "error": "boom", **stamps},
                             {"status": "skipped", "metadata": {"skipped_reason": "because"}},
                             {"status": "completed", "skipped": True, "duration_ms": 12.5},    # an extra field
                             {"status": "timeout", "duration_ms": 3}, {"status": "pending"}]):
        task_id = alt.tasks[3 * n + 1].id
        results[task_id] = runner.task_result_from_dict({"task_id": task_id, **doc}, alt)
    typed = runner.build_last_record(alt, results, *IDS, {"wall_time_ms": 5.0, "started_at": stamps["started_at"]})
    loaded = orjson.loads(runner.last_json(typed))
    table, theirs = ResultRows(typed), ResultRows(loaded)
    for column in ("task_ids", "statuses", "durations", "end_times"):
        assert getattr(table, column) == getattr(theirs, column)
    assert "skipped" in table.statuses and "failed" in table.statuses
    assert [table.dict_of(i) for i in range(len(alt.tasks))] == list(loaded["task_results"].values())
    wanted = {task.id for task in alt.tasks[::4]} | {"nowhere"}
    assert task_dependencies(typed, wanted) == task_dependencies(loaded, wanted)
    critical = critical_path_of(loaded)
    plain = list(loaded["task_results"].values())
    for limit in (0, 1, 4, 7, 500):
        drawn = timeline(typed, limit=limit, critical_ids=critical)
        assert drawn == timeline(loaded, limit=limit, critical_ids=critical)
        # The rows and tasks chosen are those the former choice (nsmallest over the dicts) made.
        def weight(result):
            return (ATTENTION_ORDER.get(task_status(result), 9) >= 5, result["task_id"] not in set(critical),
                    -(result["duration_ms"] or 0))
        assert {row["task_id"] for page in drawn["pages"] for row in page["rows"]} == \
            {result["task_id"] for result in heapq.nsmallest(limit, plain, key=weight)}
        shown = page_view(typed, None, limit, None)["tasks"]
        assert [task["id"] for task in shown] == [result["task_id"] for result in heapq.nsmallest(
            limit, plain, key=lambda r: ATTENTION_ORDER.get(task_status(r), 9) >= 5)]
        options = LastOptions(graph_renderer="builtin", report_task_limit=limit, graph_draw_limit=5)
        assert render_html(typed, options) == render_html(loaded, options)
    assert not typed["task_results"].filled and not typed["execution_graph"].filled
    assert all(result.transient_output() is not result.transient_output()
               for result in results.values() if result.status == "completed" and not result.extra)
