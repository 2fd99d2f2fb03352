"""Systems taking turns, round by round, so that a change in the machine's
background load hits them all alike.

- ``Latency``: one call timed many times (a round trip); each round times
  ``per_round`` calls of every variant in turn (fewer for slow peers).
- ``Rate``: a burst of jobs timed once per round (jobs/s).

A variant that raises is recorded as failed where its figures would go
and leaves the rotation; the others go on.
"""

import time

from bench import stats
from bench.context import failure


class Latency:
    """A call whose round trip is timed; ``into[key]`` gets its summary."""

    def __init__(self, into, key, call, slow=False):
        self.into, self.key, self.call, self.slow = into, key, call, slow
        self.samples = []


def latency_rounds(variants, settings):
    """Time every variant round by round; store each one's latency."""
    s = settings
    per_round = max(1, s.round_trips // s.rounds)
    per_round_slow = max(1, min(per_round, s.slow_round_trips // s.rounds))
    live = list(variants)
    for _ in range(s.rounds):
        for variant in list(live):
            try:
                variant.samples += stats.time_calls(
                    variant.call, per_round_slow if variant.slow else per_round)
            except Exception as exc:  # noqa: BLE001 -- reported
                variant.into[variant.key] = failure(exc)
                live.remove(variant)
    for variant in live:
        variant.into[variant.key] = stats.latency(variant.samples)


class Rate:
    """``burst(jobs)`` timed once per round; ``into[key]`` gets the spread
    of its jobs/s."""

    def __init__(self, into, key, jobs, burst):
        self.into, self.key, self.jobs, self.burst = into, key, jobs, burst
        self.rates = []

    def run_round(self):
        start = time.perf_counter()
        self.burst(self.jobs)
        self.rates.append(self.jobs / (time.perf_counter() - start))


def rate_rounds(rates, rounds, warmup_jobs=1000):
    """A warm-up burst each, then every burst once per round, in turn."""
    live = []
    for rate in rates:
        try:
            rate.burst(min(rate.jobs, warmup_jobs))
            live.append(rate)
        except Exception as exc:  # noqa: BLE001 -- reported
            rate.into[rate.key] = failure(exc)
    for _ in range(rounds):
        for rate in list(live):
            try:
                rate.run_round()
            except Exception as exc:  # noqa: BLE001 -- reported
                rate.into[rate.key] = failure(exc)
                live.remove(rate)
    for rate in live:
        rate.into[rate.key] = stats.spread(rate.rates)
