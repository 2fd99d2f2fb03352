"""Measures extrainterpreters against its anchors; writes JSON and Markdown.

    benchmark --socket /tmp/ei-bench-x/ei.sock --out bench/results [--quick]

Needs a running ``extrainterpretersd`` on ``--socket`` whose
``--python-path`` holds ``bench/jobs`` (``bench/run.sh`` starts one), and
the C++ tool ``raw_socket_pingpong`` (``--raw-tool``, else Bazel's
runfiles). Runs every figure of issue 4 in one go, each measurement on its
own: one that fails is recorded with its error and the rest still run.
Writes ``latest.json`` (raw figures, machine, settings, target verdicts)
and ``latest.md`` (the tables) to ``--out`` and prints the Markdown. Exits
1 if any measurement failed; speed never fails it.
"""

import argparse
import dataclasses
import datetime
import json
import multiprocessing
import os
import platform
import sys
import time

import extrainterpreters

from bench import (figures_data, figures_latency, figures_load, figures_numpy,
                   figures_queues, peers, report, report_peers, report_targets)
from bench.context import Context, Settings, failure

# Order matters a little: the memory figure runs before large data, so the
# daemon has not yet grown its buffers to 64 MiB; and large data runs after
# cold start, because for a second after 64 MiB transfers the daemon gives
# that memory back (MemoryTrimmer), which slowed new connections then (cold
# start 0.60 ms right after large data, 0.36-0.38 ms on its own); the
# figures after large data start once that is over.
SETTLE_AFTER_LARGE_DATA = 2.0  # s: the daemon's trim of large buffers is over

FIGURES = {
    "round_trip": figures_latency.round_trip,
    "throughput": figures_load.throughput,
    "cpu_scaling": figures_load.cpu_scaling,
    "cold_start": figures_latency.cold_start,
    "memory": figures_data.memory,
    "large_data": figures_data.large_data,
    "queues": figures_queues.queues,
    "numpy": figures_numpy.numpy_lane,
}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--socket", required=True, help="the daemon's socket")
    parser.add_argument("--out", help="directory for latest.json and latest.md")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const",
                      const="quick", help="fewer repeats (about half the time)")
    mode.add_argument("--tiny", dest="mode", action="store_const",
                      const="tiny", help="a few repeats, small data: a smoke check")
    parser.add_argument("--raw-tool", help="path of raw_socket_pingpong")
    parser.add_argument("--only", help="comma-separated figures: "
                        + ",".join(FIGURES))
    parser.add_argument("--start-method", help="multiprocessing start method "
                        "of the ProcessPoolExecutor anchors (default: Python's)")
    parser.add_argument("--label", default="", help="what was measured, e.g. "
                        "`git describe --always --dirty`")
    parser.add_argument("--peers", default=",".join(peers.ALL),
                        help="comma-separated peers of issue 15 to run "
                        f"(default: all of {','.join(peers.ALL)}; 'none')")
    parser.add_argument("--ray-path", default="", help="site-packages of "
                        "Ray's environment (bench/requirements-ray.txt), "
                        "given to Ray alone")
    parser.add_argument("--before-socket", default="", help="a daemon of an "
                        "earlier commit: its round trip taking turns with "
                        "this one's (issue 11's before/after)")
    parser.add_argument("--before-label", default="", help="what the "
                        "--before-socket daemon is, e.g. its commit")
    parser.add_argument("--runs", type=int, default=1, help="whole runs, "
                        "for the spread of the headline ratios; the last "
                        "one's figures are written")
    parser.add_argument("--wait-ready", type=float, default=60.0,
                        help="seconds to wait for the daemon to be ready")
    for field in dataclasses.fields(Settings):
        if field.name != "mode":
            parser.add_argument("--" + field.name.replace("_", "-"),
                                type=field.type if callable(field.type)
                                else type(field.default),
                                help=f"override the mode's {field.name}")
    parser.set_defaults(mode="full")
    return parser.parse_args(argv)


def settings_from(args):
    settings = Settings.preset(args.mode)
    for field in dataclasses.fields(Settings):
        value = getattr(args, field.name, None)
        if field.name != "mode" and value is not None:
            setattr(settings, field.name, value)
    return settings


def find_raw_tool(explicit):
    if explicit:
        return explicit
    here = os.path.dirname(os.path.abspath(__file__))
    for root in (os.environ.get("TEST_SRCDIR"), os.environ.get("RUNFILES_DIR")):
        if root:
            path = os.path.join(root, "extrainterpreters", "bench",
                                "raw_socket_pingpong")
            if os.path.exists(path):
                return path
    return os.path.join(here, "raw_socket_pingpong")  # next to us in runfiles


def wait_ready(socket_path, timeout):
    """The daemon's hello once its status says ready."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with extrainterpreters.Client(socket_path, connect_timeout=5) as c:
                if c.status(timeout=5).get("state") == "ready":
                    return c.hello
        except (extrainterpreters.ExtraInterpretersError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"benchmark: no ready daemon on "
                                 f"{socket_path}: {exc}") from None
        time.sleep(0.05)


def machine_info():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python_version": platform.python_version(),
        "python_executable": sys.executable,
        "date": datetime.datetime.now(datetime.timezone.utc)
        .isoformat(timespec="seconds"),
    }


def cpu_seconds(daemon_pid):
    """(CPU seconds busy on the whole machine, CPU seconds of this run).

    This run: this process and every process under it, live or reaped
    (executors' workers, client processes, the raw tool, the peers'
    clusters), and the daemon with every process under it (its worker
    processes). The difference of two snapshots tells how much CPU other
    processes took meanwhile.
    """
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal: all but idle, iowait.
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / tick
    ours = sum(os.times()[:4]) + _tree_ticks(os.getpid(), daemon_pid) / tick
    return busy, ours


def _tree_ticks(me, daemon_pid):
    """Clock ticks of the daemon and of the live processes under ``me``
    or under the daemon: each one's own and its reaped children's (a
    process reaped by ``me`` is in ``os.times()`` instead)."""
    parent, ticks = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii",
                      errors="replace") as stat:
                after_name = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        # After the name: state, ppid, ..., utime stime cutime cstime.
        parent[int(entry)] = int(after_name[1])
        ticks[int(entry)] = sum(int(x) for x in after_name[11:15])
    total = 0
    for pid, count in ticks.items():
        ancestor = pid
        while ancestor > 1 and ancestor != me and ancestor != daemon_pid:
            ancestor = parent.get(ancestor, 0)
        if ancestor == daemon_pid or (ancestor == me and pid != me):
            total += count
    return total


def has_error(value):
    if isinstance(value, dict):
        return "error" in value or any(has_error(v) for v in value.values())
    return False


def peer_names(text):
    names = [] if text in ("", "none") else text.split(",")
    unknown = set(names) - set(peers.ALL)
    if unknown:
        raise SystemExit(f"benchmark: unknown peers: {', '.join(unknown)}")
    return tuple(names)


def run(args):
    settings = settings_from(args)
    peers.RAY_PATH = args.ray_path
    hello = wait_ready(args.socket, args.wait_ready)
    before = (wait_ready(args.before_socket, args.wait_ready)
              if args.before_socket else {})
    mp_context = multiprocessing.get_context(args.start_method)
    ctx = Context(settings=settings, socket_path=args.socket,
                  workers=int(hello["workers"]), daemon_pid=int(hello["pid"]),
                  mp_context=mp_context, raw_tool=find_raw_tool(args.raw_tool),
                  peers=peer_names(args.peers),
                  before_socket=args.before_socket)
    names = args.only.split(",") if args.only else list(FIGURES)
    unknown = set(names) - set(FIGURES)
    if unknown:
        raise SystemExit(f"benchmark: unknown figures: {', '.join(unknown)}")
    doc = {
        "schema": 1,
        "machine": machine_info(),
        "config": {**dataclasses.asdict(settings), "workers": ctx.workers,
                   "start_method": mp_context.get_start_method(),
                   "label": args.label, "peers": list(ctx.peers),
                   "before_label": args.before_label},
        "daemon": {key: hello.get(key) for key in
                   ("pid", "daemon_version", "python", "workers")},
        "before_daemon": {key: before.get(key) for key in
                          ("pid", "daemon_version", "python", "workers")},
        "figures": {},
        "runs": {},  # per figure: seconds, CPU taken by other processes
    }
    started = time.perf_counter()
    for name in names:
        print(f"benchmark: {name}...", file=sys.stderr, flush=True)
        begun = time.perf_counter()
        busy, ours = cpu_seconds(ctx.daemon_pid)
        try:
            doc["figures"][name] = FIGURES[name](ctx)
        except Exception as exc:  # noqa: BLE001 -- reported, not hidden
            doc["figures"][name] = failure(exc)
        seconds = time.perf_counter() - begun
        busy_after, ours_after = cpu_seconds(ctx.daemon_pid)
        background = max(0.0, (busy_after - busy) - (ours_after - ours))
        doc["runs"][name] = {
            "load_average": round(os.getloadavg()[0], 2),  # 1 min, at its end
            "seconds": round(seconds, 2),
            "background_cpu_s": round(background, 2),
            "background_share": round(
                background / (seconds * (os.cpu_count() or 1)), 3)}
        if name == "large_data" and settings.mode != "tiny":
            time.sleep(SETTLE_AFTER_LARGE_DATA)  # see FIGURES
    doc["seconds"] = round(time.perf_counter() - started, 2)
    doc["targets"] = [row.as_dict() for row in report.targets(doc)]
    doc["targets_issue15"] = [row.as_dict()
                              for row in report_targets.targets(doc)]
    doc["headlines"] = report_targets.headlines(doc)
    return doc


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    runs, best_ratios, conditions, failed = [], [], [], set()
    for index in range(max(1, args.runs)):
        if args.runs > 1:
            print(f"benchmark: run {index + 1} of {args.runs}", file=sys.stderr,
                  flush=True)
        doc = run(args)
        runs.append(doc["headlines"])
        best_ratios.append(report_peers.best_ratios(doc))
        conditions.append({"date": doc["machine"]["date"], **doc["runs"]})
        failed.update(name for name, value in doc["figures"].items()
                      if has_error(value))
    doc["headline_runs"] = runs
    doc["best_ratio_runs"] = best_ratios  # ours / best peer, per figure
    doc["run_conditions"] = conditions    # each run's load, figure by figure
    text = report.markdown(doc)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "latest.json"), "w",
                  encoding="utf-8") as out:
            json.dump(doc, out, indent=1)
            out.write("\n")
        with open(os.path.join(args.out, "latest.md"), "w",
                  encoding="utf-8") as out:
            out.write(text)
    print(text)
    if failed:
        print(f"benchmark: measurements failed in: {', '.join(failed)} "
              f"(see latest.json)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
