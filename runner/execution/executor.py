"""The executor: runs an ALT file's tasks, attempt by attempt, and records what happened.

One loop (the caller's thread) drives the Cython Scheduler: it runs inline tasks itself,
hands ready worker tasks to a WorkerPool up to the concurrency cap, and waits on one
queue of finished attempts with a timeout equal to the nearest deadline or retry time.
Waiting there releases the GIL, so a C host's other threads go on calling the library.

An attempt's deadline is enforced by this loop, not by the worker: at the deadline the
attempt is recorded as timeout at once and its Cancellation fires (killing a process
group, aborting an HTTP request); whatever the worker reports later is ignored.
"""
from __future__ import annotations

import logging
import queue
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from runner import librunner
from runner.errors import ConfigurationError
from runner.execution import modes, processes
from runner.execution.attempt import AttemptContext, AttemptTimeout, Cancellation, TaskFailure
from runner.execution.settings import ExecutionSettings
from runner.execution import task_types
from runner.execution.task_types import INLINE_TYPES, SIDE_EFFECT_TYPES
from runner.execution.preparation import Preparation, prepare
from runner.execution.workers import WorkerPool

log = logging.getLogger("runner")
UNSUCCESSFUL_WORDS = {"failed": "failed", "timeout": "timed out", "cancelled": "was cancelled",
                      "skipped": "was skipped"}
_WAKE = object()          # put on the completion queue to wake the loop (interruption)
# The loop never sleeps longer than this. Linux may deliver Ctrl-C's SIGINT to any thread,
# and Python runs the handler only when the main thread next wakes: without a bound, a
# signal caught by a worker thread waited for the next task deadline (minutes).
MAX_WAIT_SECONDS = 0.2
_MAX_SAFE_INTEGER = 2 ** 53 - 1


class _Attempt:
    __slots__ = ("index", "number", "started", "started_at", "deadline", "timeout", "cancellation", "ctx", "fault")

    def __init__(self, index: int, number: int, started: float, started_at: str, deadline: float, timeout: float,
                 cancellation: Cancellation, ctx: AttemptContext, fault):
        self.index = index
        self.number = number
        self.started = started              # monotonic
        self.started_at = started_at
        self.deadline = deadline
        self.timeout = timeout
        self.cancellation = cancellation
        self.ctx = ctx
        self.fault = fault                  # modes.Fault | None


class _TaskState:
    __slots__ = ("attempts", "first_started", "first_started_at", "metadata")

    def __init__(self):
        self.attempts: list = []
        self.first_started: float | None = None
        self.first_started_at: str | None = None
        self.metadata: dict = {}


class Execution:
    """One run of one ALT file. execute() returns (results, execution facts)."""

    def __init__(self, alt, *, settings: ExecutionSettings, mode: str, max_concurrency: int,
                 seed: int | None, workspace: Path, on_event: Callable[[dict], None] | None = None,
                 stream: bool = False, ai_client=None, environ=None, journal=None,
                 reuse: dict | None = None, placement=None, handlers: dict | None = None, trace=None):
        core = librunner
        # handlers: this run's own task types ({name: function or TaskType}), found before
        # the process's registry and plugins (runner.execution.task_types).
        self.handlers = task_types.run_types(handlers)
        self.kinds: dict = {}                   # task type name -> TaskType, looked up once
        self._async_starts: list = []           # (coroutine, Cancellation, ended) not yet on the event loop
        self._async_reports: list = []          # ended async attempts, sent once per turn of the event loop
        self.kind_errors: dict = {}             # task type name -> why its plugin did not load
        self.event_loop = None                  # the run's asyncio loop, made for the first async task
        # trace: the run's runner.trace.ids.TraceIds when it is traced (its AI calls carry
        # the trace on to the AI service), else None.
        self.trace = trace
        # placement: an object with `task_types` (a set) and `run(ctx) -> output`, which runs
        # the attempts of those types elsewhere (a Dask worker) in place of their handler;
        # everything else (order, retries, faults, deadlines) stays in this loop.
        self.placement = placement
        self.environ = environ
        self.core = core
        self.alt = alt
        self.tasks = alt.tasks
        self.settings = settings
        self.mode = mode
        self.cap = max_concurrency
        self.workspace = workspace
        self.on_event = on_event
        self.stream = stream
        self.seed = seed if seed is not None else (modes.new_seed() if mode == "chaos" else None)
        # A file's own chaos level (segmentation documents' chaos_level) is more specific
        # than the environment's rate.
        file_rate = getattr(alt, "chaos_fault_rate", None)
        self.fault_rate = file_rate if file_rate is not None else settings.chaos_fault_rate
        self.plan = modes.ChaosPlan(self.seed, self.fault_rate) if mode == "chaos" else None
        self.faults: list[dict] = []
        # journal: the run's journal.jsonl (runner.execution.journal), or None.
        # reuse: task index -> TaskResult of an earlier run, recorded instead of running (resume).
        self.journal = journal
        self.journal_started = False    # its start waited for, once, before the first attempt
        self._start_types: set | None = None
        self.reuse = reuse or {}
        inline = frozenset() if self.plan or self.reuse else INLINE_TYPES
        # Control flow (runner/execution/control.py): the run executes the plan's own AltFile,
        # which grows with the instances its loops and calls make.
        self.flow = None
        held = not_inline = None
        if getattr(alt, "control", None) is not None:
            from runner.execution.control import Flow
            self.flow = Flow(self, alt)
            alt = self.alt = self.flow.run_alt
            self.tasks = alt.tasks
            held, not_inline = self.flow.held, self.flow.special
            if self.reuse:
                # Resume: earlier results by task id, for the run's own tasks now and for
                # the instances its loops and calls make again.
                self.reuse = self.flow.resumed(self.reuse, self.tasks)
        # Resume: reused results are recorded when the run starts (Journal.start writes them as
        # the journal's first lines, reused_at_start) and the scheduler settles them at once. A
        # control-flow run records them at the start too, its instances' included, but replays
        # its constructs from them as they are reached (control.py).
        self.settled = frozenset(self.reuse) if self.reuse and self.flow is None else frozenset()
        self.recorded_at_start: set = set()     # task ids whose reused result the journal holds
        # index -> the output of a segment's own command or file operation (segment_completed),
        # while its construct runs: a construct the run's stop cancels keeps it in its result.
        self.segment_outputs: dict = {}
        self.scheduler = core.Scheduler(alt, None, self.plan.tie_breaker() if self.plan else None, inline,
                                        held, not_inline, self.settled or None)
        self.results: dict = self.results if self.flow is not None else {}
        # Every result goes in through it (_record), which accumulates the LAST record's
        # statistics and the progress counts as results arrive (core RunStatistics).
        self.statistics = core.RunStatistics(self.results, alt.tasks)
        self._record = self.statistics.record
        self.states: dict[int, _TaskState] = {}
        self.running: dict[int, _Attempt] = {}          # token -> attempt in flight
        self.retries: list[tuple[float, int]] = []       # (due, task index), unordered, small
        self.completions: queue.SimpleQueue = queue.SimpleQueue()
        self.pool = None
        self.preparation = Preparation()
        self.jitter = random.Random()
        self._owned_client = ai_client is None
        self._ai_client = ai_client
        self._client_lock = threading.Lock()
        self._token = 0
        self._interrupt = threading.Event()
        # Attempt threads still running, abandoned ones included (a thread cannot be killed),
        # and what waits for them all to end (removing a temporary workspace).
        self._attempts_live = 0
        # The count is kept under the plain lock (twice per attempt); the Condition over the
        # same lock is for after_attempts, which waits for it to reach 0.
        self._attempts_lock = threading.Lock()
        self._attempts_ended = threading.Condition(self._attempts_lock)
        self._after_attempts: list[Callable[[], None]] = []
        self.written = threading.Event()    # set by the caller once the LAST file is written
        self.started = time.monotonic()
        # Per-attempt debug lines only when someone listens (building them cost every attempt).
        self._debug = log.isEnabledFor(logging.DEBUG)

    # ---- public -------------------------------------------------------------------

    @property
    def counts(self) -> dict:
        """How many results were recorded so far with each status of the progress events
        (completed, failed, timeout, cancelled, skipped): the run's accumulated figures."""
        return self.statistics.progress_counts()

    def interrupt(self) -> None:
        """Stop soon: pending tasks cancelled, running ones given the grace period."""
        if not self._interrupt.is_set():
            self._interrupt.set()
            self.completions.put(_WAKE)

    def after_attempts(self, callback: Callable[[], None], wait_seconds: float) -> bool:
        """Calls callback once no attempt thread runs any more: here, if they all end within
        wait_seconds (True), else later on the thread of the last one to end (False)."""
        with self._attempts_ended:
            if not self._attempts_ended.wait_for(lambda: self._attempts_live == 0, wait_seconds):
                self._after_attempts.append(callback)
                return False
        callback()
        return True

    def _attempt_thread_ended(self) -> None:
        with self._attempts_lock:
            self._attempts_live -= 1
            if self._attempts_live:
                return
            self._attempts_ended.notify_all()
            callbacks, self._after_attempts = self._after_attempts, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.debug("a callback after the attempts raised", exc_info=True)

    def execute(self) -> tuple[dict, dict]:
        # What the tasks need is made ready before the run's clock starts, so no task's
        # duration carries the AI client's or the template engine's start-up.
        to_run = [task for index, task in enumerate(self.tasks) if index not in self.reuse] if self.reuse else self.tasks
        self.preparation = prepare(to_run, types=None if self.reuse else self._types_at_start(),
                                   environ=self.environ, ai_client=self._ai_client,
                                   load_type=lambda name: (kind := self._kind(name)) and kind.handler())
        if self._ai_client is None:
            self._ai_client = self.preparation.ai_client
        started_at = self.core.utc_stamp()
        self.started = time.monotonic()
        self.scheduler.clock_origin = self.started     # inline attempts' offset_ms
        self._emit("run_started")
        self._record_settled()
        keyboard = None
        try:
            try:
                self._loop()
            except KeyboardInterrupt as interrupt:
                keyboard = interrupt
                self._interrupt.set()
            if self._interrupt.is_set():
                self._wind_down()
        finally:
            if self.pool is not None:
                self.pool.close()
            if self.event_loop is not None:
                # Attempts begun and not yet handed to the loop (a listener's BaseException
                # out of the loop, between a start and its wait): given to it now, which
                # cancels them unstarted at its close and counts them as ended.
                self._hand_over()
                self.event_loop.close()
            if self._owned_client and self._ai_client is not None:
                self._ai_client.close()
        wall_ms = (time.monotonic() - self.started) * 1000.0
        self.faults.sort(key=lambda f: (self.alt.task_index[f["task_id"]].index, f["attempt"]))
        execution = {
            "mode": self.mode,
            "seed": self.seed,
            "faults": self.faults,
            "fault_rate": self.fault_rate if self.plan else None,
            "max_concurrency": self.cap,
            "started_at": started_at,
            "ended_at": self.core.utc_stamp(),
            "wall_time_ms": wall_ms,
            "interrupted": self._interrupt.is_set(),
            "preparation": self.preparation.facts(),
        }
        self._emit("run_finished")
        if keyboard is not None:
            execution["keyboard_interrupt"] = True
        return self.results, execution

    # ---- the loop -----------------------------------------------------------------

    def _loop(self) -> None:
        scheduler = self.scheduler
        on_inline = self._inline_finished if self.on_event is not None else \
            self.journal.row_sink if self.journal is not None else None
        flow = self.flow
        while not scheduler.finished and not self._interrupt.is_set():
            scheduler.run_inline(self.statistics, on_inline)
            if self._interrupt.is_set():
                break       # stopped during the drain: no task is handed out after it
            if flow is not None and flow.poll():
                continue
            now = time.monotonic()
            self._start_due_retries(now)
            free = self.cap - len(self.running)
            if free > 0 and not self.journal_started and scheduler.ready_count:
                self._await_journal_start()
                if self._interrupt.is_set():
                    break   # stopped meanwhile (SIGTERM, a cancel): none is handed out, all are cancelled
            while free > 0:
                # A reused task handed out ends at once and may ready others: taken in this
                # round, never after a wait.
                taken = scheduler.take(free)
                if not taken:
                    break
                for index in taken:
                    self._start_attempt(index)
                free = self.cap - len(self.running)
            if scheduler.finished:
                break
            if not self.running and scheduler.ready_count:
                continue        # ready tasks made by control flow while this loop went round
            if not self.running and not self.retries and scheduler.ready_count == 0:
                # Nothing in flight and nothing ready: only inline work can remain.
                if scheduler.run_inline(self.statistics, on_inline) == 0 and not (flow is not None and flow.poll()):
                    raise RuntimeError("scheduler stalled with unfinished tasks")  # a bug, not bad input
                continue
            self._wait(self._next_wake(now))

    def _next_wake(self, now: float) -> float | None:
        times = [a.deadline for a in self.running.values()]
        if len(self.running) < self.cap:       # a due retry cannot start while the cap is reached
            times += [due for due, _ in self.retries]
        if not times:
            return None
        return max(0.0, min(times) - now)

    def _hand_over(self) -> None:
        """Starts the async attempts begun since the last wait on the run's event loop."""
        if self._async_starts:
            starts, self._async_starts = self._async_starts, []
            self.event_loop.start_many(starts)

    def _wait(self, timeout: float | None) -> None:
        self._hand_over()
        try:
            item = self.completions.get(timeout=MAX_WAIT_SECONDS if timeout is None else min(timeout, MAX_WAIT_SECONDS))
        except queue.Empty:
            item = None
        while item is not None:
            if type(item) is list:
                for report in item:
                    self._attempt_reported(*report)
            elif item is not _WAKE:
                self._attempt_reported(*item)
            try:
                item = self.completions.get_nowait()
            except queue.Empty:
                item = None
        self._expire(time.monotonic())

    def _expire(self, now: float) -> None:
        for token, attempt in list(self.running.items()):
            if attempt.deadline <= now:
                del self.running[token]
                attempt.cancellation.cancel()
                elapsed = now - attempt.started
                limit = attempt.deadline - attempt.started
                stalled = attempt.fault is not None and attempt.fault.kind == "timeout"
                error = f"timed out after {limit:g} s" + (" (chaos: injected stall)" if stalled else "")
                self._attempt_ended(attempt, "timeout", None, error, elapsed, retryable=True)

    # ---- attempts -----------------------------------------------------------------

    def _client(self):
        with self._client_lock:
            if self._ai_client is None:
                if self.preparation.ai_client_error is not None:
                    raise ConfigurationError(self.preparation.ai_client_error)
                from runner.ai import client_from_environment
                self._ai_client = client_from_environment(*(() if self.environ is None else (self.environ,)))
            return self._ai_client

    def _dependencies(self, task) -> dict:
        out = {}
        flow = self.flow
        for dep_id in task.dependencies:
            result = self.results.get(dep_id)
            # A generic task's output made for this reader alone: what a handler changes in
            # it reaches no record (other results' outputs are handed over as they are).
            output = result.transient_output() if flow is None else flow.output_of(dep_id, result)
            out[dep_id] = {"status": result.status, "output": output, "error": result.error}
        return out

    def _await_journal_start(self) -> None:
        """The first attempt that may have an effect outside the record waits for the journal's
        start to be on disk (Journal.start): a crash after its effect finds the run and resumes
        it. Inline tasks and reused results did not wait. The loop waits before it hands any
        task out, so a stop that arrives meanwhile leaves them all to be cancelled."""
        if self.journal is not None:
            self.journal.wait_started()
        self.journal_started = True

    def _start_attempt(self, index: int) -> None:
        if index in self.settled:
            self._reused_reached(index)
            return
        if index in self.reuse:
            # A control-flow carrier replays its construct (replays() is True); the task
            # itself never runs again.
            if self.flow is None or not self.flow.replays(index):
                self._record_reused(index)
            return
        if self._interrupt.is_set():
            # Stopped while a round of tasks (or due retries) was handed out: the rest of the
            # round never starts (a SIGTERM is a promise that no new effect begins).
            self._finish(index, "cancelled", None, "the run was interrupted before the task started", final=True)
            return
        if not self.journal_started:
            self._await_journal_start()     # the loop waited before handing tasks out; others here
        if self.flow is not None and index in self.flow.special and self.flow.intercept(index):
            return
        task = self.tasks[index]
        state = self.states.setdefault(index, _TaskState())
        number = len(state.attempts) + 1
        now = time.monotonic()
        stamp = self.core.utc_stamp()
        if state.first_started is None:
            state.first_started, state.first_started_at = now, stamp
        timeout = float(task.timeout_seconds) if task.timeout_seconds is not None else self.settings.default_timeout
        deadline = now + timeout
        fault = self.plan.fault_for(task.id, number) if self.plan is not None else None
        if fault is not None:
            self.faults.append({"task_id": task.id, "attempt": number, "kind": fault.kind, "detail": fault.detail})
            if fault.kind == "timeout":
                deadline = min(deadline, now + fault.delay)
        cancellation = Cancellation()
        parameters = task.parameters        # the attempt's own copy (each read makes one)
        ctx = AttemptContext(
            task=task, alt=self.alt, parameters=parameters, number=number, deadline=deadline,
            mode=self.mode, workspace=self.workspace, dependencies=self._dependencies(task),
            settings=self.settings, cancellation=cancellation, ai_client_factory=self._client,
            preparation=self.preparation, seed=self.seed, trace=self.trace,
            stream=self.stream,
            on_process=self._process_recorder(task.id, number) if self.journal is not None else None,
            on_worker=self._worker_recorder(task.id, number) if self._placed(task.task_type) else None,
            on_text=self._text_sink(task.id) if self.stream or parameters.get("stream") is True else None)
        self._token += 1
        attempt = _Attempt(index, number, now, stamp, deadline, timeout, cancellation, ctx, fault)
        self.running[self._token] = attempt
        kind = self._kind(task.task_type)
        with self._attempts_lock:
            self._attempts_live += 1
        if kind is not None and kind.is_async and not self._placed(task.task_type):
            if self.event_loop is None:
                from runner.execution.event_loop import RunLoop
                self.event_loop = RunLoop()
            # Handed to the loop in one call per wait (_hand_over): a wake-up of the loop's
            # thread per attempt cost more than the attempt itself.
            # Counted as ended when its asyncio task is done (RunLoop.start_many), not in the
            # coroutine's own `finally`, which a task cancelled before its first step never runs.
            self._async_starts.append((self._work_async(self._token, attempt, kind.handler()), cancellation,
                                       self._attempt_thread_ended))
        else:
            if self.pool is None:
                self.pool = WorkerPool()
            self.pool.submit(self._work, self._token, attempt)
        if self.journal is not None:
            self.journal.write({"type": "attempt_started", "task_id": task.id, "attempt": number, "started_at": stamp,
                                "fault": self.faults[-1] if fault is not None else None})
        if self._debug:
            log.debug("task %s: attempt %d started", task.id, number, extra={"alt_id": self.alt.id})
        if self.on_event is not None:
            self._emit("task_started", task.id, attempt=number)

    def _kind(self, name: str):
        """The TaskType of `name` for this run (None: unknown), looked up once per run."""
        try:
            return self.kinds[name]
        except KeyError:
            try:
                kind = task_types.lookup(name, self.handlers)
            except task_types.TaskTypeError as error:     # a plugin that cannot be loaded
                self.kind_errors[name] = str(error)
                kind = None
            self.kinds[name] = kind
            return kind

    def user_type_facts(self) -> dict:
        """The user's task types this run uses, as its journal records them (resume keys)."""
        return task_types.code_facts(self._types_at_start(), self.handlers)

    def _types_at_start(self) -> set:
        """The task types of the run's tasks before it starts, found once (by the core: a
        pass over 100k tasks in Python took ~10 ms) for the journal's first record and the
        preparation."""
        if self._start_types is None:
            self._start_types = self.alt.task_types()
        return self._start_types

    def _placed(self, name: str) -> bool:
        return self.placement is not None and name in self.placement.task_types

    def _unknown_type(self, name: str) -> TaskFailure:
        message = self.kind_errors.get(name) or task_types.unknown_type_message(name, self.handlers)
        return TaskFailure(message, permanent=True)

    async def _work_async(self, token: int, attempt: _Attempt, handler) -> None:
        """Runs on the run's event loop: an async handler, after any injected fault."""
        import asyncio
        ctx = attempt.ctx
        try:
            fault = attempt.fault
            if fault is not None:
                if fault.kind == "failure":
                    raise TaskFailure(f"chaos: {fault.detail}")
                if fault.kind in ("latency", "timeout"):
                    # A timeout fault stalls until the loop gives up on the attempt (which cancels this).
                    await asyncio.sleep(fault.delay if fault.kind == "latency" else 1e9)
            output = await handler(ctx)
        except asyncio.CancelledError:
            self._async_report((token, "failed", None, TaskFailure("cancelled")))
        except TaskFailure as failure:
            self._async_report((token, "failed", None, failure))
        except BaseException as error:     # a handler's bug (SystemExit, KeyboardInterrupt... too:
            # raised by a handler they are its failure, and would stop the run's event loop)
            log.debug("task %s raised", ctx.task.id, exc_info=True)
            self._async_report((token, "failed", None, TaskFailure(f"{type(error).__name__}: {error}")))
        else:
            self._async_report((token, "completed", output, None))

    def _async_report(self, report: tuple) -> None:
        """On the event loop: the reports of one turn of the loop reach the executor as one
        list (one wake-up of its thread for hundreds of attempts that end together)."""
        if not self._async_reports:
            self.event_loop.loop.call_soon(self._send_async_reports)
        self._async_reports.append(report)

    def _send_async_reports(self) -> None:
        reports, self._async_reports = self._async_reports, []
        self.completions.put(reports)

    def _work(self, token: int, attempt: _Attempt) -> None:
        """Runs on a worker thread: the handler, after any injected fault."""
        ctx = attempt.ctx
        kind = self._kind(ctx.task.task_type)
        try:
            fault = attempt.fault
            if fault is not None:
                if fault.kind == "failure":
                    raise TaskFailure(f"chaos: {fault.detail}")
                if fault.kind in ("latency", "timeout"):
                    # A timeout fault stalls until the loop gives up on the attempt.
                    ctx.cancel.wait(fault.delay if fault.kind == "latency" else None)
                    if ctx.cancel.is_set():
                        raise TaskFailure("cancelled")
            if kind is None:
                raise self._unknown_type(ctx.task.task_type)
            if self._placed(ctx.task.task_type):
                output = self.placement.run(ctx)
            else:
                output = kind.handler()(ctx)
        except TaskFailure as failure:
            self.completions.put((token, "failed", None, failure))
        except BaseException as error:     # a handler's bug or an unexpected OS error: may pass.
            # SystemExit, KeyboardInterrupt... raised by a handler on a worker thread are its
            # failure too (Ctrl-C reaches the main thread, not this one): else never reported.
            log.debug("task %s raised", ctx.task.id, exc_info=True)
            self.completions.put((token, "failed", None, TaskFailure(f"{type(error).__name__}: {error}")))
        else:
            self.completions.put((token, "completed", output, None))
        finally:
            self._attempt_thread_ended()

    def _attempt_reported(self, token: int, outcome: str, output, failure: TaskFailure | None) -> None:
        attempt = self.running.pop(token, None)
        if attempt is None:
            return          # already timed out or cancelled: the late report is ignored
        elapsed = time.monotonic() - attempt.started
        if outcome == "completed":
            self._attempt_ended(attempt, "completed", output, None, elapsed)
        elif isinstance(failure, AttemptTimeout):
            self._attempt_ended(attempt, "timeout", None, str(failure), elapsed, retryable=True)
        else:
            self._attempt_ended(attempt, "failed", None, str(failure), elapsed,
                                retryable=not failure.permanent, retry_after=failure.retry_after)

    def _attempt_ended(self, attempt: _Attempt, outcome: str, output, error: str | None, elapsed: float,
                       retryable: bool = False, retry_after: float | None = None, final: bool = False) -> None:
        index = attempt.index
        task = self.tasks[index]
        state = self.states[index]
        error = _escape_surrogates(error)
        metadata = attempt.ctx.metadata
        if metadata or not _plainly_recordable(output):
            # Where the attempt's result is made: what the journal and the LAST file could not
            # encode (a sum beyond 2^53, a token count of -1 from a service) fails this task,
            # named, before any writer sees it.
            refusal = self._unrecordable(task, output, metadata)
            if refusal is not None:
                metadata = {}
                if outcome == "completed":
                    outcome, output, error, retryable = "failed", None, refusal, False
                else:
                    error = f"{error}; {refusal}" if error else refusal
        state.attempts.append({
            "number": attempt.number, "started_at": attempt.started_at, "duration_ms": elapsed * 1000.0,
            # started_at is a whole millisecond; the timeline of a fast run needs the exact
            # start, on the run's own clock (ms since it started).
            "offset_ms": (attempt.started - self.started) * 1000.0,
            "outcome": outcome, "error": error,
            "fault": attempt.fault.kind if attempt.fault is not None else None,
        })
        state.metadata.update(metadata)
        if self.journal is not None:
            self.journal.write({"type": "attempt_ended", "task_id": task.id, "attempt": attempt.number,
                                "outcome": outcome, "error": error, "duration_ms": elapsed * 1000.0,
                                "ai": _ai_accounting(metadata.get("ai"))})
        budget = task.retry_count or 0
        if (outcome in ("failed", "timeout") and retryable and not final and not self._interrupt.is_set()
                and attempt.number <= budget):
            if retry_after is not None and retry_after > self.settings.retry_max:
                # A server may ask for any wait (a day, a date years ahead): honouring it would
                # stall the run, so the task fails now and says why.
                error = (f"{error}; not retried: the server asked to wait {retry_after:g} s, longer than "
                         f"RUNNER_RETRY_MAX_SECONDS ({self.settings.retry_max:g} s)")
                self._finish(index, outcome, output, error)
                return
            delay = self.retry_delay(attempt.number, retry_after)
            self.retries.append((time.monotonic() + delay, index))
            self._emit("task_retrying", task.id, attempt=attempt.number, status=outcome, error=error, delay=delay)
            return
        self._finish(index, outcome, output, error)

    def _unrecordable(self, task, output, metadata: dict) -> str | None:
        """Why the task result holding this output and metadata could not be recorded (the
        core's checks of every task result: token counts, integers within +-(2^53-1), JSON
        values only, depth), as the task's error; None when it can be."""
        try:
            self.core.task_result_from_dict({"task_id": task.id, "status": "completed", "output": output,
                                             "metadata": metadata}, self.alt)
        except self.core.TaskResultError as refused:
            return _escape_surrogates(f"the task's result cannot be recorded: {refused}")
        return None

    def retry_delay(self, number: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(max, base * 2**(n-1))];
        never sooner than the server's retry_after (which _attempt_ended has checked is
        within RUNNER_RETRY_MAX_SECONDS)."""
        ceiling = min(self.settings.retry_max, self.settings.retry_base * (2 ** (number - 1)))
        delay = self.jitter.uniform(0.0, ceiling)
        if retry_after is not None and retry_after > delay:
            delay = retry_after
        return delay

    def _start_due_retries(self, now: float) -> None:
        if not self.retries:
            return
        due = sorted((r for r in self.retries if r[0] <= now), key=lambda r: r[0])
        for item in due:
            if len(self.running) >= self.cap:
                break
            self.retries.remove(item)
            self._start_attempt(item[1])

    # ---- results ------------------------------------------------------------------

    def _finish(self, index: int, status: str, output, error: str | None, *, final: bool = False,
                control: dict | None = None) -> None:
        flow = self.flow
        if flow is not None and not final:
            if status == "completed" and flow.has_construct(index):
                task = self.tasks[index]
                if self.journal is not None and task.task_type in SIDE_EFFECT_TYPES:
                    # The segment's own command or file operation is done; its result waits for
                    # the construct. Journaled now, so a resume replays the construct from this
                    # output instead of doing the effect again (a kill or a failed body since).
                    self.journal.write({"type": "segment_completed", "task_id": task.id, "output": output})
                    self.journal.hurry()
                    self.segment_outputs[index] = output
                if flow.begin(index, output):
                    return      # the construct runs; finish_construct ends the task
            elif status != "completed":
                flow.carrier_unsuccessful(index)
        task = self.tasks[index]
        state = self.states.get(index) or _TaskState()
        now = time.monotonic()
        metadata = {"task_type": task.task_type, **state.metadata}
        if task.control is not None or control is not None:
            metadata["control"] = {**(task.control or {}), **(control or {})}
        if state.attempts:
            metadata["attempts"] = state.attempts
        doc = {
            "task_id": task.id, "status": status, "output": output, "error": error,
            "started_at": state.first_started_at, "completed_at": self.core.utc_stamp(),
            "duration_ms": (now - state.first_started) * 1000.0 if state.first_started is not None else 0.0,
            "metadata": metadata,
        }
        if state.first_started_at is None:
            del doc["started_at"]
        try:
            result = self.core.task_result_from_dict(doc, self.alt)
        except self.core.TaskResultError as refused:
            # Checked at each attempt's end already; kept for what _finish itself adds. The
            # task failed, and its result keeps only what the executor made.
            status, error = "failed", _escape_surrogates(f"the task's result cannot be recorded: {refused}")
            doc.update(status=status, output=None, error=error,
                       metadata={"task_type": task.task_type,
                                 **({"attempts": state.attempts} if state.attempts else {})})
            result = self.core.task_result_from_dict(doc, self.alt)
        self._record(index, result)
        if self.journal is not None:
            self.journal.write_result(result)
            if task.task_type in SIDE_EFFECT_TYPES:
                self.journal.hurry()        # its effect happened: its record follows at once
        skipped = self.scheduler.complete(index, status == "completed")
        if self._debug:
            log.debug("task %s: %s after %d attempt%s%s", task.id, status, len(state.attempts),
                      "" if len(state.attempts) == 1 else "s", f": {error}" if error else "",
                      extra={"alt_id": self.alt.id})
        if self.on_event is not None:
            self._emit_finished(result, attempt=len(state.attempts))
        for w in skipped:
            self._record_skipped(w)

    # ---- control flow (runner/execution/control.py) -------------------------------------

    def finish_construct(self, index: int, status: str, output, error: str | None, control: dict | None) -> None:
        """A carrier's construct has ended: the carrier ends with its outcome."""
        self.segment_outputs.pop(index, None)
        self._finish(index, status, output, error, final=True, control=control)

    def finish_reused_carrier(self, index: int, result) -> None:
        """Resume: a carrier whose earlier result completed starts its construct again from
        that output (its instances are reused as they are made again)."""
        state = self.states.setdefault(index, _TaskState())
        state.first_started, state.first_started_at = time.monotonic(), result.started_at
        self._finish(index, "completed", result.output, None)

    def fail_by_control(self, index: int, error: str) -> None:
        """A condition or a name could not be evaluated for a task about to start: it fails."""
        self._finish(index, "failed", None, _escape_surrogates(error), final=True)

    def skip_by_condition(self, index: int, reason: str) -> None:
        """A task about to start is skipped by a condition; its dependants are skipped too."""
        self._record_skipped(index, reason, by_condition=True)
        self.flow.carrier_unsuccessful(index)
        for w in self.scheduler.complete(index, False):
            self._record_skipped(w)

    def drop_held(self, index: int, reason: str, by_condition: bool = False) -> None:
        """A held body task that will never run (its branch was not taken, its owner failed)."""
        if not self.scheduler.is_waiting(index):
            return
        skipped = self.scheduler.drop(index)
        self._record_skipped(index, reason, by_condition)
        if self.flow is not None:
            self.flow.carrier_unsuccessful(index)
        for w in skipped:
            self._record_skipped(w)

    def _record_skipped(self, index: int, reason: str | None = None, by_condition: bool = False) -> None:
        if index in self.settled:
            return          # its side effect happened in an earlier run: it stays reused
        task = self.tasks[index]
        if reason is None:
            cause = self.tasks[self.scheduler.cause_of(index)]
            # Through reused tasks (which stay completed) to the one that did not succeed.
            while cause.index in self.settled and self.scheduler.cause_of(cause.index) is not None:
                cause = self.tasks[self.scheduler.cause_of(cause.index)]
            cause_result = self.results[cause.id]
            reason = f"dependency '{cause.id}' {UNSUCCESSFUL_WORDS.get(cause_result.status, 'did not complete')}"
            by_condition = cause_result.metadata.get("skipped_by_condition") is True
            if self.flow is not None:
                self.flow.carrier_unsuccessful(index)
        stamp = self.core.utc_stamp()
        metadata = {"task_type": task.task_type, "skipped_reason": reason}
        if by_condition and self.flow is not None:
            # Control flow chose not to run it (a condition, a branch, through dependencies):
            # the run went as written (RunOutcome.all_completed).
            metadata["skipped_by_condition"] = True
        if task.control is not None:
            metadata["control"] = task.control
        result = self.core.task_result_from_dict({
            "task_id": task.id, "status": "skipped", "output": None, "error": reason,
            "completed_at": stamp, "duration_ms": 0.0,
            "metadata": metadata,
        }, self.alt)
        self._record(index, result)
        if self.journal is not None:
            self.journal.write_result(result)
        self._emit_finished(result, status="skipped")

    def _record_cancelled(self, index: int, reason: str) -> None:
        if index in self.settled:
            return          # recorded as reused at the start: an interruption changes nothing
        if index in self.reuse and self.tasks[index].id in self.recorded_at_start:
            self._keep_reused(index, self.reuse.pop(index))     # a control-flow run's, not reached
            return
        task = self.tasks[index]
        state = self.states.get(index)
        result = self.core.task_result_from_dict({
            "task_id": task.id, "status": "cancelled", "output": None, "error": reason,
            "completed_at": self.core.utc_stamp(), "duration_ms": 0.0,
            "metadata": {"task_type": task.task_type,
                         **({"attempts": state.attempts} if state and state.attempts else {})},
        }, self.alt)
        self._record(index, result)
        if self.journal is not None:
            self.journal.write_result(result)
        self._emit_finished(result)

    def _wind_down(self) -> None:
        """Interruption: pending tasks cancelled; running ones get the grace period, then are cancelled."""
        self._hand_over()
        for index in self.scheduler.cancel_pending():
            self._record_cancelled(index, "the run was interrupted before the task started")
        for _, index in self.retries:
            self._finish(index, "cancelled", None, "the run was interrupted while the task waited to retry")
        self.retries.clear()
        deadline = time.monotonic() + self.settings.grace_seconds
        while self.running:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = self.completions.get(timeout=min(remaining, max(0.0, min(
                    a.deadline for a in self.running.values()) - time.monotonic())))
            except queue.Empty:
                self._expire(time.monotonic())
                continue
            except KeyboardInterrupt:
                break           # a second Ctrl-C: no more grace
            if type(item) is list:
                for report in item:
                    self._attempt_reported(*report)
            elif item is not _WAKE:
                self._attempt_reported(*item)
        now = time.monotonic()
        for token, attempt in list(self.running.items()):
            del self.running[token]
            attempt.cancellation.cancel()
            self._attempt_ended(attempt, "cancelled", None,
                                "the run was interrupted and the grace period ended",
                                now - attempt.started, final=True)
        # Tasks that finished in the grace period may have readied dependents: they never start.
        for index in self.scheduler.cancel_pending():
            self._record_cancelled(index, "the run was interrupted before the task started")
        if self.flow is not None:
            # Constructs under way (their segment's own task done, their body not): cancelled,
            # but for a resume's reused segment, whose earlier result stands (its own task ran).
            kept = False
            for index in self.flow.under_way():
                earlier = self.flow.earlier.get(self.tasks[index].id)
                if not isinstance(earlier, dict) and earlier is not None and \
                        earlier.task_id in self.recorded_at_start:
                    self.scheduler.complete(index, True)
                    self._keep_reused(index, earlier)
                    kept = True
                    continue
                if index in self.segment_outputs:
                    # Its own effect happened: said in the LAST file too, for a resume when the
                    # journal lost the segment_completed record (a disk that refused it).
                    self.states.setdefault(index, _TaskState()).metadata["segment_completed"] = \
                        {"output": self.segment_outputs[index]}
                self._finish(index, "cancelled", None, "the run was interrupted while its construct ran",
                             final=True)
            for index in self.scheduler.cancel_pending() if kept else ():
                self._record_cancelled(index, "the run was interrupted before the task started")

    # ---- progress -----------------------------------------------------------------

    def _process_recorder(self, task_id: str, number: int):
        """What an attempt calls with the process group of a command it started: a journal
        line, so that after kill -9 `resume`, `show` and the next run know it may still run."""
        journal = self.journal
        if journal is None:
            return None

        def started(pgid: int, start_ticks: int | None) -> None:
            journal.write({"type": processes.RECORD_TYPE, "task_id": task_id, "attempt": number,
                           **processes.started(pgid, start_ticks)})
            journal.hurry()
        return started

    def _worker_recorder(self, task_id: str, number: int):
        """What an attempt placed on a Dask cluster calls with the worker it started on: a
        journal line, so that `show` of a dead run names where its attempts were running."""
        journal = self.journal
        if journal is None:
            return None

        def started(address: str) -> None:
            journal.write({"type": processes.WORKER_RECORD_TYPE, "task_id": task_id, "attempt": number,
                           "worker": str(address)})
        return started

    def _record_settled(self) -> None:
        """Resume: the results an earlier run made stand from the start, before any task runs,
        whatever happens later (an interruption, a re-run dependency that now fails): the
        journal holds them already (its first lines, Journal.start), and so does the record."""
        for index in sorted(self.settled):
            result = self.reuse[index]
            self._record(index, result)
            self._emit_finished(result, reused=True)

    def _reused_reached(self, index: int) -> None:
        """A reused task whose dependencies have ended: its dependents may start (its result
        was recorded at the start)."""
        for w in self.scheduler.complete(index, self.reuse[index].status == "completed"):
            self._record_skipped(w)

    def reused_at_start(self) -> tuple[list, list]:
        """What a resume records in its journal's first lines, before any task runs: the
        earlier results it reuses (TaskResults), and for a control-flow run the completed
        results of the instances its loops and calls will make again (result dicts: they are
        not tasks yet). Whatever happens later, no later resume runs them again."""
        if self.flow is None:
            results, documents = [self.reuse[index] for index in sorted(self.settled)], []
        else:
            results, documents = self.flow.reused_at_start()
        self.recorded_at_start = {r.task_id for r in results} | {d["task_id"] for d in documents}
        return results, documents

    def _keep_reused(self, index: int, result) -> None:
        """An interrupted control-flow resume: a reused result recorded at the start stays what
        the run records of its task (not cancelled: its work was done)."""
        self._record(index, result)
        self._emit_finished(result, reused=True)

    def _record_reused(self, index: int) -> None:
        """Resume of a control-flow run: the task's result from an earlier run stands; the
        task does not run. Its journal holds it from its first lines."""
        result = self.reuse[index]
        self._record(index, result)
        if self.journal is not None and result.task_id not in self.recorded_at_start:
            self.journal.write_result(result)
        skipped = self.scheduler.complete(index, result.status == "completed")
        self._emit_finished(result, reused=True)
        for w in skipped:
            self._record_skipped(w)

    def _inline_finished(self, index: int, result) -> None:
        if self.journal is not None:
            self.journal.row_sink.add(result)
        self._emit_finished(result, attempt=1)

    def _text_sink(self, task_id: str):
        def sink(text: str, sample: int | None = None) -> None:
            if sample is None:
                self._emit("task_output", task_id, text=text)
            else:       # explore mode: the answer of sample N (from 1)
                self._emit("task_output", task_id, text=text, sample=sample)
        return sink

    def _emit_finished(self, result, **details) -> None:
        """task_finished, with what the LAST file records of the task: its attempts (each
        with started_at and duration_ms) and AI accounting, for listeners such as traces."""
        if self.on_event is None:
            return
        # Transient: an inline result's output and metadata are made for the event, not kept.
        metadata = result.transient_metadata() or {}
        details.setdefault("status", result.status)
        self._emit("task_finished", result.task_id, error=result.error, task_type=metadata.get("task_type"),
                   attempts=metadata.get("attempts"), ai=metadata.get("ai"), output=result.transient_output(),
                   completed_at=result.completed_at, **details)

    def _emit(self, kind: str, task_id: str | None = None, **details) -> None:
        if self.on_event is None:
            return
        counts = self.statistics.progress_counts()
        done = sum(counts.values())
        event = {"event": kind, "task_id": task_id, **details,
                 "total": len(self.tasks), "done": done, "running": len(self.running),
                 "failed": counts["failed"] + counts["timeout"] + counts["cancelled"], "skipped": counts["skipped"],
                 "counts": counts, "elapsed_s": time.monotonic() - self.started}
        try:
            self.on_event(event)
        except Exception:       # a progress listener must never break the run
            log.debug("progress listener raised", exc_info=True)


def _plainly_recordable(output) -> bool:
    """An output the core's checks of a task result always accept (None, a bool, a float, an
    ASCII string, an integer within +-(2^53-1)): no result needs building to see it."""
    kind = type(output)
    if output is None or kind is bool or kind is float:
        return True
    if kind is int:
        return -_MAX_SAFE_INTEGER <= output <= _MAX_SAFE_INTEGER
    return kind is str and output.isascii()


def _escape_surrogates(text: str | None) -> str | None:
    """An error text the journal and the LAST file can write: a lone surrogate (a file name
    that is not UTF-8, in an OSError) becomes a backslash escape."""
    if text is None or text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _ai_accounting(ai) -> dict | None:
    """What an attempt's AI calls cost, for the journal (no texts)."""
    if not isinstance(ai, dict):
        return None
    return {k: ai.get(k) for k in ("provider", "model", "prompt_tokens", "completion_tokens", "latency_ms")}


def default_workspace() -> Path:
    return Path(tempfile.mkdtemp(prefix="runner-workspace-"))
