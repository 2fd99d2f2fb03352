"""What every figure needs: the settings of a run, the daemon, the anchors.

``Settings`` holds the repeat counts of one mode (``full``, ``quick``,
``tiny``); ``Context`` the daemon's socket and worker count, the
``multiprocessing`` context the ``ProcessPoolExecutor`` anchors use, and
the raw-socket tool. ``measure`` runs one measurement and stores either its
figures or the error, so a failure is reported in place and the other
measurements still run.
"""

import dataclasses
import json
import subprocess
import traceback

MIB = 1024 * 1024


@dataclasses.dataclass
class Settings:
    """Repeat counts and sizes; one preset per mode, flags override."""

    mode: str = "full"
    rounds: int = 3            # per-round figures: throughput, CPU, cold start
    round_trips: int = 3000    # timed round trips per variant
    warmup: int = 200          # untimed round trips first
    raw_iterations: int = 20000
    throughput_jobs: int = 20000   # jobs per round per client
    clients: int = 4               # client processes for the multi-client figure
    cpu_task_seconds: float = 0.1  # one CPU task, calibrated in this process
    data_bytes: int = 64 * MIB
    data_repeats: int = 5
    cold_starts: int = 10
    memory_leases: int = 4
    memory_rounds: int = 3
    queue_items: int = 100000      # items per round, job to job
    # Issue 15's peers. Dask and Ray take ~1 ms or more a job: they get
    # fewer samples per round (still hundreds) so a run stays minutes.
    slow_round_trips: int = 600    # round trips per slow peer
    slow_queue_items: int = 1000   # items per round, job to job, slow peers
    slow_cold_starts: int = 3      # new clusters / clients of slow peers
    map_chunksize: int = 100       # the chunked map of issue 15's target
    # Calls per round of each chunked map: a chunked map runs 0.1-1M calls
    # a second here, so 20,000 calls (40 ms) would time mostly the noise.
    map_jobs: int = 200000
    # Issue 11's process lane: a numpy job of a few ms, arrays in and out.
    numpy_jobs: int = 400          # per round per system
    numpy_signal: int = 1 << 16    # float64 samples of one job's argument

    @classmethod
    def preset(cls, mode):
        if mode == "full":
            return cls()
        if mode == "quick":
            return cls(mode="quick", rounds=2, round_trips=1000, warmup=100,
                       raw_iterations=5000, throughput_jobs=5000,
                       cpu_task_seconds=0.05, data_repeats=3, cold_starts=5,
                       memory_rounds=1, queue_items=30000,
                       slow_round_trips=200, slow_queue_items=500,
                       slow_cold_starts=2, map_jobs=50000, numpy_jobs=200)
        if mode == "tiny":  # The CI smoke check: types, not speed.
            return cls(mode="tiny", rounds=1, round_trips=30, warmup=5,
                       raw_iterations=100, throughput_jobs=100, clients=2,
                       cpu_task_seconds=0.005, data_bytes=1 * MIB,
                       data_repeats=1, cold_starts=1, memory_leases=1,
                       memory_rounds=1, queue_items=100,
                       slow_round_trips=10, slow_queue_items=20,
                       slow_cold_starts=1, map_chunksize=10, map_jobs=100,
                       numpy_jobs=10,
                       numpy_signal=1024)
        raise ValueError(f"unknown mode {mode!r}")


@dataclasses.dataclass
class Context:
    """One benchmark run against one daemon."""

    settings: Settings
    socket_path: str
    workers: int           # the daemon's pool size; anchors use as many
    daemon_pid: int
    mp_context: object     # multiprocessing context of the anchors
    raw_tool: str          # path of raw_socket_pingpong
    peers: tuple = ()      # names of the peers to run (bench.peers.ALL)
    before_socket: str = ""  # a daemon of an earlier commit (round trip)

    def raw(self, mode, **flags):
        """Run the raw-socket tool in ``mode``; return its JSON summary."""
        command = [self.raw_tool, mode]
        for name, value in flags.items():
            command += [f"--{name}", str(value)]
        done = subprocess.run(command, capture_output=True, text=True,
                              timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited with status "
                               f"{done.returncode}: {done.stderr.strip()}")
        return json.loads(done.stdout)


def failure(exc):
    """What a failed measurement records instead of its figures."""
    return {"error": f"{type(exc).__name__}: {exc}",
            "traceback": "".join(traceback.format_exception(exc))}


def measure(results, key, function, *args):
    """``results[key] = function(*args)``, or ``failure(...)`` if it raised."""
    try:
        results[key] = function(*args)
    except Exception as exc:  # noqa: BLE001 -- reported, not hidden
        results[key] = failure(exc)
    return results[key]
