"""last.json stays byte-identical: the written file of each fixture run (the example ALT
files, with results of every status, outputs of every JSON kind, retries, token counts,
unknown fields, non-ASCII text) against golden bytes made by the writer as it was when
this test was added. The values a run makes afresh (its LAST id, execution id and
creation time) are replaced by fixed ones before comparing; last.json.gz must hold the
same bytes. RUNNER_REGENERATE_GOLDEN=1 writes the golden files again (only for a change
of the format that is meant)."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import orjson
import pytest

import runner

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "fixtures" / "last_golden"
FIXTURES = sorted([*ROOT.glob("examples/alt/*.json"), Path(__file__).parent / "fixtures" / "alt_las_example_alt_file.json"])
STATUSES = ("completed", "failed", "skipped", "timeout", "completed", "cancelled", None)   # None: no result
OUTPUTS = (
    {"text": "answer with ünïcödé, \"quotes\", a tab\t and ```python\nprint(1)\n```"},
    "plain text output",
    [1, 2.5, None, True, {"nested": ["a", "b"]}],
    9007199254740991,
    None,
    {"rows": [{"x": 1}, {"x": -2}], "count": 2, "ratio": 0.1},
)
EXECUTION = {"mode": "normal", "seed": None, "faults": [], "max_concurrency": 4,
             "started_at": "2026-03-01T10:00:00.000Z", "ended_at": "2026-03-01T10:05:00.250Z",
             "wall_time_ms": 300250.5, "interrupted": False}
FIXED = {"id": "0190a0b0-0000-7000-8000-00000000000a", "execution_id": "0190a0b0-0000-7000-8000-00000000000b",
         "created_at": "2026-03-01T10:06:00.000Z"}


def fixture_results(alt) -> dict:
    """Results of every kind for `alt`'s tasks, the same on every call."""
    results = {}
    for i, task in enumerate(alt.tasks):
        status = STATUSES[i % len(STATUSES)]
        if status is None:
            continue
        second = i % 50
        doc = {"task_id": task.id, "status": status,
               "output": OUTPUTS[i % len(OUTPUTS)] if status == "completed" else None,
               "error": None if status == "completed" else f"{status}: reason number {i} — détail",
               "completed_at": f"2026-03-01T10:0{i % 5}:{second:02d}.{i % 1000:03d}Z",
               "duration_ms": [1234.5, 20, 0.25, 100000.0][i % 4],
               "metadata": {"task_type": task.parameters.get("task_type", "ai_prompt")}}
        if status != "skipped":
            doc["started_at"] = f"2026-03-01T10:00:{second:02d}.000Z"
        else:
            doc["metadata"]["skipped_reason"] = "dependency failed"
        if i % 3 == 0:
            doc["metadata"]["ai"] = {"provider": "openai", "model": ["m-one", "m-two"][i % 2],
                                     "prompt_tokens": 10 + i, "completion_tokens": 2 * i, "latency_ms": 12.5}
        if i % 4 == 1:
            doc["metadata"]["attempts"] = [{"number": 1, "outcome": "failed", "error": "busy"},
                                           {"number": 2, "outcome": status, "error": None}]
        if i % 5 == 2:
            doc["reporter_field"] = {"kept": True}
        results[task.id] = runner.task_result_from_dict(doc, alt)
    return results


def written_last_json(path: Path, out: Path) -> bytes:
    alt = runner.parse_alt_file(path.read_bytes())
    written = runner.write_last_file(alt, fixture_results(alt), out, execution=dict(EXECUTION), graph=False,
                                     html_report=False, compression=True, archive="none")
    data = (written.directory / "last.json").read_bytes()
    assert gzip.decompress((written.directory / "last.json.gz").read_bytes()) == data
    made = orjson.loads(data)
    for key, fixed in FIXED.items():
        value = made[key].encode()
        assert data.count(value) >= 1
        data = data.replace(value, fixed.encode())
    return data


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_last_json_is_byte_identical_to_the_golden_file(path, tmp_path):
    data = written_last_json(path, tmp_path)
    golden = GOLDEN / (path.stem + ".last.json")
    if os.environ.get("RUNNER_REGENERATE_GOLDEN") == "1":
        golden.write_bytes(data)
    assert data == golden.read_bytes()


def synthetic_alt(count: int) -> Path:
    """A DAG of `count` tasks (up to 3 dependencies among the 40 before), as JSON text."""
    tasks = []
    for i in range(count):
        deps = sorted({f"task_{(i * 7 + k * 13) % i:05d}" for k in range(i % 4)} if i else set())
        deps = [d for d in deps if int(d[5:]) >= i - 40]
        tasks.append({"id": f"task_{i:05d}", "description": f"step {i} — ünïcödé", "dependencies": deps,
                      "parameters": {"task_type": ["generic", "ai_prompt"][i % 2]}})
    return orjson.dumps({"id": "golden_synthetic", "title": "a larger run", "tasks": tasks})


def test_a_larger_run_is_byte_identical_to_its_golden_digest(tmp_path):
    import hashlib

    path = tmp_path / "synthetic.json"
    path.write_bytes(synthetic_alt(3000))
    data = written_last_json(path, tmp_path / "out")
    golden = GOLDEN / "synthetic_3000.sha256"
    digest = f"{hashlib.sha256(data).hexdigest()} {len(data)}\n"
    if os.environ.get("RUNNER_REGENERATE_GOLDEN") == "1":
        golden.write_text(digest)
    assert digest == golden.read_text()
