"""The threads that run task attempts.

Unlike concurrent.futures.ThreadPoolExecutor this pool grows when no thread is idle: an
attempt abandoned at its deadline may keep its thread busy until its handler notices the
cancellation, and that must not take a slot from the tasks that start next. The
scheduler, not the pool, caps how many attempts are live.
"""
from __future__ import annotations

import queue
import threading


class WorkerPool:
    def __init__(self, name: str = "runner-task"):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads: list[threading.Thread] = []
        self._name = name
        self._closed = False

    def submit(self, function, *args) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is closed")
            if self._idle == 0:
                thread = threading.Thread(target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                self._idle += 1
                thread.start()
            self._idle -= 1
        self._jobs.put((function, args))

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            function, args = job
            try:
                function(*args)
            finally:
                with self._lock:
                    self._idle += 1

    def close(self) -> None:
        """Lets idle threads end; busy ones end after their job. Does not wait."""
        with self._lock:
            self._closed = True
            count = len(self._threads)
        for _ in range(count):
            self._jobs.put(None)
