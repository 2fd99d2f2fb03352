"""The peers of issue 15 behind one small interface, for every figure.

Each peer runs the same job functions on ``W`` workers of its own (the
daemon's worker count), under this Python, set up as its documentation
says a user would on one machine:

| name | what |
|---|---|
| ``loky`` | ``loky.get_reusable_executor(max_workers=W, timeout=600)`` |
| ``mpire`` | ``mpire.WorkerPool(n_jobs=W, keep_alive=True)``, the anchors' start method |
| ``dask`` | ``distributed.LocalCluster(n_workers=W, threads_per_worker=1, processes=True)`` and a ``Client``; map: a ``dask.bag`` |
| ``ray`` | ``ray.init(num_cpus=W)`` (a local cluster), jobs as ``ray.remote`` tasks; map: ``ray.util.multiprocessing.Pool`` |
| ``subinterpreters`` | ``SubinterpreterPool(W)``: 3.13's ``_interpreters`` in this process |

``ProcessPoolExecutor`` stays the anchor it was (``figures_*`` measure it
under their old keys). A peer that cannot run here (not installed, or it
fails to start) is recorded with its error; tiny mode (the smoke test)
skips the peers that need PyPI, since only ``bench/run.sh`` installs them.
"""

import contextlib
import inspect
import logging
import os
import sys
import warnings

import bench_jobs

from bench.context import failure
from bench.subinterpreter_pool import SharedQueue, SubinterpreterPool

# Ray's environment (bench/requirements-ray.txt), set by the benchmark: on
# this process's sys.path and the environment of Ray's processes only.
RAY_PATH = ""

# loky's reusable executor ends idle workers after ``timeout`` seconds
# (default 10): longer than any pause between two rounds here.
LOKY_IDLE_TIMEOUT = 600

# In the order they open: mpire forks before any peer starts threads, and
# the sub-interpreters come last. A child forked while sub-interpreters
# live aborts in CPython 3.13 ("Fatal Python error: PyThreadState_Get",
# from PyOS_AfterFork_Child; CPython issue 101437): mpire's and
# ProcessPoolExecutor's workers, and Ray's start (its subprocesses run a
# preexec_fn), must all be forked before. fork+exec without Python code in
# the child (Dask's and loky's spawns, subprocess) is safe.
ALL = ("mpire", "loky", "dask", "ray", "subinterpreters")
NEEDS_PYPI = {"loky", "mpire", "dask", "ray"}
PROCESS_BASED = ("process_pool", "loky", "mpire")   # issue 15's first target
LABELS = {"process_pool": "ProcessPoolExecutor", "loky": "loky",
          "mpire": "mpire", "dask": "Dask", "ray": "Ray",
          "subinterpreters": "sub-interpreters"}


class Peer:
    """A pool of ``workers`` workers that takes jobs; the defaults fit an
    ``Executor``-like ``self.pool``."""

    slow = False          # a job costs ~1 ms or more: fewer samples
    slow_map = False      # its chunked map runs ~10k calls/s: fewer calls
    shared = False        # other processes can connect (the clients figure)
    # Why the peer has no map with a chunk size, or "" if it has one:
    # ``map(fn, items, chunksize)``.
    no_map = ""
    has_queue = False

    def __init__(self, workers, mp_context):
        self.workers = workers
        self.mp_context = mp_context
        self.pool = None

    def submit(self, fn, *args):
        return self.pool.submit(fn, *args)

    def gather(self, handles):
        return [handle.result() for handle in handles]

    def call(self, fn, *args):
        return self.gather([self.submit(fn, *args)])[0]

    def warm(self):
        """Every worker has started and imported the job module."""
        self.gather([self.submit(bench_jobs.getpid)
                     for _ in range(4 * self.workers)])

    def close(self):
        self.pool.shutdown(wait=True)


class LokyPeer(Peer):
    def start(self):
        import loky
        self.pool = loky.get_reusable_executor(max_workers=self.workers,
                                               timeout=LOKY_IDLE_TIMEOUT)

    def map(self, fn, items, chunksize):
        return list(self.pool.map(fn, items, chunksize=chunksize))


class MpirePeer(Peer):
    def start(self):
        import mpire
        self.pool = mpire.WorkerPool(
            n_jobs=self.workers, keep_alive=True,
            start_method=self.mp_context.get_start_method())

    def submit(self, fn, *args):
        return self.pool.apply_async(fn, args)

    def gather(self, handles):
        return [handle.get() for handle in handles]

    def map(self, fn, items, chunksize):
        return self.pool.map(fn, items, chunk_size=chunksize)

    def close(self):
        self.pool.terminate()


class SubinterpreterPeer(Peer):
    has_queue = True
    no_map = ("no map with a chunk size: 3.13 has no executor on "
              "_interpreters, and 3.14's InterpreterPoolExecutor.map "
              "ignores chunksize, as ThreadPoolExecutor's does")

    def start(self):
        self.pool = SubinterpreterPool(self.workers)

    def make_queue(self, maxsize):
        return SharedQueue(maxsize)

    def close_queue(self, queue):
        queue.close()


class DaskPeer(Peer):
    slow = shared = has_queue = slow_map = True

    def start(self):
        import distributed
        # Dask warns, rightly, that a 64 MiB argument is better scattered
        # first; every system here gets it as a plain argument.
        warnings.filterwarnings("ignore", category=UserWarning,
                                module=r"distributed\.")
        # Every Dask server samples its event loop's thread with
        # sys._current_frames() every 10 ms (distributed.profile.watch). In
        # 3.13 that walks the threads of every interpreter and builds frame
        # objects of the sub-interpreters' frames with this interpreter's
        # allocator: glibc aborts ("free(): invalid pointer") while the
        # sub-interpreter peer runs in this process. So the scheduler, the
        # one server in this process, does not profile; the workers (their
        # own processes) keep Dask's default.
        import dask
        dask.config.set({"distributed.worker.profile.enabled": False})
        self.cluster = distributed.LocalCluster(
            n_workers=self.workers, threads_per_worker=1, processes=True,
            dashboard_address=None, silence_logs=logging.ERROR,
            config={"distributed.worker.profile.enabled": True})
        self.client = distributed.Client(self.cluster)
        self.address = self.cluster.scheduler_address

    @staticmethod
    def import_client_modules():
        import distributed  # noqa: F401 -- imported before a timed connect

    def submit(self, fn, *args):
        # pure=False: the same call twice is two jobs, not one cached key.
        return self.client.submit(fn, *args, pure=False)

    def gather(self, handles):
        return self.client.gather(handles)

    def map(self, fn, items, chunksize):
        # Dask's way to run many small calls as fewer tasks: a bag whose
        # partitions hold ``chunksize`` items, one task per partition.
        import dask.bag
        bag = dask.bag.from_sequence(items, partition_size=chunksize)
        return self.client.compute(bag.map(fn)).result()

    def make_queue(self, maxsize):
        import distributed
        return distributed.Queue(maxsize=maxsize, client=self.client)

    def close_queue(self, queue):
        queue.close()

    def close(self):
        self.client.close()
        self.cluster.close()

    @staticmethod
    def connect(address):
        """A new client of the running cluster at ``address``."""
        return DaskClient(address)


class DaskClient(DaskPeer):
    def __init__(self, address):  # pylint: disable=super-init-not-called
        import distributed
        self.client = distributed.Client(address)

    def close(self):
        self.client.close()


class RayPeer(Peer):
    slow = shared = has_queue = True
    map_pool = None   # ray.util.multiprocessing.Pool, at the first map

    def start(self):
        use_ray_path()
        import ray
        # The processes ray.init starts (GCS, raylet, and through it every
        # worker) need to import ray: they take it from the environment.
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (saved, RAY_PATH) if p)
        try:
            ray.init(num_cpus=self.workers, include_dashboard=False,
                     logging_level=logging.ERROR, log_to_driver=False)
        finally:
            if saved is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = saved
        self.ray = ray
        self.address = ray.get_runtime_context().gcs_address
        self.remotes = {}

    @staticmethod
    def import_client_modules():
        use_ray_path()
        import ray  # noqa: F401 -- imported before a timed connect

    def submit(self, fn, *args):
        # ray.remote takes Python functions only: a builtin such as abs or
        # a ufunc goes through a one-line Python function.
        if not inspect.isfunction(fn):
            fn, args = bench_jobs.call, (fn, *args)
        remote = self.remotes.get(fn)
        if remote is None:
            remote = self.remotes[fn] = self.ray.remote(fn)
        return remote.remote(*args)

    def gather(self, handles):
        return self.ray.get(list(handles))

    def map(self, fn, items, chunksize):
        # Ray's map with a chunk size: ray.util.multiprocessing.Pool, W
        # actors of this cluster (started at the first map: its warm-up).
        if self.map_pool is None:
            from ray.util.multiprocessing import Pool
            self.map_pool = Pool(processes=self.workers)
        return self.map_pool.map(fn, items, chunksize=chunksize)

    def make_queue(self, maxsize):
        from ray.util.queue import Queue
        return Queue(maxsize=maxsize)

    def close_queue(self, queue):
        queue.shutdown()

    def close(self):
        if self.map_pool is not None:
            self.map_pool.terminate()
        self.ray.shutdown()

    @staticmethod
    def connect(address):
        return RayClient(address)


def use_ray_path():
    if RAY_PATH and RAY_PATH not in sys.path:
        sys.path.append(RAY_PATH)


class RayClient(RayPeer):
    def __init__(self, address):  # pylint: disable=super-init-not-called
        use_ray_path()
        import ray
        ray.init(address=address, logging_level=logging.ERROR,
                 log_to_driver=False)
        self.ray = ray
        self.remotes = {}


CLASSES = {"loky": LokyPeer, "mpire": MpirePeer, "dask": DaskPeer,
           "ray": RayPeer, "subinterpreters": SubinterpreterPeer}


def skip_reason(name, mode):
    """Why ``name`` is not run in ``mode``, or None."""
    if mode == "tiny" and name in NEEDS_PYPI:
        return (f"{name} comes from PyPI, which the smoke test does not "
                f"use; bench/run.sh installs it from bench/requirements.txt")
    return None


def unavailable(exc):
    """What a peer that cannot run here records instead of its figures."""
    recorded = failure(exc)
    notes = " ".join(getattr(exc, "__notes__", ()))
    why = " ".join(f"{recorded['error']} {notes}".split())  # one line
    return {"unavailable": why, "traceback": recorded["traceback"]}


def open_peers(ctx, stack, into, needs_queue=False):
    """Start each of ``ctx.peers`` (closed by ``stack``); return the ones
    that run, by name. ``into`` gets ``{"skipped"|"unavailable": why}``
    for the others, so none is silently dropped."""
    opened = {}
    for name in ALL:
        if name not in ctx.peers:
            continue
        reason = skip_reason(name, ctx.settings.mode)
        if needs_queue and not CLASSES[name].has_queue:
            reason = "has no queue of its own"
        if reason:
            into[name] = {"skipped": reason}
            continue
        peer = CLASSES[name](ctx.workers, ctx.mp_context)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                peer.start()
        except Exception as exc:  # noqa: BLE001 -- reported, not hidden
            close_quietly(peer)  # whatever part of it did start
            into[name] = unavailable(exc)
            continue
        stack.callback(close_quietly, peer)
        try:
            peer.warm()
        except Exception as exc:  # noqa: BLE001 -- reported, not hidden
            into[name] = unavailable(exc)
            continue
        opened[name] = peer
    return opened


def close_quietly(peer):
    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer.close()
