"""Summaries of repeated measurements, as plain dicts for the JSON.

Two shapes:
- ``latency(samples)``: one distribution of many samples (a round trip
  timed thousands of times): ``n, min, p10, p50, p90, p99, max``.
- ``spread(values)``: a figure measured once per round over a few rounds:
  ``median`` with ``min``, ``max`` and every value, so the spread shows.
"""

import statistics
import time


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list (p in 0..100)."""
    rank = int(p / 100.0 * len(sorted_values))
    return sorted_values[min(rank, len(sorted_values) - 1)]


def latency(samples):
    """Distribution summary of ``samples`` (any unit, kept as given)."""
    values = sorted(samples)
    if not values:
        raise ValueError("no samples")
    summary = {"n": len(values), "min": values[0]}
    for p in (10, 50, 90, 99):
        summary[f"p{p}"] = percentile(values, p)
    summary["max"] = values[-1]
    return {key: round(value, 3) if isinstance(value, float) else value
            for key, value in summary.items()}


def spread(values):
    """Median of per-round ``values`` with their min, max and the values."""
    values = list(values)
    if not values:
        raise ValueError("no values")
    return {"median": round(statistics.median(values), 3),
            "min": round(min(values), 3), "max": round(max(values), 3),
            "values": [round(v, 3) for v in values]}


def time_calls(call, count, warmup=0):
    """Time ``count`` calls of ``call()`` one after another; microseconds."""
    for _ in range(warmup):
        call()
    clock = time.perf_counter
    samples = []
    for _ in range(count):
        start = clock()
        call()
        samples.append((clock() - start) * 1e6)
    return samples
