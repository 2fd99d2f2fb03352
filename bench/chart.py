"""Draws bench/results/latest.png from latest.json (matplotlib).

    /usr/bin/python3 bench/chart.py results/latest.json results/latest.png

Run with Debian's Python and its python3-matplotlib (bench/run.sh installs
it); the benchmark itself runs under the project's Python. One panel per
figure of issue 4: the project's bars in one colour, the anchors' in grey,
whiskers for the spread (p10-p90 or min-max), dashed lines for targets.
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PROJECT, ANCHOR, LIMIT = "#1f77b4", "#9a9a9a", "#555555"


def get(doc, *path):
    value = doc
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def bar_panel(ax, title, unit, bars, log=False, lines=()):
    """``bars``: (label, summary dict or number, colour); failed ones show as 'failed'."""
    labels, heights, lows, highs, colours = [], [], [], [], []
    for label, summary, colour in bars:
        labels.append(label)
        colours.append(colour)
        if isinstance(summary, (int, float)):
            heights.append(summary), lows.append(0), highs.append(0)
            continue
        if not isinstance(summary, dict) or not ({"median", "p50"} & summary.keys()):
            heights.append(0), lows.append(0), highs.append(0)
            continue
        mid = summary.get("median", summary.get("p50"))
        low = summary.get("min" if "median" in summary else "p10", mid)
        high = summary.get("max" if "median" in summary else "p90", mid)
        heights.append(mid), lows.append(max(mid - low, 0)), highs.append(max(high - mid, 0))
    xs = range(len(labels))
    ax.bar(xs, heights, color=colours, yerr=[lows, highs], capsize=3,
           error_kw={"elinewidth": 0.8, "ecolor": "#333333"})
    for x, h in zip(xs, heights):
        text = "failed" if h == 0 else (f"{h:,.0f}" if h >= 100 else f"{h:.3g}")
        ax.annotate(text, (x, h if h > 0 else 0), ha="center", va="bottom",
                    fontsize=7, xytext=(0, 2), textcoords="offset points")
    for value, text in lines:
        if value:
            ax.axhline(value, color=LIMIT, linestyle="--", linewidth=0.8)
            ax.annotate(text, (len(labels) - 0.5, value), ha="right", va="bottom",
                        fontsize=7, color=LIMIT)
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, rotation=25, ha="right", fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(unit, fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    if log and any(h > 0 for h in heights):
        ax.set_yscale("log")


def draw(doc, path):
    f = doc["figures"]
    m, c = doc["machine"], doc["config"]
    w = c["workers"]
    fig, axes = plt.subplots(2, 3, figsize=(14, 8.5))
    rt = f.get("round_trip", {})
    raw_p50 = get(rt, "raw_socket", "p50")
    ppe_p50 = get(rt, "process_pool", "p50")
    bar_panel(axes[0][0], "1. Round trip abs(-1), p50 [p10-p90]", "µs (log)", [
        ("pool", rt.get("project_pool"), PROJECT),
        ("leased Interpreter", rt.get("project_lease"), PROJECT),
        ("client ping", rt.get("project_ping"), PROJECT),
        ("ProcessPoolExecutor", rt.get("process_pool"), ANCHOR),
        ("raw socket", rt.get("raw_socket"), ANCHOR),
        ("raw socket, 2 CPUs", rt.get("raw_socket_cross_cpu"), ANCHOR),
    ], log=True, lines=[(raw_p50 and 1.5 * raw_p50, "1.5x raw"),
                        (ppe_p50 and ppe_p50 / 3, "PPE / 3")])
    tp = f.get("throughput", {})
    ppe_rate = get(tp, "process_pool_map", "median")
    bar_panel(axes[0][1], "2. Throughput, trivial jobs in flight", "jobs/s", [
        ("1 client", tp.get("project_1_client"), PROJECT),
        (f"{tp.get('clients', 4)} client processes", tp.get("project_clients"), PROJECT),
        ("PPE map(chunksize=1)", tp.get("process_pool_map"), ANCHOR),
    ], lines=[(ppe_rate and 10 * ppe_rate, "10x PPE")])
    cpu = f.get("cpu_scaling", {})
    bar_panel(axes[0][2], f"3. CPU scaling: {w} workers vs 1", "speedup (x)", [
        ("extrainterpreters", get(cpu, "project", "speedup"), PROJECT),
        ("ProcessPoolExecutor", get(cpu, "process_pool", "speedup"), ANCHOR),
        (f"{w} threads", get(cpu, "threads", "speedup"), ANCHOR),
    ], lines=[(1.8, "target 1.8x")])
    data = f.get("large_data", {})
    mib = (data.get("bytes") or 0) / 2**20
    bar_panel(axes[1][0], f"4. {mib:g} MiB argument and result", "MB/s (log)", [
        ("argument", data.get("project_arg"), PROJECT),
        ("result", data.get("project_result"), PROJECT),
        ("PPE argument", data.get("process_pool_arg"), ANCHOR),
        ("PPE result", data.get("process_pool_result"), ANCHOR),
        ("raw socket", data.get("raw_socket"), ANCHOR),
        ("memcpy", data.get("memcpy"), ANCHOR),
    ], log=True, lines=[(get(data, "memcpy", "median") and
                         get(data, "memcpy", "median") / 2, "memcpy / 2")])
    cold = f.get("cold_start", {})
    ppe_cold = get(cold, "process_pool", "median")
    bar_panel(axes[1][1], "5. Cold start: connect to first result", "ms (log)", [
        ("new Client", cold.get("project"), PROJECT),
        ("new ProcessPoolExecutor", cold.get("process_pool"), ANCHOR),
    ], log=True, lines=[(ppe_cold and ppe_cold / 10, "PPE / 10")])
    mem = f.get("memory", {})
    ppe_rss = get(mem, "process_pool_worker", "rss_kib")
    bar_panel(axes[1][2], "6. Memory per warm idle interpreter", "KiB", [
        ("RSS", get(mem, "project", "rss_kib_per_interpreter"), PROJECT),
        ("PSS", get(mem, "project", "pss_kib_per_interpreter"), PROJECT),
        ("PPE worker RSS", ppe_rss, ANCHOR),
        ("PPE worker PSS", get(mem, "process_pool_worker", "pss_kib"), ANCHOR),
    ], lines=[(ppe_rss and ppe_rss / 4, "PPE RSS / 4")])
    met = [t["verdict"] for t in doc.get("targets", []) if t["target"]]
    fig.suptitle(
        f"extrainterpreters vs anchors — {m['date']}, {m['cpu_count']} CPUs, "
        f"Python {m['python_version']}, {w} workers, mode {c['mode']}; "
        f"targets met {met.count('met')} of {len(met)}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=110)


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: chart.py latest.json latest.png")
    with open(argv[1], encoding="utf-8") as source:
        doc = json.load(source)
    draw(doc, argv[2])


if __name__ == "__main__":
    main(sys.argv)
