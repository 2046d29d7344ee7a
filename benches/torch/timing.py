"""The timing loop of the benchmark scripts, the twin of `per_iteration_us` in
benches/src/lib.rs, so that both libraries are timed alike."""

import statistics
import time

WARM_UP_S = 0.1
BATCH_S = 0.05
BATCHES = 7


def per_iteration_us(f):
    """The median µs per call of f over BATCHES batches, after a warm-up."""
    # The warm-up also tells how many iterations fill a batch.
    n = 0
    start = time.perf_counter()
    while n < 3 or time.perf_counter() - start < WARM_UP_S:
        f()
        n += 1
    iters = max(1, round(BATCH_S / ((time.perf_counter() - start) / n)))
    times = []
    for _ in range(BATCHES):
        start = time.perf_counter()
        for _ in range(iters):
            f()
        times.append((time.perf_counter() - start) / iters)
    return statistics.median(times) * 1e6
