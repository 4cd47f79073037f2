"""What several benchmarks share: the best of repeated timings, each after a full collection
(so one round's garbage is not paid for by the next)."""
from __future__ import annotations

import gc
import time


def best_of(repeat: int, function) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)
