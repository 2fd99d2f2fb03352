"""The burst of issue 13, measured: many client processes submit many small
jobs at once against a daemon with its default limits (a window of 10,000
jobs per connection, a queue of 100,000). Reports how many jobs were
refused (the point: none), the daemon's RSS while it held the burst, how
evenly the clients finished, and the throughput.

    bench/burst.sh                       # 64 clients x 3,000 jobs
    bench/burst.sh --clients 8 --jobs 500

Nothing here is a test: the numbers go to the terminal (and --json FILE).
"""

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import extrainterpreters

POLL = 0.05  # seconds between samples of the daemon's memory and queue


def _client(socket_path, jobs, start, results):
    """One client process: submit every job at once, then wait for all."""
    start.wait()
    began = time.monotonic()
    refused = failed = right = 0
    with extrainterpreters.Client(socket_path, output=False) as client:
        futures = [client.submit(abs, -i) for i in range(jobs)]
        for i, future in enumerate(futures):
            try:
                right += future.result() == i
            except extrainterpreters.DaemonBusy:
                refused += 1
            except Exception:  # noqa: BLE001 - counted, and the run goes on
                failed += 1
    results.put({"right": right, "refused": refused, "failed": failed,
                 "seconds": time.monotonic() - began})


def _rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _sample(pid, socket_path, stop, samples):
    """The daemon's RSS and queue depth, every POLL seconds."""
    with extrainterpreters.Client(socket_path, output=False) as client:
        while not stop.is_set():
            status = client.status()
            samples.append((_rss_kib(pid), status["queue_depth"]))
            stop.wait(POLL)


def run(daemon, clients, jobs, workers):
    tmp = tempfile.mkdtemp(prefix="ei-burst-", dir="/tmp")
    socket_path = os.path.join(tmp, "ei.sock")
    process = subprocess.Popen([daemon, "--socket", socket_path, "--workers", str(workers)],
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with extrainterpreters.Client(socket_path) as probe:
                    probe.ping()
                break
            except extrainterpreters.DaemonConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        idle_rss = _rss_kib(process.pid)
        context = multiprocessing.get_context("fork")
        start, results = context.Event(), context.Queue()
        children = [context.Process(target=_client, args=(socket_path, jobs, start, results))
                    for _ in range(clients)]
        for child in children:
            child.start()
        stop, samples = threading.Event(), []
        sampler = threading.Thread(target=_sample, args=(process.pid, socket_path, stop, samples))
        sampler.start()
        began = time.monotonic()
        start.set()
        reports = [results.get() for _ in children]
        took = time.monotonic() - began
        stop.set()
        sampler.join()
        for child in children:
            child.join()
    finally:
        process.terminate()
        process.wait()
    finish = sorted(r["seconds"] for r in reports)
    return {
        "clients": clients, "jobs_per_client": jobs, "workers": workers,
        "jobs": clients * jobs,
        "right": sum(r["right"] for r in reports),
        "refused": sum(r["refused"] for r in reports),
        "failed": sum(r["failed"] for r in reports),
        "seconds": took, "jobs_per_second": clients * jobs / took,
        "daemon_rss_kib": {"idle": idle_rss, "peak": max(s[0] for s in samples)},
        "queue_depth_peak": max(s[1] for s in samples),
        "client_finish_seconds": {"min": finish[0], "median": statistics.median(finish),
                                  "max": finish[-1]},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--daemon", required=True, help="the extrainterpretersd to start")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    figures = run(args.daemon, args.clients, args.jobs, args.workers)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as out:
            out.write(text + "\n")
    return 0 if figures["right"] == figures["jobs"] else 1


if __name__ == "__main__":
    sys.exit(main())
