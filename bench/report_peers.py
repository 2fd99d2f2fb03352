"""Issue 15's tables: every figure for the project and each peer, the
ratio to the best peer, the targets, and the before/after round trip.

A figure's value for one system is found by a path in the JSON; a path
that is missing means the system has no such thing ("n/a": loky has no
cluster other processes could join), a recorded ``skipped``,
``unavailable`` or ``error`` says why there is no number. Ratios are
project / peer, as in the issue 4 table: below 1 is better for times and
memory, above 1 for rates and speedups.
"""

import dataclasses

from bench.report import fmt

COLUMNS = ("process_pool", "loky", "mpire", "dask", "ray", "subinterpreters")
TITLES = {"process_pool": "PPE", "loky": "loky", "mpire": "mpire",
          "dask": "Dask", "ray": "Ray", "subinterpreters": "sub-interp."}
PROCESS_BASED = ("process_pool", "loky", "mpire")


def _peer(figure, *path):
    """Path of a peer's value under ``figures[figure]["peers"][name]``."""
    return lambda name: (figure, "peers", name, *path)


@dataclasses.dataclass
class Figure:
    label: str
    unit: str
    higher_is_better: bool
    ours: tuple          # path of the project's value
    ppe: tuple           # path of ProcessPoolExecutor's value (or ())
    peer: object         # name -> path of that peer's value
    key: str = ""        # a short name for the headline ratios


def figures(doc):
    config = doc["config"]
    w, k = config["workers"], config.get("map_chunksize", "?")
    clients = config.get("clients", 4)
    rt, tp, q, npy = "round_trip", "throughput", "queues", "numpy"
    return [
        Figure("Round trip p50", "µs", False, (rt, "project_pool", "p50"),
               (rt, "process_pool", "p50"), _peer(rt, "p50"), "round_trip"),
        Figure("Round trip p99", "µs", False, (rt, "project_pool", "p99"),
               (rt, "process_pool", "p99"), _peer(rt, "p99")),
        Figure("Submit per job, 1 client", "jobs/s", True,
               (tp, "project_1_client", "median"),
               (tp, "process_pool_submit", "median"),
               _peer(tp, "submit", "median"), "submit"),
        Figure(f"Submit per job, {clients} client processes", "jobs/s", True,
               (tp, "project_clients", "median"), (),
               _peer(tp, "clients", "median")),
        Figure(f"map(chunksize={k}), Client.map", "jobs/s", True,
               (tp, "project_client_map", "median"),
               (tp, "process_pool_map_chunked", "median"),
               _peer(tp, "map", "median"), "client_map"),
        Figure(f"map(chunksize={k}), the executor's", "jobs/s", True,
               (tp, "project_map", "median"),
               (tp, "process_pool_map_chunked", "median"),
               _peer(tp, "map", "median"), "map"),
        Figure(f"CPU speedup, {w} workers vs 1", "x", True,
               ("cpu_scaling", "project", "speedup", "median"),
               ("cpu_scaling", "process_pool", "speedup", "median"),
               _peer("cpu_scaling", "speedup", "median")),
        Figure("64 MiB argument", "MB/s", True,
               ("large_data", "project_arg", "median"),
               ("large_data", "process_pool_arg", "median"),
               _peer("large_data", "arg", "median")),
        Figure("64 MiB result", "MB/s", True,
               ("large_data", "project_result", "median"),
               ("large_data", "process_pool_result", "median"),
               _peer("large_data", "result", "median")),
        Figure("Cold start to first result", "ms", False,
               ("cold_start", "project", "median"),
               ("cold_start", "process_pool", "median"), _cold_start_path),
        Figure("Memory per warm idle worker, RSS", "KiB", False,
               ("memory", "project", "rss_kib_per_interpreter", "median"),
               ("memory", "process_pool_worker", "rss_kib"),
               _peer("memory", "rss_kib_per_worker")),
        Figure("Memory per warm idle worker, PSS", "KiB", False,
               ("memory", "project", "pss_kib_per_interpreter", "median"),
               ("memory", "process_pool_worker", "pss_kib"),
               _peer("memory", "pss_kib_per_worker")),
        Figure("Queue round trip p50", "µs", False,
               (q, "round_trip", "project_queue", "p50"),
               (q, "multiprocessing_round_trip", "p50"),
               _peer(q, "round_trip", "p50")),
        Figure("Queue items, job to job", "items/s", True,
               (q, "project_job_to_job", "median"),
               (q, "multiprocessing_queue", "median"),
               _peer(q, "job_to_job", "median")),
        Figure("numpy FFT jobs, process lane", "jobs/s", True,
               (npy, "project", "median"), (npy, "process_pool", "median"),
               _peer(npy, "median"), "numpy"),
        Figure("numpy tiny job round trip p50", "µs", False,
               (npy, "round_trip", "project", "p50"),
               (npy, "round_trip", "process_pool", "p50"),
               lambda name: (npy, "round_trip", "peers", name, "p50")),
    ]


def _cold_start_path(name):
    # Dask and Ray: a new client of the running cluster, as ours is a new
    # client of the running daemon (their new clusters are in the JSON).
    if name in ("dask", "ray"):
        return ("cold_start", "peers", name, "new_client", "median")
    return ("cold_start", "peers", name, "median")


def lookup(doc, path):
    """(number, None) or (None, why there is none)."""
    value = doc["figures"]
    for index, key in enumerate(path):
        if isinstance(value, dict):
            for word in ("skipped", "unavailable", "error"):
                if word in value:
                    return None, word
        if not isinstance(value, dict) or key not in value:
            missing_peer = index > 0 and path[index - 1] == "peers"
            return None, "not run" if index < 2 or missing_peer else "n/a"
        value = value[key]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value, None
    return None, "n/a"


def values(doc, figure):
    """{system: (number or None, why)} for the project and each column."""
    found = {"project": lookup(doc, figure.ours)}
    for name in COLUMNS:
        path = figure.ppe if name == "process_pool" else figure.peer(name)
        found[name] = lookup(doc, path) if path else (None, "n/a")
    return found


def best(figure, found, among=COLUMNS):
    """(name, value) of the best peer among ``among`` that has a number."""
    numbers = [(found[name][0], name) for name in among
               if found[name][0] is not None]
    if not numbers:
        return None, None
    value, name = (max if figure.higher_is_better else min)(numbers)
    return name, value


def _verdict(figure, ours, other):
    if ours is None or other is None:
        return ""
    ahead = ours > other if figure.higher_is_better else ours < other
    return "ahead" if ahead else "behind"


def best_ratios(doc):
    """{figure label: ours / best peer} of one run (None where either is
    missing): kept per run, for the spread over runs."""
    ratios = {}
    for figure in figures(doc):
        found = values(doc, figure)
        _, value = best(figure, found)
        ours = found["project"][0]
        ratios[figure.label] = (ours / value if ours is not None and value
                                else None)
    return ratios


def peer_table(doc):
    runs = doc.get("best_ratio_runs") or []
    head = ["figure", "extrainterpreters", *(TITLES[c] for c in COLUMNS),
            "best peer", "ours / best", ""]
    if len(runs) > 1:
        head.append(f"ours / best, {len(runs)} runs")
    lines = ["| " + " | ".join(head) + " |",
             "|---|" + "---:|" * (len(COLUMNS) + 1) + "---|---:|---|"
             + ("---|" if len(runs) > 1 else "")]
    for figure in figures(doc):
        found = values(doc, figure)
        name, value = best(figure, found)
        ours = found["project"][0]
        cells = [_cell(found["project"], False)]
        cells += [_cell(found[c], c == name) for c in COLUMNS]
        ratio = ours / value if ours is not None and value else None
        line = (f"| {figure.label} ({figure.unit}) | " + " | ".join(cells)
                + f" | {TITLES.get(name, '—')} | {fmt(ratio)} | "
                f"{_verdict(figure, ours, value)} |")
        if len(runs) > 1:
            line += f" {span([run.get(figure.label) for run in runs])} |"
        lines.append(line)
    return lines


def span(ratios):
    """min – max of the ratios that are numbers, or a dash."""
    numbers = [r for r in ratios if r is not None]
    return f"{fmt(min(numbers))} – {fmt(max(numbers))}" if numbers else "—"


def _cell(found, is_best):
    number, why = found
    if number is None:
        return why
    return f"**{fmt(number)}**" if is_best else fmt(number)


def unavailable_notes(doc):
    """One line per peer that could not run a figure, or a part of one,
    with its error or the reason it was skipped."""
    notes = []
    for figure_name, figure in doc["figures"].items():
        if not isinstance(figure, dict):
            continue
        for holder in (figure, figure.get("round_trip")):
            if not isinstance(holder, dict):
                continue
            for name, value in (holder.get("peers") or {}).items():
                for where, why in _reasons(value):
                    note = f"- {figure_name}, {' '.join((name, *where))}: {why}"
                    if note not in notes:  # a figure's round trip too
                        notes.append(note)
    return notes


def _reasons(value, where=()):
    """(path, reason) of each skipped, unavailable or failed part."""
    if not isinstance(value, dict):
        return
    for word in ("unavailable", "skipped", "error"):
        if word in value:
            yield where, f"{word}: {value[word]}"
            return
    for key, inner in value.items():
        yield from _reasons(inner, (*where, key))
