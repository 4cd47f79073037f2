"""load_last_summary (what `show` reads) gives exactly what load_last gives, less the
results of completed tasks and the execution graph, and refuses the same files with the
same errors: the core's skim (last_skim.pxi) checks the file in one pass and leaves any file
it is not sure of to the full reader. Checked on written LAST files, on hand-made hostile
ones, and on every kind of damage to the bytes."""
from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys

import orjson
import pytest

import runner
from runner.errors import LastFileError
from runner.last.reader import UnfinishedResults, load_last, load_last_summary, task_status
from runner.librunner import skim_last

from tests.conftest import damaged_copies, dumps

STATUSES = ("completed", "failed", "timeout", "cancelled", "skipped", "running")


def expected_summary(record: dict) -> tuple[dict, list, int]:
    record = dict(record)
    results = record.pop("task_results")
    record.pop("execution_graph", None)
    unfinished = [(k, v) for k, v in results.items() if task_status(v) != "completed"]
    return record, unfinished, len(results)


def read_both(path):
    """(load_last's answer, load_last_summary's): each a value or ('error', message)."""
    answers = []
    for read in (load_last, load_last_summary):
        try:
            answers.append(read(path))
        except LastFileError as error:
            answers.append(("error", str(error)))
    return answers


def assert_same(path):
    full, summary = read_both(path)
    if isinstance(full, tuple):
        assert summary == full
        return None
    record, unfinished, total = expected_summary(full)
    assert isinstance(summary["task_results"], UnfinishedResults)
    assert list(summary["task_results"].items()) == unfinished
    assert summary["task_results"].total == total
    rest = dict(summary)
    del rest["task_results"]
    assert rest == record and list(rest) == list(record)
    return summary


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A real LAST file of 60 tasks: every status, skips with reasons, retries, AI usage,
    non-ASCII and control characters in outputs and errors."""
    rng = random.Random(5)
    tasks = [{"id": f"t{n:02d}", "description": f"step {n} \u00e9\u4e2d",
              "dependencies": [f"t{d:02d}" for d in rng.sample(range(n), min(n, 2))]} for n in range(60)]
    alt = runner.parse_alt_file(dumps({"id": "sum", "title": "Summary \u2603", "tasks": tasks}))
    results = {}
    for n in range(58):                               # two tasks never reported: pending
        status = rng.choice(STATUSES) if n % 3 == 0 else "completed"
        doc = {"task_id": f"t{n:02d}", "status": status,
               "output": {"text": "x\u0000y\n\"q\" \\ \u00e9 \U0001F600", "n": [1, 2.5, None, True]},
               "error": None if status == "completed" else f"bad \u00e9 {n}\t\u001f",
               "started_at": "2026-01-01T00:00:00.000Z", "completed_at": f"2026-01-01T00:00:{n:02d}.500Z",
               "metadata": {"ai": {"model": "m", "provider": "p", "prompt_tokens": n, "completion_tokens": 1},
                            "attempts": [{}, {}] if n % 7 == 0 else [{}]}}
        if status == "skipped":
            doc["metadata"]["skipped_reason"] = f"because {n}"
        results[doc["task_id"]] = runner.task_result_from_dict(doc, alt)
    return runner.write_last_file(alt, results, tmp_path_factory.mktemp("last"), html_report=False, graph=False,
                                  compression=True)


def test_a_written_last_file_is_skimmed_and_read_alike(written):
    path = written.directory / "last.json"
    assert skim_last(path.read_bytes()) is not None   # the fast path, not the fallback
    summary = assert_same(path)
    assert summary["task_results"] and all(task_status(r) != "completed" for r in summary["task_results"].values())
    assert assert_same(written.directory / "last.json.gz") == summary
    assert assert_same(written.directory) == summary


def write(tmp_path, data, name="last.json"):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
    return path


def hostile_variants(record: dict):
    """(name, bytes) of files the full reader reads, several of them beyond the skim."""
    text = orjson.dumps(record)
    yield "indented", orjson.dumps(record, option=orjson.OPT_INDENT_2)
    yield "graph first", orjson.dumps({"execution_graph": record["execution_graph"],
                                       **{k: v for k, v in record.items() if k != "execution_graph"}})
    yield "escaped top key", text.replace(b'"task_results":', b'"task\\u005fresults":', 1)
    yield "escaped status", text.replace(b'"status":"completed"', b'"status":"complet\\u0065d"', 1)
    yield "status said twice", text.replace(b'"status":"failed"', b'"status":"failed","status":"completed"', 1)
    yield "skipped true", text.replace(b'"status":"completed"', b'"status":"completed","skipped":true', 1)
    results = record["task_results"]
    first = next(iter(results))
    yield "repeated task id", text.replace(b'"task_results":{', b'"task_results":{' + orjson.dumps(first)
                                           + b':{"status":"failed"},', 1)
    yield "repeated graph", text[:-1] + b',"execution_graph":{}}'
    yield "repeated results", text[:-1] + b',"task_results":{}}'
    yield "surrogate pair", text.replace(b'"task_results":{', b'"task_results":{"s\\ud83d\\ude00":{"status":"failed"},', 1)
    yield "long integer", text.replace(b'"task_results":{', b'"task_results":{"big":{"status":"failed","n":123456789012345678901234},', 1)
    yield "big exponent", text.replace(b'"task_results":{', b'"task_results":{"e":{"status":"failed","n":1.5e300},', 1)
    deep = b"[" * 600 + b"]" * 600
    yield "deep nesting", text.replace(b'"task_results":{', b'"task_results":{"deep":{"status":"failed","x":' + deep + b"},", 1)
    yield "graph null", orjson.dumps({**record, "execution_graph": None})
    yield "nodes null", orjson.dumps({**record, "execution_graph": {"nodes": None, "edges": []}})
    yield "empty results", orjson.dumps({**record, "task_results": {}})
    yield "null fields", orjson.dumps({**record, "task_results": {"a": {"task_id": None, "status": None,
                                                                       "metadata": None, "error": None}}})
    yield "non-ASCII keys", orjson.dumps({**record, "task_results": {"\u00e9\u4e2d\U0001F600": {"status": "failed"}}})
    yield "whitespace", b" \n\t" + text + b"\r\n "


def test_hostile_files_the_full_reader_reads_are_summarised_alike(written, tmp_path):
    record = orjson.loads((written.directory / "last.json").read_bytes())
    left_to_the_full_reader = {"escaped top key", "repeated task id", "repeated graph", "repeated results",
                               "surrogate pair", "long integer", "big exponent", "deep nesting"}
    for name, data in hostile_variants(record):
        path = write(tmp_path, data)
        full, _ = read_both(path)
        assert not isinstance(full, tuple), name
        assert (skim_last(data) is None) == (name in left_to_the_full_reader), name
        assert_same(path)


def test_malformed_files_get_the_full_readers_error(written, tmp_path):
    record = orjson.loads((written.directory / "last.json").read_bytes())
    text = orjson.dumps(record)
    first = next(iter(record["task_results"]))
    broken = {
        "truncated": text[:len(text) // 2],
        "trailing garbage": text + b"x",
        "bom": b"\xef\xbb\xbf" + text,
        "invalid utf-8": text.replace(b'"task_results":{', b'"task_results":{"\xff":{},', 1),
        "control character": text.replace(b'"task_results":{', b'"task_results":{"a\x01":{},', 1),
        "nan": text.replace(b'"task_results":{', b'"task_results":{"n":{"x":NaN},', 1),
        "trailing comma": text[:-1] + b",}",
        "a list": b"[1]",
        "no id": orjson.dumps({k: v for k, v in record.items() if k != "id"}),
        "results a list": orjson.dumps({**record, "task_results": []}),
        "result a list": orjson.dumps({**record, "task_results": {first: [1]}}),
        "status an object": orjson.dumps({**record, "task_results": {first: {"status": {"x": 1}}}}),
        "metadata a list": orjson.dumps({**record, "task_results": {first: {"metadata": [1]}}}),
        "start a number": orjson.dumps({**record, "task_results": {first: {"start_time": 5}}}),
        "nodes numbers": orjson.dumps({**record, "execution_graph": {"nodes": [1], "edges": []}}),
        "node without id": orjson.dumps({**record, "execution_graph": {"nodes": [{}], "edges": []}}),
        "node id a number": orjson.dumps({**record, "execution_graph": {"nodes": [{"id": 1}], "edges": []}}),
        "edges strings": orjson.dumps({**record, "execution_graph": {"nodes": [], "edges": ["x"]}}),
        "statistics a list": orjson.dumps({**record, "statistics": [1]}),
        "graph a list": orjson.dumps({**record, "execution_graph": []}),
        "success rate text": orjson.dumps({**record, "success_rate": "high"}),
        "lone surrogate": text.replace(b'"task_results":{', b'"task_results":{"\\udc00":{},', 1),
        "empty": b"",
    }
    for name, data in broken.items():
        path = write(tmp_path, data)
        full, summary = read_both(path)
        assert isinstance(full, tuple), name
        assert summary == full, name


def test_every_damage_to_the_bytes_is_judged_as_the_full_reader_judges_it(written, tmp_path):
    """Bytes changed, dropped or added anywhere: both readers accept (alike) or refuse
    (with the same error)."""
    data = (written.directory / "last.json").read_bytes()
    for damaged in damaged_copies(data, 400, seed=23):
        assert_same(write(tmp_path, damaged))


def test_gzip_and_directories_and_missing_files(written, tmp_path):
    record = orjson.loads((written.directory / "last.json").read_bytes())
    write(tmp_path, gzip.compress(orjson.dumps(record)), "last.json.gz")
    assert_same(tmp_path)
    full, summary = read_both(tmp_path / "nothing")
    assert summary == full and "cannot read" in full[1]
    (tmp_path / "empty").mkdir()
    full, summary = read_both(tmp_path / "empty")
    assert summary == full and "no last.json or last.json.gz" in full[1]


def test_show_prints_the_same_as_from_the_full_record(written, tmp_path):
    """show reads the summary; describe of the full record says the same."""
    from runner.commands.show import describe, not_completed

    full = load_last(written.directory)
    summary = load_last_summary(written.directory)
    assert describe(summary) == describe(full)
    assert not_completed(summary) == not_completed(full)
    done = subprocess.run([sys.executable, "-m", "runner", "show", str(written.directory), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["not_completed"] == not_completed(full)
    assert shown["statistics"] == full["statistics"]


def test_loads_header_is_orjson_loads_less_the_results_and_graph(written):
    """What a service adopting a finished run reads: orjson.loads' answer (or its error) on
    every damage to the bytes, with task_results and an object graph left empty."""
    from runner.last.reader import loads_header

    data = (written.directory / "last.json").read_bytes()
    rng = random.Random(29)

    def answer(read, raw):
        try:
            value = read(raw)
        except orjson.JSONDecodeError:
            return "error"
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in ("task_results", "execution_graph")}
        return value

    assert loads_header(data)["task_results"] == {} and loads_header(data)["execution_graph"] == {}
    variants = [data, data[:-1], data + b" ", b"[1]", b'{"id": 5}']
    for _ in range(200):
        damaged = bytearray(data)
        at = rng.randrange(len(damaged))
        damaged[at:at + rng.randint(0, 2)] = bytes([rng.choice(b'{}[]",:\\ 0tnx\xff')])
        variants.append(bytes(damaged))
    for raw in variants:
        assert answer(loads_header, raw) == answer(orjson.loads, raw)


def test_strings_with_each_kind_of_byte_at_each_place(tmp_path):
    """The skim reads strings eight bytes at a time: a quote, an escape, a control
    character or a non-ASCII byte (valid or not) at every offset of a word is judged as
    orjson judges it."""
    specials = [b'\\"', b"\\\\", b"\\n", b"\\u00e9", b"\\ud83d\\ude00", b"\\udc00", b"\x01", b"\x1f", b"\x7f",
                b"\xc3\xa9", b"\xe2\x98\x83", b"\xf0\x9f\x98\x80", b"\xc3", b"\xed\xa0\x80", b"\xff", b'"']
    for special in specials:
        for offset in range(18):
            text = b"a" * offset + special + b"b" * (17 - offset)
            for place in (b'"output":"%s"', b'"error":"%s"', b'"%s":1'):
                data = (b'{"id":"x","task_results":{"t":{"status":"failed",' + place.replace(b"%s", text)
                        + b'}},"execution_graph":{"nodes":[{"id":"' + text + b'"}]}}')
                assert_same(write(tmp_path, data))
