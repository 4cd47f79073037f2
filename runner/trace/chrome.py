"""A run's trace in the Chrome Trace Event format, which Perfetto and chrome://tracing open.

{"traceEvents": [...]}: M events naming the run (the process) and its slots (threads),
then, sorted by time, an X event for the run (tid 0), one per attempt and one per AI call
nested in its attempt. ts and dur are whole microseconds from the run's start. Attempts are
laid on "slots" (tids from 1), each attempt on the lowest-numbered slot free when it starts,
so no two slices of a tid overlap; there are as many slots as tasks ran at once. The LAST
file records starts to the millisecond (truncated): a slot whose last slice ends less than
that before the next attempt's recorded start is free for it, and the slice starts where
the previous one ended (moved by less than a millisecond).
A task that never started (skipped, cancelled) is an instant event on the run's row.
"""
from __future__ import annotations

import heapq

from runner.trace.spans import RunTrace

PID = 1
RUN_TID = 0
PRECISION_NS = 1_000_000        # recorded starts are truncated to the millisecond


def chrome_trace(trace: RunTrace) -> dict:
    root = trace.root
    origin_us = root.start_ns // 1000
    attempts = [s for s in trace.spans if s.kind != "client"]
    calls: dict = {}
    for span in trace.spans:
        if span.kind == "client":
            calls.setdefault(span.parent_id, []).append(span)

    def us(ns: int) -> int:
        return ns // 1000 - origin_us

    events = [{"name": "run", "cat": "run", "ph": "X", "pid": PID, "tid": RUN_TID, "ts": 0,
               "dur": max(0, us(root.end_ns)), "args": _args(root)}]
    free: list = []         # slot numbers free now (a heap)
    busy: list = []         # (end ns, slot) of attempts in progress (a heap)
    ends = [0]              # slot -> where its last slice ends (ns)
    ran = sorted((s for s in attempts if s.attributes.get("librunner.task.attempt") != 0),
                 key=lambda s: (s.start_ns, s.end_ns))
    for span in ran:
        while busy and busy[0][0] < span.start_ns + PRECISION_NS:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            slot = heapq.heappop(free)
        else:
            ends.append(0)
            slot = len(ends) - 1
        begin_ns = max(span.start_ns, ends[slot])
        end_ns = max(span.end_ns, begin_ns)
        ends[slot] = end_ns
        heapq.heappush(busy, (end_ns, slot))
        start = us(begin_ns)
        events.append({"name": span.name, "cat": span.attributes.get("librunner.task.type", "task"), "ph": "X",
                       "pid": PID, "tid": slot, "ts": start, "dur": us(end_ns) - start, "args": _args(span)})
        for call in calls.get(span.span_id, ()):
            # Recorded to the millisecond, an AI call can seem to end a little after its
            # attempt: held within it, so the slices of a slot nest.
            begin = us(min(max(call.start_ns, begin_ns), end_ns))
            end = us(min(max(call.end_ns, begin_ns), end_ns))
            events.append({"name": call.name, "cat": "ai", "ph": "X", "pid": PID, "tid": slot, "ts": begin,
                           "dur": max(0, end - begin), "args": _args(call)})
    for span in attempts:
        if span.attributes.get("librunner.task.attempt") == 0:
            events.append({"name": span.name, "cat": span.attributes.get("librunner.task.type", "task"),
                           "ph": "i", "s": "t", "pid": PID, "tid": RUN_TID, "ts": max(0, us(span.start_ns)),
                           "args": _args(span)})
    # Sorted by time; at one time, the longer slice (the parent) first.
    events.sort(key=lambda e: (e["ts"], -e.get("dur", 0)))
    alt_id = root.attributes.get("librunner.alt.id")
    last_id = root.attributes.get("librunner.last.id")
    names = [{"name": "process_name", "ph": "M", "pid": PID, "tid": RUN_TID,
              "args": {"name": f"run {alt_id} ({last_id})"}},
             {"name": "thread_name", "ph": "M", "pid": PID, "tid": RUN_TID, "args": {"name": "run"}},
             {"name": "thread_sort_index", "ph": "M", "pid": PID, "tid": RUN_TID, "args": {"sort_index": 0}}]
    for slot in range(1, len(ends)):
        names.append({"name": "thread_name", "ph": "M", "pid": PID, "tid": slot, "args": {"name": f"slot {slot}"}})
        names.append({"name": "thread_sort_index", "ph": "M", "pid": PID, "tid": slot, "args": {"sort_index": slot}})
    return {"traceEvents": names + events, "displayTimeUnit": "ms",
            "otherData": {"trace_id": trace.ids.trace_id, "last_id": last_id,
                          "alt_id": alt_id, "start_time_unix_us": origin_us}}


def _args(span) -> dict:
    args = {key[len("librunner."):] if key.startswith("librunner.") else key: value
            for key, value in span.attributes.items()}
    args["span_id"] = span.span_id
    if span.message:
        args["error"] = span.message
    for name, _, attributes in span.events:
        if name == "gen_ai.first_token":
            args["time_to_first_token_ms"] = attributes.get("gen_ai.response.time_to_first_token", 0) * 1000.0
    return args
