"""RunQueue: the runs waiting for a turn, by priority then arrival, and the threads that run them.

RUNNER_MAX_CONCURRENT_RUNS threads each take the first waiting run and call `work(run)`
(which runs it to its end through runner.execution); so no more runs go at once, however
many are accepted. A run taken out (cancelled while it waited) is skipped when it surfaces.
"""
from __future__ import annotations

import heapq
import threading
from typing import Callable


class QueueFull(Exception):
    pass


class RunQueue:
    def __init__(self, workers: int, capacity: int, work: Callable):
        self.capacity = capacity
        self._work = work
        self._heap: list = []
        self._removed: set = set()
        self._ready = threading.Condition()
        self._stopping = False
        self._busy = 0
        self._threads = [threading.Thread(target=self._serve, name=f"runner-service-run-{n}", daemon=True)
                         for n in range(workers)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    @property
    def depth(self) -> int:
        with self._ready:
            return len(self._heap) - len(self._removed)

    @property
    def busy(self) -> int:
        return self._busy

    def has_room(self) -> bool:
        return self.depth < self.capacity

    def push(self, run) -> None:
        """Queues `run` (ServiceRun: .rank, .id); the caller checked has_room() (a recovered run
        is queued whatever the room)."""
        with self._ready:
            heapq.heappush(self._heap, (run.rank, run.id, run))
            self._ready.notify()

    def remove(self, run) -> bool:
        """Takes a waiting run out; False when it is not waiting (it started, or never queued)."""
        with self._ready:
            if run.id in self._removed or not any(entry[2] is run for entry in self._heap):
                return False
            self._removed.add(run.id)
            return True

    def _take(self):
        with self._ready:
            while True:
                if self._stopping:
                    return None
                while self._heap:
                    _, run_id, run = heapq.heappop(self._heap)
                    if run_id in self._removed:
                        self._removed.discard(run_id)
                        continue
                    self._busy += 1
                    return run
                self._ready.wait()

    def _serve(self) -> None:
        while True:
            run = self._take()
            if run is None:
                return
            try:
                self._work(run)
            finally:
                with self._ready:
                    self._busy -= 1
                    self._ready.notify_all()

    def stop(self) -> None:
        """No run starts any more; the waiting ones stay queued (on disk) for the next start."""
        with self._ready:
            self._stopping = True
            self._ready.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Waits until no run is going; False if some still are after `timeout` seconds."""
        with self._ready:
            return self._ready.wait_for(lambda: self._busy == 0, timeout)
