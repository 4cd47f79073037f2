"""What several benchmarks share: the best or the median of repeated timings, each after a
full collection (so one round's garbage is not paid for by the next)."""
from __future__ import annotations

import gc
import statistics
import time


def best_of(repeat: int, function) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def median_time(function, repeat: int) -> float:
    """Median wall time; what the function returns is freed outside the timed part."""
    times = []
    for _ in range(repeat):
        gc.collect()
        begin = time.perf_counter()
        kept = function()
        times.append(time.perf_counter() - begin)
        del kept
    return statistics.median(times)
