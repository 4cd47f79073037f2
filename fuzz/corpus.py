"""The seed corpus, built from the documents the tests use: the ALT fixtures and examples
(the segmentation service's YAML files too), and the ALT files, task results and prompt
templates written as literals in tests/*.py.

`python fuzz/corpus.py DIR` writes DIR/<target>/seed-N for every target; the campaign
builds it afresh each time, so it follows the tests as they change.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import sys
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
MAX_SEEDS = 200          # per target: enough variety, little start-up time
MAX_SEED_BYTES = 64 * 1024


def _literals() -> list:
    """Every literal dict or str in the test modules (ast.literal_eval of each node)."""
    found = []
    for path in sorted((REPO / "tests").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Dict, ast.Constant)):
                try:
                    found.append(ast.literal_eval(node))
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    continue
    return found


def _json(value) -> bytes | None:
    try:
        data = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return None
    return data if len(data) <= MAX_SEED_BYTES else None


@functools.cache
def alt_documents() -> tuple[bytes, ...]:
    """ALT files as compact JSON, each one librunner stores (so target and corpus agree on
    their order)."""
    from runner import AltValidationError, parse_alt_file

    files = [*sorted((REPO / "tests" / "fixtures").glob("*.json")), *sorted((REPO / "examples" / "alt").glob("*.json"))]
    candidates = [orjson.loads(path.read_bytes()) for path in files]
    candidates += [value for value in _literals() if isinstance(value, dict) and "tasks" in value]
    documents, seen = [], set()
    for value in candidates:
        data = _json(value)
        if data is None or data in seen:
            continue
        try:
            parse_alt_file(data)
        except (AltValidationError, ValueError):
            continue
        seen.add(data)
        documents.append(data)
    return tuple(documents[:MAX_SEEDS])


def _results_of(document: bytes, literal_results: list[dict]) -> list[bytes]:
    """Results for the tasks of one ALT file: every status, outputs of each task type."""
    tasks = [task["id"] for task in orjson.loads(document)["tasks"]]
    statuses = ("completed", "failed", "timeout", "skipped", "cancelled", "pending", "running")
    results = []
    for number, task_id in enumerate(tasks[:20]):
        results.append({"task_id": task_id, "status": statuses[number % len(statuses)],
                        "output": {"text": f"answer {number}\n```python\nprint({number})\n```"},
                        "error": None if number % 2 == 0 else "it broke",
                        "started_at": "2026-01-01T00:00:00Z", "completed_at": "2026-01-01T00:00:01.250Z",
                        "duration_ms": 1250.0 + number,
                        "metadata": {"ai": {"model": "echo", "prompt_tokens": 3, "completion_tokens": 5}}})
    ids = set(tasks)
    results += [r for r in literal_results if r.get("task_id") in ids]
    return [data for data in map(_json, results) if data is not None]


def seeds() -> dict[str, list[bytes]]:
    """Seed inputs per target, in the input format each target reads."""
    literals = _literals()
    literal_results = [v for v in literals if isinstance(v, dict) and "task_id" in v and "status" in v]
    documents = alt_documents()
    per_target: dict[str, list[bytes]] = {"parse_alt_file": list(documents), "add_task_result": [],
                                         "generate_last_file": [], "batch_process": []}
    for index, document in enumerate(documents):
        results = _results_of(document, literal_results)
        per_target["add_task_result"] += [bytes([index % 256]) + result for result in results[:5]]
        per_target["generate_last_file"].append(b"\n".join([document, *results]))
        partner = documents[(index + 1) % len(documents)]
        per_target["batch_process"].append(b"\n".join([document, *results[:3], partner]))
    segmentation = [path.read_bytes() for path in sorted((REPO / "tests" / "fixtures" / "segmentation").glob("*.yaml"))]
    segmentation += [v.encode() for v in literals if isinstance(v, str) and "segments" in v]
    segmentation += [data for v in literals if isinstance(v, dict) and "segments" in v
                     for data in [_json(v)] if data is not None]
    per_target["segmentation_alt"] = list(dict.fromkeys(segmentation))
    templates = [v for v in literals if isinstance(v, str) and ("{{" in v or "{%" in v)]
    per_target["prompt_template"] = [t.encode() for t in dict.fromkeys(templates)]
    return {target: [s for s in found if len(s) <= MAX_SEED_BYTES][:MAX_SEEDS] for target, found in per_target.items()}


def write(directory: Path, targets=None) -> dict[str, Path]:
    """Writes the seeds of each target (all by default) under directory/<target>/."""
    written = {}
    for target, found in seeds().items():
        if targets is not None and target not in targets:
            continue
        folder = directory / target
        folder.mkdir(parents=True, exist_ok=True)
        for seed in found:
            (folder / f"seed-{hashlib.sha1(seed).hexdigest()[:16]}").write_bytes(seed)
        written[target] = folder
    return written


if __name__ == "__main__":
    for target, folder in write(Path(sys.argv[1])).items():
        print(f"{target}: {len(list(folder.iterdir()))} seeds in {folder}")
