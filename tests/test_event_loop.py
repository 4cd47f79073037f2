"""The run's event loop counts every async attempt it was given as ended, whether its coroutine
ran or not: the executor removes the run's temporary workspace once no attempt works in it
(Execution.after_attempts), and an attempt never counted kept it for ever."""
from __future__ import annotations

import asyncio
import threading

import pytest

from conftest import wait_until
from runner.execution import execute
from runner.execution.attempt import Cancellation
from runner.execution.event_loop import RunLoop


def held(run_loop: RunLoop) -> threading.Event:
    """Holds the loop's thread in one callback until the returned Event is set, so that what
    is handed to it meanwhile runs in its next turns, in order."""
    entered, gate = threading.Event(), threading.Event()

    def hold():
        entered.set()
        gate.wait(30)

    run_loop.loop.call_soon_threadsafe(hold)
    assert entered.wait(30)
    return gate


def test_an_attempt_the_loop_closes_before_its_first_step_is_counted_as_ended():
    run_loop = RunLoop()
    ran, ended = [], []

    async def attempt():
        try:
            ran.append("body")
        finally:
            ran.append("finally")

    gate = held(run_loop)
    run_loop.start_many([(attempt(), Cancellation(), lambda: ended.append("ended"))])
    run_loop.close()        # its stop comes in the turn that makes the attempt's task
    gate.set()
    run_loop._thread.join(30)
    assert ran == []        # cancelled before its first step: none of its code ran, its finally neither
    assert ended == ["ended"]


def test_an_attempt_that_ends_in_the_loops_last_turn_is_counted_as_ended():
    run_loop = RunLoop()
    ended = []

    async def attempt():
        return None

    gate = held(run_loop)
    run_loop.start_many([(attempt(), Cancellation(), lambda: ended.append("ended"))])
    # The stop comes in the turn of the attempt's only step: its done callback is left queued.
    run_loop.loop.call_soon_threadsafe(lambda: run_loop.loop.call_soon(run_loop.loop.stop))
    gate.set()
    run_loop._thread.join(30)
    assert ended == ["ended"]


def test_a_run_interrupted_as_its_async_attempts_start_removes_its_temporary_workspace():
    """An interrupted run without a journal (nothing to resume) removes its temporary workspace
    once its attempts have ended: those its loop never started too, which used to keep the
    count of live attempts above 0, and so the workspace, for ever (review 26: 6 of 12 trials)."""
    async def later(t):
        await asyncio.sleep(0.05)
        return t.parameters["n"]

    document = {"id": "async", "title": "async", "tasks": [
        {"id": f"t{i}", "description": "d", "parameters": {"task_type": "later", "n": i}} for i in range(50)]}
    for _ in range(10):
        made = {}

        def interrupt_at_first_start(event, made=made):
            if event.get("event") == "task_started" and "execution" in made:
                made["execution"].interrupt()

        outcome = execute(document, write=False, journal=False, max_concurrency=50, handlers={"later": later},
                          on_execution=lambda execution, made=made: made.update(execution=execution),
                          on_event=interrupt_at_first_start, environ={"RUNNER_GRACE_SECONDS": "0"})
        assert outcome.interrupted and not outcome.workspace_kept
        assert wait_until(lambda: not outcome.workspace.exists(), 5), outcome.workspace


def test_attempts_handed_to_a_closed_loop_end_at_once_unrun():
    ran, ended = [], []

    async def attempt():
        ran.append("body")

    run_loop = RunLoop()
    run_loop.close()
    run_loop._thread.join(30)
    assert run_loop.loop.is_closed()
    coroutine = attempt()
    run_loop.start_many([(coroutine, Cancellation(), lambda: ended.append("ended"))])
    assert ended == ["ended"] and ran == []
    assert coroutine.cr_frame is None       # closed: no "never awaited" warning at its collection


def test_attempts_begun_when_a_listener_stops_the_run_are_counted_as_ended():
    """A listener's BaseException (not an Exception, which the run ignores) ends the run
    between an attempt's start and its hand-over to the loop: given to the loop at its close,
    cancelled unstarted, and counted, so the temporary workspace still goes."""
    class Stop(BaseException):
        pass

    async def later(t):
        await asyncio.sleep(0.05)

    made, started = {}, []

    def stop_at_second_start(event):
        if event.get("event") == "task_started":
            started.append(event["task_id"])
            if len(started) == 2:
                raise Stop()

    document = {"id": "async", "title": "async", "tasks": [
        {"id": f"t{i}", "description": "d", "parameters": {"task_type": "later"}} for i in range(3)]}
    with pytest.raises(Stop):
        execute(document, write=False, journal=False, handlers={"later": later},
                on_execution=lambda execution: made.update(execution=execution), on_event=stop_at_second_start,
                environ={})
    execution = made["execution"]
    assert wait_until(lambda: execution._attempts_live == 0, 5), execution._attempts_live
    assert wait_until(lambda: not execution.workspace.exists(), 5)
