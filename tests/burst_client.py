"""One client process of backpressure_e2e_test: submits JOBS jobs at once,
then waits for all; prints one JSON line: how many came back right, and
what failed (nothing, when flow control works)."""

import json
import sys
import time

import jobs

import extrainterpreters


def main(socket_path, count, tag):
    started = time.monotonic()
    errors = []
    right = 0
    with extrainterpreters.Client(socket_path) as client:
        futures = [client.submit(jobs.add, tag * 100000, i) for i in range(count)]
        for i, future in enumerate(futures):
            try:
                right += future.result(120) == tag * 100000 + i
            except Exception as exc:  # noqa: BLE001 - reported, not hidden
                errors.append(f"{type(exc).__name__}: {exc}")
    print(json.dumps({"right": right, "errors": errors[:5],
                      "error_count": len(errors),
                      "seconds": time.monotonic() - started}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
