"""report.html: escaped, self-contained, bounded; and in a real headless Chromium."""
from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys

import pytest

import runner
from conftest import dumps

ATTACK = "<script>document.title='pwned';document.body.setAttribute('data-pwned','1')</script>"
IMG_ATTACK = "<img src=x onerror=\"document.title='pwned'\">"


def attack_alt():
    return runner.parse_alt_file(dumps({"id": "xss", "title": "Report <i>check</i>", "tasks": [
        {"id": "fetch", "description": "Fetch", "dependencies": None},
        {"id": "render", "description": IMG_ATTACK, "dependencies": ["fetch"]},
        {"id": "later", "description": "Later", "dependencies": ["render"]}]}))


def attack_results(alt):
    return {
        "fetch": runner.task_result_from_dict({
            "task_id": "fetch", "status": "completed", "output": {"html": ATTACK, "n": [1, 2]},
            "started_at": "2026-01-01T00:00:00.000Z", "completed_at": "2026-01-01T00:00:01.000Z",
            "duration_ms": 1000, "metadata": {"attempts": [
                {"number": 1, "started_at": "2026-01-01T00:00:00.000Z", "duration_ms": 400, "outcome": "failed",
                 "error": ATTACK, "fault": "chaos"},
                {"number": 2, "started_at": "2026-01-01T00:00:00.500Z", "duration_ms": 500, "outcome": "completed",
                 "error": None, "fault": None}]}}, alt),
        "render": runner.task_result_from_dict({
            "task_id": "render", "status": "failed", "error": ATTACK, "output": ATTACK + "\n```html\n" + ATTACK + "\n```",
            "started_at": "2026-01-01T00:00:01.000Z", "completed_at": "2026-01-01T00:00:02.500Z",
            "duration_ms": 1500}, alt),
    }


@pytest.fixture
def attacked_report(tmp_path):
    alt = attack_alt()
    written = runner.write_last_file(alt, attack_results(alt), tmp_path, graph_renderer="builtin")
    return written.directory / "report.html"


def test_untrusted_text_is_escaped_and_the_page_has_no_scripts_or_external_assets(attacked_report):
    html = attacked_report.read_text()
    assert "<script" not in html.lower()
    assert "&lt;script&gt;document.title=" in html
    # IMG_ATTACK is only in a task's description: it is shown, as text.
    assert "<img src=x" not in html
    assert '<span class="note">&lt;img src=x onerror=&#34;document.title=&#39;pwned&#39;&#34;&gt;</span>' in html
    assert "<title>LAST report: Report &lt;i&gt;check&lt;/i&gt;</title>" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert 'href="artifacts/render/code_1.html"' in html


def test_report_shows_summary_counts_timeline_graph_tasks_and_attempts(attacked_report):
    html = attacked_report.read_text()
    assert 'id="summary-text"' in html and "1 of 3 tasks completed" in html
    assert "completed: 1" in html and "failed: 1" in html and "pending: 1" in html
    assert html.count("<rect") >= 2              # timeline bars
    assert 'src="data:image/svg+xml;base64,' in html
    assert html.count('<details class="task"') == 3
    assert '<strong>fetch</strong> &middot; 1000.0 ms &middot; <span class="note">Fetch</span>' in html
    assert '<strong>later</strong> &middot; <span class="note">Later</span>' in html
    assert "&#34;n&#34;: [\n    1," in html   # output pretty-printed
    assert "<td>chaos</td>" in html


def test_the_template_fails_on_a_missing_field_instead_of_rendering_nothing():
    from jinja2 import StrictUndefined, UndefinedError

    from runner.last import report

    assert issubclass(report._environment.undefined, StrictUndefined)
    with pytest.raises(UndefinedError):
        report._environment.from_string("{{ task.description }}").render(task={})


def test_a_minimal_record_still_renders(tmp_path):
    """Records of older versions, or edited ones, lack fields: the report fills them in."""
    from runner.last.report import render_report

    html = render_report({"id": "old", "task_results": {"a": {"task_id": "a", "status": "completed"}},
                          "artifacts": [{"task_id": "a", "name": "n"}], "execution": {"faults": [{}]}})
    assert "<strong>a</strong>" in html and "LAST old" in html


def test_artifact_links_are_only_the_paths_the_sanitiser_produces(attacked_report, tmp_path):
    """A LAST file is data anyone can edit: its artifact paths must not become arbitrary links."""
    record = json.loads((attacked_report.parent / "last.json").read_text())
    hostile = ["https://evil.example/x", "javascript:alert(1)", "artifacts/render/../../../etc/passwd",
               "//evil.example/a", "artifacts/render/.hidden", "artifacts/render/a b"]
    for number, path in enumerate(hostile):
        record["artifacts"].append({**record["artifacts"][0], "name": f"hostile{number}", "path": path})
    (attacked_report.parent / "last.json").write_text(json.dumps(record))
    done = subprocess.run([sys.executable, "-m", "runner", "report", str(attacked_report.parent),
                           "--graph-renderer", "builtin"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    html = attacked_report.read_text()
    links = re.findall(r'href="([^"]*)"', html)
    assert links and set(links) == {"artifacts/render/code_1.html"}
    for number in range(len(hostile)):
        assert f"<td>hostile{number}</td>" in html      # still listed, as plain text


def test_large_runs_give_a_bounded_report(tmp_path):
    size = 5000
    alt = runner.parse_alt_file(dumps({"id": "big", "title": "Big", "tasks": [
        {"id": f"t{n}", "description": "d", "dependencies": [f"t{n - 1}"] if n % 50 else None}
        for n in range(size)]}))
    results = {f"t{n}": runner.task_result_from_dict({
        "task_id": f"t{n}", "status": "failed" if n % 1000 == 7 else "completed", "output": "y" * 20000,
        "started_at": "2026-01-01T00:00:00.000Z", "completed_at": "2026-01-01T00:00:01.000Z",
        "duration_ms": 1000}, alt) for n in range(size)}
    written = runner.write_last_file(alt, results, tmp_path, report_task_limit=50, graph_renderer="builtin",
                                     artifacts=False)
    html = (written.directory / "report.html").read_text()
    assert html.count('<details class="task"') == 50
    assert "50 of 5000 tasks are detailed here" in html
    assert "t1007</strong>" in html        # failed tasks come first
    assert "more characters in last.json" in html
    assert len(html) < 1_500_000
    assert "Summarised: one box per dependency level." in html


def test_report_command_rebuilds_the_html(attacked_report, tmp_path):
    original = attacked_report.read_text()
    attacked_report.unlink()
    done = subprocess.run([sys.executable, "-m", "runner", "report", str(attacked_report.parent),
                           "--graph-renderer", "builtin"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(attacked_report)
    assert attacked_report.read_text() == original


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--window-size=1280,900"]


def chromium(page, tmp_path, *extra):
    profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium (apt-get install chromium)")
def test_the_harness_sees_scripts_run_and_console_errors(tmp_path):
    control = tmp_path / "control.html"
    control.write_text("<html><head><title>t</title></head><body>"
                       "<script>document.title='pwned'; console.error('boom')</script></body></html>")
    dom, console = chromium(control, tmp_path, "--dump-dom")
    assert "<title>pwned</title>" in dom
    assert any("boom" in line for line in console)


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium (apt-get install chromium)")
def test_report_loads_in_chromium_without_errors_and_scripts_never_run(attacked_report, tmp_path):
    dom, console = chromium(attacked_report, tmp_path, "--dump-dom")
    assert console == []
    titles = re.findall(r"<head>.*?<title>(.*?)</title>", dom, re.S)
    assert titles == ["LAST report: Report &lt;i&gt;check&lt;/i&gt;"]
    assert "data-pwned" not in re.search(r"<body[^>]*>", dom).group(0)
    assert "&lt;script&gt;document.title='pwned'" in dom   # shown as text
    assert 'id="summary-text"' in dom and "1 of 3 tasks completed" in dom

    shot = tmp_path / "report.png"
    _, console = chromium(attacked_report, tmp_path, f"--screenshot={shot}")
    assert console == []
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1280, 900)
    assert shot.stat().st_size > 20_000    # a rendered page, not a blank one
