"""The small things of issue 22's point 10, each through the real CLI: words said once, the
timeline at millisecond scale and the top of an interrupted run's report (headless
Chromium), explore mode's streamed samples apart, segments named by what they say."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import wait_until
from runner.execution.journal import RunState

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--allow-file-access-from-files", "--window-size=1280,900"]
ENABLED = {"RUNNER_ENABLE_SYSTEM_COMMANDS": "true", "RUNNER_SYSTEM_COMMAND_ALLOWLIST": "sleep,sh"}


def cli(*argv, env=None, stdin=None) -> subprocess.CompletedProcess:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("RUNNER_")}
    return subprocess.run([sys.executable, "-m", "runner", *map(str, argv)], capture_output=True, text=True,
                          timeout=120, env={**environ, "RUNNER_AI_PROVIDER": "echo", **(env or {})}, input=stdin)


def write(tmp_path, tasks, name="alt.json", **fields):
    path = tmp_path / name
    path.write_text(json.dumps({"id": "small", "title": "Small", "tasks": tasks, **fields}))
    return path


def generic(n):
    return [{"id": f"t{i}", "description": "x", "parameters": {"task_type": "generic", "n": i}} for i in range(n)]


def test_a_full_success_says_its_rate_once_and_one_call_is_one_call(tmp_path):
    ran = cli("run", write(tmp_path, [{"id": "ask", "description": "hello"}]), "--out", tmp_path / "out", "-q")
    assert ran.returncode == 0
    assert "(100.00% success) in " in ran.stderr and "success, success" not in ran.stderr
    shown = cli("show", ran.stdout.strip())
    assert re.search(r"completion in 1 call$", shown.stdout, re.M), shown.stdout


def sigterm_during_nap(tmp_path, tasks, *options) -> subprocess.Popen:
    """`run` of tasks whose "nap" sleeps, given SIGTERM once nap is running; the ended child,
    its .stdout and .stderr read."""
    path, out = write(tmp_path, tasks), tmp_path / "out"
    environ = {key: value for key, value in os.environ.items() if not key.startswith("RUNNER_")}
    child = subprocess.Popen([sys.executable, "-m", "runner", "run", str(path), "--out", str(out), *options],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**environ, **ENABLED, "RUNNER_GRACE_SECONDS": "0.2"})
    try:
        assert wait_until(lambda: any(out.glob("*/journal.jsonl"))
                          and "nap" in RunState(next(out.glob("*/journal.jsonl")).parent).running, 30)
        child.send_signal(signal.SIGTERM)
        child.stdout_text, child.stderr_text = child.communicate(timeout=60)
    finally:
        child.kill()
    return child


def test_a_cancelled_task_says_cancelled_once(tmp_path):
    tasks = [{"id": "nap", "description": "n", "parameters": {"task_type": "system_command",
                                                              "command": ["sleep", "30"]}},
             {"id": "later", "description": "l", "dependencies": ["nap"], "parameters": {"task_type": "generic"}}]
    child = sigterm_during_nap(tmp_path, tasks)
    stdout, stderr = child.stdout_text, child.stderr_text
    assert child.returncode == 143
    assert "cancelled: cancelled" not in stderr
    shown = cli("show", stdout.strip())
    assert "cancelled: cancelled" not in shown.stdout
    assert re.search(r"cancelled +later: the run was interrupted", shown.stdout), shown.stdout


def test_several_files_name_a_bad_file_once(tmp_path):
    good = write(tmp_path, generic(1), "good.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    ran = cli("run", good, bad, "--out", tmp_path / "out")
    lines = [line for line in ran.stderr.splitlines() if line.startswith(str(bad))]
    assert lines and all(line.count(str(bad)) == 1 for line in lines), ran.stderr


def test_a_failed_publication_is_printed_once(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ran = cli("run", write(tmp_path, generic(1)), "--out", tmp_path / "out", "-q",
              env={"RUNNER_NATS_URL": f"nats://127.0.0.1:{port}"})
    assert ran.returncode == 0
    assert ran.stderr.count("not published on") == 1, ran.stderr
    assert "delivery: LAST file" in ran.stderr


def test_explore_mode_streams_each_sample_apart(tmp_path):
    tasks = [{"id": "idea", "description": "one line", "parameters": {"explore_samples": 2}}]
    ran = cli("run", write(tmp_path, tasks), "--out", tmp_path / "out", "--mode", "explore", "--stream")
    assert ran.returncode == 0, ran.stderr
    streamed = [line for line in ran.stderr.splitlines() if " | " in line]
    assert [line.split(" | ")[0] for line in streamed] == ["idea #1", "idea #2"], ran.stderr
    assert all(line.endswith("echo: one line") for line in streamed)


def test_segments_named_by_uuids_show_what_they_say(tmp_path):
    doc = {"command": "open the site", "segments": [
        {"id": "3f2a1b2c-0000-4000-8000-000000000001", "task_type": "generic",
         "content": "Open the browser and go to the example site"}]}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    ran = cli("run", path, "--out", tmp_path / "out")
    assert ran.returncode == 0, ran.stderr
    assert '3f2a1b2c "Open the browser and go to the exampl..." completed' in ran.stderr
    assert "3f2a1b2c-0000" not in ran.stderr


def chromium_measure(tmp_path, report: Path, script: str) -> dict:
    """Loads `report` in a frame of a page of ours whose script measures it; its findings."""
    page = tmp_path / "measure.html"
    page.write_text(f"""<html><body><iframe id="f" src="{report.as_uri()}" width="1280" height="900"></iframe>
<pre id="found"></pre><script>
document.getElementById('f').onload = function () {{
  var doc = document.getElementById('f').contentDocument, found = {{}};
  {script}
  document.getElementById('found').textContent = JSON.stringify(found);
}};
</script></body></html>""")
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                           "--virtual-time-budget=5000", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="found">(.*?)</pre>', done.stdout, re.S)
    assert found and found.group(1), done.stdout[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium (apt-get install chromium)")
def test_the_timeline_keeps_sub_millisecond_tasks_inside_the_plot_and_apart(tmp_path):
    # Tasks of well under a millisecond each, one after the other: whole-millisecond stamps
    # put them all at one place.
    chain = [{"id": f"t{i}", "description": "x", "dependencies": [f"t{i - 1}"] if i else None,
              "parameters": {"task_type": "data_processing", "input": [{"n": i}],
                             "operations": [{"op": "sort", "by": "n"}]}} for i in range(6)]
    ran = cli("run", write(tmp_path, chain), "--out", tmp_path / "out", "-q")
    assert ran.returncode == 0
    directory = Path(ran.stdout.strip())
    found = chromium_measure(tmp_path, directory / "report.html", """
      var svg = doc.querySelector('#timeline svg.gantt');
      var axis = svg.querySelector('line[stroke="#90a4ae"]').getBoundingClientRect();
      var bars = Array.prototype.slice.call(svg.querySelectorAll('rect[fill]')).filter(function (r) {
        var title = r.querySelector('title');
        return title && title.textContent.indexOf(': attempt ') > 0; });
      found.axis = [axis.left, axis.right];
      found.bars = bars.map(function (r) { var b = r.getBoundingClientRect();
        return [r.querySelector('title').textContent.split(':')[0], b.left, b.right]; });
    """)
    left, right = found["axis"]
    assert len(found["bars"]) == 6
    assert all(left - 0.5 <= bar_left and bar_right <= right + 0.5 for _, bar_left, bar_right in found["bars"]), found
    # In a chain each task starts after the one before: drawn at distinct, increasing places,
    # which whole-millisecond stamps (all equal) could not give.
    starts = [bar_left for _, bar_left, _ in sorted(found["bars"], key=lambda bar: int(bar[0][1:]))]
    assert starts == sorted(starts) and len(set(starts)) == len(starts), found


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium (apt-get install chromium)")
def test_the_top_of_an_interrupted_runs_report_says_so(tmp_path):
    tasks = [{"id": "nap", "description": "n", "parameters": {"task_type": "system_command",
                                                              "command": ["sleep", "30"]}}]
    stdout = sigterm_during_nap(tmp_path, tasks, "-q").stdout_text
    found = chromium_measure(tmp_path, Path(stdout.strip()) / "report.html", """
      var note = doc.getElementById('interrupted'), summary = doc.getElementById('summary');
      found.text = note ? note.textContent : null;
      if (note) { var box = note.getBoundingClientRect();
        found.top = box.top; found.height = box.height;
        found.above_summary = box.bottom <= summary.getBoundingClientRect().top; }
    """)
    assert found["text"] and found["text"].startswith("Interrupted by SIGTERM")
    assert "python -m runner resume" in found["text"]
    assert found["height"] > 0 and found["top"] < 300 and found["above_summary"], found
