"""The run's event loop: where `async def` task handlers run, thousands in flight on one thread.

Made for a run's first async attempt and closed at its end. The executor's loop stays on
its own thread (it waits on the completion queue, as for threaded attempts); attempts
reach this loop with call_soon_threadsafe. At an attempt's deadline its Cancellation
cancels the coroutine's asyncio task, so an awaiting handler stops there.
"""
from __future__ import annotations

import asyncio
import logging
import threading

log = logging.getLogger("runner")


class RunLoop:
    def __init__(self, name: str = "runner-async"):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            # Attempts abandoned at the end of the run: cancelled, given one turn to unwind.
            # Run even when none is: the done callbacks of the tasks that ended in the loop's
            # last turn (start_many's `ended`) are still queued.
            pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(_unwind(pending))
            self.loop.close()

    def start_many(self, starts: list) -> None:
        """Runs each (coroutine, cancellation, ended) of `starts` on the loop, with one wake-up
        of its thread; cancellation.cancel() cancels its coroutine (from any thread); ended()
        is called on the loop once its task is done, whether its coroutine ran or not (a task
        cancelled before its first step, as the loop's close cancels those it never started,
        ends without running any of its code, a `finally` included)."""
        def begin():
            for coroutine, cancellation, ended in starts:
                task = self.loop.create_task(coroutine)
                task.add_done_callback(lambda _task, ended=ended: ended())
                cancellation.on_cancel(lambda task=task: self.loop.call_soon_threadsafe(task.cancel))
        try:
            self.loop.call_soon_threadsafe(begin)
        except RuntimeError:        # closed: none of them will run, each has ended
            for coroutine, _cancellation, ended in starts:
                coroutine.close()
                ended()

    def close(self) -> None:
        """Stops the loop once what is queued ran; does not wait for it. Starts are handed to
        the loop before its close (start_many after it: those the closed loop refuses end at
        once, unrun)."""
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:        # closed already
            pass


async def _unwind(tasks: list) -> None:
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
