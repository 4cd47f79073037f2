"""Artifacts: explicit entries, fenced code, files a task wrote; safe names; the workspace fence."""
from __future__ import annotations

import base64
import hashlib
import json
import os

import runner
from conftest import dumps


def one_task_alt(*ids):
    ids = ids or ("t",)
    return runner.parse_alt_file(dumps({"id": "arts", "title": "Artifacts", "tasks": [
        {"id": task_id, "description": task_id, "dependencies": None} for task_id in ids]}))


def write(tmp_path, outputs: dict, workspace=None, metadata=None, **overrides):
    alt = one_task_alt(*outputs)
    results = {task_id: runner.task_result_from_dict(
        {"task_id": task_id, "status": "completed", "output": output, "metadata": (metadata or {}).get(task_id, {})},
        alt) for task_id, output in outputs.items()}
    overrides.setdefault("graph", False)
    overrides.setdefault("html_report", False)
    written = runner.write_last_file(alt, results, tmp_path / "out", workspace=workspace, **overrides)
    return written, {a["path"]: a for a in written.record["artifacts"]}, \
        written.record["metadata"].get("artifact_errors", [])


def test_explicit_text_base64_and_json_entries_are_stored_with_their_facts(tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
    written, artifacts, errors = write(tmp_path, {"t": {"artifacts": [
        {"name": "notes.md", "text": "# hi"},
        {"name": "logo.png", "base64": base64.b64encode(png).decode()},
        {"name": "data.json", "content": {"k": [1, 2]}},
        {"name": "run.log", "text": "line\n"},
    ]}})
    assert errors == []
    assert set(artifacts) == {"artifacts/t/notes.md", "artifacts/t/logo.png", "artifacts/t/data.json",
                              "artifacts/t/run.log"}
    image = artifacts["artifacts/t/logo.png"]
    assert (written.directory / image["path"]).read_bytes() == png
    assert image["artifact_type"] == "image" and image["mime_type"] == "image/png"
    assert image["size_bytes"] == len(png) and image["sha256"] == hashlib.sha256(png).hexdigest()
    assert image["task_id"] == "t" and image["name"] == "logo.png" and image["id"].startswith("art_")
    assert image["created_at"].endswith("Z")
    assert artifacts["artifacts/t/data.json"]["artifact_type"] == "json"
    assert json.loads((written.directory / "artifacts/t/data.json").read_text()) == {"k": [1, 2]}
    assert artifacts["artifacts/t/run.log"]["artifact_type"] == "log"
    assert artifacts["artifacts/t/notes.md"]["artifact_type"] == "text"
    assert len({a["id"] for a in artifacts.values()}) == 4


def test_fenced_code_blocks_in_ai_text_become_code_artifacts(tmp_path):
    text = "Try this:\n```python\nprint('x')\n```\nand\n```rust\nfn main() {}\n```\n```\nplain\n```\n"
    written, artifacts, _ = write(tmp_path, {"a": text, "b": {"text": "```json\n{\"a\": 1}\n```"}})
    assert set(artifacts) == {"artifacts/a/code_1.py", "artifacts/a/code_2.rs", "artifacts/a/code_3.txt",
                              "artifacts/b/code_1.json"}
    assert (written.directory / "artifacts/a/code_1.py").read_text() == "print('x')\n"
    assert artifacts["artifacts/a/code_2.rs"]["artifact_type"] == "text"
    assert artifacts["artifacts/a/code_2.rs"]["metadata"] == {"language": "rust"}
    assert artifacts["artifacts/b/code_1.json"]["artifact_type"] == "json"


def test_names_are_sanitised_and_never_collide(tmp_path):
    written, artifacts, errors = write(tmp_path, {"t": {"files": [
        {"name": "../../etc/passwd", "text": "a"},
        {"name": "passwd", "text": "b"},
        {"name": "PASSWD", "text": "c"},
        {"name": ".hidden", "text": "d"},
        {"name": "sp ace;$(rm).txt", "text": "e"},
        {"name": "", "text": "f"},
    ]}})
    assert errors == []
    assert sorted(artifacts) == sorted([
        "artifacts/t/passwd", "artifacts/t/passwd-2", "artifacts/t/PASSWD-3", "artifacts/t/hidden",
        "artifacts/t/sp_ace_rm_.txt", "artifacts/t/artifact.txt"])
    stored = sorted(p.relative_to(written.directory).as_posix()
                    for p in written.directory.rglob("*") if p.is_file())
    assert [p for p in stored if p.startswith("artifacts/")] == sorted(artifacts)
    assert not (tmp_path / "etc").exists()


def test_files_from_the_workspace_are_copied_and_escapes_refused(tmp_path):
    workspace = tmp_path / "ws"
    (workspace / "sub").mkdir(parents=True)
    (workspace / "sub" / "report.csv").write_text("a,b\n1,2\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, workspace / "link.txt")
    os.symlink(tmp_path, workspace / "up")
    written, artifacts, errors = write(tmp_path, {"w": {"artifacts": [
        {"name": "report.csv", "path": "sub/report.csv"},
        {"name": "abs", "path": str(secret)},
        {"name": "dots", "path": "sub/../../secret.txt"},
        {"name": "link", "path": "link.txt"},
        {"name": "dirlink", "path": "up/secret.txt"},
        {"name": "missing", "path": "nope.txt"},
        {"name": "dir", "path": "sub"},
    ]}}, workspace=workspace, metadata={"w": {"files_written": ["sub/report.csv", "../secret.txt"]}})
    assert set(artifacts) == {"artifacts/w/report.csv", "artifacts/w/report-2.csv"}
    assert artifacts["artifacts/w/report-2.csv"]["source"] == "files_written"
    assert (written.directory / "artifacts/w/report.csv").read_text() == "a,b\n1,2\n"
    reasons = {e["name"]: e["error"] for e in errors}
    assert "absolute" in reasons["abs"]
    assert "leaves the workspace" in reasons["dots"] and "leaves the workspace" in reasons["../secret.txt"]
    assert "outside the workspace" in reasons["link"] and "outside the workspace" in reasons["dirlink"]
    assert "no such file" in reasons["missing"] and "not a regular file" in reasons["dir"]
    everything = b"".join(p.read_bytes() for p in written.directory.rglob("*") if p.is_file())
    assert b"top secret" not in everything


def test_paths_without_a_workspace_and_malformed_entries_are_recorded_errors(tmp_path):
    _, artifacts, errors = write(tmp_path, {"t": {"artifacts": [
        {"name": "x", "path": "a.txt"}, {"name": "b", "base64": "!!not base64"}, {"name": "n"}, 7,
    ], "files": "nope"}})
    assert artifacts == {}
    messages = [e["error"] for e in errors]
    assert any("no workspace" in m for m in messages)
    assert any("not valid base64" in m for m in messages)
    assert any("needs one of" in m for m in messages)
    assert any("output.artifacts[3]" in m for m in messages)
    assert any("output.files must be a list" in m for m in messages)


def test_oversized_artifacts_are_refused(tmp_path):
    _, artifacts, errors = write(tmp_path, {"t": {"files": {"big.txt": "x" * 5000, "small.txt": "y"}}},
                                 artifact_max_bytes=1000)
    assert list(artifacts) == ["artifacts/t/small.txt"]
    assert "over the 1000-byte artifact limit" in errors[0]["error"]


def test_many_artifacts_are_stored_in_parallel_workers(tmp_path):
    files = {f"f{n}.txt": f"content {n}" for n in range(200)}
    written, artifacts, errors = write(tmp_path, {"t": {"files": files}, "u": "```py\n1\n```"}, workers=4)
    assert errors == [] and len(artifacts) == 201
    for n in (0, 99, 199):
        assert (written.directory / f"artifacts/t/f{n}.txt").read_text() == f"content {n}"


def test_artifacts_can_be_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNER_ARTIFACTS", "false")
    written, artifacts, _ = write(tmp_path, {"t": "```py\n1\n```"})
    assert artifacts == {} and not (written.directory / "artifacts").exists()


def test_unclosed_fences_in_a_large_text_are_scanned_in_one_pass():
    from runner.last.artifacts import fenced_blocks

    text = "```py\n" * 200_000 + "```c\nint x;\n```\n"
    blocks = fenced_blocks(text)
    assert blocks == [("py", "```py\n" * 199_999 + "```c\nint x;\n")]
    assert fenced_blocks("~~~\n```js extra words\nlet a;\n```\n```\nopen") == [("js", "let a;\n")]
