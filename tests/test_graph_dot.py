"""The execution graph's readers made by the core from its typed graph (graph.dot's bytes,
the summary's level bands) and the report's rows chosen from the typed results give
exactly what runner.last's Python code gives from the record read back from last.json;
and graph.dot, graph.svg and report.html written concurrently are those written one after
another."""
from __future__ import annotations

import orjson
import pytest

import runner
from runner.last import graph_drawing
from runner.last.directory import render_html
from runner.last.options import LastOptions
from runner.librunner import graph_level_bands, write_graph_dot

from tests.test_last_golden import EXECUTION

IDS = ("0190a0b0-0000-7000-8000-00000000000a", "0190a0b0-0000-7000-8000-00000000000b", "2026-03-01T10:06:00.000Z")
STATUSES = ("completed", "failed", "skipped", "timeout", "cancelled", None)
DURATIONS = (None, 0, 0.4, 0.5, 999.4, 999.5, 1000, 1234.5, 1005.0, 1004.999, 59999.99, 1e15, 2 ** 53 - 1, 0.125)
# Task ids and the file's id are 1-128 of A-Z a-z 0-9 _ . : - (the parser refuses others).
ODD_IDS = ("a.b:c-d_e", "Z" * 128, "0", "x-", "_")


def hostile_alt(tasks: int = 60, ids=()):
    docs = []
    names = [*ids, *(f"t{n}" for n in range(tasks - len(ids)))]
    for n, name in enumerate(names):
        deps = [names[m] for m in (n - 1, n - 2, n - 7) if m >= 0]
        docs.append({"id": name, "description": f"step \"{n}\" \u00fc\n", "dependencies": deps,
                     "parameters": {"task_type": "generic"}})
    return runner.parse_alt_file(orjson.dumps({"id": "dot.title:x-y_z", "title": "graph", "tasks": docs}))


def results_of(alt) -> dict:
    results = {}
    for i, task in enumerate(alt.tasks):
        status = STATUSES[i % len(STATUSES)]
        if status is None:
            continue
        doc = {"task_id": task.id, "status": status, "output": None, "error": None if status == "completed" else "x",
               "completed_at": "2026-03-01T10:00:01.000Z", "duration_ms": DURATIONS[i % len(DURATIONS)],
               "metadata": {}}
        if status != "skipped":
            doc["started_at"] = "2026-03-01T10:0%d:00.%03dZ" % (i % 3, i % 997)
        if i % 11 == 3:
            doc["skipped"] = True           # a field of the reporter's, which task_status reads
        results[task.id] = runner.task_result_from_dict(doc, alt)
    return results


def both(alt):
    typed = runner.build_last_record(alt, results_of(alt), *IDS, dict(EXECUTION))
    return typed, orjson.loads(runner.last_json(typed))


def accepted_ids() -> tuple:
    return ODD_IDS


@pytest.mark.parametrize("tasks", [1, 2, 60, 700])
@pytest.mark.parametrize("piece", [1, 100, 1 << 20])
def test_graph_dot_from_the_core_is_to_dots_text(tasks, piece):
    alt = hostile_alt(tasks, accepted_ids() if tasks > 10 else ())
    typed, loaded = both(alt)
    title = loaded["alt_file_id"]
    pieces = []
    graph_drawing.write_dot(typed["execution_graph"], title, pieces.append, piece)
    expected = graph_drawing.to_dot(loaded["execution_graph"], title).encode("utf-8")
    assert b"".join(pieces) == expected
    if piece == 1 and tasks > 10:
        assert len(pieces) > tasks              # handed on as made, not at the end
    assert not typed["execution_graph"].filled
    # The Python path (a graph read from a file) writes the same bytes.
    again = []
    graph_drawing.write_dot(loaded["execution_graph"], title, again.append, piece)
    assert b"".join(again) == expected


def test_a_graph_that_is_not_the_cores_is_left_to_python():
    alt = hostile_alt(5)
    typed, loaded = both(alt)
    assert write_graph_dot(loaded["execution_graph"], b"", {}, print, str) is None
    assert graph_level_bands(loaded["execution_graph"], 24) is None
    filled = typed["execution_graph"].fill()
    assert write_graph_dot(filled, b"", {}, print, str) is None       # its dicts may have been changed


@pytest.mark.parametrize("tasks,boxes", [(1, 24), (2, 1), (60, 24), (60, 5), (700, 24), (700, 1), (700, 1000)])
def test_level_bands_are_those_summarise_counts(tasks, boxes):
    typed, loaded = both(hostile_alt(tasks, accepted_ids() if tasks > 10 else ()))
    assert graph_drawing.summarise(typed["execution_graph"], boxes) == \
        graph_drawing.summarise(loaded["execution_graph"], boxes)
    assert not typed["execution_graph"].filled


def test_report_and_drawing_from_the_core_are_those_from_the_file():
    typed, loaded = both(hostile_alt(400, accepted_ids()))
    for limit in (5, 1000):
        options = LastOptions(graph_renderer="builtin", report_task_limit=30, graph_draw_limit=limit)
        assert render_html(typed, options) == render_html(loaded, options)
        ours = graph_drawing.draw(typed["execution_graph"], renderer="builtin", draw_limit=limit,
                                  critical=graph_drawing.critical_path_of(typed), with_dot=False)
        theirs = graph_drawing.draw(loaded["execution_graph"], renderer="builtin", draw_limit=limit,
                                    critical=graph_drawing.critical_path_of(loaded))
        assert (ours.svg, ours.summarised) == (theirs.svg, theirs.summarised)


def written_products(tmp_path, name: str, workers: int) -> dict:
    from runner.last.directory import write_directory

    typed, _ = both(hostile_alt(500, accepted_ids()))
    options = LastOptions(graph_renderer="builtin", workers=workers, compression=True)
    written = write_directory(typed, tmp_path / name, options)
    return {path.name: path.read_bytes() for path in written.directory.iterdir()}


def test_products_written_at_once_are_those_written_one_after_another(tmp_path):
    together = written_products(tmp_path, "together", 4)
    alone = written_products(tmp_path, "alone", 1)
    assert together == alone
    assert sorted(together) == ["graph.dot", "graph.svg", "last.json", "last.json.gz", "report.html"]
    loaded = orjson.loads(together["last.json"])
    assert together["graph.dot"] == graph_drawing.to_dot(loaded["execution_graph"], loaded["alt_file_id"]).encode()
    options = LastOptions(graph_renderer="builtin")
    assert together["report.html"] == render_html(loaded, options).encode()


def test_a_product_that_cannot_be_written_leaves_no_partial_file(tmp_path):
    alt = hostile_alt(60)
    directory = tmp_path / "0190a0b0-0000-7000-8000-0000000000ff"
    (directory / "graph.dot").mkdir(parents=True)        # graph.dot cannot be renamed into place
    (directory / "graph.dot" / "kept").write_text("x")
    with pytest.raises(runner.LastFileError, match="cannot write the LAST file of 'dot.title:x-y_z'"):
        runner.write_last_file(alt, results_of(alt), tmp_path, execution=dict(EXECUTION), last_id=directory.name,
                               graph_renderer="builtin")
    assert [path.name for path in directory.iterdir()] == ["graph.dot"]
    assert [path.name for path in (directory / "graph.dot").iterdir()] == ["kept"]


@pytest.mark.parametrize("limit", [0, 1, 7, 30, 100, 1000])
def test_report_rows_chosen_from_the_typed_results_are_those_from_the_file(limit):
    from runner.last.report_view import page_view
    from runner.last.timeline import timeline

    typed, loaded = both(hostile_alt(300, accepted_ids()))
    critical = graph_drawing.critical_path_of(loaded)
    for ids in (critical, [], [node["id"] for node in loaded["execution_graph"]["nodes"][::5]]):
        assert timeline(typed, limit=limit, critical_ids=ids) == timeline(loaded, limit=limit, critical_ids=ids)
    assert page_view(typed, "<svg/>", limit, None) == page_view(loaded, "<svg/>", limit, None)
    assert not typed["task_results"].filled and not typed["execution_graph"].filled


@pytest.mark.parametrize("limit", [1, 3, 10, 57, 400])
def test_timeline_rows_of_a_mostly_completed_run_are_the_former_choice(limit):
    """Few results needing attention, many completed ones with equal durations: the rows are
    those nsmallest over every result's weight picked, in the same order."""
    import heapq

    from runner.last.reader import ATTENTION_ORDER, task_status
    from runner.last.record_values import ResultRows
    from runner.last.timeline import _row_order, timeline

    alt = hostile_alt(700)
    results = results_of(alt)
    for i, task in enumerate(alt.tasks):
        if i % 41:
            results[task.id] = runner.task_result_from_dict(
                {"task_id": task.id, "status": "completed", "duration_ms": [5, 5.25, 900, 0, None][i % 5],
                 "started_at": "2026-03-01T10:00:00.000Z", "completed_at": "2026-03-01T10:00:01.000Z"}, alt)
    typed = runner.build_last_record(alt, results, *IDS, dict(EXECUTION))
    loaded = orjson.loads(runner.last_json(typed))
    critical = graph_drawing.critical_path_of(loaded)[:3]
    plain = list(loaded["task_results"].values())

    def weight(result):
        return (ATTENTION_ORDER.get(task_status(result), 9) >= 5, result["task_id"] not in set(critical),
                -(result["duration_ms"] or 0))
    assert timeline(typed, limit=limit, critical_ids=critical) == timeline(loaded, limit=limit, critical_ids=critical)
    chosen, total = _row_order(ResultRows(typed), set(critical), limit)
    assert total == len(plain)
    assert [result["task_id"] for result in chosen] == \
        [result["task_id"] for result in heapq.nsmallest(limit, plain, key=weight)]
