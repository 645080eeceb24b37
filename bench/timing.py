"""Timing helpers shared by the benchmarks: best-of runs, and two functions run alternately so
that noise from other processes on a shared machine hits both alike."""

import time


def best(fn, repeat: int = 3) -> float:
    """Best wall time of `repeat` runs (the one least disturbed by other processes)."""
    return interleaved(fn, lambda: None, repeat)[0]


def interleaved(a, b, repeat: int = 5) -> tuple[float, float]:
    """Best time of each of a and b, run alternately `repeat` times."""
    ta, tb = [], []
    for _ in range(repeat):
        for fn, out in ((a, ta), (b, tb)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return min(ta), min(tb)
