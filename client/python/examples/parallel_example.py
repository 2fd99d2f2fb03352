"""Counts primes with several interpreters of extrainterpretersd at once.

Run by ./run.sh after it starts the daemon. The same work runs twice: one
chunk after another, then all chunks at once on the pool. With one GIL per
interpreter the second run is faster by about the number of workers.
"""

import sys
import time

import extrainterpreters

import primes

LIMIT = 1_000_000
CHUNKS = 8


def _chunks():
    step = LIMIT // CHUNKS
    return [(i * step, (i + 1) * step) for i in range(CHUNKS)]


def main():
    with extrainterpreters.Client() as client:
        workers = client.hello["workers"]
        print(f"extrainterpretersd on {client.socket_path}: {workers} workers, "
              f"Python {client.hello['python']}")

        started = time.perf_counter()
        one_by_one = [client.run(primes.count_primes, lo, hi) for lo, hi in _chunks()]
        serial = time.perf_counter() - started

        started = time.perf_counter()
        futures = [client.submit(primes.count_primes, lo, hi) for lo, hi in _chunks()]
        together = [f.result() for f in futures]
        parallel = time.perf_counter() - started

    assert [r["primes"] for r in one_by_one] == [r["primes"] for r in together]
    print(f"\nprimes below {LIMIT:,}, {CHUNKS} chunks submitted at once:")
    print(f"  {'chunk':>17}  {'primes':>6}  {'interpreter':>11}  {'seconds':>7}")
    for r in together:
        lo, hi = r["range"]
        print(f"  {lo:>8,}..{hi:<8,} {r['primes']:>6}  {r['interpreter']:>11}  "
              f"{r['ended'] - r['started']:7.2f}")
    total = sum(r["primes"] for r in together)
    used = len({r["interpreter"] for r in together})
    print(f"\n  total: {total} primes, on {used} interpreters")
    print(f"  one chunk after another: {serial:.2f} s; all at once: {parallel:.2f} s "
          f"({serial / parallel:.1f}x faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
