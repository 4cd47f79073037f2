"""The journal's short rows for inline (generic) results (INLINE_ROW_FIELDS, format 2).

An inline result's row used to be a full row (~345 bytes, its metadata skeleton and its
stamp and duration twice); now it is task_id, started_at, output, completed_at,
duration_ms, offset_ms[, control] (~90 bytes). What matters is what the journal's readers
(RunState: resume, show, the service, traces) get back: exactly what the full row gave,
which is TaskResult.to_dict(). These tests hold the new lines against the old full rows
(journal_results_line, whose bytes tests/test_inline_results.py pins to orjson's) on
varied and hostile results, and check that journals of the old form still read and resume.
"""
from __future__ import annotations

import gc
import json
import math
import shutil
import signal
import threading
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import runner
from conftest import wait_until
from runner import librunner
from runner.errors import JournalError
from runner.execution import execute
from runner.execution.journal import FORMAT, RunState, _results_of, _row_of
from test_durable_journal import run_directory, start_cli
from test_durable_resume import cli
from test_inline_results import PARAMETERS, alt_of, hostile_alt, hostile_results, old_line, old_row, run_inline

FULL = list(librunner.JOURNAL_ROW_FIELDS)
SHORT = list(librunner.INLINE_ROW_FIELDS)


def read_back(data: bytes) -> tuple[list, list]:
    """(results as RunState reads them, each line's fields) of journal lines."""
    results, kinds = [], []
    for number, line in enumerate(data.splitlines(keepends=True), 1):
        assert line.endswith(b"\n")
        record = orjson.loads(line)
        assert record["type"] == "task_results"
        kinds.append("short" if record["fields"] == SHORT else "full" if record["fields"] == FULL else None)
        results += _results_of(Path("journal.jsonl"), number, record)
    return results, kinds


def old_back(results, tasks) -> list:
    """What the journal gave back for these results when every row was full."""
    return read_back(old_line([old_row(results[t.id], t) for t in tasks]))[0]


@pytest.mark.parametrize("clock_origin", [0.0, 1.0])     # 0: no offset_ms; 1: on the run's clock
def test_short_rows_read_back_as_to_dict_and_as_the_full_rows_did(clock_origin):
    alt = alt_of(PARAMETERS)
    results = run_inline(alt, clock_origin)
    typed = [results[t.id] for t in alt.tasks]
    data = librunner.journal_lines(typed)
    back, kinds = read_back(data)
    assert kinds == ["short"]
    assert back == [r.to_dict() for r in typed] == old_back(results, alt.tasks)
    assert [list(d) for d in back] == [list(r.to_dict()) for r in typed]          # key order too
    assert [list(d["metadata"]["attempts"][0]) for d in back] == \
        [list(r.to_dict()["metadata"]["attempts"][0]) for r in typed]
    assert all(result.transient_output() is not result.transient_output() for result in typed)  # still typed
    # Much shorter than the full rows (their bytes, orjson's).
    assert len(data) < len(librunner.journal_results_line(typed)) - 200 * len(typed)


def test_hostile_parameters_read_back_as_the_full_rows_did():
    for task, result, old in hostile_results(librunner.journal_lines):
        back, kinds = read_back(librunner.journal_lines([result]))
        assert back == read_back(old)[0], task.id
        # Values orjson writes as other values (a tuple, subclasses, big integers as text,
        # NaN as null) keep the full row; exact JSON (64-bit integers at the edges) a short one.
        assert kinds == (["short"] if task.id in ("h2", "h5") else ["full"]), task.id


def test_inline_reported_and_earlier_results_keep_their_order_across_lines():
    alt = alt_of([{"a": 1}, {"b": [2]}, {}, {"c": "\u00fc"}])
    results = run_inline(alt, 1.0)
    t0, t1, t2, t3 = (results[t.id] for t in alt.tasks)
    reported = librunner.task_result_from_dict({"task_id": "t1", "status": "failed", "error": "e", "x": [1]}, alt)
    read_one = results["t2"]
    read_one.output     # made and kept: no longer typed, a full row as before
    given_extra = results["t3"]
    given_extra.extra["note"] = 1       # an extra field: only a full row keeps it
    documents = [("t9", "completed", {"a": 1}, None, None, None, 1.5, {}, None, {"y": 2})]
    order = [t0, reported, t1, read_one, given_extra, t0]
    back, kinds = read_back(librunner.journal_lines(order, documents))
    assert kinds == ["short", "full", "short", "full", "short", "full"]
    assert back == [r.to_dict() for r in order] + read_back(old_line(documents))[0]
    assert back[4]["note"] == 1
    assert librunner.journal_lines([]) == b"" and librunner.journal_lines([], []) == b""
    back, kinds = read_back(librunner.journal_lines([], documents))
    assert kinds == ["full"] and back == read_back(old_line(documents))[0]


def test_stamps_left_out_are_the_row_befores_and_the_results_own():
    first = alt_of([{}] * 3)
    early = run_inline(first, 1.0)
    time.sleep(0.003)       # another millisecond: another stamp
    second = runner_alt([{"z": 1}] * 3, prefix="u")
    late = run_inline(second, 1.0)
    typed = list(early.values()) + list(late.values())
    data = librunner.journal_lines(typed)
    rows = orjson.loads(data)["rows"]
    assert rows[0][1] is not None and rows[3][1] is not None           # a line's first, a new stamp
    assert rows[3][1] != rows[0][1]
    assert read_back(data)[0] == [r.to_dict() for r in typed]


def test_shared_parameters_are_written_once_and_copied_as_they_were():
    # Instances share their template's parameters object: its text is copied from the row
    # that wrote it, also past rows given up for a full one (a control orjson writes as text).
    base = alt_of([{"shared": ["\u00fc", 1.5, {"k": None}], "text": "a\"b\\c\n"}])
    template = base.tasks[0]
    controls = [(1, 2), None, {"loop": "x", "iteration": 1}, (3,), None, None]
    made = [librunner.task_instance(template, f"i{n}", [], "d", None, control, n)
            for n, control in enumerate(controls)]
    made.append(librunner.task_instance(template, "own", [], "d", {"task_type": "generic", "own": 1}, None, 6))
    made.append(librunner.task_instance(template, "again", [], "d", None, None, 7))
    alt = librunner.run_alt_file(base, made)
    results = run_inline(alt, 1.0)
    typed = [results[t.id] for t in alt.tasks]
    task = {t.id: t for t in alt.tasks}
    for order in (typed, typed[::-1], typed[1:] + typed[:1]):
        data = librunner.journal_lines(order)
        back, kinds = read_back(data)
        assert back == old_back(results, [task[r.task_id] for r in order])     # a tuple control as a list
        assert [d for d in back if d["task_id"] not in ("i0", "i3")] == \
            [r.to_dict() for r in order if r.task_id not in ("i0", "i3")]
        assert "full" in kinds and "short" in kinds
    short_rows = [row for line in librunner.journal_lines(typed).splitlines()
                  for row in orjson.loads(line)["rows"] if len(row) in (6, 7)]
    assert [row[2] for row in short_rows].count(template.parameters) == 5


def test_a_result_read_while_the_rows_are_written_keeps_every_row_right():
    # A value orjson writes as its text (default=str) runs its own code, which may read a
    # later result's output: that one is no longer typed by the time its row is written.
    base = alt_of([{}])
    holder = {}

    class Peek:
        def __str__(self):
            holder["results"]["h3"].output
            return "peeked"

    parameters = [{"task_type": "generic", "p": Peek()}, {"task_type": "generic", "a": 1},
                  {"task_type": "generic", "b": 2.5}, {"task_type": "generic", "c": [3]},
                  {"task_type": "generic", "d": "\u00e9"}]
    made = [librunner.task_instance(base.tasks[0], f"h{n}", [], "d", p, None, n) for n, p in enumerate(parameters)]
    alt = librunner.run_alt_file(base, made)
    results = holder["results"] = run_inline(alt, 1.0)
    typed = [results[t.id] for t in alt.tasks]
    back, kinds = read_back(librunner.journal_lines(typed))
    assert kinds == ["full", "short", "full", "short"]
    assert back[0]["output"]["p"] == "peeked"
    assert back[1:] == [r.to_dict() for r in typed[1:]]



def drained_into_a_sink(alt) -> tuple[list, list, int]:
    """(the results in the order they ended, the sink's queue once closed, how many results
    it queued) of a drain of alt's tasks into a RowSink, as the executor has the scheduler do
    for the journal."""
    scheduler = librunner.Scheduler(alt, None, None, frozenset({"generic"}))
    scheduler.clock_origin = 1.0
    ended, queue = {}, []
    sink = librunner.RowSink(queue)
    assert scheduler.run_inline(librunner.RunStatistics(ended, alt.tasks), sink) == len(alt.tasks)
    written = sink.close()
    assert sink.rows == 0 and sink.close() == 0         # closed: nothing open, nothing new
    return list(ended.values()), queue, written


def queued_task_ids(queue: list) -> list:
    """The task ids of a sink's queue in its order: its lines' rows, and its results."""
    ids = []
    for item in queue:
        if type(item) is librunner.TextWithDoubles:
            ids += [row[0] for row in orjson.loads(bytes(item))["rows"]]
        else:
            ids.append(item.task_id)
    return ids


def test_the_drains_rows_are_the_bytes_the_writer_made_from_the_same_results():
    # Rows written one by one as the drain ends each task, parameters' text copied while
    # tasks share one object, are the line the writer made from the whole batch, byte for byte.
    base = alt_of(PARAMETERS)
    made = [librunner.task_instance(base.tasks[n % len(PARAMETERS)], f"i{n}", [f"i{n - 1}"] if n else [], "d",
                                    None, None, n) for n in range(3600)]
    ended, queue, written = drained_into_a_sink(librunner.run_alt_file(base, made))
    assert written == len(ended) == 3600 and len(queue) == 1
    assert bytes(queue[0]) == librunner.journal_lines(ended)
    assert read_back(bytes(queue[0]))[0] == [r.to_dict() for r in ended]


def test_the_drains_rows_of_every_kind_are_the_writers_bytes_and_read_back_as_to_dict():
    # Most rows are cheap (an id and stamps of plain ASCII copied as they are, the parameters
    # of the row before copied); every way out of that, and back, gives the bytes
    # journal_text writes for the same results, and reads back as to_dict().
    base = alt_of([{"n": 1}, {}])
    ids = ["plain", 'quote"d', "back\\slash", "tab\t", "\u00fcber", "\U0001f600", "x" * 300, ""]
    shared, other = base.tasks[0], base.tasks[1]
    made = []
    for n in range(20_000):
        name = f"{ids[n % len(ids)]}{n}" if n % 7 else f"i{n}"
        template = shared if n % 5 else other
        parameters = {"task_type": "generic", "own": n} if n % 11 == 0 else None    # an object of its own
        control = {"loop": {"index": n}} if n % 13 == 0 else None
        made.append(librunner.task_instance(template, name, [made[-1].id] if made else [], "d", parameters,
                                            control, n))
    ended, queue, written = drained_into_a_sink(librunner.run_alt_file(base, made))
    assert written == len(ended) == 20_000 and len(queue) == 1
    line = bytes(queue[0])
    assert line == librunner.journal_lines(ended)
    assert read_back(line)[0] == [r.to_dict() for r in ended]
    rows = orjson.loads(line)["rows"]
    assert any(row[1] is not None for row in rows[1:])      # a stamp other than the row before's


def test_rows_of_ids_and_parameters_of_every_short_length_read_back_as_to_dict():
    # The rows' copies of a few bytes are moves of fixed sizes that overlap (runner_copy):
    # ids of 1 to 70 characters and parameters' texts of 31 to 100 bytes, each copied from
    # the row before, cross every size it treats apart.
    base = alt_of([{}])
    made = []
    for n in range(1, 71):
        parameters = {"task_type": "generic", "p": "x" * n}     # two tasks in a row share it
        for letter in "ij":
            made.append(librunner.task_instance(base.tasks[0], letter * n, [made[-1].id] if made else [], "d",
                                                parameters, None, len(made)))
    ended, queue, written = drained_into_a_sink(librunner.run_alt_file(base, made))
    assert written == len(ended) == 140 and len(queue) == 1
    line = bytes(queue[0])
    assert line == librunner.journal_lines(ended)
    assert read_back(line) == ([r.to_dict() for r in ended], ["short"])
    assert [row[0] for row in orjson.loads(line)["rows"]] == [letter * n for n in range(1, 71) for letter in "ij"]


class ClosesTheSinkWhenFreed:
    """A value whose finalizer runs Python code that uses the sink (review 15's hostile
    parameters: put in a dict after its row was written)."""

    def __init__(self, sink, seen):
        self.sink, self.seen = sink, seen

    def __del__(self):
        self.seen.append(self.sink.close())


def test_python_code_run_when_a_closed_line_frees_its_shared_parameters_finds_the_sink_whole():
    # Closing a line can drop the sink's last reference to the parameters its rows shared:
    # a finalizer of theirs then runs Python code, which may use the sink. It must find it
    # whole: no line without its head, every result once, in order.
    base = alt_of([{}])
    queue, seen = [], []
    sink = librunner.RowSink(queue)
    shared = {"task_type": "generic", "k": 1}
    first = [librunner.task_instance(base.tasks[0], f"a{n}", [], "d", shared, None, n) for n in range(100)]
    librunner.Scheduler(librunner.run_alt_file(base, first), None, None, frozenset({"generic"})).run_inline({}, sink)
    shared["late"] = ClosesTheSinkWhenFreed(sink, seen)
    del shared, first               # the sink's shared parameters hold the dict alone now
    gc.collect()
    outer = sink.close()
    assert len(seen) == 1 and outer + seen[0] == 100     # the finalizer ran inside close(); each counted once
    assert queued_task_ids(queue) == [f"a{n}" for n in range(100)]     # every line whole JSON
    assert len(queue) == 1


def test_shared_parameters_are_written_again_after_the_drain_let_go_of_the_gil():
    # Other code runs while the drain hands the GIL over: the text of the parameters the
    # tasks share is not copied across a hand-over, but written from the object as it is.
    base = alt_of([{}])
    shared = {"task_type": "generic", "seen": 0}
    made = [librunner.task_instance(base.tasks[0], f"i{n}", [f"i{n - 1}"] if n else [], "d", shared, None, n)
            for n in range(20_000)]
    alt = librunner.run_alt_file(base, made)
    stop = threading.Event()

    def change_it_when_given_the_gil():
        while not stop.is_set():
            librunner.gil_nap(0.0002)       # wakes asking the drain for the GIL
            shared["seen"] += 1
    changer = threading.Thread(target=change_it_when_given_the_gil)
    changer.start()
    try:
        ended, queue, written = drained_into_a_sink(alt)
    finally:
        stop.set()
        changer.join()
    seen = [row[2]["seen"] for row in orjson.loads(bytes(queue[0]))["rows"] if row[0] != "t0"]
    assert seen == sorted(seen) and seen[-1] > seen[0]      # each row as the object was when written


class ChangesWhenCollected:
    """Garbage in a reference cycle: its finalizer, run by a collection, changes the
    parameters the tasks share and notes how many results were stored by then."""

    def __init__(self, shared: dict, ended: dict, changes: list):
        self.me, self.shared, self.ended, self.changes = self, shared, ended, changes

    def __del__(self):
        self.shared["k"] += 1
        self.changes.append((self.shared["k"], len(self.ended)))


def test_a_collector_turned_on_by_another_thread_collects_nothing_in_the_drain():
    # A thread given the GIL at a hand-over turns the collector on (threshold 1) with
    # garbage whose finalizer changes the shared parameters: a collection started by the
    # drain's next allocation ran it between two rows, and the rows after copied stale text
    # (review 20). The drain turns it off again at once; each row written after a change
    # holds it.
    shared = {"task_type": "generic", "k": 0}
    alt = shared_parameters_alt(shared, 40_000)
    ended, changes, held = {}, [], []
    stop = threading.Event()
    threshold = gc.get_threshold()

    def turn_the_collector_on_when_given_the_gil():
        while not stop.is_set():
            librunner.gil_nap(0.0002)       # wakes asking the drain for the GIL
            gc.disable()
            held.append([[] for _ in range(100)])      # the drain's next list a new allocation
            ChangesWhenCollected(shared, ended, changes)
            gc.set_threshold(1)
            gc.enable()
    turner = threading.Thread(target=turn_the_collector_on_when_given_the_gil)
    turner.start()
    try:
        rows, _ = drained_rows(alt, librunner.RunStatistics(ended, alt.tasks))
    finally:
        stop.set()
        turner.join()
        gc.set_threshold(*threshold)
    assert gc.isenabled()       # as the other thread left it
    assert [row[0] for row in rows] == [f"t{n}" for n in range(40_000)]
    stale = [(value, stored, j, rows[j][2]["k"]) for value, stored in changes for j in range(stored, len(rows))
             if rows[j][2]["k"] < value]
    assert changes and not stale[:3]


class ChangesWhenFreed(ChangesWhenCollected):
    """Held by a task's dependencies: its finalizer runs when the task is freed."""

    def __init__(self, shared: dict, ended: dict, changes: list):
        self.shared, self.ended, self.changes = shared, ended, changes


def test_a_task_and_result_replaced_meanwhile_are_let_go_of_before_the_next_row_is_kept():
    # A thread given the GIL at a hand-over replaces the task the drain just ended and its
    # result: the drain's references are then their last, and letting go of them in its
    # next round ran a finalizer that changed the shared parameters before that round's
    # row, which copied stale text (review 20).
    shared = {"task_type": "generic", "k": 0}
    alt = shared_parameters_alt(shared, 20_000)
    template = alt.tasks[0]
    ended, changes, replaced = {}, [], set()
    recorder = librunner.RunStatistics(ended, alt.tasks)
    stop = threading.Event()

    def replace_the_last_task_when_given_the_gil():
        while not stop.is_set():
            librunner.gil_nap(0.0002)       # wakes asking the drain for the GIL
            task_id = next(reversed(ended), None)
            if task_id is None or task_id in replaced or task_id == "t0":
                continue
            replaced.add(task_id)
            index = int(task_id[1:])
            old = alt.tasks[index]
            old.dependencies.append(ChangesWhenFreed(shared, ended, changes))
            new = librunner.task_instance(template, task_id, [], "d", shared, None, index)
            alt.tasks[index] = alt.task_index[task_id] = new
            recorder.record(index, librunner.task_result_from_dict({"task_id": task_id, "status": "completed"},
                                                                    alt))
            del old, new
    replacer = threading.Thread(target=replace_the_last_task_when_given_the_gil)
    replacer.start()
    try:
        rows, _ = drained_rows(alt, recorder)
    finally:
        stop.set()
        replacer.join()
    assert [row[0] for row in rows] == [f"t{n}" for n in range(20_000)]
    stale = [(value, stored, j, rows[j][2]["k"]) for value, stored in changes for j in range(stored, len(rows))
             if rows[j][2]["k"] < value]
    assert changes and not stale[:3]


class ChangesTheParameters:
    """A value a drain's results already hold for a task: its finalizer, run when the drain
    stores the task's result in its place, changes the parameters the tasks share."""

    def __init__(self, parameters: dict):
        self.parameters = parameters

    def __del__(self):
        self.parameters["k"] = "after"


class CollidesAndChangesTheParameters:
    """A key a drain's results already hold whose hash is a task id's: the lookup that stores
    the task's result runs its __eq__, which changes the parameters the tasks share (review 18)."""

    def __init__(self, task_id: str, parameters: dict):
        self.task_id, self.parameters = task_id, parameters

    def __hash__(self):
        return hash(self.task_id)

    def __eq__(self, other):
        self.parameters["k"] = "after"
        return False


def shared_parameters_alt(parameters: dict, count: int = 4):
    base = alt_of([{}])
    made = [librunner.task_instance(base.tasks[0], f"t{n}", [f"t{n - 1}"] if n else [], "d", parameters, None, n)
            for n in range(count)]
    return librunner.run_alt_file(base, made)


def drained_rows(alt, into) -> tuple[list, list]:
    """(the rows in order, the sink's queue) of a drain of alt's tasks into `into` (the run's
    RunStatistics, or a dict) and a RowSink."""
    queue = []
    sink = librunner.RowSink(queue)
    scheduler = librunner.Scheduler(alt, None, None, frozenset({"generic"}))
    scheduler.clock_origin = 1.0
    assert scheduler.run_inline(into, sink) == len(alt.tasks)
    sink.close()
    return [row for item in queue for row in orjson.loads(bytes(item))["rows"]], queue


@pytest.mark.parametrize("into", ["dict", "statistics"])
@pytest.mark.parametrize("code", ["a replaced value's finalizer", "a key's __eq__"])
def test_rows_after_python_code_ran_in_the_drain_hold_the_parameters_as_they_are(into, code):
    # Storing t1's result runs Python code that changes the parameters every task shares
    # (the finalizer of the value held for it before, or the __eq__ of a key whose hash is
    # its id's): t1's row and the rows after it must write them as they are then (as
    # to_dict() reads them), not copy the text of t0's row (reviews 16 and 18).
    parameters = {"task_type": "generic", "k": "before"}
    alt = shared_parameters_alt(parameters)
    results = {}
    recorder = librunner.RunStatistics(results, alt.tasks) if into == "statistics" else results
    if code == "a key's __eq__":
        results[CollidesAndChangesTheParameters("t1", parameters)] = None
    else:
        results["t1"] = ChangesTheParameters(parameters)
    rows, (line,) = drained_rows(alt, recorder)
    assert [(row[0], row[2]["k"]) for row in rows] == [("t0", "before"), ("t1", "after"), ("t2", "after"),
                                                        ("t3", "after")]
    # t0's row holds them as they were when it ended (its result's to_dict() reads them now).
    assert _results_of(Path("journal.jsonl"), 1, orjson.loads(bytes(line)))[1:] == \
        [results[f"t{n}"].to_dict() for n in range(1, 4)]


class CollidesChangesAndHides(CollidesAndChangesTheParameters):
    """A colliding key whose __eq__ also takes itself and an earlier result out of the dict:
    its size then agrees again with the keys the drain put there (review 19)."""

    def __init__(self, task_id: str, parameters: dict, results: dict):
        super().__init__(task_id, parameters)
        self.results = results

    __hash__ = CollidesAndChangesTheParameters.__hash__

    def __eq__(self, other):
        self.parameters["k"] = "after"
        self.results.pop(self, None)
        self.results.pop("t0", None)
        return False


@pytest.mark.parametrize("how", ["it hides itself", "it took a recorded result's place"])
def test_a_colliding_key_is_noticed_whatever_the_dicts_size_says(how):
    # Storing a result may run a colliding key's __eq__ as long as the dict holds a key other
    # than an exact str, whatever its size says: that key's __eq__ may remove keys (reviews
    # 19), and a key may have taken a recorded one's place (review 20).
    parameters = {"task_type": "generic", "k": "before"}
    alt = shared_parameters_alt(parameters)
    results = {}
    recorder = librunner.RunStatistics(results, alt.tasks)
    if how == "it hides itself":
        results[CollidesChangesAndHides("t2", parameters, results)] = None
    else:
        recorder.record(-1, librunner.task_result_from_dict({"task_id": "t0", "status": "completed"}, alt))
        del results["t0"]
        results[CollidesAndChangesTheParameters("t2", parameters)] = None
    assert not librunner.dict_holds_only_str_keys(results)
    rows, (line,) = drained_rows(alt, recorder)
    assert [(row[0], row[2]["k"]) for row in rows] == [("t0", "before"), ("t1", "before"), ("t2", "after"),
                                                        ("t3", "after")]
    assert _results_of(Path("journal.jsonl"), 1, orjson.loads(bytes(line)))[2:] == \
        [results[f"t{n}"].to_dict() for n in range(2, 4)]


def test_a_dict_is_known_to_hold_only_str_keys_until_another_key_goes_in():
    class Text(str):
        pass

    plain = {f"t{n}": n for n in range(100)}
    assert librunner.dict_holds_only_str_keys(plain) and librunner.dict_holds_only_str_keys({})
    for other in (1, Text("t1"), ("t", 1)):
        mixed = dict(plain)
        mixed[other] = 0
        del mixed[other]
        mixed.update({f"u{n}": n for n in range(1000)})     # grown since: still not only str keys
        assert not librunner.dict_holds_only_str_keys(mixed)


def test_the_scheduler_cannot_be_subclassed_to_run_code_between_a_store_and_its_row():
    # The drain calls complete() after storing a result and before keeping its row: an
    # override would run there unseen (review 19), and the scheduler is final.
    with pytest.raises(TypeError):
        type("Counting", (librunner.Scheduler,), {"complete": lambda self, i, ok: None})


def test_a_result_the_drain_cannot_write_short_goes_to_the_writer_in_its_place():
    ended, queue, written = drained_into_a_sink(hostile_alt())
    assert queued_task_ids(queue) == [r.task_id for r in ended]        # in the order they ended
    lines = [item for item in queue if type(item) is librunner.TextWithDoubles]
    # As the writer has them (test_hostile_parameters_read_back_as_the_full_rows_did): exact
    # JSON at the edges of 64 bits, and NaN written as null as orjson does.
    assert written == len(ended) and queued_task_ids(lines) == ["h2", "h5"]
    for line in lines:
        (row,) = orjson.loads(bytes(line))["rows"]
        (result,) = [r for r in ended if r.task_id == row[0]]
        assert bytes(line) == librunner.journal_lines([result])
    refused = [item for item in queue if type(item) is not librunner.TextWithDoubles]
    queued_again = []
    again = librunner.RowSink(queued_again)
    for result in refused:
        again.add(result)       # refused again, one at a time too: queued as it is
    assert again.close() == len(refused) and queued_again == refused



def test_the_sink_counts_results_not_lines():
    # The writer commits from COMMIT_RESULTS queued results on: rows and other results count
    # one each, whatever the lines they make (3 rows and a result, 300 times: 300 lines).
    inline = [r for r in run_inline(alt_of([{}] * 3), 1.0).values()]
    reported = librunner.task_result_from_dict({"task_id": "t1", "status": "failed", "error": "e"}, alt_of([{}] * 3))
    queue = []
    sink = librunner.RowSink(queue)
    for _ in range(300):
        for result in inline:
            sink.add(result)
        sink.add_other(reported)
    assert sink.queued == 1200 and sink.close() == 1200 and sink.queued == 0
    assert len(queue) == 600 and queued_task_ids(queue) == ["t0", "t1", "t2", "t1"] * 300


def test_closing_a_line_starts_no_collection():
    # A collection runs finalizers, which may hand the GIL to the drain: closing a line
    # (by the writer, or by the run's thread for a command's result) must not start one.
    inline = list(run_inline(alt_of([{}] * 5), 1.0).values())
    queue = []
    sink = librunner.RowSink(queue)
    collections = []

    def seen(phase, info):
        collections.append(phase)
    threshold = gc.get_threshold()
    gc.callbacks.append(seen)
    try:
        for closing in (sink.close, lambda: sink.add_other(inline[0])):
            for result in inline:
                sink.add(result)
            gc.set_threshold(1)         # any allocation the collector tracks starts one
            try:
                closing()
            finally:
                gc.set_threshold(*threshold)
    finally:
        gc.callbacks.remove(seen)
    assert collections == []
    assert [type(item) for item in queue] == [librunner.TextWithDoubles] * 2 + [type(inline[0])]

def test_results_ended_on_both_sides_of_the_drain_are_journaled_in_the_order_they_ended(tmp_path):
    # Commands and generic tasks alternating in a chain: each command's result (made by the
    # writer) comes before its generic dependent's row (made by the drain), as they ended.
    tasks = []
    for n in range(12):
        tasks.append({"id": f"c{n}", "description": "c", "dependencies": [f"g{n - 1}"] if n else [],
                      "parameters": {"task_type": "system_command", "command": ["true"]}})
        tasks.append({"id": f"g{n}", "description": "g", "dependencies": [f"c{n}"],
                      "parameters": {"task_type": "generic", "n": n}})
    alt = runner.parse_alt_file(orjson.dumps({"id": "alternate", "title": "alternate", "tasks": tasks}))
    environ = {"RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "true"}
    outcome = execute(alt, tmp_path / "out", write=False, journal=True, workspace=tmp_path / "ws", environ=environ)
    assert all(r.status == "completed" for r in outcome.results.values())
    (directory,) = (tmp_path / "out").iterdir()
    order = []
    for line in (directory / "journal.jsonl").read_bytes().splitlines():
        record = orjson.loads(line)
        if record["type"] == "task_results":
            order += [row[0] for row in record["rows"]]
    assert order == [t["id"] for t in tasks]
    assert RunState(directory).results == {k: r.to_dict() for k, r in outcome.results.items()}


def runner_alt(parameters_list, prefix):
    tasks = [{"id": f"{prefix}{n}", "description": "d", "parameters": {"task_type": "generic", **p}}
             for n, p in enumerate(parameters_list)]
    return runner.parse_alt_file(orjson.dumps({"id": prefix, "title": prefix, "tasks": tasks}))


def test_short_rows_as_written_by_hand_read_back_every_field():
    line = {"type": "task_results", "fields": SHORT, "rows": [
        ["a", None, {"k": 1}, None, 1.5, None],                                     # no stamp before it
        ["b", "2026-01-01T00:00:00.001Z", [1], "2026-01-01T00:00:00.002Z", 0.25, 3.5, {"loop": "x"}],
        ["c", None, None, None, 0.5, None],
        ["short", 1], "not a row", ["d", None, 1, None, 2.0, None, None, "one too many"],
    ]}
    back = _results_of(Path("journal.jsonl"), 2, line)
    assert [r["task_id"] for r in back] == ["a", "b", "c"]
    assert back[0]["started_at"] is None and back[0]["completed_at"] is None
    assert back[1] == {"task_id": "b", "status": "completed", "output": [1], "error": None,
                       "started_at": "2026-01-01T00:00:00.001Z", "completed_at": "2026-01-01T00:00:00.002Z",
                       "duration_ms": 0.25, "metadata": {"task_type": "generic", "attempts": [
                           {"number": 1, "started_at": "2026-01-01T00:00:00.001Z", "duration_ms": 0.25,
                            "outcome": "completed", "error": None, "fault": None, "offset_ms": 3.5}],
                           "control": {"loop": "x"}}}
    assert back[2]["started_at"] == back[2]["completed_at"] == "2026-01-01T00:00:00.001Z"
    assert "offset_ms" not in back[2]["metadata"]["attempts"][0] and "control" not in back[2]["metadata"]
    with pytest.raises(JournalError, match="unknown fields"):
        _results_of(Path("journal.jsonl"), 2, {**line, "fields": SHORT[:-1]})


# ---- hypothesis: any parameters and control a task may hold

SURROGATE = st.characters(categories=["Cs"])
TEXT = st.text(max_size=8) | st.lists(st.characters() | SURROGATE, max_size=4).map("".join)
SCALARS = (st.none() | st.booleans() | TEXT
           | st.integers(min_value=-(2 ** 64), max_value=2 ** 65)
           | st.floats(allow_nan=True, allow_infinity=True))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                      max_leaves=12)
TASKS = st.lists(st.tuples(st.dictionaries(TEXT, VALUES, max_size=4),
                           st.none() | st.dictionaries(TEXT, VALUES, min_size=1, max_size=2)),
                 min_size=1, max_size=5)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TASKS, st.booleans())
def test_any_inline_results_read_back_as_the_full_rows_did(tasks, on_clock):
    base = alt_of([{}])
    made = [librunner.task_instance(base.tasks[0], f"h{n}", [], "d", {"task_type": "generic", **parameters},
                                    control, n) for n, (parameters, control) in enumerate(tasks)]
    alt = librunner.run_alt_file(base, made)
    results = run_inline(alt, 1.0 if on_clock else 0.0)
    typed = [results[t.id] for t in alt.tasks]
    try:
        old = old_line([old_row(results[t.id], t) for t in alt.tasks])
    except orjson.JSONEncodeError:
        with pytest.raises(orjson.JSONEncodeError):
            librunner.journal_lines(typed)
        return
    back, _ = read_back(librunner.journal_lines(typed))
    assert back == read_back(old)[0]
    if all(exact(value) for r in typed for value in walk(r.to_dict())):
        assert back == [r.to_dict() for r in typed]


def exact(value) -> bool:
    """JSON gives `value` back as it was (orjson writes NaN and infinities as null, and
    integers beyond 64 bits as their text)."""
    if type(value) is float:
        return math.isfinite(value)
    return type(value) is not int or -(2 ** 63) <= value < 2 ** 64


def walk(value):
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from walk(item)


# ---- journals on disk: the old form still reads and resumes; a later format is refused

MIXED = {"id": "mixed", "title": "mixed", "variables": {"xs": [1, "\u00fc"]}, "tasks": [
    {"id": "g0", "description": "d", "parameters": {"task_type": "generic", "n": 1.5, "s": "\u4e2d"}},
    {"id": "g1", "description": "d", "dependencies": ["g0"], "parameters": {"task_type": "generic"}},
    {"id": "each", "description": "d", "for_each": {"variable": "x", "iterable": "xs"},
     "parameters": {"task_type": "generic", "x": "$x"}},
    {"id": "ask", "description": "question"},
    {"id": "broken", "description": "d", "dependencies": ["g1"], "parameters": {
        "task_type": "file_operation", "operation": "read", "path": "missing.txt"}},
    {"id": "after", "description": "d", "dependencies": ["broken"], "parameters": {"task_type": "generic"}}]}


def as_previous_format(directory: Path) -> None:
    """Rewrites a journal as the previous version wrote it: format 1, every row full."""
    path = directory / "journal.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    out = []
    for number, line in enumerate(lines, 1):
        record = orjson.loads(line)
        if record.get("type") == "run_started":
            record["format"] = 1
            line = orjson.dumps(record) + b"\n"
        elif record.get("type") == "task_results" and record["fields"] == SHORT:
            line = librunner.journal_results_line([], [_row_of(d) for d in _results_of(path, number, record)])
        out.append(line)
    path.write_bytes(b"".join(out))


def test_a_journal_of_the_previous_format_reads_and_resumes_as_the_new_one(tmp_path):
    first = execute(MIXED, tmp_path / "runs", environ={})
    assert first.results["broken"].status == "failed"
    new = first.directory
    fields = [r["fields"] for r in map(orjson.loads, (new / "journal.jsonl").read_bytes().splitlines())
              if r["type"] == "task_results"]
    assert SHORT in fields and FULL in fields
    assert orjson.loads((new / "journal.jsonl").read_bytes().splitlines()[0])["format"] == FORMAT == 2
    (new / "last.json").unlink()            # interrupted before its LAST file
    old = tmp_path / "old" / new.name
    shutil.copytree(new, old)
    as_previous_format(old)
    assert b'"fields":["task_id","started_at"' not in (old / "journal.jsonl").read_bytes()
    assert RunState(old).results == RunState(new).results
    assert list(RunState(old).results) == list(RunState(new).results)
    for result in first.results.values():
        assert RunState(new).results[result.task_id] == result.to_dict()
    assert cli("resume", old, "--dry-run").stdout.splitlines()[1:] == \
        cli("resume", new, "--dry-run").stdout.splitlines()[1:]
    records = {}
    for directory in (new, old):
        resumed = cli("resume", directory, "--quiet")
        assert resumed.returncode == 1, resumed.stderr         # "broken" fails again
        records[directory] = json.loads((Path(resumed.stdout.strip().splitlines()[-1]) / "last.json").read_bytes())
    a, b = (records[d]["task_results"] for d in (new, old))
    assert list(a) == list(b)
    for task_id in ("g0", "g1", "each[0]", "each[1]", "ask"):
        assert a[task_id]["metadata"].pop("reused_from") == new.name
        assert b[task_id]["metadata"].pop("reused_from") == new.name      # the copy has the same name
        a[task_id].pop("execution_id"), b[task_id].pop("execution_id")     # each resume's own
        assert a[task_id] == b[task_id]
    assert a["broken"]["status"] == b["broken"]["status"] == "failed"


PREVIOUS_LINE = (
    b'{"type":"task_results","fields":["task_id","status","output","error","started_at","completed_at",'
    b'"duration_ms","metadata","execution_id","extra"],"rows":[["t0","completed",{"task_type":"generic"},null,'
    b'"2026-12-06T00:49:21.966Z","2026-12-06T00:49:21.966Z",0.00013399767340160906,{"task_type":"generic",'
    b'"attempts":[{"number":1,"started_at":"2026-12-06T00:49:21.966Z","duration_ms":0.00013399767340160906,'
    b'"outcome":"completed","error":null,"fault":null,"offset_ms":0.0308599992422387}]},null,null]]}\n')


def test_a_line_the_previous_version_wrote_reads_as_it_did(tmp_path):
    start = {"type": "run_started", "format": 1, "last_id": tmp_path.name, "alt_id": "a"}
    (tmp_path / "journal.jsonl").write_bytes(orjson.dumps(start) + b"\n" + PREVIOUS_LINE)
    state = RunState(tmp_path)
    assert state.results == {"t0": {
        "task_id": "t0", "status": "completed", "output": {"task_type": "generic"}, "error": None,
        "started_at": "2026-12-06T00:49:21.966Z", "completed_at": "2026-12-06T00:49:21.966Z",
        "duration_ms": 0.00013399767340160906, "metadata": {"task_type": "generic", "attempts": [
            {"number": 1, "started_at": "2026-12-06T00:49:21.966Z", "duration_ms": 0.00013399767340160906,
             "outcome": "completed", "error": None, "fault": None, "offset_ms": 0.0308599992422387}]}}}


def test_a_journal_of_a_later_format_is_refused_with_its_line(tmp_path):
    run = execute(alt_of([{}]), tmp_path / "runs", environ={}).directory
    path = run / "journal.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    start = orjson.loads(lines[0])
    path.write_bytes(orjson.dumps({**start, "format": FORMAT + 1}) + b"\n" + b"".join(lines[1:]))
    with pytest.raises(JournalError, match="later librunner") as raised:
        RunState(run)
    assert raised.value.pointer == "journal.jsonl:1"
    (run / "last.json").unlink()        # show reads the journal of a run without its LAST file
    for argv in (("show", run), ("resume", run, "--dry-run")):
        answer = cli(*argv)
        assert answer.returncode == 2 and "later librunner" in answer.stderr and "Traceback" not in answer.stderr


def test_inline_results_recorded_before_a_kill_9_are_all_kept_and_reused(tmp_path):
    release = tmp_path / "release"
    tasks = [{"id": f"g{n}", "description": "d", "parameters": {"task_type": "generic", "n": n, "t": "\u00e9" * (n % 3)}}
             for n in range(300)]
    tasks += [{"id": "wait", "description": "w", "dependencies": ["g299"], "parameters": {
                  "task_type": "system_command", "command": ["sh", "-c", f"test -f {release} || sleep 30"]}},
              {"id": "last", "description": "d", "dependencies": ["wait"], "parameters": {"task_type": "generic"}}]
    child, out = start_cli(tmp_path, {"id": "k", "title": "k", "tasks": tasks}, "--quiet")
    try:
        directory = run_directory(out)
        assert wait_until(lambda: "wait" in RunState(directory).running
                          and len(RunState(directory).results) >= 300, 30)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        child.kill()
    state = RunState(directory)
    assert {f"g{n}" for n in range(300)} <= set(state.results) and "last" not in state.results
    for n in range(300):
        result = state.results[f"g{n}"]
        assert result["status"] == "completed" and result["output"] == tasks[n]["parameters"]
        assert result["metadata"]["attempts"][0]["outcome"] == "completed"
    release.touch()
    resumed = cli("resume", directory, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    record = json.loads((Path(resumed.stdout.strip().splitlines()[-1]) / "last.json").read_bytes())
    results = record["task_results"]
    assert all(r["status"] == "completed" for r in results.values()) and len(results) == 302
    for n in range(300):
        assert results[f"g{n}"]["metadata"]["reused_from"] == directory.name
        assert results[f"g{n}"]["output"] == state.results[f"g{n}"]["output"]
        assert results[f"g{n}"]["start_time"] == state.results[f"g{n}"]["started_at"]
    assert "reused_from" not in results["last"]["metadata"]
