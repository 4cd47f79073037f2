"""A report that explains an AI run: reports of 4, 50 and 500 tasks opened in headless Chromium.

The 4- and 50-task runs are real runs (the loopback AI server, the echo provider in chaos
mode); the 500-task record is built directly. Screenshots are saved under the test's tmp
directory, and copied to $REPORT_SCREENSHOTS when it is set, for a person to look at.
"""
from __future__ import annotations

import html as html_module
import os
import re
import shutil
import struct
from pathlib import Path

import pytest

import runner
from ai_server import AIServer, Reply, Status
from conftest import dumps
from runner.execution import execute
from test_report import CHROMIUM, chromium

CODE_ANSWER = "Here is the function:\n```python\ndef order(xs):\n    return sorted(xs)\n```\nIt returns a new list."
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium (apt-get install chromium)")


def four_task_run(out: Path):
    doc = {"id": "explain", "title": "An AI run, explained", "tasks": [
        {"id": "topic", "description": "The topic", "parameters": {"task_type": "generic", "topic": "sorting"}},
        {"id": "explain", "description": "Explain the topic", "dependencies": ["topic"],
         "parameters": {"prompt": "Explain {{ deps.topic.output.topic }} in two lines.", "stream": True}},
        {"id": "code", "description": "Write the code", "dependencies": ["explain"], "retry_count": 2,
         "parameters": {"prompt": "Write Python for: {{ deps.explain.output.text }}"}},
        {"id": "broken", "description": "A step that fails", "parameters": {
            "task_type": "data_processing", "input": [1, 2], "operations": [{"op": "map", "fields": ["x"]}]}}]}
    with AIServer() as server:
        server.plan(Reply(text="Sorting puts items in order.\nMost libraries do it in O(n log n)."),
                    Status(503, "busy, try again"), Reply(text=CODE_ANSWER))
        environ = {"RUNNER_AI_SERVICE_URL": server.base_url, "RUNNER_AI_PROVIDER": "openai",
                   "RUNNER_RETRY_BASE_SECONDS": "0.05"}
        outcome = execute(doc, out, max_concurrency=1, environ=environ)
    return outcome


def fifty_task_run(out: Path):
    tasks = []
    for level in range(5):
        for n in range(10):
            deps = [] if level == 0 else sorted({f"l{level - 1}_t{n}", f"l{level - 1}_t{(n * 3 + 1) % 10}"})
            tasks.append({"id": f"l{level}_t{n}", "description": f"step {n} of level {level}", "dependencies": deps,
                          "retry_count": 1, "parameters": {"prompt": f"Answer question {level}.{n}"}})
    doc = {"id": "fifty", "title": "Fifty AI tasks in chaos mode", "mode": "chaos", "tasks": tasks}
    return execute(doc, out, max_concurrency=4, seed=11, environ={"RUNNER_CHAOS_FAULT_RATE": "0.25",
                                                                   "RUNNER_RETRY_BASE_SECONDS": "0.01"})


def five_hundred_task_record(out: Path):
    """A LAST directory of 500 tasks in 20 chains, with timings and some failures (no run)."""
    alt = runner.parse_alt_file(dumps({"id": "five_hundred", "title": "Five hundred tasks", "tasks": [
        {"id": f"chain{n // 25:02d}_step{n % 25:02d}", "dependencies": [] if n % 25 == 0 else
         [f"chain{n // 25:02d}_step{n % 25 - 1:02d}"], "parameters": {"task_type": "generic"}} for n in range(500)]}))
    results = {}
    for n in range(500):
        task_id = f"chain{n // 25:02d}_step{n % 25:02d}"
        start_ms = (n % 25) * 40 + (n // 25) * 3
        status = "failed" if n % 97 == 13 else "completed"
        stamp = lambda ms: f"2026-01-01T00:00:{ms // 1000:02d}.{ms % 1000:03d}Z"  # noqa: E731
        results[task_id] = runner.task_result_from_dict({
            "task_id": task_id, "status": status, "output": {"n": n}, "error": "boom" if status == "failed" else None,
            "started_at": stamp(start_ms), "completed_at": stamp(start_ms + 35), "duration_ms": 35.0,
            "metadata": {"attempts": [{"number": 1, "started_at": stamp(start_ms), "duration_ms": 35.0,
                                       "outcome": status, "error": None, "fault": None}]}}, alt)
    return runner.write_last_file(alt, results, out, graph_renderer="builtin", artifacts=False,
                                  execution={"started_at": "2026-01-01T00:00:00.000Z"})


def timeline_of(dom: str) -> str:
    return re.search(r'<section id="timeline">(.*?)</section>', dom, re.S).group(1)


def labels_in(section: str) -> list[str]:
    return [html_module.unescape(label) for label in re.findall(r'<text class="task-label"[^>]*>([^<]*)<title>', section)]


def screenshot(report: Path, tmp_path: Path, name: str, height: int) -> Path:
    shot = tmp_path / f"{name}.png"
    _, console = chromium(report, tmp_path, f"--screenshot={shot}", f"--window-size=1280,{height}")
    assert console == []
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", header[16:24]) == (1280, height)
    keep = os.environ.get("REPORT_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)
    return shot


def test_the_prompt_actually_sent_is_recorded_in_the_task_result(tmp_path):
    outcome = four_task_run(tmp_path)
    ai = outcome.record["task_results"]["explain"]["metadata"]["ai"]
    assert ai["prompt"] == "Explain sorting in two lines."          # the template, rendered
    assert ai["time_to_first_token_ms"] is not None                  # it was streamed
    code = outcome.record["task_results"]["code"]
    assert code["metadata"]["ai"]["prompt"].startswith("Write Python for: Sorting puts items in order.\n")
    assert [a["outcome"] for a in code["metadata"]["attempts"]] == ["failed", "completed"]


@needs_chromium
def test_a_four_task_report_explains_each_task(tmp_path):
    outcome = four_task_run(tmp_path / "out")
    report = outcome.directory / "report.html"
    dom, console = chromium(report, tmp_path, "--dump-dom")
    assert console == []
    # Unsuccessful tasks come first; every task lists its dependencies.
    assert re.findall(r'<details class="task"[^>]*>\s*<summary><span class="badge"[^>]*>(\w+)</span> <strong>(\w+)',
                      dom)[0] == ("failed", "broken")
    assert "<th>Depends on</th><td><code>explain</code></td>" in dom
    assert "<th>Depends on</th><td>nothing (a root task)</td>" in dom
    # The answer with a fenced code block: real line breaks inside a code element.
    code = re.search(r'<pre class="code"><code data-language="python">(.*?)</code></pre>', dom, re.S).group(1)
    assert code == "def order(xs):\n    return sorted(xs)"
    assert "\\n" not in code
    assert '<div class="answer-text">It returns a new list.</div>' in dom
    # The prompt sent, tokens, latency and time to first token, attempts with their errors.
    assert '<pre class="prompt-text">Explain sorting in two lines.</pre>' in dom
    assert re.search(r"<th>Time to first token</th><td>\d+\.\d ms</td>", dom)
    assert re.search(r"<th>Latency</th><td>\d+\.\d ms</td>", dom)
    assert re.search(r"<th>Tokens</th><td>\d+ prompt \+ \d+ completion</td>", dom)
    assert "HTTP 503" in dom or "503" in dom
    # Timeline: every bar named, the retried task one bar of two segments, waiting drawn apart.
    section = timeline_of(dom)
    assert sorted(labels_in(section)) == ["broken", "code", "explain", "topic"]
    assert len(re.findall(r"code: attempt \d \w+", section)) == 2
    assert "code: waiting to retry" in section
    assert "<th>interrupted</th><td>no</td>" in dom
    assert re.search(r"<th>wall time ms</th><td>\d+\.\d ms</td>", dom)
    screenshot(report, tmp_path, "report_4_tasks", 2000)


@needs_chromium
def test_a_fifty_task_report_names_every_task_in_its_timeline(tmp_path):
    outcome = fifty_task_run(tmp_path / "out")
    report = outcome.directory / "report.html"
    dom, console = chromium(report, tmp_path, "--dump-dom")
    assert console == []
    section = timeline_of(dom)
    assert "<details" not in section                     # one page: nothing folded away
    assert sorted(labels_in(section)) == sorted(outcome.record["task_results"])
    critical = outcome.record["statistics"]["critical_path"]["task_ids"]
    bold = [html_module.unescape(t) for t in re.findall(r'<text class="task-label"[^>]*font-weight="bold">([^<]*)<title>',
                                                        section)]
    assert critical and sorted(bold) == sorted(critical)
    assert "waiting for a slot" in section                # four slots for ten ready tasks
    screenshot(report, tmp_path, "report_50_tasks", 1800)


@needs_chromium
def test_a_five_hundred_task_report_pages_its_timeline_and_is_never_empty(tmp_path):
    written = five_hundred_task_record(tmp_path / "out")
    report = written.directory / "report.html"
    dom, console = chromium(report, tmp_path, "--dump-dom")
    assert console == []
    section = timeline_of(dom)
    pages = re.findall(r'<details class="timeline-page"( open="")?><summary>Tasks (\d+)\u2013(\d+) of 500</summary>', section)
    assert [(p[1], p[2]) for p in pages] == [("1", "100"), ("101", "200"), ("201", "300"), ("301", "400"),
                                              ("401", "500")]
    assert pages[0][0] == " open=\"\"" and not any(p[0] for p in pages[1:])
    assert len(labels_in(section)) == 500
    assert len(re.findall(r"<rect [^>]*><title>chain\d+_step\d+: attempt", section)) == 500
    assert len(dom) < 3_000_000
    screenshot(report, tmp_path, "report_500_tasks", 1400)


def _segments_of(path: str) -> list[tuple[float, float, float, float]]:
    """The straight pieces of a routed edge (its L commands), as (x1, y1, x2, y2)."""
    tokens = path.replace(",", " ").split()
    points, pieces, i = [], [], 0
    while i < len(tokens):
        command = tokens[i]
        if command in ("M", "L"):
            point = (float(tokens[i + 1]), float(tokens[i + 2]))
            if command == "L":
                pieces.append((*points[-1], *point))
            points.append(point)
            i += 3
        elif command == "Q":
            points.append((float(tokens[i + 3]), float(tokens[i + 4])))
            i += 5
        elif command == "C":
            points.append((float(tokens[i + 5]), float(tokens[i + 6])))
            i += 7
        else:
            raise AssertionError(f"unexpected path command {command!r}")
    return pieces


def test_the_builtin_layout_routes_edges_around_boxes_and_marks_the_critical_path(tmp_path):
    """Edges that skip columns go along the gaps between rows, never under a box."""
    from runner.last.graph_drawing import BOX_HEIGHT, BOX_WIDTH, layered_svg

    nodes = [{"id": f"n{level}_{row}", "status": "completed", "level": level, "duration_ms": 1.0}
             for level in range(4) for row in range(3)]
    edges = [{"source": f"n{level}_{row}", "target": f"n{level + 1}_{row}"} for level in range(3) for row in range(3)]
    edges += [{"source": "n0_0", "target": "n3_2"}, {"source": "n0_2", "target": "n2_0"},
              {"source": "n1_1", "target": "n3_0"}]
    svg = layered_svg(nodes, edges, critical=["n0_0", "n1_0", "n2_0", "n3_0"])
    boxes = [tuple(map(float, m)) for m in re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width', svg)]
    assert len(boxes) == 12
    paths = [p for p in re.findall(r'<path (?:class="critical" )?d="([^"]+)"', svg) if not p.startswith("M 0 0")]
    assert len(paths) == len(edges)
    for path in paths:
        if " C " in path:
            continue                                  # a neighbour: a curve inside the gap between columns
        for x1, y1, x2, y2 in _segments_of(path):
            for bx, by in boxes:
                inside_x = max(x1, x2) > bx + 1 and min(x1, x2) < bx + BOX_WIDTH - 1
                inside_y = max(y1, y2) > by + 1 and min(y1, y2) < by + BOX_HEIGHT - 1
                assert not (inside_x and inside_y), (path, (bx, by))
    assert len(re.findall(r'class="critical"', svg)) == 3               # the path's three edges
    assert svg.count('stroke="#263238" stroke-width="3"') == 4          # and its four boxes
    page = tmp_path / "graph.html"
    page.write_text(f"<html><body style='background:#fff'>{svg}</body></html>")
    if CHROMIUM is not None:
        screenshot(page, tmp_path, "graph_routed_edges", 400)


def test_long_answers_are_folded_numbers_are_for_people_and_text_is_escaped():
    from runner.last.report import render_report

    long_answer = "\n".join(f"line {n} <b>not bold</b>" for n in range(60))
    record = {
        "id": "last_x", "title": "t", "start_time": "2026-01-01T00:00:00.000Z", "success_rate": 0.5,
        "execution": {"interrupted": False, "wall_time_ms": 1234.5678, "max_concurrency": 4},
        "artifacts": [{"task_id": "a", "name": "big.txt", "size_bytes": 1536,
                       "path": "artifacts/a/big.txt", "sha256": "ab" * 32},
                      {"task_id": "a", "name": "huge.bin", "size_bytes": 5 * 1024 * 1024,
                       "path": "artifacts/a/huge.bin", "sha256": "cd" * 32}],
        "task_results": {
            "a": {"task_id": "a", "status": "completed", "output": {"text": long_answer},
                  "started_at": "2026-01-01T00:00:00.000Z", "completed_at": "2026-01-01T00:00:00.500Z",
                  "duration_ms": 500.04, "metadata": {"ai": {"provider": "openai", "model": "m", "prompt_tokens": 1200,
                                                           "completion_tokens": 3400, "latency_ms": 499.96,
                                                           "time_to_first_token_ms": 0.0010820000113653805,
                                                           "prompt": "<i>the prompt</i>"}}},
            "b": {"task_id": "b", "status": "completed", "output": {"text": "short answer"},
                  "started_at": "2026-01-01T00:00:00.000Z", "completed_at": "2026-01-01T00:00:00.100Z"}}}
    html = render_report(record)
    assert '<details class="answer"><summary>Answer: line 0 &lt;b&gt;not bold&lt;/b&gt; &hellip; (1,' in html
    assert "60 lines: show all)</summary>" in html
    assert '<div class="answer"><div class="answer-text">short answer</div>' in html
    assert "<th>interrupted</th><td>no</td>" in html and "<th>wall time ms</th><td>1234.6 ms</td>" in html
    assert "<td>1.5 KB</td>" in html and "<td>5.0 MB</td>" in html
    assert "<th>Tokens</th><td>1,200 prompt + 3,400 completion</td>" in html
    assert "<th>Time to first token</th><td>0.0 ms</td>" in html and "0.0010820000113653805" not in html
    assert "<th>Latency</th><td>500.0 ms</td>" in html
    assert '<pre class="prompt-text">&lt;i&gt;the prompt&lt;/i&gt;</pre>' in html
    assert ">50.0%<" in html
