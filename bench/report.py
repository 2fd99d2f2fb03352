"""The targets of issues 4 and 6, checked against one run, and the tables.

``targets(doc)`` turns the raw figures into rows: what the project
measured, what its anchor measured, the ratio project / anchor, the target
and whether it was met. Every target is a ratio measured in the same run
(CPU scaling: the project's own speedup). A row whose figures failed says
so instead of a verdict. ``markdown(doc)`` renders the run as Markdown.
"""

import dataclasses

MIB = 1024 * 1024


@dataclasses.dataclass
class Row:
    label: str
    unit: str
    project: object   # float, or None when not measured
    anchor: object
    anchor_name: str
    target: str       # "<= 1.5" on the ratio, "" for no target
    limit: object = None        # the number in ``target``
    higher_is_better: bool = False
    on_project: bool = False    # the target applies to ``project`` itself

    @property
    def ratio(self):
        if self.project is None or self.anchor in (None, 0):
            return None
        return self.project / self.anchor

    @property
    def verdict(self):
        if not self.target:
            return ""
        value = self.project if self.on_project else self.ratio
        if value is None:
            return "not measured"
        met = value >= self.limit if self.higher_is_better else value <= self.limit
        return "met" if met else "missed"

    def as_dict(self):
        return {"label": self.label, "unit": self.unit,
                "project": self.project, "anchor": self.anchor,
                "anchor_name": self.anchor_name, "ratio": self.ratio,
                "target": self.target, "verdict": self.verdict}


def _get(figures, *path):
    """The number at ``path``, or None if missing or failed."""
    value = figures
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value if isinstance(value, (int, float)) else None


def targets(doc):
    """Rows of the target table, in the order of issues 4 and 6."""
    f = doc["figures"]
    w = doc["config"]["workers"]
    clients = _get(f, "throughput", "clients") or 4
    size = _get(f, "large_data", "bytes") or 64 * MIB
    mib = f"{size / MIB:g} MiB"
    rows = []
    for variant, name in (("project_pool", "pool"),
                          ("project_lease", "leased Interpreter")):
        p50 = _get(f, "round_trip", variant, "p50")
        rows.append(Row(f"Round trip p50, {name}", "µs", p50,
                        _get(f, "round_trip", "raw_socket", "p50"),
                        "raw socket", "<= 1.5", 1.5))
        rows.append(Row(f"Round trip p50, {name}", "µs", p50,
                        _get(f, "round_trip", "process_pool", "p50"),
                        "ProcessPoolExecutor", "<= 0.33", 1 / 3))
    rows.append(Row("Round trip p99, pool", "µs",
                    _get(f, "round_trip", "project_pool", "p99"),
                    _get(f, "round_trip", "process_pool", "p99"),
                    "ProcessPoolExecutor", ""))
    anchor = _get(f, "throughput", "process_pool_map", "median")
    rows.append(Row("Throughput, 1 client", "jobs/s",
                    _get(f, "throughput", "project_1_client", "median"),
                    anchor, "PPE map(chunksize=1)", ">= 10", 10, True))
    rows.append(Row(f"Throughput, {clients} client processes", "jobs/s",
                    _get(f, "throughput", "project_clients", "median"),
                    anchor, "PPE map(chunksize=1)", ">= 10", 10, True))
    speedup = _get(f, "cpu_scaling", "project", "speedup", "median")
    rows.append(Row(f"CPU speedup, {w} workers vs 1", "x", speedup,
                    _get(f, "cpu_scaling", "process_pool", "speedup", "median"),
                    "ProcessPoolExecutor", "project >= 1.8", 1.8, True, True))
    rows.append(Row(f"CPU speedup, {w} workers vs 1", "x", speedup,
                    _get(f, "cpu_scaling", "threads", "speedup", "median"),
                    f"{w} threads, one process", ""))
    for direction, name in (("arg", "argument"), ("result", "result")):
        value = _get(f, "large_data", f"project_{direction}", "median")
        rows.append(Row(f"{mib} {name}", "MB/s", value,
                        _get(f, "large_data", f"process_pool_{direction}",
                             "median"),
                        "ProcessPoolExecutor", ">= 4", 4, True))
        rows.append(Row(f"{mib} {name}", "MB/s", value,
                        _get(f, "large_data", "memcpy", "median"),
                        "memcpy", ">= 0.5", 0.5, True))
        rows.append(Row(f"{mib} {name}", "MB/s", value,
                        _get(f, "large_data", "raw_socket", "median"),
                        "raw socket", ""))
    rows.append(Row("Cold start to first result", "ms",
                    _get(f, "cold_start", "project", "median"),
                    _get(f, "cold_start", "process_pool", "median"),
                    "ProcessPoolExecutor", "<= 0.1", 0.1))
    rows.append(Row("Memory per warm idle interpreter, RSS", "KiB",
                    _get(f, "memory", "project", "rss_kib_per_interpreter",
                         "median"),
                    _get(f, "memory", "process_pool_worker", "rss_kib"),
                    "PPE worker RSS", "<= 0.25", 0.25))
    rows.append(Row("Memory per warm idle interpreter, PSS", "KiB",
                    _get(f, "memory", "project", "pss_kib_per_interpreter",
                         "median"),
                    _get(f, "memory", "process_pool_worker", "pss_kib"),
                    "PPE worker PSS", ""))
    rows.append(Row("Queue round trip p50, client -> job -> client", "µs",
                    _get(f, "queues", "round_trip", "project_queue", "p50"),
                    _get(f, "queues", "round_trip", "project_job", "p50"),
                    "plain job round trip", "<= 2", 2))
    rows.append(Row("Queue items, job to job", "items/s",
                    _get(f, "queues", "project_job_to_job", "median"),
                    _get(f, "queues", "multiprocessing_queue", "median"),
                    "multiprocessing.Queue", ">= 5", 5, True))
    return rows


def fmt(value):
    if value is None:
        return "—"
    if isinstance(value, int) or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def target_table(rows):
    lines = ["| figure | extrainterpreters | anchor | ratio | target | verdict |",
             "|---|---:|---|---:|---|---|"]
    for row in rows:
        lines.append(
            f"| {row.label} | {fmt(row.project)} {row.unit} | "
            f"{row.anchor_name}: {fmt(row.anchor)} {row.unit} | "
            f"{fmt(row.ratio)} | {row.target} | {row.verdict} |")
    return lines


_SKIP = {"values", "n", "daemon", "traceback", "unit", "job", "bytes",
         "leases", "workers", "tasks_per_round", "spin_iterations",
         "jobs_per_round", "map_jobs_per_round", "clients", "seconds",
         "chunksize", "workers_seen",
         "support_processes"}


def _spread_text(value):
    if "error" in value:
        return "failed: " + value["error"]
    for word in ("skipped", "unavailable"):
        if word in value:
            return f"{word}: {value[word]}"
    if "median" in value:
        return (f"{fmt(value['median'])} [{fmt(value['min'])} – "
                f"{fmt(value['max'])}]")
    text = f"p50 {fmt(value['p50'])}"
    if "p10" in value and "p90" in value:
        text += f" [p10 {fmt(value['p10'])} – p90 {fmt(value['p90'])}]"
    for key in ("p99", "max"):
        if key in value:
            text += f", {key} {fmt(value[key])}"
    return text


def _walk(figure, value, path, unit, lines):
    if path and path[-1] == "speedup":
        unit = "x"
    elif path and path[-1].endswith(("_jobs", "_processes", "_seen")):
        unit = ""  # a count
    if isinstance(value, dict):
        unit = value.get("unit", unit)
    if isinstance(value, dict) and ({"error", "median", "p50", "skipped",
                                     "unavailable"} & value.keys()):
        lines.append(f"| {figure} | {' / '.join(path)} | {unit} | "
                     f"{_spread_text(value)} |")
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key not in _SKIP:
                _walk(figure, inner, path + [key], unit, lines)
    elif isinstance(value, (int, float)) and path:
        lines.append(f"| {figure} | {' / '.join(path)} | {unit} | "
                     f"{fmt(value)} |")


def figures_table(doc):
    lines = ["| figure | measurement | unit | median or p50 [spread] |",
             "|---|---|---|---|"]
    for figure, value in doc["figures"].items():
        if isinstance(value, dict) and "error" in value:
            lines.append(f"| {figure} | | | failed: {value['error']} |")
            continue
        _walk(figure, value, [], value.get("unit", ""), lines)
    return lines


def _background_line(doc):
    runs = doc.get("runs", {})
    shares = ", ".join(f"{name} {run['background_share']:.0%}"
                       for name, run in runs.items())
    loads = ", ".join(f"{name} {run['load_average']:.1f}"
                      for name, run in runs.items() if "load_average" in run)
    return ("CPU taken by other processes during each figure (share of all "
            f"CPUs; over ~5% makes that figure noisy): {shares}."
            + (f" Load average (1 min) at the end of each: {loads}."
               if loads else ""))


def markdown(doc):
    # Imported here: report_targets builds on this module's Row and fmt.
    from bench import report_targets  # pylint: disable=import-outside-toplevel
    m, c, d = doc["machine"], doc["config"], doc.get("daemon", {})
    rows = targets(doc)
    verdicts = [row.verdict for row in rows if row.target]
    lines = [
        f"# Benchmark, {m['date']}",
        "",
        f"{m['cpu_count']} CPUs ({m['cpu_model']}), Linux {m['kernel']}, "
        f"client Python {m['python_version']}, daemon Python "
        f"{d.get('python', '?')} with {c['workers']} workers, "
        f"ProcessPoolExecutor start method `{c['start_method']}`, mode "
        f"`{c['mode']}`" + (f", tree `{c['label']}`" if c.get("label") else "")
        + f"; {doc['seconds']:.0f} s.",
        "",
        _background_line(doc),
        "",
        f"Targets met: {verdicts.count('met')} of {len(verdicts)}"
        + (f" ({verdicts.count('not measured')} not measured)"
           if "not measured" in verdicts else "") + ". Ratio = "
        "extrainterpreters / anchor; medians over rounds.",
        "",
        *target_table(rows),
        "",
        *report_targets.sections(doc),
        "## All figures",
        "",
        "Medians with [min – max] over rounds, or percentiles over all "
        "samples.",
        "",
        *figures_table(doc),
        "",
    ]
    return "\n".join(lines)
