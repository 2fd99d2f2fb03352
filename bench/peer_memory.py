"""Memory per warm idle worker of one peer, measured in a fresh process.

    python -m bench.peer_memory NAME WORKERS START_METHOD [RAY_PATH]

Run by the memory figure, one process per peer, so that what a worker
shares or copies from its parent is only what the peer itself loaded (as
the ``ProcessPoolExecutor`` anchor's worker is forked by a fresh Python).
Opens the peer with WORKERS workers, runs a few trivial jobs so each
worker is warm, lets them idle, and prints JSON:

- process peers: ``rss_kib_per_worker`` / ``pss_kib_per_worker``, the mean
  over the processes that ran the jobs; ``support_*``: every other process
  the peer started (loky's resource tracker, Dask's nannies, Ray's raylet,
  GCS server and idle workers), summed. Dask's scheduler runs inside this
  process and is not counted.
- ``subinterpreters``: this process's growth from opening the pool, per
  interpreter (as the project's figure is the daemon's growth).
"""

import json
import multiprocessing
import os
import sys
import time

import bench_jobs

from bench import peers
from bench.figures_data import smaps_rollup

_IDLE = 0.5  # s: let freed memory settle before reading


def descendants(root):
    """Pids of every live process below ``root``."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _sum(rollups, key):
    return sum(rollup[key] for rollup in rollups)


def process_peer(peer, workers):
    pids = set(peer.gather([peer.submit(bench_jobs.getpid)
                            for _ in range(8 * workers)]))
    time.sleep(_IDLE)
    ran = [smaps_rollup(pid) for pid in pids]
    others = []
    for pid in descendants(os.getpid()):
        if pid not in pids:
            try:
                others.append(smaps_rollup(pid))
            except (OSError, RuntimeError):
                pass  # gone meanwhile
    return {"rss_kib_per_worker": _sum(ran, "rss_kib") / len(ran),
            "pss_kib_per_worker": _sum(ran, "pss_kib") / len(ran),
            "workers_seen": len(ran),
            "support_rss_kib": _sum(others, "rss_kib"),
            "support_pss_kib": _sum(others, "pss_kib"),
            "support_processes": len(others)}


def in_process_peer(cls, workers, context):
    time.sleep(_IDLE)
    before = smaps_rollup(os.getpid())
    peer = cls(workers, context)
    peer.start()
    peer.gather([peer.submit(bench_jobs.getpid) for _ in range(8 * workers)])
    time.sleep(_IDLE)
    after = smaps_rollup(os.getpid())
    peer.close()
    return {f"{key}_per_worker": (after[key] - before[key]) / workers
            for key in ("rss_kib", "pss_kib")}


def main(argv):
    name, workers, method = argv[0], int(argv[1]), argv[2]
    peers.RAY_PATH = argv[3] if len(argv) > 3 else ""
    context = multiprocessing.get_context(method)
    cls = peers.CLASSES[name]
    if name == "subinterpreters":
        figures = in_process_peer(cls, workers, context)
    else:
        peer = cls(workers, context)
        peer.start()
        try:
            figures = process_peer(peer, workers)
        finally:
            peers.close_quietly(peer)
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1:])
