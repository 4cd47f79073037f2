"""Progress of a run for people: a redrawn bar on a terminal, plain lines otherwise.

It is an on_event listener (see Execution._emit). The bar is redrawn at most ten times a
second so a run of 100k inline tasks is not slowed by its own display.
"""
from __future__ import annotations

import re
import sys
import time

from runner.colour import Palette
from runner.terminal import escape_controls, strip_controls

BAR_WIDTH = 24
REDRAW_SECONDS = 0.1


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
LABEL_TEXT = 40


def task_labels(alt) -> dict:
    """How progress names the tasks whose id says nothing to a person (a UUID, as the
    segmentation service gives its segments): the id's first 8 characters and the start of
    the task's text, `3f2a1b2c "Open the browser and..."`. Other ids are their own name."""
    labels = {}
    for task in alt.tasks:
        if _UUID.match(task.id) and task.description:
            text = " ".join(task.description.split())
            text = text if len(text) <= LABEL_TEXT else text[:LABEL_TEXT - 3] + "..."
            labels[task.id] = f'{task.id[:8]} "{escape_controls(text)}"'
    return labels


def clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressDisplay:
    """Streamed AI text (--stream) is written a whole line at a time, each line labelled with
    its task's id ("summary | ..."), so the answers of tasks running at once never mix;
    on a terminal the bar is cleared first and redrawn below the text."""

    def __init__(self, stream=None, terminal: bool | None = None, labels: dict | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.labels = labels or {}              # task id -> how lines name it (task_labels)
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self._drawn = 0.0
        self._last: dict | None = None
        self._partial: dict[str, str] = {}      # task id -> streamed text after its last newline
        self.colour = Palette(self.stream)

    def _text(self, task_id, text: str, final: bool = False) -> None:
        """Writes the complete lines of a task's streamed text, labelled; keeps the rest."""
        pending = self._partial.pop(task_id, "") + strip_controls(text)
        lines = pending.split("\n")
        rest = lines.pop()
        if final and rest:
            lines.append(rest)
        elif rest:
            self._partial[task_id] = rest
        if not lines:
            return
        label = strip_controls(self.name(task_id[0]) + f" #{task_id[1]}" if isinstance(task_id, tuple)
                               else self.name(task_id))
        if self.terminal and self._last is not None:
            self.stream.write("\r\x1b[2K")
        self.stream.write("".join(f"{label} | {line}\n" for line in lines))
        if self.terminal and self._last is not None:
            self.stream.write(self.line(self._last))
        self.stream.flush()

    def name(self, task_id) -> str:
        return self.labels.get(task_id, str(task_id))

    def line(self, event: dict) -> str:
        done, total = event["done"], event["total"]
        elapsed = event["elapsed_s"]
        eta = "?" if not done else clock(elapsed / done * (total - done))
        filled = BAR_WIDTH * done // total if total else BAR_WIDTH
        skipped = self.colour.yellow(f", {event['skipped']} skipped") if event.get("skipped") else ""
        failed = f"{event['failed']} failed"
        return (f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} done, {event['running']} running, "
                f"{self.colour.red(failed) if event['failed'] else failed}{skipped}, {clock(elapsed)} elapsed, "
                f"ETA {eta}")

    def outcome_line(self, event: dict) -> str | None:
        """The line naming a task that did not complete, or is retried, with its error; None
        for the other events. The same on a terminal (above the bar) and in a pipe."""
        kind = event["event"]
        if kind == "task_finished":
            if event["status"] == "completed" and self.terminal:
                return None
            error = f": {strip_controls(event['error'])}" if event.get("error") else ""
            return (f"[{event['done']}/{event['total']}] {self.name(event['task_id'])} "
                    f"{self.colour.status(event['status'])}{error}")
        if kind == "task_retrying":
            delay = f"{event['delay']:.2f}"
            return (f"[{event['done']}/{event['total']}] {self.name(event['task_id'])} attempt "
                    f"{event['attempt']} {self.colour.status(event['status'])}: "
                    f"{strip_controls(event['error'] or '')}; " + self.colour.yellow(f"retrying in {delay} s"))
        return None

    def __call__(self, event: dict) -> None:
        kind = event["event"]
        if kind == "task_output":
            sample = event.get("sample")
            key = event["task_id"] if sample is None else (event["task_id"], sample)
            if sample is not None and sample > 1 and (event["task_id"], sample - 1) in self._partial:
                self._text((event["task_id"], sample - 1), "", final=True)     # the sample before ended
            self._text(key, event["text"])
            return
        if kind in ("task_finished", "task_retrying"):
            for key in [k for k in self._partial if k == event["task_id"]
                        or (isinstance(k, tuple) and k[0] == event["task_id"])]:
                self._text(key, "", final=True)
        self._last = event
        if self.terminal:
            # A task that failed, timed out or is retried is named above the bar, with its
            # error, as a pipe shows it: the bar alone only counts them.
            named = self.outcome_line(event) if kind in ("task_finished", "task_retrying") else None
            now = time.monotonic()
            if named is not None or kind in ("run_finished", "run_started") or now - self._drawn >= REDRAW_SECONDS:
                self._drawn = now
                self.stream.write("\r\x1b[2K" + (named + "\n" if named is not None else "") + self.line(event))
                self.stream.flush()
            return
        if kind in ("task_finished", "task_retrying"):
            self.stream.write(self.outcome_line(event) + "\n")
        elif kind == "task_started":
            again = f" (attempt {event['attempt']})" if event.get("attempt", 1) > 1 else ""
            self.stream.write(f"[{event['done']}/{event['total']}] {self.name(event['task_id'])} started{again}\n")
        self.stream.flush()

    def close(self) -> None:
        for task_id in list(self._partial):
            self._text(task_id, "", final=True)
        if self.terminal and self._last is not None:
            self.stream.write("\n")
            self.stream.flush()
